// Shared by the GPU suites (bench/gpu.mjs: ONNX Runtime CPU vs WebGPU; bench/python-gpu.mjs:
// PyTorch CPU vs CUDA): opt-in selection, the time budget, the served client (binary OIP v2 over
// node:http, C clients back to back), output comparison and the inputs of the PP-OCR models.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { prng, ROOT, summarize } from './common.mjs';
import { decodeInferResponse } from './oip.mjs';
import { histogramMeans, scrapeMetrics } from './probe.mjs';

const ASSETS = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');

/** A list of positive integers from the environment (`BENCH_GPU_BATCHES=1,8,32`). */
export function envIntegers(name, fallback, env = process.env) {
  const v = (env[name] ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (v.length === 0 || v.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${name}=${env[name]}: expected positive integers, comma-separated`);
  return v;
}

/**
 * The suite's time budget: phases end at cumulative shares of it (a phase that finishes early
 * leaves its time to the next), so the whole run ends near `budgetS` whatever the machine.
 */
export class Budget {
  #start = Date.now();
  #totalMs;

  constructor(budgetS) {
    this.#totalMs = budgetS * 1000;
  }

  /** Epoch ms at which the work up to `share` (0–1) of the budget must end. */
  until(share) {
    return this.#start + this.#totalMs * Math.min(1, share);
  }

  /** Seconds since the start. */
  get elapsedS() {
    return (Date.now() - this.#start) / 1000;
  }
}

// ---------------------------------------------------------------------------------------------
// The PP-OCR models and their inputs (the ONNX suite)

/** The detector and the classifier, the detector at `detSize` × `detSize` (a multiple of 32). */
export function gpuModels(detSize) {
  if (!Number.isInteger(detSize) || detSize < 32 || detSize % 32 !== 0) throw new Error(`BENCH_GPU_DET_SIZE=${detSize}: expected a multiple of 32`);
  return {
    cls: { key: 'cls', name: 'text-orientation', file: path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), input: 'x', sampleShape: [3, 48, 192], kind: 'probabilities' },
    det: { key: 'det', name: 'text-detection', file: path.join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx'), input: 'x', sampleShape: [3, detSize, detSize], kind: 'map' },
  };
}

/**
 * Sample `i` of a model, the same in every process: for the detector a synthetic page (dark
 * strokes on white text lines, the lines shifted by `i`, light noise) — its output map has text
 * and background, so a comparison of maps compares something; for the classifier pixel noise
 * (probabilities away from 0 and 1). Both normalised the PP-OCR way, (p / 255 − 0.5) / 0.5.
 */
export function gpuSample(model, i) {
  const [c, h, w] = model.sampleShape;
  const rand = prng(1000 + i);
  const data = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let p;
      if (model.kind === 'map') {
        const yy = y + 3 * i;
        const line = Math.floor(yy / 24) % 2 === 0 && yy % 24 > 6 && yy % 24 < 18 && x > 16 && x < w - 16;
        const glyph = line && (x + 5 * i) % 12 < 7;
        p = (glyph ? 20 : 235) + Math.floor(rand() * 16) - 8;
      } else {
        p = Math.floor(rand() * 256);
      }
      const v = (p / 255 - 0.5) / 0.5;
      for (let k = 0; k < c; k++) data[(k * h + y) * w + x] = v;
    }
  }
  return data;
}

const sampleCache = new Map();
/** A batch of `n` different samples (0 … n − 1) along dim 0. */
export function gpuBatch(model, n) {
  const size = model.sampleShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size * n);
  for (let i = 0; i < n; i++) {
    const key = `${model.key}:${model.sampleShape.join('x')}:${i}`;
    if (!sampleCache.has(key)) sampleCache.set(key, gpuSample(model, i));
    out.set(sampleCache.get(key), i * size);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparing outputs

/** A raw little-endian FP32 file as a Float32Array. */
export function readF32(file) {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/**
 * How far `a` is from the reference `b`: max absolute difference, the same relative to the
 * reference's largest magnitude, and per kind a decision measure: for probabilities ([N, K]) the
 * share of rows whose argmax differs, for a map the share of values on the other side of
 * `threshold` (the detector's binarisation, 0.3 in PP-OCR's DB post-processing), for logits the
 * share of rows whose argmax differs.
 */
export function compareOutputs(a, b, { kind, rowLength, threshold = 0.3 }) {
  if (a.length !== b.length) return { maxAbsDiff: Infinity, maxRelDiff: Infinity, note: `lengths differ: ${a.length} vs ${b.length}` };
  let maxAbs = 0;
  let scale = 0;
  let flips = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    const m = Math.abs(b[i]);
    if (m > scale) scale = m;
    if (kind === 'map' && a[i] > threshold !== b[i] > threshold) flips++;
  }
  const out = { maxAbsDiff: maxAbs, maxRelDiff: scale > 0 ? maxAbs / scale : maxAbs, referenceMaxAbs: scale };
  if (kind === 'map') out.thresholdFlips = { threshold, share: flips / a.length, count: flips };
  if ((kind === 'probabilities' || kind === 'logits') && rowLength > 0) {
    let differ = 0;
    const rows = a.length / rowLength;
    for (let r = 0; r < rows; r++) if (argmax(a, r * rowLength, rowLength) !== argmax(b, r * rowLength, rowLength)) differ++;
    out.argmaxDiffers = { rows, count: differ };
  }
  return out;
}

function argmax(v, from, n) {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (v[i] > v[best]) best = i;
  return best - from;
}

// ---------------------------------------------------------------------------------------------
// The served client: binary OIP v2 requests over node:http, keep-alive

/** One POST; resolves with the status, the body and its wall time (ms). */
function post(agent, url, body, headers, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The first output of a binary (or JSON) inference response, decoded; throws with the server's message on a non-200. */
export function decodeFirstOutput(res, outputName) {
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
  const decoded = decodeInferResponse(h, res.body);
  const out = decoded.outputs.find((o) => o.name === outputName) ?? decoded.outputs[0];
  return { name: out.name, shape: out.shape, datatype: out.datatype, data: Float32Array.from(out.data), binary: out.binary };
}

/**
 * A served client. `check()` sends one request and returns its decoded output; `measure()` runs
 * `concurrency` clients back to back (a closed loop): `warmupPerClient` requests each first (not
 * measured), then requests until at least `minRequests` completed and `timeBoxMs` passed, or
 * `maxRequests` completed, or `deadline` (epoch ms) passed with at least one completed.
 */
export function servedClient({ url, body, headers, timeoutMs = 300_000 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return {
    async check(outputName) {
      const t0 = performance.now();
      const res = await post(agent, url, body, headers, timeoutMs);
      return { ...decodeFirstOutput(res, outputName), ms: performance.now() - t0 };
    },
    async measure({ concurrency, warmupPerClient = 1, minRequests, maxRequests = Infinity, timeBoxMs, deadline }) {
      const clients = Array.from({ length: concurrency }, (_, i) => i);
      await Promise.all(
        clients.map(async () => {
          for (let i = 0; i < warmupPerClient; i++) await post(agent, url, body, headers, timeoutMs);
        }),
      );
      const latencies = [];
      let errors = 0;
      let firstError = null;
      let started = 0;
      const t0 = performance.now();
      const more = () => {
        const done = latencies.length + errors;
        const elapsed = performance.now() - t0;
        if (started >= maxRequests) return false;
        if (Date.now() > deadline && done >= 1) return false;
        return started < minRequests || elapsed < timeBoxMs;
      };
      await Promise.all(
        clients.map(async () => {
          while (more()) {
            started++;
            try {
              const res = await post(agent, url, body, headers, timeoutMs);
              if (res.status === 200) latencies.push(res.ms);
              else {
                errors++;
                firstError ??= `HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
              }
            } catch (err) {
              errors++;
              firstError ??= String(err?.message ?? err);
            }
          }
        }),
      );
      const wallS = (performance.now() - t0) / 1000;
      const lat = summarize(latencies);
      return { concurrency, requests: lat.count, errors, ...(firstError ? { firstError } : {}), wallS, reqPerSec: lat.count / wallS, latencyMs: { p50: lat.p50, p90: lat.p90, mean: lat.mean, max: lat.max } };
    },
    close() {
      agent.destroy();
    },
  };
}

/** Terminal colour codes (ORT colours its warnings). */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** ONNX Runtime's and Dawn's own warnings (node placement, XDG_RUNTIME_DIR, Vulkan features): not why a server died. */
const NATIVE_NOISE = /\[[WI]:onnxruntime|XDG_RUNTIME_DIR|Vulkan shaderUniform|While initializing adapter|at InitializeImpl/;

/** The server process's exit code or signal, or null while it runs. */
export const exitedOf = (server) => (server.child.exitCode !== null || server.child.signalCode !== null ? (server.child.exitCode ?? server.child.signalCode) : null);

/**
 * A served point that threw: records the failed row (`base` first) and logs it; when the server
 * process has died (checked after a moment, so its exit is seen), also records its exit and the
 * end of its log under `results.servers[key].crashed`. Resolves with whether it died, so that
 * nothing more is measured on it.
 */
export async function servedPointFailed({ err, server, results, key, base, batch, logFile, log }) {
  await new Promise((r) => setTimeout(r, 500));
  const exit = exitedOf(server);
  results.served.push({ ...base, batch, failed: `${String(err?.message ?? err).split('\n')[0]}${exit !== null ? ` (the server exited: ${exit})` : ''}` });
  log(`FAIL served/${key} batch ${batch}: ${err?.message ?? err}`);
  if (exit === null) return false;
  results.servers[key].crashed = { exit, batch, logTail: await serverLogTail(logFile) };
  log(`  the server exited with ${exit}; its log ends:\n    ${results.servers[key].crashed.logTail.join('\n    ')}`);
  return true;
}

/** `v` with 1 / 2 decimals, `n/a` for none (the progress lines). */
export const f1 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(1));
export const f2 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));

/**
 * One served point of a GPU suite: `client.measure` at `concurrency` with the server's own
 * histograms (batch size, inference and queue time) scraped around it, and the ratios to `raw` (the
 * raw row of the same contender and batch, if any). Returns the row (`base` first) and its
 * progress line.
 */
export async function measureServedPoint({ client, serverUrl, modelName, batch, concurrency, settings, deadline, raw, base, key }) {
  const before = await scrapeMetrics(serverUrl, modelName);
  const m = await client.measure({ concurrency, warmupPerClient: concurrency === 1 ? 2 : 1, minRequests: Math.max(settings.servedMin, concurrency), timeBoxMs: settings.servedTimeS * 1000, deadline });
  const means = histogramMeans(before, await scrapeMetrics(serverUrl, modelName));
  const row = {
    ...base,
    batch,
    ...m,
    samplesPerSec: m.reqPerSec * batch,
    meanBatchSize: means.batchSize?.mean ?? null,
    meanInferenceMs: means.inferenceSeconds ? means.inferenceSeconds.mean * 1000 : null,
    meanQueueMs: means.queueSeconds ? means.queueSeconds.mean * 1000 : null,
    ratios: raw
      ? { latency: m.latencyMs.p50 !== null ? m.latencyMs.p50 / raw.p50Ms : null, throughput: raw.samplesPerSec ? (m.reqPerSec * batch) / raw.samplesPerSec : null }
      : { latency: null, throughput: null },
  };
  const line =
    `served/${key} batch ${batch} c=${concurrency}: p50 ${f2(m.latencyMs.p50)} ms/request, p90 ${f2(m.latencyMs.p90)}, ${f1(row.samplesPerSec)} samples/s, ` +
    `${m.requests} requests${m.errors ? `, ${m.errors} errors (${m.firstError})` : ''}; server inference ${f2(row.meanInferenceMs)} ms, batch ${f2(row.meanBatchSize)}; × raw ${f2(row.ratios.throughput)} (samples/s), ${f2(row.ratios.latency)} (p50)`;
  return { row, line };
}

/**
 * A served run's server log after it failed or exited: its error lines (pino level ≥ 50) and every
 * other line that is not JSON (a native crash, a Python traceback) but the native runtimes'
 * warnings, the last 15, colours removed, each cut at 600 characters.
 */
export async function serverLogTail(logFile) {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const keep = text
    .replaceAll(ANSI_COLOUR, '')
    .split('\n')
    .filter((line) => {
      if (!line.trim() || NATIVE_NOISE.test(line)) return false;
      try {
        return JSON.parse(line).level >= 50;
      } catch {
        return true;
      }
    });
  return keep.slice(-15).map((l) => l.slice(0, 600));
}

// ---------------------------------------------------------------------------------------------
// Timing in process

/**
 * Times `run()` (async): `warmupRuns` runs first (the first one reported on its own: WebGPU and
 * CUDA compile or plan there), then runs until at least `minRuns` and `timeBoxMs`, or `maxRuns`,
 * or `deadline` passed with `minRuns` done. Median and p90 in ms.
 */
export async function timeRuns(run, { warmupRuns, minRuns, maxRuns, timeBoxMs, deadline }) {
  const warm = [];
  for (let i = 0; i < warmupRuns; i++) {
    const t = performance.now();
    await run();
    warm.push(performance.now() - t);
  }
  const ms = [];
  const t0 = performance.now();
  while (ms.length < maxRuns && (ms.length < minRuns || (performance.now() - t0 < timeBoxMs && Date.now() < deadline))) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  const s = summarize(ms);
  return { firstRunMs: warm[0] ?? null, warmupMs: warm, runs: s.count, p50Ms: s.p50, p90Ms: s.p90, meanMs: s.mean, maxMs: s.max };
}

/** One thread per physical core (what ONNX Runtime's default intra-op pool uses), from sysfs; null elsewhere. */
export function physicalCores() {
  try {
    const seen = new Set();
    for (let cpu = 0; ; cpu++) {
      let siblings;
      try {
        siblings = readFileSync(`/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`, 'utf8').trim();
      } catch {
        break;
      }
      let pkg = '0';
      try {
        pkg = readFileSync(`/sys/devices/system/cpu/cpu${cpu}/topology/physical_package_id`, 'utf8').trim();
      } catch {
        // one package
      }
      seen.add(`${pkg}:${siblings}`);
    }
    return seen.size || null;
  } catch {
    return null;
  }
}

/** `1.23` with `digits` significant-ish decimals for tables; `n/a` for null. */
export function fmt(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return String(v);
  return v.toFixed(digits);
}

/** A difference for tables: `0` or `1.2e-5`. */
export function fmtDiff(v) {
  if (v === null || v === undefined) return 'n/a';
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return String(v);
  return v.toExponential(1);
}
