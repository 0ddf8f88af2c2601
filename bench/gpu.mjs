// The GPU suite for ONNX models: ONNX Runtime's CPU provider against its WebGPU provider (Dawn over
// Vulkan, in onnxruntime-node's Linux build) on the PP-OCR detector and classifier, raw and served.
// Not part of `npm run bench`'s default suites; run it alone (`node bench/gpu.mjs`) or with
// BENCH_SUITES naming `gpu`. On a machine without a WebGPU adapter the WebGPU rows are skipped
// with ONNX Runtime's message and the CPU figures are still measured (exit 0).
//
//   (a) raw      `session.run` in a process of its own per provider (bench/lib/gpu-ort-raw.mjs),
//                one session reused, the same input every run: ≥ 3 warm-up runs (WebGPU compiles
//                its shaders on the first run of each shape), then runs until BENCH_GPU_MIN_RUNS
//                and BENCH_GPU_TIME_S; median and p90 ms per run
//   (b) served   `tessera serve` (packages/core/dist/cli.js), one server per model and provider,
//                `sessionOptions: { executionProviders: [<provider>] }`, otherwise the server's
//                defaults (instances, threads; dynamic batcher with the auto delay, maxBatchSize
//                the largest batch); binary OIP v2 requests of the same batches from 1 client and
//                from BENCH_GPU_CLIENTS clients (closed loop), ms/request and samples/s, × raw.
//                A server that dies (seen: WebGPU with `instances: auto`, i.e. several sessions,
//                SIGSEGV once two run at once) is recorded with its log, and the provider is
//                served again with `instances: 1` (one session, as raw; rows marked instances-1)
//   (c) outputs  WebGPU's against the CPU's, raw and served, per batch: max abs difference and a
//                verdict against the tolerance (classifier probabilities 1e-3, detector map 1e-2)
//
// Environment (all optional):
//   BENCH_QUICK=1               smoke run: batches 1 and 8, detector 160 × 160, 0.5 s boxes, 2 clients
//   BENCH_GPU_BATCHES=1,8,32    batch sizes (the largest is the served maxBatchSize)
//   BENCH_GPU_DET_SIZE=640      detector input H = W (a multiple of 32); the classifier is 48 × 192
//   BENCH_GPU_MODELS=cls,det    BENCH_GPU_PROVIDERS=cpu,webgpu
//   BENCH_GPU_WARMUP_RUNS=3     warm-up runs (at least 3)
//   BENCH_GPU_MIN_RUNS=5        BENCH_GPU_MAX_RUNS=200   BENCH_GPU_TIME_S=2   measured runs per raw point
//   BENCH_GPU_SERVED_TIME_S=2   BENCH_GPU_SERVED_MIN=3   measured window per served point (requests at least)
//   BENCH_GPU_CLIENTS=4         the concurrent clients of the second served row (1 is always measured)
//   BENCH_GPU_WORKERS=1         server.workers of the served configs (`auto`: the server's default, a
//                               worker per 4 cores, each with its own sessions — and GPU device)
//   BENCH_GPU_BATCHING='{…}'    the served `batching:` (default { batcher: dynamic, maxQueueDelayMs: auto })
//   BENCH_GPU_BUDGET_S=270      the whole run's time budget: phases stop at their share of it (a
//                               point under way finishes: allow ~30 s more around it)
//   BENCH_THREADS=…             intraOpNumThreads for raw and served (default: ORT's / the server's)
//   BENCH_MACHINE=name          BENCH_GIT_HEAD=sha     as in bench/run.mjs
//   BENCH_WRITE=0               write no results file (default: bench/results/<date>-<machine>-gpu.json)
//   BENCH_GPU_RENDER=<file>     measure nothing: print the markdown of a results file (for docs/benchmarks.md)
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BENCH_DIR, envList, envNumber, installCleanup, machineSlug, packageVersion, resultsHeader, ROOT, skipUnlessSuite, sessionOptionsFromEnv, startServer, suiteTempDir, trackChild, writePartialOnSignal, writeResultsFile } from './lib/common.mjs';
import { gitInfo } from './lib/contest.mjs';
import { Budget, compareOutputs, envIntegers, exitedOf, f1, f2, gpuBatch, gpuModels, measureServedPoint, servedPointFailed, physicalCores, readF32, servedClient, serverLogTail } from './lib/gpu-common.mjs';
import { renderGpuMarkdown, verdict } from './lib/gpu-render.mjs';
import { binaryInferBody } from './lib/oip.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);

skipUnlessSuite('gpu', 'bench/gpu.mjs');

if (env.BENCH_GPU_RENDER) {
  process.stdout.write(renderGpuMarkdown(JSON.parse(await readFile(path.resolve(env.BENCH_GPU_RENDER), 'utf8'))));
  process.exit(0);
}

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const RAW = path.join(BENCH_DIR, 'lib', 'gpu-ort-raw.mjs');
/**
 * Max abs difference allowed between providers. Classifier: softmax probabilities in [0, 1]; FP32
 * kernels that only reorder sums differ by ~1e-6, so 1e-3 catches a wrong kernel long before it
 * could move a 0°/180° decision. Detector: a sigmoid map after ~100 convolutions on a 640 × 640
 * page, where reordered FP32 sums grow to ~1e-4–1e-3 near edges; DB binarises it at 0.3, and 1e-2
 * moves no box edge by a pixel (the share of values crossing 0.3 is reported beside it).
 */
const TOLERANCE = { probabilities: 1e-3, map: 1e-2 };

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  batches: envIntegers('BENCH_GPU_BATCHES', quick ? '1,8' : '1,8,32'),
  detSize: envNumber('BENCH_GPU_DET_SIZE', quick ? 160 : 640, { min: 32, integer: true }),
  models: envList(env.BENCH_GPU_MODELS, 'cls,det'),
  providers: envList(env.BENCH_GPU_PROVIDERS, 'cpu,webgpu'),
  warmupRuns: Math.max(3, envNumber('BENCH_GPU_WARMUP_RUNS', 3, { min: 0, integer: true })),
  minRuns: envNumber('BENCH_GPU_MIN_RUNS', quick ? 3 : 5, { min: 1, integer: true }),
  maxRuns: envNumber('BENCH_GPU_MAX_RUNS', 200, { min: 1, integer: true }),
  timeBoxS: envNumber('BENCH_GPU_TIME_S', quick ? 0.5 : 2, { min: 0 }),
  servedTimeS: envNumber('BENCH_GPU_SERVED_TIME_S', quick ? 0.5 : 2, { min: 0 }),
  servedMin: envNumber('BENCH_GPU_SERVED_MIN', quick ? 2 : 3, { min: 1, integer: true }),
  clients: envNumber('BENCH_GPU_CLIENTS', quick ? 2 : 4, { min: 1, integer: true }),
  workers: env.BENCH_GPU_WORKERS ?? '1',
  batching: env.BENCH_GPU_BATCHING ? JSON.parse(env.BENCH_GPU_BATCHING) : { batcher: 'dynamic', maxQueueDelayMs: 'auto' },
  budgetS: envNumber('BENCH_GPU_BUDGET_S', quick ? 100 : 270, { min: 10 }),
  sessionOptions: sessionOptionsFromEnv(),
  tolerance: TOLERANCE,
};
const MODELS = gpuModels(settings.detSize);
for (const m of settings.models) if (!MODELS[m]) throw new Error(`BENCH_GPU_MODELS: unknown model '${m}' (cls, det)`);
if (settings.workers !== 'auto' && !(Number(settings.workers) >= 1)) throw new Error(`BENCH_GPU_WORKERS=${settings.workers}: expected a number ≥ 1 or auto`);
const maxBatch = Math.max(...settings.batches);
const concurrencies = [...new Set([1, settings.clients])];

const tmp = suiteTempDir('gpu');
const budget = new Budget(settings.budgetS);
const cores = physicalCores();
const results = {
  ...resultsHeader('gpu', 'bench/gpu.mjs'),
  versions: { onnxruntime: packageVersion('onnxruntime-node'), core: packageVersion('@tessera/core') },
  git: env.BENCH_GIT_HEAD ? { head: env.BENCH_GIT_HEAD, packagesDirty: null, note: `BENCH_GIT_HEAD; this copy's git said ${gitInfo().head?.slice(0, 12) ?? 'nothing'}` } : gitInfo(),
  settings,
  contenders: Object.fromEntries(settings.providers.map((p) => [p, { label: p === 'cpu' ? 'CPU' : p === 'webgpu' ? 'WebGPU' : p }])),
  threads: {
    physicalCores: cores,
    raw: settings.sessionOptions.intraOpNumThreads
      ? `intraOpNumThreads ${settings.sessionOptions.intraOpNumThreads} (BENCH_THREADS)`
      : `ORT's default session options (intraOpNumThreads 0: one thread per physical core${cores ? `, ${cores} here` : ''}); WebGPU: nodes the provider lacks run on that CPU pool`,
    served: settings.sessionOptions.intraOpNumThreads ? `intraOpNumThreads ${settings.sessionOptions.intraOpNumThreads} (BENCH_THREADS)` : "the server's defaults (see servers.*.choice)",
  },
  models: Object.fromEntries(settings.models.map((k) => [k, { name: MODELS[k].name, file: path.relative(ROOT, MODELS[k].file), input: MODELS[k].input, sampleShape: MODELS[k].sampleShape, kind: MODELS[k].kind }])),
  providers: {},
  raw: [],
  served: [],
  servers: {},
  comparisons: [],
  skipped: [],
};
const resultsName = () => `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}-gpu.json`;
writePartialOnSignal(results, { measured: () => results.raw.length > 0, finish: () => (results.elapsedS = budget.elapsedS), name: resultsName, label: 'bench/gpu.mjs' });
installCleanup();

function skip(id, reason) {
  results.skipped.push({ id, reason });
  log(`skip ${id}: ${reason}`);
}


// ---------------------------------------------------------------------------------------------
// (a) raw session.run, one process per provider

/** The first output of each raw point (`<model>/<provider>/<batch>` → a file in the temp folder). */
const outputFiles = new Map();
const rawOutput = (model, provider, batch) => {
  const file = outputFiles.get(`${model}/${provider}/${batch}`);
  return file ? readF32(file) : null;
};

/** Runs bench/lib/gpu-ort-raw.mjs for one model and provider; its points go into results.raw as they come. */
async function rawProvider(model, provider, deadline) {
  const args = {
    model: model.key,
    provider,
    detSize: settings.detSize,
    batches: settings.batches,
    warmupRuns: settings.warmupRuns,
    minRuns: settings.minRuns,
    maxRuns: settings.maxRuns,
    timeBoxMs: settings.timeBoxS * 1000,
    deadline,
    outDir: tmp,
    sessionOptions: settings.sessionOptions,
  };
  const child = fork(RAW, [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const exited = trackChild(child);
  const info = (results.providers[provider] ??= { available: null });
  const id = `raw/${model.key}/${provider}`;
  child.on('message', (m) => {
    if (m.type === 'unavailable') {
      Object.assign(info, { available: false, message: m.message });
      skip(id, `ONNX Runtime could not create a ${provider} session: ${m.message}`);
    } else if (m.type === 'created') {
      Object.assign(info, { available: true, onnxruntime: m.onnxruntime });
      (info.createMs ??= {})[model.key] = m.createMs;
      log(`${id}: session created in ${f1(m.createMs)} ms (onnxruntime ${m.onnxruntime})`);
    } else if (m.type === 'point') {
      outputFiles.set(`${model.key}/${provider}/${m.batch}`, m.output.file);
      const row = { model: model.key, provider, batch: m.batch, firstRunMs: m.firstRunMs, warmupMs: m.warmupMs, runs: m.runs, p50Ms: m.p50Ms, p90Ms: m.p90Ms, meanMs: m.meanMs, maxMs: m.maxMs, samplesPerSec: m.samplesPerSec, output: { name: m.output.name, shape: m.output.shape } };
      results.raw.push(row);
      log(`${id} batch ${m.batch}: p50 ${f2(m.p50Ms)} ms/run, p90 ${f2(m.p90Ms)} ms, ${f1(m.samplesPerSec)} samples/s (${m.runs} runs; first run ${f1(m.firstRunMs)} ms)`);
    } else if (m.type === 'skipped') skip(`${id}/b${m.batch}`, m.reason);
    else if (m.type === 'error') {
      results.raw.push({ model: model.key, provider, batch: m.batch, failed: m.message });
      log(`FAIL ${id} batch ${m.batch}: ${m.message}`);
    }
  });
  // past the phase's deadline a slow run is let finish for a minute, then the process is killed
  const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()) + 60_000);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0 && info.available !== false) {
    log(`FAIL ${id}: the session's process exited with ${code}`);
    results.raw.push({ model: model.key, provider, batch: null, failed: `process exited with ${code}` });
    if (info.available === null) Object.assign(info, { available: false, message: `the session's process exited with ${code} before it created a session` });
  }
}

/** Raw WebGPU (and any other provider) against raw CPU, per batch. */
function compareRaw(model) {
  for (const batch of settings.batches) {
    const ref = rawOutput(model.key, 'cpu', batch);
    if (!ref) continue;
    const rowLength = results.raw.find((r) => r.model === model.key && r.provider === 'cpu' && r.batch === batch)?.output.shape.at(-1);
    for (const provider of settings.providers.filter((p) => p !== 'cpu')) {
      const other = rawOutput(model.key, provider, batch);
      if (!other) continue;
      const diff = compareOutputs(other, ref, { kind: model.kind, rowLength });
      addComparison({ model: model.key, batch, what: `raw ${provider} vs raw cpu`, ...diff });
    }
  }
}

function addComparison(c) {
  const tolerance = TOLERANCE[results.models[c.model].kind];
  const row = { ...c, tolerance, toleranceOn: 'maxAbsDiff', pass: verdict(c.maxAbsDiff, tolerance) };
  results.comparisons.push(row);
  const extra = row.thresholdFlips ? `, ${(row.thresholdFlips.share * 100).toFixed(4)}% of the map across ${row.thresholdFlips.threshold}` : row.argmaxDiffers ? `, argmax differs in ${row.argmaxDiffers.count}/${row.argmaxDiffers.rows} rows` : '';
  log(`  ${c.model} batch ${c.batch} ${c.what}: max abs diff ${row.maxAbsDiff.toExponential(2)} (tolerance ${tolerance}) ${row.pass ? 'ok' : 'OVER'}${extra}`);
}

// ---------------------------------------------------------------------------------------------
// (b) served by Tessera

function tesseraConfig(model, provider) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: 'info', bodyLimit: '1GiB', workers: settings.workers === 'auto' ? 'auto' : Number(settings.workers) },
    models: {
      [model.name]: {
        backend: 'onnxruntime',
        path: model.file,
        batching: { maxBatchSize: maxBatch, ...settings.batching },
        warmupShapes: { [model.input]: [1, ...model.sampleShape] },
        sessionOptions: { ...settings.sessionOptions, executionProviders: [provider] },
      },
    },
  };
}

/** `GET /v2/models/<m>/config`: what the server made of the config (instances, per-instance settings). */
async function serverChoice(url, model) {
  try {
    const res = await fetch(`${url}/v2/models/${encodeURIComponent(model.name)}/config`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return { configStatus: res.status };
    const body = await res.json();
    return { instanceGroupCount: body?.instance_group?.[0]?.count ?? null, instances: body?.tessera?.instances ?? null, instanceSettings: body?.tessera?.instanceSettings ?? null };
  } catch (err) {
    return { error: String(err?.message ?? err) };
  }
}

/** The server's last error line (pino JSON `msg`/`err.message`, else the raw line). */
function lastError(text) {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const e = JSON.parse(line);
      if (e.level >= 50) return e.err?.message ?? e.msg;
    } catch {
      if (/error/i.test(line)) return line.trim();
    }
  }
  return lines[0]?.trim() ?? '';
}

/**
 * One server for a model and provider, every batch at 1 and N clients. `variant`: `default` (the
 * server's own instances and threads) or `instances-1` (`instances: 1`, after the default one
 * crashed: one session, as raw). Resolves with whether the server crashed.
 */
async function servedProvider(model, provider, deadline, variant = 'default') {
  const key = `${model.key}/${provider}${variant === 'default' ? '' : `/${variant}`}`;
  const name = key.replace(/\//g, '-');
  const file = path.join(tmp, `tessera-${name}.json`);
  const logFile = path.join(tmp, `tessera-${name}.log`);
  const config = tesseraConfig(model, provider);
  if (variant === 'instances-1') config.models[model.name].instances = 1;
  await writeFile(file, JSON.stringify(config, null, 2));
  const rawInfo = results.providers[provider];
  const t0 = Date.now();
  let server;
  try {
    server = await startServer(CLI, ['serve', '-c', file, '--port', '0'], { logFile, timeoutMs: Math.max(30_000, Math.min(180_000, deadline - Date.now() + 30_000)) });
  } catch (err) {
    const reason = (lastError(String(err.message).split('\n').slice(1).join('\n')) || String(err.message).split('\n')[0]).replace(/\s+/g, ' ');
    results.servers[key] = { ready: false, error: reason, logTail: await serverLogTail(logFile) };
    skip(`served/${key}`, `the server did not start: ${reason}`);
    return false;
  }
  let crashed = false;
  try {
    const choice = await serverChoice(server.url, model);
    results.servers[key] = { ready: true, variant, startS: (Date.now() - t0) / 1000, choice };
    log(`served/${key}: ready in ${f1((Date.now() - t0) / 1000)} s; the server chose ${JSON.stringify(choice)}`);
    if (rawInfo?.available === false) {
      skip(`served/${key}`, `not measured: raw session.run could not create a ${provider} session (the server started anyway: see servers.${key}.choice)`);
      return false;
    }
    const url = `${server.url}/v2/models/${encodeURIComponent(model.name)}/infer`;
    for (const batch of settings.batches) {
      if (crashed) {
        skip(`served/${key}/b${batch}`, `the server exited (${results.servers[key].crashed.exit}) during an earlier point`);
        continue;
      }
      if (Date.now() > deadline) {
        skip(`served/${key}/b${batch}`, 'the time budget of this phase ran out');
        continue;
      }
      const { body, headers } = binaryInferBody(model.input, [batch, ...model.sampleShape], gpuBatch(model, batch));
      const client = servedClient({ url, body, headers });
      try {
        const out = await client.check();
        // the served answer against raw CPU (the reference) and against raw session.run of the same provider
        for (const against of [...new Set(['cpu', provider])]) {
          const ref = rawOutput(model.key, against, batch);
          if (ref) addComparison({ model: model.key, batch, what: `served ${provider}${variant === 'default' ? '' : ` (${variant})`} vs raw ${against}`, ...compareOutputs(out.data, ref, { kind: model.kind, rowLength: out.shape.at(-1) }) });
        }
        for (const concurrency of concurrencies) {
          if (Date.now() > deadline) {
            skip(`served/${key}/b${batch}/c${concurrency}`, 'the time budget of this phase ran out');
            continue;
          }
          const raw = results.raw.find((r) => r.model === model.key && r.provider === provider && r.batch === batch && r.p50Ms);
          const { row, line } = await measureServedPoint({ client, serverUrl: server.url, modelName: model.name, batch, concurrency, settings, deadline, raw, base: { model: model.key, provider, config: variant }, key });
          results.served.push(row);
          log(line);
          if (row.errors && exitedOf(server) !== null) throw new Error(`the server exited during the point: ${row.firstError}`);
        }
      } catch (err) {
        // a server that died mid-point: say so (with its log), and measure nothing more on it
        if (await servedPointFailed({ err, server, results, key, base: { model: model.key, provider, config: variant }, batch, logFile, log })) crashed = true;
      } finally {
        client.close();
      }
    }
  } finally {
    await server.stop();
  }
  return crashed;
}

/** The default config; when that server crashes, the same with `instances: 1` (one session, as raw). */
async function servedAll(model, provider, deadline) {
  if (await servedProvider(model, provider, deadline)) {
    log(`served/${model.key}/${provider}: the default config's server crashed; again with instances: 1`);
    await servedProvider(model, provider, deadline, 'instances-1');
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`);
  log(`bench/gpu.mjs: ${results.command}\n  ${results.machine.cpu}, ${results.machine.cores} cores (${cores ?? '?'} physical), Node ${results.machine.node}; budget ${settings.budgetS} s`);
  log(`  models ${settings.models.join(', ')} (detector ${settings.detSize} × ${settings.detSize}); providers ${settings.providers.join(', ')}; batches ${settings.batches.join(', ')}; clients 1, ${settings.clients}`);
  // the detector costs ~10× the classifier: its phases get the larger shares of the budget
  const weight = { cls: 1, det: 3 };
  const total = settings.models.reduce((s, k) => s + weight[k], 0);
  let share = 0;
  for (const key of settings.models) {
    const model = MODELS[key];
    const rawUntil = budget.until((share += (0.4 * weight[key]) / total));
    log(`\n== ${key}: raw session.run (until +${Math.round((rawUntil - Date.now()) / 1000)} s)`);
    for (const provider of settings.providers) await rawProvider(model, provider, rawUntil);
    compareRaw(model);
    const servedUntil = budget.until((share += (0.6 * weight[key]) / total));
    log(`== ${key}: served by Tessera (until +${Math.round((servedUntil - Date.now()) / 1000)} s)`);
    for (const provider of settings.providers) await servedAll(model, provider, servedUntil);
  }
  results.elapsedS = budget.elapsedS;
  const over = results.comparisons.filter((c) => c.pass === false);
  log(`\noutputs: ${results.comparisons.length} comparison(s), ${over.length} over tolerance${over.length ? `: ${over.map((c) => `${c.model} b${c.batch} ${c.what}`).join('; ')}` : ''}`);
  if (env.BENCH_WRITE !== '0') log(`wrote ${path.relative(ROOT, await writeResultsFile(results, { quick }))}`);
  process.stdout.write(renderGpuMarkdown(results));
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench/gpu.mjs: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
