// The measurements behind the ONNX Runtime backend's sizing rule (instances: auto, intra-op threads,
// spinning, the worker's poll): raw `session.run` with S parallel sessions × T threads, and the
// served PP-OCR models under each candidate setting, in one run on one machine. Not part of
// `npm run bench` (the OCR suite measures the default config against the raw best); run by hand
// where the cores are:
//
//   node bench/sizing.mjs                     # prints a table, writes bench/results/<date>-<machine>-sizing.json
//   BENCH_SIZING_QUICK=1 node bench/sizing.mjs
//   bash bench/sizing-layouts.sh              # the per-worker layouts with several workers (16 cores)
//
// Every server listens on 127.0.0.1; every load stops by itself. Needs the built packages.
import { writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, ROOT, benchModels, envList, freePort, installCleanup, machineInfo, machineSlug, makeSample, startServer } from './lib/common.mjs';
import { binaryInferBody } from './lib/oip.mjs';
import { histogramMeans, scrapeMetrics, treeCpuSeconds, waitWorkersReady } from './lib/probe.mjs';
import { runPoint } from './lib/raw-sweep.mjs';
import { splitLoad } from './lib/split-load.mjs';

installCleanup();
const env = process.env;
const quick = env.BENCH_SIZING_QUICK === '1';
const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const MODELS = benchModels();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tessera-sizing-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const cores = os.availableParallelism();
const log = (line) => process.stderr.write(`${line}\n`);
const warmS = quick ? 1 : 2;
const measureS = quick ? 2 : 5;
const models = envList(env.BENCH_SIZING_MODELS, 'cls,det');

const results = { schema: 1, date: new Date().toISOString(), machine: machineInfo(), cores, raw: [], served: [] };

/** S raw sessions at once (each a process of its own: bench/lib/raw-sweep.mjs), T threads each (0: ORT's), one batch size. */
async function rawParallel(model, sessions, threads, batch) {
  const { rows } = await runPoint({ model: model.key, point: { sessions, threads: threads > 0 ? threads : null }, batches: [batch], durationMs: quick ? 1000 : 2500, warmupMs: 800, sessionOptions: {} });
  const r = rows[0];
  const row = { model: model.key, sessions, threads, batch, samplesPerSec: r.samplesPerSec, p50Ms: r.latencyMs.p50 };
  results.raw.push(row);
  log(`raw ${model.key} ${sessions}×${threads || 'ORT'} b${batch}: ${row.samplesPerSec.toFixed(0)}/s p50 ${row.p50Ms.toFixed(3)} ms`);
  return row;
}

async function served(model, label, modelKeys, connections, loadWorkers = 1, serverKeys = {}) {
  const maxBatch = Math.max(...model.batches);
  const config = {
    server: { host: '127.0.0.1', port: 0, logLevel: 'info', ...serverKeys },
    models: { [model.name]: { path: model.file, batching: { batcher: 'dynamic', maxBatchSize: maxBatch, maxQueueDelayMs: 'auto' }, warmupShapes: { [model.input]: [1, ...model.sampleShape] }, ...modelKeys } },
  };
  const file = path.join(tmp, `${model.key}-${results.served.length}.json`);
  await writeFile(file, JSON.stringify(config));
  // BENCH_SIZING_PROFILE_DIR: points labelled `… prof` run the server under --cpu-prof, written there
  const profile = env.BENCH_SIZING_PROFILE_DIR && label.endsWith('prof');
  // (node refuses --cpu-prof in NODE_OPTIONS: it goes before the script)
  // several workers (server.workers) share a port chosen here; the primary counts the ready ones in /metrics
  const workers = serverKeys.workers ?? 1;
  const port = workers === 1 ? undefined : await freePort();
  const portArgs = port ? ['--port', String(port)] : [];
  const readyUrl = port ? `http://127.0.0.1:${port}` : undefined;
  const server = profile
    ? await startServer('--cpu-prof', [`--cpu-prof-dir=${env.BENCH_SIZING_PROFILE_DIR}`, CLI, 'serve', '-c', file, ...portArgs], { logFile: `${file}.log`, readyUrl })
    : await startServer(CLI, ['serve', '-c', file, ...portArgs], { logFile: `${file}.log`, readyUrl });
  try {
    if (port) await waitWorkersReady(server.url, workers, { timeoutMs: 120_000, label, tail: server.tail });
    const cpu = () => treeCpuSeconds(server.pid);
    const settings = await (await fetch(`${server.url}/v2/models/${model.name}/config`)).json();
    const url = `${server.url}/v2/models/${model.name}/infer`;
    const body = binaryInferBody(model.input, [1, ...model.sampleShape], makeSample(model));
    const bodyFile = `${file}.body`;
    await writeFile(bodyFile, body.body);
    // several load generators (processes) share the connections when one event loop cannot load the server
    const load = (durationS) => splitLoad({ url, bodyFile, headers: body.headers, connections, durationS, processes: loadWorkers });
    await load(warmS);
    const before = await scrapeMetrics(server.url, model.name);
    const cpu0 = cpu();
    const t0 = Date.now();
    const r = await load(measureS);
    const serverCpuPct = ((cpu() - cpu0) / ((Date.now() - t0) / 1000)) * 100;
    // the batch the instances ran, the time in the queue and in the session (every worker's: /metrics answers for the whole server)
    const means = histogramMeans(before, await scrapeMetrics(server.url, model.name));
    const row = {
      model: model.key,
      label,
      modelKeys,
      serverKeys,
      workers,
      connections,
      samplesPerSec: r.reqPerSec,
      p50Ms: r.latencyMs.p50,
      p99Ms: r.latencyMs.p99,
      errors: r.errors + r.non2xx,
      loadWorkers,
      loadGenerator: r.loadGenerator ?? 'autocannon',
      loadCpuPct: r.loadCpuPct,
      serverCpuPct,
      meanBatch: means.batchSize?.mean ?? null,
      queueMs: means.queueSeconds ? means.queueSeconds.mean * 1000 : null,
      inferenceMs: means.inferenceSeconds ? means.inferenceSeconds.mean * 1000 : null,
      instances: settings.instance_group?.[0]?.count,
      instanceSettings: settings.tessera?.instanceSettings?.[0],
    };
    results.served.push(row);
    log(`served ${model.key} ${label} c${connections}${loadWorkers > 1 ? ` (${loadWorkers} load processes)` : ''}: ${row.samplesPerSec.toFixed(0)}/s p50 ${row.p50Ms.toFixed(3)} ms p99 ${row.p99Ms.toFixed(3)} ms, CPU server ${serverCpuPct.toFixed(0)}% ${row.loadGenerator} ${r.loadCpuPct?.toFixed(0)}% (${workers > 1 ? `${workers} workers × ` : ''}${row.instances}× ${row.instanceSettings?.intraOpNumThreads}), batch ${row.meanBatch?.toFixed(2) ?? '?'} queue ${row.queueMs?.toFixed(2) ?? '?'} ms inference ${row.inferenceMs?.toFixed(2) ?? '?'} ms`);
    return row;
  } finally {
    await server.stop();
  }
}

const so = (o) => ({ sessionOptions: o });
const candidates = {
  cls: {
    c64: [
      ['default', {}],
      ['1×ORT (old default)', { instances: 1, ...so({ intraOpNumThreads: 0 }) }],
      ['1×12', { instances: 1, ...so({ intraOpNumThreads: 12 }) }],
      ['2×6', { instances: 2, ...so({ intraOpNumThreads: 6 }) }],
      ['2×6 no spin', { instances: 2, ...so({ intraOpNumThreads: 6, allowSpinning: false }) }],
      ['2×8', { instances: 2, ...so({ intraOpNumThreads: 8 }) }],
      ['3×4', { instances: 3, ...so({ intraOpNumThreads: 4 }) }],
      ['3×5', { instances: 3, ...so({ intraOpNumThreads: 5 }) }],
      ['4×3', { instances: 4, ...so({ intraOpNumThreads: 3 }) }],
      ['4×4', { instances: 4, ...so({ intraOpNumThreads: 4 }) }],
    ],
    c1: [
      ['default', {}],
      ['default, workerSpinMs 0', { workerSpinMs: 0 }],
      ['default, workerSpinMs 2', { workerSpinMs: 2 }],
      ['1×ORT, workerSpinMs 0 (old default)', { instances: 1, workerSpinMs: 0, ...so({ intraOpNumThreads: 0 }) }],
      ['1×4', { instances: 1, ...so({ intraOpNumThreads: 4 }) }],
      ['default no spin', { ...so({ allowSpinning: false }) }],
    ],
  },
  det: {
    c64: [
      ['default', {}],
      ['1×ORT (old default)', { instances: 1, ...so({ intraOpNumThreads: 0 }) }],
      ['3×4', { instances: 3, ...so({ intraOpNumThreads: 4 }) }],
      ['4×3', { instances: 4, ...so({ intraOpNumThreads: 3 }) }],
      ['2×6 no spin', { instances: 2, ...so({ intraOpNumThreads: 6, allowSpinning: false }) }],
    ],
    c1: [
      ['default', {}],
      ['1×ORT, workerSpinMs 0 (old default)', { instances: 1, workerSpinMs: 0, ...so({ intraOpNumThreads: 0 }) }],
    ],
  },
};

const rawGrid = {
  cls: { batch: 32, grid: [[1, 0], [1, 12], [2, 6], [2, 8], [3, 4], [4, 4], [8, 2], [16, 1]] },
  det: { batch: 4, grid: [[1, 0], [2, 6], [2, 8], [4, 4], [8, 2]] },
};

if (env.BENCH_SIZING_RAW) {
  // [[model, sessions, threads, batch], …]: only these raw points
  for (const [key, sessions, threads, batch] of JSON.parse(env.BENCH_SIZING_RAW)) await rawParallel(MODELS[key], sessions, threads, batch);
  if (!env.BENCH_SIZING_PLAN) models.length = 0;
}
if (env.BENCH_SIZING_PLAN) {
  // [[model, label, modelKeys, connections, loadProcesses, serverKeys], …]: only these served points
  for (const [key, label, keys, connections, loadProcs, serverKeys] of JSON.parse(env.BENCH_SIZING_PLAN)) await served(MODELS[key], label, keys, connections, loadProcs ?? 1, serverKeys ?? {});
  models.length = 0;
}
for (const key of models) {
  const model = MODELS[key];
  if (!model) throw new Error(`BENCH_SIZING_MODELS: unknown model ${key}`);
  for (const threads of [0, 6, 4, 2]) await rawParallel(model, 1, threads, 1);
  for (const [s, t] of rawGrid[key].grid) await rawParallel(model, s, t, rawGrid[key].batch);
  for (const [label, keys] of candidates[key].c64) await served(model, label, keys, 64);
  for (const [label, keys] of candidates[key].c1) await served(model, label, keys, 1);
}

const out = path.join(BENCH_DIR, 'results', `${results.date.slice(0, 10)}-${machineSlug(results.machine)}-sizing.json`);
await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
log(`wrote ${path.relative(ROOT, out)}`);
