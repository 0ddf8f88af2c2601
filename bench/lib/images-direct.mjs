// The baseline of bench/images.mjs: the PP-OCR classifier on PNG images done directly in this one
// Node process, written here from the model's description rather than from Tessera's processors:
//
//   sharp: the header (width, height), then decode and resize to height 48 keeping the aspect
//   ratio, width ceil(48 · w / h) up to 192 (libvips' linear kernel), 8-bit RGB
//   → FP32 [N, 3, 48, 192], channels in BGR order (as cv2 hands PaddleOCR its images), each pixel
//     (p / 255 − 0.5) / 0.5, the columns right of the image 0 (PaddleOCR pads after normalising)
//   → onnxruntime-node InferenceSession.run → softmax_0.tmp_0 [N, 2] (softmax applied unless a row
//     already is a distribution) → top-1 of the labels 0 and 180.
//
// Concurrency C: C / B workers, each decoding B images at once (sharp works on libuv's pool) then
// running them as one batch of B; B = 1 is C workers of one image each. bench/images.mjs asks for
// several B at each C and keeps the best. Started once per run; commands are JSON lines on stdin,
// answers JSON lines on stdout:
//   {"op":"classify","kind":"line"}                                  every image of the kind, batch 1
//   {"op":"measure","kind":"line","concurrency":8,"batch":4,"warmupS":0.5,"durationS":2}
//   node bench/lib/images-direct.mjs '{"model":"/path/cls.onnx","images":{"line":["/tmp/a.png",…]},"load":{"line":"/tmp/a.png"}}'
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

const H = 48;
const W = 192;
const LABELS = ['0', '180'];
const PLANE = H * W;

const args = JSON.parse(process.argv[2] ?? '{}');
// the images are new buffers in a server; libvips' cache must not remember a decode here either
sharp.cache(false);
const session = await ort.InferenceSession.create(args.model, { executionProviders: ['cpu'], ...(args.sessionOptions ?? {}) });
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];
const images = Object.fromEntries(Object.entries(args.images ?? {}).map(([kind, files]) => [kind, files.map((f) => readFileSync(f))]));
const loadImage = Object.fromEntries(Object.entries(args.load ?? {}).map(([kind, file]) => [kind, readFileSync(file)]));

/** (p / 255 − 0.5) / 0.5 for every 8-bit value. */
const NORM = Float32Array.from({ length: 256 }, (_, p) => (p / 255 - 0.5) / 0.5);

/** Decodes and resizes one PNG, writing it into image `slot` of `out` (FP32 NCHW, BGR). */
async function preprocess(png, out, slot) {
  const { width, height } = await sharp(png).metadata();
  const w = Math.min(W, Math.max(1, Math.ceil(H * (width / height))));
  const { data, info } = await sharp(png).removeAlpha().resize(w, H, { fit: 'fill', kernel: 'linear' }).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== w || info.height !== H || info.channels !== 3) throw new Error(`sharp made ${info.width}×${info.height}×${info.channels}`);
  const base = slot * 3 * PLANE;
  // channel 0 of the model is blue (source channel 2), 1 green, 2 red; the padding is already 0
  for (let c = 0; c < 3; c++) {
    const src = 2 - c;
    const plane = base + c * PLANE;
    for (let y = 0; y < H; y++) {
      const row = plane + y * W;
      const from = y * w * 3;
      for (let x = 0; x < w; x++) out[row + x] = NORM[data[from + x * 3 + src]];
    }
  }
}

/** Top-1 of each row of the [N, 2] output. */
function top1(scores, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const row = [scores[2 * i], scores[2 * i + 1]];
    const sum = row[0] + row[1];
    const distribution = row.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) <= 1e-3;
    const p = distribution ? row : ((m) => ((e) => e.map((v) => v / (e[0] + e[1])))(row.map((v) => Math.exp(v - m))))(Math.max(...row));
    const k = p[1] > p[0] ? 1 : 0;
    out.push({ label: LABELS[k], score: p[k] });
  }
  return out;
}

/** One batch: decode `pngs` concurrently into one tensor, run it, top-1. Times of the two phases in ms. */
async function classify(pngs) {
  const t0 = performance.now();
  const data = new Float32Array(pngs.length * 3 * PLANE);
  await Promise.all(pngs.map((png, i) => preprocess(png, data, i)));
  const t1 = performance.now();
  const result = await session.run({ [inputName]: new ort.Tensor('float32', data, [pngs.length, 3, H, W]) });
  const t2 = performance.now();
  const predictions = top1(result[outputName].data, pngs.length);
  return { predictions, decodeMs: t1 - t0, runMs: t2 - t1, endMs: performance.now() };
}

function percentile(sorted, q) {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * `concurrency / batch` workers, each classifying `batch` copies of the kind's load image per
 * iteration, for `warmupS` (not counted) then `durationS`. Counted: batches that ended inside the
 * window, every image of one with the batch's latency.
 */
async function measure({ kind, concurrency, batch, warmupS, durationS }) {
  const png = loadImage[kind];
  if (!png) throw new Error(`no load image of kind ${kind}`);
  if (concurrency % batch !== 0) throw new Error(`concurrency ${concurrency} is not a multiple of batch ${batch}`);
  const workers = concurrency / batch;
  const pngs = Array.from({ length: batch }, () => png);
  const start = performance.now() + warmupS * 1000;
  const end = start + durationS * 1000;
  const latencies = [];
  let decodeMs = 0;
  let runMs = 0;
  let batches = 0;
  let cpu0 = null;
  const cpuAt = setTimeout(() => {
    cpu0 = process.cpuUsage();
  }, warmupS * 1000);
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const r = await classify(pngs);
      if (t >= start && r.endMs <= end) {
        batches++;
        decodeMs += r.decodeMs;
        runMs += r.runMs;
        for (let i = 0; i < batch; i++) latencies.push(r.endMs - t);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  clearTimeout(cpuAt);
  const cpu = cpu0 ? process.cpuUsage(cpu0) : null;
  latencies.sort((a, b) => a - b);
  return {
    kind,
    concurrency,
    batch,
    workers,
    images: latencies.length,
    imagesPerSec: latencies.length / durationS,
    latencyMs: { p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), max: latencies.at(-1) ?? null },
    // of a worker's time, decoding + preprocessing against session.run (summed over the counted batches)
    decodeMsPerBatch: batches ? decodeMs / batches : null,
    runMsPerBatch: batches ? runMs / batches : null,
    decodeShare: decodeMs + runMs > 0 ? decodeMs / (decodeMs + runMs) : null,
    cpuUsPerImage: cpu && latencies.length ? ((cpu.user + cpu.system) / latencies.length) : null,
    cpuPct: cpu ? ((cpu.user + cpu.system) / 1e6 / durationS) * 100 : null,
  };
}

const answer = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
answer({ ready: true, input: inputName, output: outputName, onnxruntime: ort.env.versions?.common ?? null, sharp: sharp.versions });

createInterface({ input: process.stdin }).on('line', async (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  try {
    if (cmd.op === 'classify') {
      const out = [];
      for (const png of images[cmd.kind] ?? []) out.push((await classify([png])).predictions[0]);
      answer({ op: 'classify', kind: cmd.kind, predictions: out });
    } else if (cmd.op === 'measure') {
      answer({ op: 'measure', ...(await measure(cmd)) });
    } else if (cmd.op === 'exit') {
      await session.release();
      process.exit(0);
    } else throw new Error(`unknown op ${cmd.op}`);
  } catch (err) {
    answer({ op: cmd.op, error: String(err?.stack ?? err) });
  }
});
