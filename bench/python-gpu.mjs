// The GPU suite for Python models: PyTorch on the CPU against CUDA, raw and served by Tessera's
// Python backend, with the model of examples/pytorch-resnet (a torchvision ResNet, random weights
// from a fixed seed). Not part of `npm run bench`'s default suites; run it alone
// (`node bench/python-gpu.mjs`) or with BENCH_SUITES naming `python-gpu`. Where torch sees no
// CUDA device the CUDA rows are skipped, saying so, and the CPU figures are still measured (exit 0).
//
//   (a) raw      bench/lib/gpu-torch-raw.py in BENCH_PYTHON: the seeded model's forward at each
//                batch, per contender — cpu FP32, cuda FP32 (TF32 off), cuda TF32, cuda FP16 —
//                ≥ 3 warm-up runs, then runs until BENCH_PYGPU_MIN_RUNS and BENCH_PYGPU_TIME_S; CUDA
//                synchronised after each run. Two timings: `forward` (input already on the device)
//                and `e2e` (numpy in, numpy out: the copies model.py makes too), the baseline of ×
//   (b) served   `tessera serve` on examples/pytorch-resnet/models (repository:), one server per
//                served contender (RESNET_DEVICE / RESNET_FP16 / RESNET_TF32 through python.env),
//                server.workers 1; binary OIP v2 requests of the same batches from 1 client and
//                from BENCH_PYGPU_CLIENTS clients (closed loop); ms/request, samples/s, × raw e2e
//   (c) outputs  each contender's against the CPU's (raw), and each served answer against raw:
//                max abs and relative (÷ the reference's largest |logit|) differences, a verdict
//                against the tolerance (relative: CUDA FP32 1e-3, TF32 and FP16 1e-2)
//
// Environment (all optional):
//   BENCH_PYTHON=python3          the interpreter (torch, torchvision, numpy) for raw and served
//   BENCH_QUICK=1                 smoke run: batches 1 and 4, 0.3 s boxes, 2 clients
//   BENCH_PYGPU_BATCHES=1,8,32    batch sizes (≤ 32, the example's max_batch_size)
//   BENCH_PYGPU_ARCH=resnet18     any torchvision.models builder (RESNET_ARCH)
//   BENCH_PYGPU_CONTENDERS=cpu,cuda,cuda-tf32,cuda-fp16   the raw contenders
//   BENCH_PYGPU_SERVED=cpu,cuda,cuda-fp16                  the served contenders
//   BENCH_PYGPU_WARMUP_RUNS=3     BENCH_PYGPU_MIN_RUNS=5   BENCH_PYGPU_MAX_RUNS=200   BENCH_PYGPU_TIME_S=1
//   BENCH_PYGPU_SERVED_TIME_S=2   BENCH_PYGPU_SERVED_MIN=3   BENCH_PYGPU_CLIENTS=4
//   BENCH_PYGPU_THREADS=0         torch's intra-op threads on the CPU, raw and served (0: torch's default)
//   BENCH_PYGPU_BUDGET_S=170      the whole run's time budget: phases stop at their share of it
//   BENCH_MACHINE=name  BENCH_GIT_HEAD=sha  BENCH_WRITE=0   as in bench/gpu.mjs
//   BENCH_PYTHON_GPU_RENDER=<file>   measure nothing: print the markdown of a results file
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BENCH_DIR, envList, envNumber, installCleanup, machineSlug, packageVersion, prng, resultsHeader, ROOT, skipUnlessSuite, startServer, suiteTempDir, trackChild, writePartialOnSignal, writeResultsFile } from './lib/common.mjs';
import { gitInfo } from './lib/contest.mjs';
import { Budget, compareOutputs, envIntegers, f1, f2, measureServedPoint, servedPointFailed, readF32, servedClient, serverLogTail } from './lib/gpu-common.mjs';
import { renderGpuMarkdown, verdict } from './lib/gpu-render.mjs';
import { binaryInferBody } from './lib/oip.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);

skipUnlessSuite('python-gpu', 'bench/python-gpu.mjs');

if (env.BENCH_PYTHON_GPU_RENDER) {
  process.stdout.write(renderGpuMarkdown(JSON.parse(await readFile(path.resolve(env.BENCH_PYTHON_GPU_RENDER), 'utf8'))));
  process.exit(0);
}

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const RAW = path.join(BENCH_DIR, 'lib', 'gpu-torch-raw.py');
const REPOSITORY = path.join(ROOT, 'examples', 'pytorch-resnet', 'models');
const SAMPLE_SHAPE = [3, 224, 224];
const SAMPLE = SAMPLE_SHAPE.reduce((a, b) => a * b, 1);

/** The contenders: where and in what precision the model runs. */
const CONTENDERS = {
  cpu: { label: 'CPU FP32', device: 'cpu', dtype: 'fp32' },
  cuda: { label: 'CUDA FP32', device: 'cuda', dtype: 'fp32' },
  'cuda-tf32': { label: 'CUDA TF32', device: 'cuda', dtype: 'tf32' },
  'cuda-fp16': { label: 'CUDA FP16', device: 'cuda', dtype: 'fp16' },
};
/**
 * Relative tolerance (max |a − b| ÷ max |reference|) against the CPU's FP32 logits. FP32 on CUDA
 * (TF32 off) differs from the CPU only in the order of sums (cuDNN's algorithms): ~1e-6 after 18
 * layers, so 1e-3 is the "same computation" bound. TF32 rounds the convolutions' inputs to a
 * 10-bit significand, FP16 every activation to 11 bits (~5e-4 per rounding): 1e-2 is what that
 * accumulates to through a ResNet (3–7e-4 seen for resnet18 on an H200), not a claim of equality;
 * the argmax agreement is reported beside it. A served answer against the raw run of the same
 * contender is the same computation: 1e-4 (FP16: 1e-2, cuDNN may pick another algorithm per process).
 */
const TOLERANCE = { cpu: 1e-4, cuda: 1e-3, 'cuda-tf32': 1e-2, 'cuda-fp16': 1e-2 };
const SAME_CONTENDER_TOLERANCE = { cpu: 1e-4, cuda: 1e-4, 'cuda-tf32': 1e-4, 'cuda-fp16': 1e-2 };

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  python: env.BENCH_PYTHON || 'python3',
  arch: env.BENCH_PYGPU_ARCH || 'resnet18',
  seed: 0,
  batches: envIntegers('BENCH_PYGPU_BATCHES', quick ? '1,4' : '1,8,32'),
  contenders: envList(env.BENCH_PYGPU_CONTENDERS, 'cpu,cuda,cuda-tf32,cuda-fp16'),
  served: envList(env.BENCH_PYGPU_SERVED, 'cpu,cuda,cuda-fp16'),
  warmupRuns: Math.max(3, envNumber('BENCH_PYGPU_WARMUP_RUNS', 3, { min: 0, integer: true })),
  minRuns: envNumber('BENCH_PYGPU_MIN_RUNS', quick ? 2 : 5, { min: 1, integer: true }),
  maxRuns: envNumber('BENCH_PYGPU_MAX_RUNS', 200, { min: 1, integer: true }),
  timeBoxS: envNumber('BENCH_PYGPU_TIME_S', quick ? 0.3 : 1, { min: 0 }),
  servedTimeS: envNumber('BENCH_PYGPU_SERVED_TIME_S', quick ? 0.5 : 2, { min: 0 }),
  servedMin: envNumber('BENCH_PYGPU_SERVED_MIN', quick ? 2 : 3, { min: 1, integer: true }),
  clients: envNumber('BENCH_PYGPU_CLIENTS', quick ? 2 : 4, { min: 1, integer: true }),
  threads: envNumber('BENCH_PYGPU_THREADS', 0, { min: 0, integer: true }),
  workers: 1,
  budgetS: envNumber('BENCH_PYGPU_BUDGET_S', quick ? 110 : 170, { min: 10 }),
  tolerance: { againstCpu: TOLERANCE, sameContender: SAME_CONTENDER_TOLERANCE, on: 'maxRelDiff' },
};
for (const c of new Set([...settings.contenders, ...settings.served])) if (!CONTENDERS[c]) throw new Error(`BENCH_PYGPU_CONTENDERS/SERVED: unknown contender '${c}' (${Object.keys(CONTENDERS).join(', ')})`);
const maxBatch = Math.max(...settings.batches);
if (maxBatch > 32) throw new Error(`BENCH_PYGPU_BATCHES: ${maxBatch} is over the example's max_batch_size 32`);
const concurrencies = [...new Set([1, settings.clients])];
const rawIds = [...new Set(['cpu', ...settings.contenders])];

const tmp = suiteTempDir('python-gpu');
const budget = new Budget(settings.budgetS);
const results = {
  ...resultsHeader('python-gpu', 'bench/python-gpu.mjs'),
  versions: { core: packageVersion('@tessera/core'), 'backend-python': packageVersion('@tessera/backend-python') },
  git: env.BENCH_GIT_HEAD ? { head: env.BENCH_GIT_HEAD, packagesDirty: null, note: `BENCH_GIT_HEAD; this copy's git said ${gitInfo().head?.slice(0, 12) ?? 'nothing'}` } : gitInfo(),
  settings,
  contenders: Object.fromEntries(rawIds.map((id) => [id, { label: CONTENDERS[id].label }])),
  threads: null,
  gpu: null,
  models: { resnet: { name: `${settings.arch}, random weights (seed ${settings.seed})`, file: 'examples/pytorch-resnet/models/resnet/1/model.py', input: 'input', sampleShape: SAMPLE_SHAPE, kind: 'logits', arch: settings.arch, weights: `random, torch.manual_seed(${settings.seed})` } },
  environment: null,
  providers: {},
  raw: [],
  served: [],
  servers: {},
  comparisons: [],
  skipped: [],
};
const resultsName = () => `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}-python-gpu.json`;
writePartialOnSignal(results, { measured: () => results.raw.length > 0, finish: () => (results.elapsedS = budget.elapsedS), name: resultsName, label: 'bench/python-gpu.mjs' });
installCleanup();

function skip(id, reason) {
  results.skipped.push({ id, reason });
  log(`skip ${id}: ${reason}`);
}

/** [max batch, 3, 224, 224] values in [-1, 1), the same in every run; batch N is the first N samples. */
function makeInput() {
  const rand = prng(20261204);
  const data = new Float32Array(maxBatch * SAMPLE);
  for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
  return data;
}
const input = makeInput();
const inputFile = path.join(tmp, 'input.f32');
const outputFile = (id, batch) => path.join(tmp, `${id}-b${batch}.f32`);

// ---------------------------------------------------------------------------------------------
// (a) raw PyTorch

async function rawTorch(deadline) {
  await writeFile(inputFile, input);
  const args = {
    arch: settings.arch,
    seed: settings.seed,
    batches: settings.batches,
    contenders: rawIds.map((id) => ({ id, device: CONTENDERS[id].device, dtype: CONTENDERS[id].dtype })),
    warmupRuns: settings.warmupRuns,
    minRuns: settings.minRuns,
    maxRuns: settings.maxRuns,
    timeBoxS: settings.timeBoxS,
    deadline: deadline / 1000,
    inputFile,
    outDir: tmp,
    threads: settings.threads,
  };
  const child = spawn(settings.python, [RAW, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = trackChild(child);
  const stderr = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    stderr.push(l);
    if (stderr.length > 50) stderr.shift();
  });
  let done = false;
  child.on('error', (err) => stderr.push(String(err.message)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return log(`  raw: ${line}`);
    }
    if (m.type === 'env') {
      results.environment = m;
      results.gpu = m.gpu;
      results.versions = { ...results.versions, python: m.python, torch: m.torch, torchvision: m.torchvision, numpy: m.numpy, ...(m.cuda ? { cuda: m.cuda } : {}), ...(m.cudnn ? { cudnn: m.cudnn } : {}) };
      results.threads = {
        raw: `torch ${settings.threads ? `set_num_threads(${settings.threads})` : `default: ${m.threads} intra-op threads`}`,
        served: settings.threads ? `RESNET_THREADS=${settings.threads}` : "torch's default in the worker process (model.py logs it)",
      };
      log(`raw: ${settings.python}: Python ${m.python}, torch ${m.torch}, torchvision ${m.torchvision}; CUDA ${m.cudaAvailable ? `${m.cuda} on ${m.gpu} (cuDNN ${m.cudnn})` : 'not available'}; ${m.threads} CPU threads`);
      for (const id of rawIds) if (CONTENDERS[id].device === 'cpu') results.providers[id] = { available: true };
    } else if (m.type === 'unavailable') {
      results.providers[m.id] = { available: false, message: m.message };
      skip(`raw/${m.id}`, m.message);
    } else if (m.type === 'point') {
      results.providers[m.id] = { available: true };
      const row = {
        model: 'resnet',
        provider: m.id,
        batch: m.batch,
        // the baseline: numpy in, numpy out (the copies model.py makes too)
        p50Ms: m.e2e.p50Ms,
        p90Ms: m.e2e.p90Ms,
        runs: m.e2e.runs,
        samplesPerSec: (m.batch * 1000) / m.e2e.p50Ms,
        firstRunMs: m.firstRunMs,
        forwardP50Ms: m.forward.p50Ms,
        forwardP90Ms: m.forward.p90Ms,
        forward: m.forward,
        e2e: m.e2e,
        output: { shape: m.outputShape },
      };
      results.raw.push(row);
      log(`raw ${m.id} batch ${m.batch}: e2e p50 ${f2(row.p50Ms)} ms (p90 ${f2(row.p90Ms)}), forward p50 ${f2(row.forwardP50Ms)} ms, ${f1(row.samplesPerSec)} samples/s; first run ${f1(m.firstRunMs)} ms`);
    } else if (m.type === 'skipped') skip(`raw/${m.id}/b${m.batch}`, m.reason);
    else if (m.type === 'done') done = true;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()) + 60_000);
  const code = await exited;
  clearTimeout(timer);
  if (!done) {
    const reason = `${settings.python} ${path.relative(ROOT, RAW)} exited with ${code}: ${stderr.slice(-3).join(' | ')}`;
    log(`FAIL raw: ${reason}`);
    results.raw.push({ model: 'resnet', provider: 'cpu', batch: null, failed: reason });
    if (!results.environment) for (const id of rawIds) results.providers[id] ??= { available: false, message: reason };
  }
}

function addComparison(c, tolerance) {
  const row = { ...c, tolerance, toleranceOn: 'maxRelDiff', pass: verdict(c.maxRelDiff, tolerance) };
  results.comparisons.push(row);
  log(`  resnet batch ${c.batch} ${c.what}: max abs diff ${row.maxAbsDiff.toExponential(2)}, relative ${row.maxRelDiff.toExponential(2)} (tolerance ${tolerance}) ${row.pass ? 'ok' : 'OVER'}, argmax differs in ${row.argmaxDiffers?.count}/${row.argmaxDiffers?.rows} rows`);
}

function rawOutput(id, batch) {
  return existsSync(outputFile(id, batch)) && results.raw.some((r) => r.provider === id && r.batch === batch && !r.failed) ? readF32(outputFile(id, batch)) : null;
}

function compareRaw() {
  for (const batch of settings.batches) {
    const ref = rawOutput('cpu', batch);
    if (!ref) continue;
    for (const id of rawIds.filter((i) => i !== 'cpu')) {
      const other = rawOutput(id, batch);
      if (other) addComparison({ model: 'resnet', batch, what: `raw ${id} vs raw cpu`, ...compareOutputs(other, ref, { kind: 'logits', rowLength: 1000 }) }, TOLERANCE[id]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) served by Tessera's Python backend

function tesseraConfig(id) {
  const c = CONTENDERS[id];
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: 'info', bodyLimit: '1GiB', workers: settings.workers },
    plugins: ['@tessera/backend-python'],
    repository: REPOSITORY,
    models: {
      resnet: {
        python: {
          interpreter: settings.python,
          env: {
            RESNET_ARCH: settings.arch,
            RESNET_SEED: String(settings.seed),
            RESNET_DEVICE: c.device,
            RESNET_FP16: c.dtype === 'fp16' ? '1' : '0',
            RESNET_TF32: c.dtype === 'tf32' ? '1' : '0',
            ...(settings.threads ? { RESNET_THREADS: String(settings.threads) } : {}),
          },
          startTimeout: '5m',
        },
      },
    },
  };
}

/** model.py's initialize line ("resnet: resnet18 … on cuda (NVIDIA H200), fp16, …") from the server's log. */
async function initializeLine(logFile) {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes('resnet: ')) continue;
    try {
      return JSON.parse(line).msg.replace(/^.*?resnet: /, 'resnet: ');
    } catch {
      return line.trim();
    }
  }
  return null;
}

async function servedContender(id, deadline) {
  const key = `resnet/${id}`;
  if (results.providers[id]?.available === false || (CONTENDERS[id].device !== 'cpu' && results.environment && !results.environment.cudaAvailable)) {
    skip(`served/${key}`, results.providers[id]?.message ?? `torch sees no CUDA device`);
    return;
  }
  if (!results.environment) {
    skip(`served/${key}`, `${settings.python} did not run the raw script (see the raw failure)`);
    return;
  }
  const file = path.join(tmp, `tessera-${id}.json`);
  const logFile = path.join(tmp, `tessera-${id}.log`);
  await writeFile(file, JSON.stringify(tesseraConfig(id), null, 2));
  const t0 = Date.now();
  let server;
  try {
    server = await startServer(CLI, ['serve', '-c', file, '--port', '0'], { logFile, timeoutMs: Math.max(60_000, Math.min(300_000, deadline - Date.now() + 60_000)) });
  } catch (err) {
    const reason = String(err.message).replace(/\s+/g, ' ').slice(0, 600);
    results.servers[key] = { ready: false, error: reason, logTail: await serverLogTail(logFile) };
    skip(`served/${key}`, `the server did not start: ${reason}`);
    return;
  }
  try {
    const model = await initializeLine(logFile);
    results.servers[key] = { ready: true, startS: (Date.now() - t0) / 1000, choice: { initialize: model } };
    log(`served/${key}: ready in ${f1((Date.now() - t0) / 1000)} s — ${model}`);
    const url = `${server.url}/v2/models/resnet/infer`;
    let crashed = false;
    for (const batch of settings.batches) {
      if (crashed) {
        skip(`served/${key}/b${batch}`, `the server exited (${results.servers[key].crashed.exit}) during an earlier point`);
        continue;
      }
      if (Date.now() > deadline) {
        skip(`served/${key}/b${batch}`, 'the time budget of this phase ran out');
        continue;
      }
      const { body, headers } = binaryInferBody('input', [batch, ...SAMPLE_SHAPE], input.subarray(0, batch * SAMPLE));
      const client = servedClient({ url, body, headers });
      try {
        const out = await client.check('output');
        for (const against of [...new Set([id, 'cpu'])]) {
          const ref = rawOutput(against, batch);
          if (ref) addComparison({ model: 'resnet', batch, what: `served ${id} vs raw ${against}`, ...compareOutputs(out.data, ref, { kind: 'logits', rowLength: 1000 }) }, against === id ? SAME_CONTENDER_TOLERANCE[id] : TOLERANCE[id]);
        }
        for (const concurrency of concurrencies) {
          if (Date.now() > deadline) {
            skip(`served/${key}/b${batch}/c${concurrency}`, 'the time budget of this phase ran out');
            continue;
          }
          const raw = results.raw.find((r) => r.provider === id && r.batch === batch && !r.failed);
          const { row, line } = await measureServedPoint({ client, serverUrl: server.url, modelName: 'resnet', batch, concurrency, settings, deadline, raw, base: { model: 'resnet', provider: id }, key });
          results.served.push(row);
          log(line);
        }
      } catch (err) {
        // a server that died mid-point: say so (with its log), and measure nothing more on it
        if (await servedPointFailed({ err, server, results, key, base: { model: 'resnet', provider: id }, batch, logFile, log })) crashed = true;
      } finally {
        client.close();
      }
    }
  } finally {
    await server.stop(30_000);
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`);
  log(`bench/python-gpu.mjs: ${results.command}\n  ${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}; ${settings.python}; budget ${settings.budgetS} s`);
  log(`  ${settings.arch} (random weights, seed ${settings.seed}); raw ${rawIds.join(', ')}; served ${settings.served.join(', ')}; batches ${settings.batches.join(', ')}; clients 1, ${settings.clients}`);
  // the CPU's points cost the most (seconds at batch 32): it gets twice a CUDA contender's share
  const weights = settings.served.map((id) => (CONTENDERS[id].device === 'cpu' ? 2 : 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let share = 0.3;
  const rawUntil = budget.until(share);
  log(`\n== raw PyTorch (until +${Math.round((rawUntil - Date.now()) / 1000)} s)`);
  await rawTorch(rawUntil);
  compareRaw();
  for (const [i, id] of settings.served.entries()) {
    const until = budget.until((share += (0.7 * weights[i]) / total));
    log(`== served ${id} (until +${Math.round((until - Date.now()) / 1000)} s)`);
    await servedContender(id, until);
  }
  results.elapsedS = budget.elapsedS;
  const over = results.comparisons.filter((c) => c.pass === false);
  log(`\noutputs: ${results.comparisons.length} comparison(s), ${over.length} over tolerance${over.length ? `: ${over.map((c) => `b${c.batch} ${c.what}`).join('; ')}` : ''}`);
  if (env.BENCH_WRITE !== '0') log(`wrote ${path.relative(ROOT, await writeResultsFile(results, { quick }))}`);
  process.stdout.write(renderGpuMarkdown(results));
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench/python-gpu.mjs: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
