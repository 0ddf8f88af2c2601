// The hot-reload benchmark (part of `npm run bench`; alone: `node bench/reload.mjs`).
// How long does a SIGHUP take to put a new model version into service, under steady load, and what
// does the load see meanwhile — against restarting the server (a cold start on the same config),
// measured in the same run. Per model (the PP-OCR classifier; the detector, heavier, second):
//
//   1. `tessera serve` (packages/core/dist/cli.js) on a config with version 1 of the model (a copy
//      of its file), under steady paced load (autocannon's overallRate at BENCH_RELOAD_LOAD × the
//      capacity a short unpaced probe measured) on `POST /v2/models/<m>/infer` with no version:
//      the `latest` router moves the traffic to a new version once it is ready. Every answer is
//      recorded with its time (bench/lib/recorded-load.mjs).
//   2. BENCH_RELOAD_COUNT times: another copy of the file as version N+1 (so a new session really
//      loads), the config rewritten with versions 1…N+1, BENCH_RELOAD_BEFORE seconds of load, then
//      SIGHUP, timing (a) SIGHUP → `GET /v2/repository/index` reporting the new generation and
//      (b) SIGHUP → the first answer of a back-to-back loop of infer requests that says
//      `model_version: N+1`; the server's own log line `config reloaded: generation G` gives the
//      reload's `ms`. The load's answers are cut into "before" (the BENCH_RELOAD_BEFORE seconds
//      before the SIGHUP) and "during" (requests sent from the SIGHUP until BENCH_RELOAD_TAIL
//      seconds after the new version answered): failed requests, p50/p99, the p99 ratio.
//   3. The baseline: cold starts — spawning `tessera serve` on the final config (every version),
//      and on a config with only the newest version (the least any restart loads), timing spawn →
//      the newest version answering; BENCH_RELOAD_RESTARTS of each, alternated.
// Reported (bench/lib/reload-report.mjs): "reload X ms vs restart Y ms (Z×)" per model, with every
// reload's figures. See docs/benchmarks.md, "Hot reload: SIGHUP to the new version serving".
//
// Environment (all optional):
//   BENCH_SUITES=…,reload             suites `npm run bench` runs; this one skips itself without `reload`
//   BENCH_QUICK=1                     smoke run: the classifier only, 2 reloads, 1 restart of each kind, short windows
//   BENCH_RELOAD_MODELS=cls,det       the models, one after the other (cls: PP-OCR classifier, det: PP-OCRv4 detector)
//   BENCH_RELOAD_COUNT=5              reloads per model (each adds a version)
//   BENCH_RELOAD_WARMUP=5             seconds of the paced load before the first reload (batch sizes seen, the batcher's delay learnt)
//   BENCH_RELOAD_BEFORE=3             seconds of load before each SIGHUP (the "before" window)
//   BENCH_RELOAD_TAIL=1               seconds after the new version answered that still count as "during"
//   BENCH_RELOAD_LOAD=0.5             paced load as a share of the probed capacity
//   BENCH_RELOAD_PROBE=2              seconds of the unpaced capacity probe
//   BENCH_RELOAD_CONNECTIONS=16       connections of the load (and of the probe)
//   BENCH_RELOAD_RESTARTS=3           cold starts of each kind (final config, newest version only)
//   BENCH_RELOAD_INDEX_POLL_MS=2      pause between two `GET /v2/repository/index` polls (the infer poll has none)
//   BENCH_RELOAD_TIMEOUT=120          seconds a reload or a cold start may take before the run fails
//   BENCH_RELOAD_LOG_LEVEL=info       server.logLevel (info or lower: the `config reloaded` line is at info)
//   BENCH_DET_HW=96x320               the detector's input size (as in run.mjs)
//   BENCH_THREADS=…                   intraOpNumThreads (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name                the <machine> part of bench/results/<date>-<machine>-reload.json
//   BENCH_WRITE=0                     write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                  keep the temporary folder (configs, model copies, server logs)
//   BENCH_RELOAD_SECTION=reload       the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_RELOAD_RENDER=<file>        measure nothing: write a results file (e.g. one from the device machine) into that section
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync, fstatSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { benchModels, envList, envNumber, freePort, installCleanup, makeSample, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, suiteTempDir, summarize, trackChild } from './lib/common.mjs';
import { finishRun, gitInfo, renderSavedAndExit, runLoad, runSuite, startTessera, writeSuiteOutputs } from './lib/contest.mjs';
import { allProcessCpu, otherProcessCpu, waitQuiet } from './lib/llm-procs.mjs';
import { binaryInferBody, HEADER_LENGTH } from './lib/oip.mjs';
import { evaluateReload, reloadLine, reloadMarkers, renderReloadMarkdown, restartLine, summaryLine } from './lib/reload-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Hot reload: SIGHUP to the new version serving';

skipUnlessSuite('reload', 'bench/reload.mjs');

const section = reloadMarkers(env.BENCH_RELOAD_SECTION);
await renderSavedAndExit(env.BENCH_RELOAD_RENDER, { section, heading: HEADING, render: renderReloadMarkdown, log });

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const LOAD = path.join(ROOT, 'bench', 'lib', 'recorded-load.mjs');
const NOISY_OTHER_CPU_PCT = 40;
/** Batching per model: the routing suite's for the classifier, tessera.config.yaml's for the detector. */
const BATCHING = { cls: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' }, det: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 'auto' } };

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  models: envList(env.BENCH_RELOAD_MODELS, quick ? 'cls' : 'cls,det'),
  reloads: envNumber('BENCH_RELOAD_COUNT', quick ? 2 : 5, { min: 1, integer: true }),
  warmupS: envNumber('BENCH_RELOAD_WARMUP', quick ? 1 : 5),
  beforeS: envNumber('BENCH_RELOAD_BEFORE', quick ? 1.5 : 3, { min: 0.5 }),
  tailS: envNumber('BENCH_RELOAD_TAIL', quick ? 0.5 : 1, { min: 0 }),
  loadFraction: envNumber('BENCH_RELOAD_LOAD', 0.5, { min: 0.01 }),
  probeS: envNumber('BENCH_RELOAD_PROBE', quick ? 1 : 2, { min: 0.5 }),
  connections: envNumber('BENCH_RELOAD_CONNECTIONS', 16, { min: 1, integer: true }),
  restarts: envNumber('BENCH_RELOAD_RESTARTS', quick ? 1 : 3, { min: 1, integer: true }),
  indexPollMs: envNumber('BENCH_RELOAD_INDEX_POLL_MS', 2),
  timeoutS: envNumber('BENCH_RELOAD_TIMEOUT', 120, { min: 5 }),
  logLevel: env.BENCH_RELOAD_LOG_LEVEL ?? 'info',
  sessionOptions: sessionOptionsFromEnv(),
  batching: BATCHING,
};
for (const k of settings.models) if (!BATCHING[k]) throw new Error(`BENCH_RELOAD_MODELS: unknown model '${k}' (cls, det)`);
if (!['info', 'debug', 'trace'].includes(settings.logLevel)) throw new Error(`BENCH_RELOAD_LOG_LEVEL=${settings.logLevel}: the reload's log line is at info; use info, debug or trace`);

installCleanup();
const tmp = suiteTempDir('reload');

const results = {
  ...resultsHeader('reload', 'bench/reload.mjs'),
  versions: { core: packageVersion('@tessera/core'), onnxruntime: packageVersion('onnxruntime-node'), autocannon: packageVersion('autocannon'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  models: {},
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  phases: [],
  skipped: [],
};

/** CPU that processes outside `exclude` used since `before` (an allProcessCpu() snapshot taken at `t0`), as % of one core. */
function otherCpuPct(before, t0, exclude) {
  return (otherProcessCpu(before, allProcessCpu(), new Set(exclude)) / ((performance.now() - t0) / 1000)) * 100;
}

/** Milliseconds on CLOCK_MONOTONIC: the clock recorded-load.mjs stamps its answers with. */
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The model's request body (binary tensor protocol, one sample, every output in binary) written under tmp. */
async function prepareModel(key) {
  const m = benchModels()[key];
  const shape = [1, ...m.sampleShape];
  const sample = makeSample(m);
  let bin;
  try {
    const testing = await import('@tessera/core/testing');
    bin = testing.encodeBinaryInferRequest([{ name: m.input, datatype: 'FP32', shape, data: sample }], { binaryOutput: true });
  } catch {
    bin = binaryInferBody(m.input, shape, sample);
  }
  const file = path.join(tmp, `${key}.bin`);
  await writeFile(file, bin.body);
  return { ...m, shape, body: { file, headers: bin.headers, bytes: bin.body.length, buffer: bin.body } };
}

function serverConfig(model, versions) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel },
    models: {
      [model.name]: {
        backend: 'onnxruntime',
        versions: Object.fromEntries(versions.map((v) => [String(v.version), { path: v.path }])),
        batching: { ...settings.batching[model.key] },
        warmupShapes: { [model.input]: model.shape },
        ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}),
      },
    },
  };
}

/** The copy of the model's file that serves as `version` (a new file, so the reload really loads a session). */
function versionFile(model, version) {
  const file = path.join(tmp, `${model.key}-v${version}.onnx`);
  copyFileSync(model.file, file);
  return { version, path: file };
}

/** One infer request: `{ status, version }` (the version from the JSON part of a binary answer, or the JSON answer). */
async function infer(url, model, signal) {
  const res = await fetch(`${url}/v2/models/${model.name}/infer`, { method: 'POST', headers: model.body.headers, body: model.body.buffer, signal });
  const buf = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return { status: res.status, version: null };
  const n = res.headers.get(HEADER_LENGTH);
  const head = JSON.parse(buf.subarray(0, n === null ? buf.length : Number(n)).toString('utf8'));
  return { status: 200, version: head.model_version ?? null };
}

/**
 * Back-to-back infer requests until one answers `version`: resolves with when (ms on nowMs's
 * clock), how many polls it took and the other versions seen; failures are counted, not retried away.
 */
async function pollInfer(url, model, version, deadlineMs) {
  const seen = {};
  let polls = 0;
  let failed = 0;
  while (nowMs() < deadlineMs) {
    polls++;
    const r = await infer(url, model, AbortSignal.timeout(30_000)).catch(() => ({ status: 0, version: null }));
    const at = nowMs();
    if (r.status !== 200) failed++;
    else if (r.version === String(version)) return { atMs: at, polls, failed, seen };
    else seen[r.version] = (seen[r.version] ?? 0) + 1;
  }
  throw new Error(`no answer of version ${version} within ${settings.timeoutS} s (seen ${JSON.stringify(seen)}, ${failed} failed polls)`);
}

/** `GET /v2/repository/index` until its generation is `generation`; resolves with when, the polls and the index's `last_reload`. */
async function pollIndex(url, generation, deadlineMs) {
  let polls = 0;
  while (nowMs() < deadlineMs) {
    polls++;
    const body = await fetch(`${url}/v2/repository/index`, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.json())
      .catch(() => null);
    const at = nowMs();
    if (body?.generation === generation) return { atMs: at, polls, lastReload: body.last_reload ?? null };
    if (settings.indexPollMs > 0) await sleep(settings.indexPollMs);
  }
  throw new Error(`GET /v2/repository/index did not report generation ${generation} within ${settings.timeoutS} s`);
}

/** Reads the lines a log file gained since the last call (the server logs every request: never re-read it whole). */
class LogTail {
  #file;
  #offset = 0;
  #rest = '';
  constructor(file) {
    this.#file = file;
  }
  lines() {
    const fd = openSync(this.#file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#offset) return [];
      const buf = Buffer.alloc(size - this.#offset);
      readSync(fd, buf, 0, buf.length, this.#offset);
      this.#offset = size;
      const text = this.#rest + buf.toString('utf8');
      const lines = text.split('\n');
      this.#rest = lines.pop();
      return lines;
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Waits for the server's `config reloaded: generation G` (or `config reload refused`) line;
 * resolves with its JSON. Every line read is pushed onto `seen`.
 */
async function reloadLogLine(tail, generation, deadlineMs, seen) {
  while (nowMs() < deadlineMs) {
    const lines = tail.lines();
    seen.push(...lines);
    for (const line of lines) {
      if (!line.includes('config reload')) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (/refused/.test(entry.msg)) throw new Error(`the server refused the reload: ${line.slice(0, 500)}`);
      if (entry.msg?.startsWith(`config reloaded: generation ${generation}`)) return entry;
    }
    await sleep(20);
  }
  throw new Error(`no 'config reloaded: generation ${generation}' line in the server's log within ${settings.timeoutS} s`);
}

/**
 * The first request the new version answered, from the server's request log lines in `lines`
 * (`time` is when it was logged, at the answer; `ms` its duration): when it arrived and when it
 * was answered, in ms after `t0Epoch` (Date.now() at the SIGHUP). Nulls when none was logged.
 */
function firstAnsweredBy(lines, modelName, version, t0Epoch) {
  let first = null;
  const tag = `"version":"${version}"`;
  for (const line of lines) {
    if (!line.includes(tag) || !line.includes('"msg":"request"')) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.model !== modelName || e.status !== 200 || !Number.isFinite(e.ms)) continue;
    const arrived = e.time - e.ms - t0Epoch;
    if (!first || arrived < first.arrivedMs) first = { arrivedMs: arrived, answeredMs: e.time - t0Epoch };
  }
  return first ?? { arrivedMs: null, answeredMs: null };
}

/** Starts the recorded load; resolves once it runs, with `stop()` (resolves with its totals and answers). */
async function startRecordedLoad(url, body, rate, samplesFile) {
  const spec = { url, bodyFile: body.file, headers: body.headers, connections: settings.connections, rate, samplesFile };
  const child = spawn(process.execPath, [LOAD, JSON.stringify(spec)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = trackChild(child);
  const out = [];
  const err = [];
  createInterface({ input: child.stdout }).on('line', (l) => out.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => err.push(l));
  const deadline = Date.now() + 30_000;
  while (!out.some((l) => l.includes('"started"'))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`bench/lib/recorded-load.mjs did not start (exit ${child.exitCode}):\n${err.slice(-10).join('\n')}`);
    await sleep(20);
  }
  return {
    pid: child.pid,
    stop: async () => {
      child.stdin.end('stop\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(timer);
      await new Promise((r) => setImmediate(r));
      const last = out.filter((l) => l.startsWith('{') && !l.includes('"started"')).at(-1);
      if (code !== 0 || !last) throw new Error(`bench/lib/recorded-load.mjs exited with ${code}\n${err.slice(-20).join('\n')}`);
      const raw = readFileSync(samplesFile);
      return { totals: JSON.parse(last), samples: new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8) };
    },
  };
}

/**
 * The answers to requests *sent* in [fromMs, toMs) (sent = arrived − latency; a failure without a
 * latency counts at its arrival): how many, how many failed, and their latency percentiles.
 */
function windowStats(samples, fromMs, toMs) {
  const lat = [];
  let failed = 0;
  const statuses = {};
  for (let i = 0; i < samples.length; i += 3) {
    const end = samples[i];
    const ms = samples[i + 1];
    const status = samples[i + 2];
    const sent = Number.isFinite(ms) ? end - ms : end;
    if (sent < fromMs || sent >= toMs) continue;
    if (status >= 200 && status < 300) lat.push(ms);
    else {
      failed++;
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }
  const s = summarize(lat);
  return { fromMs, toMs, seconds: (toMs - fromMs) / 1000, answers: lat.length + failed, ok: lat.length, failed, failedStatuses: statuses, latencyMs: { p50: s.p50, p90: s.p90, p99: s.p99, max: s.max } };
}

/**
 * One cold start: `tessera serve` spawned on `configFile`, infer polled (5 ms apart while nothing
 * answers) until `version` answers. Times from the spawn: the first HTTP answer of any status, the
 * log's `server ready` line, the newest version answering. The server is stopped again.
 */
async function coldStart(model, configFile, version, label, index) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(tmp, `cold-${model.key}-${label}-${index}.log`);
  const fd = openSync(logFile, 'w');
  const spawnedEpoch = Date.now();
  const t0 = nowMs();
  const cpu0 = allProcessCpu();
  const p0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve', '-c', configFile, '--port', String(port)], { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = trackChild(child);
  const deadline = t0 + settings.timeoutS * 1000;
  let firstHttpMs = null;
  let answeredMs = null;
  let polls = 0;
  let otherPct = null;
  try {
    while (answeredMs === null) {
      if (child.exitCode !== null) throw new Error(`tessera serve exited with ${child.exitCode} during a cold start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
      if (nowMs() > deadline) throw new Error(`cold start: version ${version} did not answer within ${settings.timeoutS} s`);
      polls++;
      const r = await infer(url, model, AbortSignal.timeout(30_000)).catch(() => null);
      const at = nowMs() - t0;
      if (r && firstHttpMs === null) firstHttpMs = at;
      if (r?.status === 200 && r.version === String(version)) answeredMs = at;
      else await sleep(5);
    }
  } finally {
    otherPct = otherCpuPct(cpu0, p0, [process.pid, child.pid]);
    if (child.exitCode === null) child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(kill);
  }
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const entry = (text) => {
    for (const l of lines) {
      if (!l.includes(text)) continue;
      try {
        return JSON.parse(l);
      } catch {
        // not a JSON line
      }
    }
    return null;
  };
  const ready = entry('server ready');
  const modelReady = lines.filter((l) => l.includes('"model ready"')).map((l) => {
    try {
      const e = JSON.parse(l);
      return { version: e.version, ms: e.ms };
    } catch {
      return null;
    }
  }).filter(Boolean);
  return { config: label, run: index, firstHttpMs, serverReadyMs: ready ? ready.time - spawnedEpoch : null, answeredMs, polls, modelReady, otherProcsPct: otherPct, disturbed: otherPct > NOISY_OTHER_CPU_PCT };
}

/** One model's phase: the served reloads under load, then the cold starts. */
async function runPhase(key) {
  const model = await prepareModel(key);
  results.models[key] = { name: model.name, file: path.relative(ROOT, model.file), input: `${model.input} FP32 [${model.shape.join(', ')}]`, bodyBytes: model.body.bytes, batching: settings.batching[key] };
  const phase = { model: key, name: model.name, probe: null, rate: null, reloads: [], restarts: [], load: null, finalVersions: [] };
  results.phases.push(phase);
  log(`${model.name} (${key}): ${path.basename(model.file)}`);

  const quiet = await waitQuiet(new Set([process.pid]), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 500, maxS: quick ? 5 : 30 });
  phase.waitedForQuietS = quiet.waitedS;
  const versions = [versionFile(model, 1)];
  const services = [];
  const server = await startTessera(services, tmp, `reload-${key}`, CLI, serverConfig(model, versions));
  phase.serverPid = server.pid;
  const tail = new LogTail(server.logFile);
  let load = null;
  try {
    const first = await infer(server.url, model, AbortSignal.timeout(60_000));
    if (first.status !== 200 || first.version !== '1') throw new Error(`preflight: ${JSON.stringify(first)}`);
    const probe = await runLoad(`${server.url}/v2/models/${model.name}/infer`, model.body, settings.connections, settings.probeS);
    phase.probe = { reqPerSec: probe.reqPerSec, p50Ms: probe.latencyMs.p50, p99Ms: probe.latencyMs.p99, errors: probe.errors + probe.timeouts + probe.non2xx };
    phase.rate = Math.max(1, Math.round(settings.loadFraction * probe.reqPerSec));
    log(`  probe: ${probe.reqPerSec.toFixed(0)} requests/s at ${settings.connections} connections (p99 ${probe.latencyMs.p99?.toFixed(1)} ms) → paced load at ${phase.rate}/s`);

    load = await startRecordedLoad(`${server.url}/v2/models/${model.name}/infer`, model.body, phase.rate, path.join(tmp, `answers-${key}.f64`));
    // connections open, every batch size seen, the auto delay learnt: the server as it runs
    await sleep(settings.warmupS * 1000);
    const cpu0 = allProcessCpu();
    const p0 = performance.now();
    const marks = [];
    for (let k = 1; k <= settings.reloads; k++) {
      const version = k + 1;
      const generation = k + 1;
      versions.push(versionFile(model, version));
      await writeFile(server.configFile, JSON.stringify(serverConfig(model, versions), null, 2));
      await sleep(settings.beforeS * 1000);
      tail.lines(); // what the server logged before the SIGHUP
      const deadline = nowMs() + settings.timeoutS * 1000;
      const seen = [];
      const t0Epoch = Date.now();
      const t0 = nowMs();
      server.child.kill('SIGHUP');
      const [idx, served] = await Promise.all([pollIndex(server.url, generation, deadline), pollInfer(server.url, model, version, deadline)]);
      const line = await reloadLogLine(tail, generation, deadline, seen);
      const servedAt = Math.max(idx.atMs, served.atMs);
      marks.push({ k, t0, servedAt });
      phase.reloads.push({
        reload: k,
        version,
        generation,
        indexMs: idx.atMs - t0,
        servedMs: served.atMs - t0,
        logMs: line.ms ?? null,
        indexDurationMs: idx.lastReload?.duration_ms ?? null,
        logged: { added: line.added, removed: line.removed, changed: line.changed, unchanged: line.unchanged },
        indexPolls: idx.polls,
        inferPolls: served.polls,
        inferPollFailed: served.failed,
        inferPollOtherVersions: served.seen,
      });
      await sleep(Math.max(settings.tailS * 1000, 250));
      // requests still in flight when the poll ended are logged by now
      seen.push(...tail.lines());
      const firstNew = firstAnsweredBy(seen, model.name, version, t0Epoch);
      Object.assign(phase.reloads.at(-1), { firstArrivedMs: firstNew.arrivedMs, firstAnsweredMs: firstNew.answeredMs });
      log(reloadLine(phase.reloads.at(-1)));
    }
    phase.otherProcsPct = otherCpuPct(cpu0, p0, [process.pid, server.pid, load.pid]);
    const { totals, samples } = await load.stop();
    load = null;
    phase.load = { ...totals, seconds: (totals.endedMs - totals.startedMs) / 1000, whole: windowStats(samples, totals.startedMs, totals.endedMs) };
    for (const m of marks) {
      const r = phase.reloads[m.k - 1];
      r.before = windowStats(samples, m.t0 - settings.beforeS * 1000, m.t0);
      r.during = windowStats(samples, m.t0, m.servedAt + settings.tailS * 1000);
      r.p99Ratio = r.before.latencyMs.p99 > 0 && r.during.latencyMs.p99 !== null ? r.during.latencyMs.p99 / r.before.latencyMs.p99 : null;
    }
    phase.finalVersions = versions.map((v) => v.version);
  } finally {
    if (load) await load.stop().catch(() => {});
    await server.stop();
  }

  // the baseline: cold starts on the final config and on the newest version alone, alternated
  const newest = versions.at(-1);
  const finalFile = path.join(tmp, `cold-${key}-final.json`);
  const newestFile = path.join(tmp, `cold-${key}-newest.json`);
  await writeFile(finalFile, JSON.stringify(serverConfig(model, versions), null, 2));
  await writeFile(newestFile, JSON.stringify(serverConfig(model, [newest]), null, 2));
  for (let i = 1; i <= settings.restarts; i++) {
    const order = i % 2 === 1 ? [['final', finalFile], ['newest', newestFile]] : [['newest', newestFile], ['final', finalFile]];
    for (const [label, file] of order) {
      await sleep(500);
      const r = await coldStart(model, file, newest.version, label, i);
      phase.restarts.push(r);
      log(restartLine(r, phase.reloads.length + 1));
    }
  }
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench reload: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);
  for (const key of settings.models) await runPhase(key);
  results.summary = evaluateReload(results);
  results.verdicts = results.summary.targets;
  finishRun(results, started);
  log('');
  for (const s of results.summary.models) log(summaryLine(s));
  for (const t of results.verdicts) log(`target ${t.verdict.padEnd(7)} ${t.target}: ${t.summary}`);
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderReloadMarkdown, log });
  log(`done in ${Math.round(results.elapsedS)} s`);
}

await runSuite('reload', main, log);
