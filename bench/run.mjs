// `npm run bench`: raw onnxruntime-node, Tessera (JSON and binary, each batcher setting) and a
// naive node:http server, on the real PP-OCR models, in one run. See docs/benchmarks.md.
//
// Environment (all optional):
//   BENCH_QUICK=1            smoke run: short durations, concurrency 1 and 64, delays 0 and auto
//   BENCH_PRESET=device      the judged points only, for a 10-minute command on the device machine:
//                            raw sweep, naive-binary, tessera-binary auto (the default config) and
//                            tuned, at 1, 16 and 64 connections; 6 s per point after 2 s, raw 1 s
//                            a point (with BENCH_QUICK: the quick durations)
//   BENCH_DURATION=10        seconds measured per point (after the warm-up)
//   BENCH_WARMUP=3           seconds of warm-up load per point (not measured)
//   BENCH_RAW_DURATION=3     seconds of back-to-back session.run per raw point (longer when a run is slow)
//   BENCH_RAW_SWEEP=1        0: raw is one session with the default threads only (no sweep)
//   BENCH_RAW_SESSIONS=…     sessions at once in the raw sweep (default: powers of two up to the cores)
//   BENCH_RAW_THREADS=…      intra-op threads per session in the raw sweep (default: cores ÷ sessions and
//                            half of it; `0` = ORT's default, one session only); S × T ≤ cores
//   BENCH_RAW_TOP=2          batch sizes of the one-session default sweep (its best) the other points run
//   BENCH_TUNED=0            1: also tessera-binary/<model>/tuned, `instances` and `intraOpNumThreads` of
//                            the raw best point set by hand (for reference; on in the device preset)
//   BENCH_CONNECTIONS=1,16,64
//   BENCH_LOAD_PROCESSES=1   load-generator processes sharing a point's connections (device preset: 4): one
//                            autocannon process sending 110 KB bodies tops out below a 16-core server
//   BENCH_LOADGEN=autocannon autocannon (bench/load.mjs) or wrk (bench/lib/wrk-load.mjs: Debian's wrk,
//                            BENCH_LOAD_PROCESSES threads; BENCH_WRK names the binary) — a second
//                            client that shares no code with ours, to check a figure independently
//   BENCH_MODELS=cls,det     (BENCH_EXTRA_MODELS adds more, bench/lib/common.mjs: e.g. a MobileNetV2)
//   BENCH_SCENARIOS=…        comma-separated patterns (substring, `*` wildcard) over scenario ids:
//                            raw/cls, naive-json/det, tessera-binary/cls/delay-2, tessera-json/det/auto, …
//   BENCH_DELAYS=0,1,2,5,auto  maxQueueDelayMs values for the dynamic batcher (`passthrough`
//                            adds a server with the passthrough batcher, for comparison)
//   BENCH_SWEEP=primary|all  sweep fixed delays on the best protocol only (default) or on both
//   BENCH_DET_HW=96x320      detector input height × width (multiples of 32)
//   BENCH_REQUEST_BATCH=1    samples per request
//   BENCH_THREADS=…          intraOpNumThreads for every contender (default: ORT's)
//   BENCH_LOG_LEVEL=info     Tessera's server.logLevel
//   BENCH_DYNAMIC_OPTIONS='{"maxQueueSize":1024}'  extra keys for `batching:` of the dynamic batcher
//   BENCH_MACHINE=name       the <machine> part of bench/results/<date>-<machine>.json
//   BENCH_WRITE=0            do not write the results file or docs/benchmarks.md; `json`: the results file only
//   BENCH_GIT_HEAD=sha       the commit measured, when this copy's .git is not that of its working tree
//                            (the device machine's copy: its .git may be older than the packed build)
//   BENCH_OCR_SECTION=ocr    the docs/benchmarks.md section written: `ocr` (markers bench:start/end) or
//                            `ocr-<name>` (bench-ocr-<name>:start/end), e.g. ocr-h200
//   BENCH_OCR_RENDER=<file>  measure nothing: write that results file (e.g. the device machine's) into
//                            the section, and the comparison table of every OCR section's file
//   BENCH_DOCS=<file>        the page written instead of docs/benchmarks.md
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_DIR, benchModels, commandLine, envList, freePort, installCleanup, machineInfo, machineSlug, makeSample, packageVersion, ROOT, runNodeJson, sessionOptionsFromEnv, skipUnlessSuite, spawnNode, startServer, tileSample, writePartialOnSignal } from './lib/common.mjs';
import { gitInfo, writeDocsSection } from './lib/contest.mjs';
import { COMPARE_MARKERS, loadSectionResults, renderComparison } from './lib/ocr-compare.mjs';
import { binaryInferBody, decodeInferResponse, jsonInferBody, maxAbsDiff } from './lib/oip.mjs';
import { histogramMeans, scrapeMetrics, systemBusySeconds, treeCpuSeconds, waitIdle } from './lib/probe.mjs';
import { splitLoad } from './lib/split-load.mjs';
import { evaluateTargets, markDisturbed, ocrMarkers, renderMarkdown } from './lib/report.mjs';

// BENCH_SUITES=ocr,llm,tracing,pipeline,routing,canary-sim (default all): `npm run bench` runs this suite, then bench/llm.mjs, bench/tracing.mjs, bench/pipeline.mjs, bench/routing.mjs and bench/canary-sim.mjs
skipUnlessSuite('ocr', 'bench/run.mjs');

const env = process.env;
const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const DOCS = env.BENCH_DOCS ? path.resolve(env.BENCH_DOCS) : path.join(ROOT, 'docs', 'benchmarks.md');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const SECTION = env.BENCH_OCR_SECTION ?? 'ocr';
const MARKERS = ocrMarkers(SECTION);
const log = (line) => process.stderr.write(`${line}\n`);

/** The heading a section gets when the page has no markers for it yet. */
const sectionHeading = (section) => (section === 'ocr' ? 'Latest results' : `OCR suite: ${section.slice('ocr-'.length)}`);

/**
 * Writes `block` into the OCR section `section` of the page, then the comparison table of every
 * OCR section's results file (read back from the page just written).
 */
async function writeOcrDocs(block, section) {
  await writeDocsSection(DOCS, { ...ocrMarkers(section), heading: sectionHeading(section), block });
  const docs = await readFile(DOCS, 'utf8');
  if (docs.includes(COMPARE_MARKERS.start)) await writeDocsSection(DOCS, { ...COMPARE_MARKERS, heading: 'OCR suite across machines', block: renderComparison(loadSectionResults(docs, ROOT)) });
}

// BENCH_OCR_RENDER: a results file (e.g. from the device machine) into its section; nothing measured
if (env.BENCH_OCR_RENDER) {
  const saved = JSON.parse(await readFile(path.resolve(env.BENCH_OCR_RENDER), 'utf8'));
  await writeOcrDocs(renderMarkdown(saved), SECTION);
  log(`wrote ${env.BENCH_OCR_RENDER} into ${path.relative(ROOT, DOCS)} (${MARKERS.start}) and the comparison`);
  process.exit(0);
}

const list = envList;

function positive(name, fallback) {
  const v = Number(env[name] ?? fallback);
  if (!(v > 0)) throw new Error(`${name}=${env[name]}: expected a positive number`);
  return v;
}

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const preset = env.BENCH_PRESET || null;
if (preset !== null && preset !== 'device') throw new Error(`BENCH_PRESET=${preset}: expected device`);
const device = preset === 'device';
/** A default: the quick run's, else the device preset's, else the full run's. */
const pick = (full, quickValue, deviceValue = full) => (quick ? quickValue : device ? deviceValue : full);
const integers = (name, fallback) => {
  const v = list(env[name], fallback).map((x) => (x === 'default' ? 0 : Number(x)));
  if (v.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${name}=${env[name]}: expected integers ≥ 0`);
  return v;
};
const settings = {
  quick,
  preset,
  durationS: positive('BENCH_DURATION', pick(10, 3, 6)),
  warmupS: positive('BENCH_WARMUP', pick(3, 1, 2)),
  rawDurationS: positive('BENCH_RAW_DURATION', pick(3, 1, 1)),
  rawSweep: env.BENCH_RAW_SWEEP !== '0',
  rawSessions: env.BENCH_RAW_SESSIONS ? integers('BENCH_RAW_SESSIONS', '') : null,
  rawThreads: env.BENCH_RAW_THREADS ? integers('BENCH_RAW_THREADS', '') : null,
  rawTop: positive('BENCH_RAW_TOP', 2),
  tuned: env.BENCH_TUNED === undefined ? device : env.BENCH_TUNED === '1',
  connections: list(env.BENCH_CONNECTIONS, quick ? '1,64' : '1,16,64').map(Number),
  loadProcesses: positive('BENCH_LOAD_PROCESSES', device ? 4 : 1),
  models: list(env.BENCH_MODELS, 'cls,det'),
  delays: list(env.BENCH_DELAYS, device ? 'auto' : quick ? '0,auto' : '0,1,2,5,auto'),
  sweep: env.BENCH_SWEEP ?? 'primary',
  samplesPerRequest: positive('BENCH_REQUEST_BATCH', 1),
  sessionOptions: sessionOptionsFromEnv(),
  logLevel: env.BENCH_LOG_LEVEL ?? 'info',
  dynamicOptions: JSON.parse(env.BENCH_DYNAMIC_OPTIONS ?? '{}'),
  scenarios: list(env.BENCH_SCENARIOS, device ? 'raw,naive-binary,tessera-binary/*/auto,tessera-binary/*/tuned' : ''),
};
if (settings.rawSessions?.some((x) => x < 1)) throw new Error(`BENCH_RAW_SESSIONS=${env.BENCH_RAW_SESSIONS}: expected integers ≥ 1`);
if (settings.connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_CONNECTIONS=${env.BENCH_CONNECTIONS}: expected positive integers`);
if (!['primary', 'all'].includes(settings.sweep)) throw new Error(`BENCH_SWEEP=${settings.sweep}: expected primary or all`);
const MODELS = benchModels();
for (const m of settings.models) if (!MODELS[m]) throw new Error(`BENCH_MODELS: unknown model '${m}' (${Object.keys(MODELS).join(', ')}; BENCH_EXTRA_MODELS adds more)`);

const patterns = settings.scenarios.map((p) => new RegExp(p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')));
const selected = (id) => patterns.length === 0 || patterns.some((re) => re.test(id));

/**
 * Above this much CPU (100 = one core) used by anything but the server, the load generator and
 * this process during a point, the point is flagged as disturbed. An idle machine shows 10–30%
 * here: the kernel's loopback networking is charged to no process.
 */
const NOISY_OTHER_CPU_PCT = 40;
const f1 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(1));
const f2 = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));

const tmp = await mkdtemp(path.join(os.tmpdir(), 'tessera-bench-'));
process.on('exit', () => {
  if (!env.BENCH_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
});

const results = {
  schema: 1,
  date: new Date().toISOString(),
  command: '',
  file: '',
  machine: machineInfo(),
  versions: { onnxruntime: packageVersion('onnxruntime-node'), autocannon: packageVersion('autocannon'), loadGenerator: env.BENCH_LOADGEN ?? 'autocannon', core: packageVersion('@tessera/core') },
  git: env.BENCH_GIT_HEAD ? { head: env.BENCH_GIT_HEAD, packagesDirty: null, note: `BENCH_GIT_HEAD; this copy's git said ${gitInfo().head?.slice(0, 12) ?? 'nothing'}` } : gitInfo(),
  settings: { ...settings },
  features: {},
  models: {},
  raw: {},
  /** Per model and Tessera config: the instances and threads the server chose (see serverChoice). */
  serverChoice: {},
  scenarios: [],
  skipped: [],
  targets: [],
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
};
// A run stopped from outside (`timeout` around a device machine's 10-minute command, Ctrl-C) still
// leaves what it measured: registered before installCleanup's handler, which kills the children and exits.
writePartialOnSignal(results, {
  measured: () => results.scenarios.length > 0 || Object.keys(results.raw).length > 0,
  finish: () => {
    addRatios();
    results.targets = markDisturbed(results, evaluateTargets(results), NOISY_OTHER_CPU_PCT);
  },
  name: () => `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}.json`,
});
installCleanup();
results.command = commandLine('bench/run.mjs');


function skip(id, reason) {
  results.skipped.push({ id, reason });
  log(`skip ${id}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Tessera configs and what the built core supports

/**
 * A Tessera config of one model: the default config (no `instances`, no `sessionOptions`: what
 * the backend picks) with `batching`, unless BENCH_THREADS sets threads for every contender or
 * `tuned` sets `instances` and threads by hand.
 */
function tesseraConfig(model, batching, tuned = null, logLevel = settings.logLevel) {
  const sessionOptions = { ...settings.sessionOptions, ...(tuned?.threads ? { intraOpNumThreads: tuned.threads } : {}) };
  return {
    server: { host: '127.0.0.1', port: 0, logLevel },
    models: {
      [model.name]: {
        backend: 'onnxruntime',
        path: model.file,
        batching,
        warmupShapes: { [model.input]: [1, ...model.sampleShape] },
        ...(tuned ? { instances: tuned.sessions } : {}),
        ...(Object.keys(sessionOptions).length > 0 ? { sessionOptions } : {}),
      },
    },
  };
}

let configCount = 0;
async function writeConfig(config) {
  const file = path.join(tmp, `tessera-${++configCount}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

/** `tessera validate` on a config: null when it passes, else the reason (its one-line error). */
async function validate(config) {
  const file = await writeConfig(config);
  const proc = spawnNode(CLI, ['validate', '-c', file]);
  const code = await proc.exited;
  return code === 0 ? null : (proc.stderr.filter((l) => l.startsWith('tessera:')).at(-1) ?? proc.stderr.at(-1) ?? `exit ${code}`).replace(/^tessera: /, '');
}

function maxBatch(model) {
  return Math.max(...model.batches);
}

function dynamicBatching(model, delay) {
  return { batcher: 'dynamic', maxBatchSize: maxBatch(model), maxQueueDelayMs: delay === 'auto' ? 'auto' : Number(delay), ...settings.dynamicOptions };
}

async function detectFeatures() {
  const probeModel = MODELS.cls;
  const features = { dynamic: false, dynamicReason: null, delays: [], binary: false, binaryReason: null, batchSizeMetric: false, batchSizeMetricReason: null, sweepProtocol: 'json' };
  const reason = await validate(tesseraConfig(probeModel, dynamicBatching(probeModel, 0)));
  if (reason === null) {
    features.dynamic = true;
    for (const d of settings.delays) {
      const r = d === '0' || d === 'passthrough' ? null : await validate(tesseraConfig(probeModel, dynamicBatching(probeModel, d)));
      if (r === null) features.delays.push(d);
      else skip(`tessera-*/*/${d === 'auto' ? 'auto' : `delay-${d}`}`, `the dynamic batcher rejects maxQueueDelayMs: ${d}: ${r}`);
    }
  } else {
    features.dynamicReason = `\`tessera validate\` rejects batcher: dynamic (${reason}); Tessera runs with the passthrough batcher`;
  }
  // One short-lived server tells what the HTTP side offers.
  const server = await startTesseraServer(tesseraConfig(probeModel, { batcher: 'passthrough', maxBatchSize: maxBatch(probeModel) }), 'probe.log');
  try {
    const meta = await (await fetch(`${server.url}/v2`)).json();
    features.extensions = meta.extensions ?? [];
    features.binary = features.extensions.includes('binary_tensor_data');
    if (!features.binary) features.binaryReason = `the server's /v2 extensions [${features.extensions.join(', ')}] lack binary_tensor_data`;
    const res = await fetch(`${server.url}/metrics`);
    const text = res.ok ? await res.text() : '';
    features.batchSizeMetric = /^# TYPE tessera_batch_size histogram/m.test(text);
    if (!features.batchSizeMetric) features.batchSizeMetricReason = res.ok ? '/metrics has no tessera_batch_size histogram' : `/metrics answers ${res.status}`;
  } finally {
    await server.stop();
  }
  features.sweepProtocol = features.binary ? 'binary' : 'json';
  return features;
}

/**
 * Starts `tessera serve` on a generated config. At log levels that print the "server ready" line
 * it listens on `--port 0` and the URL comes from that line; at quieter levels the harness picks a
 * free port and polls readiness.
 */
async function startTesseraServer(config, logName) {
  const file = await writeConfig(config);
  const logsReady = ['info', 'debug', 'trace'].includes(config.server.logLevel);
  const port = logsReady ? 0 : await freePort();
  return startServer(CLI, ['serve', '-c', file, '--port', String(port)], {
    logFile: path.join(tmp, logName),
    ...(logsReady ? {} : { readyUrl: `http://127.0.0.1:${port}` }),
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring

async function load(url, body, connections, durationS) {
  return splitLoad({ url, bodyFile: body.file, headers: body.headers, connections, durationS, processes: settings.loadProcesses });
}

/** One request checked against the raw reference before any load: the contenders must compute the same thing. */
async function preflight(url, body, reference) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...body.headers }, body: await readFile(body.file), signal: AbortSignal.timeout(60_000) });
  const buf = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return { ok: false, status: res.status, error: buf.toString('utf8').slice(0, 300) };
  const decoded = decodeInferResponse(res.headers, buf);
  const out = decoded.outputs.find((o) => o.name === reference.name) ?? decoded.outputs[0];
  const expected = tileSample(Float32Array.from(reference.data), settings.samplesPerRequest);
  const diff = out ? maxAbsDiff(out.data, expected) : Infinity;
  return { ok: diff <= 1e-3, status: 200, maxAbsDiff: diff, binaryOutput: out?.binary ?? false, ...(diff <= 1e-3 ? {} : { error: `output differs from raw session.run by ${diff}` }) };
}

async function measureServed({ id, kind, protocol, model, config, batching, tuned, server, body, reference }) {
  const url = `${server.url}/v2/models/${model.name}/infer`;
  const check = await preflight(url, body, reference).catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
  if (!check.ok && check.status !== 200) {
    log(`FAIL ${id}: ${check.status ?? ''} ${check.error}`);
    results.scenarios.push({ id, kind, protocol, model: model.key, config, batching, connections: null, failed: `${check.status ?? ''} ${check.error}`.trim() });
    return;
  }
  if (!check.ok) log(`WARN ${id}: ${check.error}`);
  for (const connections of settings.connections) {
    // Requests whose client has gone may still be worked off: each load starts on an idle server.
    let drainS = await waitIdle(server.pid);
    await load(url, body, connections, settings.warmupS);
    drainS += await waitIdle(server.pid);
    const before = kind === 'tessera' ? await scrapeMetrics(server.url, model.name) : null;
    const cpu0 = treeCpuSeconds(server.pid);
    const sys0 = systemBusySeconds();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await load(url, body, connections, settings.durationS);
    const wallS = (performance.now() - t0) / 1000;
    const cpu1 = treeCpuSeconds(server.pid);
    const sys1 = systemBusySeconds();
    const own = process.cpuUsage(own0);
    const after = kind === 'tessera' ? await scrapeMetrics(server.url, model.name) : null;
    const means = histogramMeans(before, after);
    // CPU used on the machine by anything but the server, the load generator and this process
    const otherCpuPct =
      sys0 === null || sys1 === null || cpu0 === null || cpu1 === null
        ? null
        : Math.max(0, ((sys1 - sys0 - (cpu1 - cpu0) - (r.loadCpuPct / 100) * r.durationS - (own.user + own.system) / 1e6) / wallS) * 100);
    const row = {
      id,
      kind,
      protocol,
      model: model.key,
      config,
      batching,
      ...(tuned ? { tuned } : {}),
      connections,
      durationS: r.durationS,
      requests: r.requests,
      samplesPerSec: r.reqPerSec * settings.samplesPerRequest,
      reqPerSec: r.reqPerSec,
      latencyMs: r.latencyMs,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      statusCodes: r.statusCodes,
      meanBatchSize: means.batchSize?.mean ?? null,
      meanQueueMs: means.queueSeconds ? means.queueSeconds.mean * 1000 : null,
      meanInferenceMs: means.inferenceSeconds ? means.inferenceSeconds.mean * 1000 : null,
      serverCpuPct: cpu0 === null || cpu1 === null ? null : ((cpu1 - cpu0) / wallS) * 100,
      loadCpuPct: r.loadCpuPct,
      otherCpuPct,
      drainS,
      check: { maxAbsDiff: check.maxAbsDiff, binaryOutput: check.binaryOutput, ok: check.ok },
      ratios: {},
    };
    results.scenarios.push(row);
    log(
      `${id} c=${connections}: ${f1(row.samplesPerSec)} samples/s, p50 ${f2(r.latencyMs.p50)} ms, p99 ${f2(r.latencyMs.p99)} ms, ` +
        `errors ${r.errors + r.timeouts}, non-2xx ${r.non2xx}, batch ${f2(row.meanBatchSize)}, CPU server ${f1(row.serverCpuPct)}% load ${f1(r.loadCpuPct)}% other ${f1(otherCpuPct)}%`,
    );
    if (otherCpuPct !== null && otherCpuPct > NOISY_OTHER_CPU_PCT) log(`  WARN other processes used ${f1(otherCpuPct)}% CPU during this point: its figures are disturbed`);
  }
}

async function prepareBodies(model) {
  const sample = makeSample(model);
  const shape = [settings.samplesPerRequest, ...model.sampleShape];
  const data = tileSample(sample, settings.samplesPerRequest);
  const jsonFile = path.join(tmp, `${model.key}.json`);
  await writeFile(jsonFile, jsonInferBody(model.input, shape, data));
  let bin;
  const testing = await import('@tessera/core/testing').catch(() => ({}));
  try {
    if (typeof testing.encodeBinaryInferRequest !== 'function') throw new Error('@tessera/core/testing has no encodeBinaryInferRequest');
    bin = testing.encodeBinaryInferRequest([{ name: model.input, datatype: 'FP32', shape, data }], { binaryOutput: true });
    if (!Buffer.isBuffer(bin.body) || !bin.headers) throw new Error('encodeBinaryInferRequest returned no { body, headers }');
    results.features.binaryEncoder = '@tessera/core/testing encodeBinaryInferRequest';
  } catch (err) {
    bin = binaryInferBody(model.input, shape, data);
    results.features.binaryEncoder = `bench/lib/oip.mjs (${err.message})`;
  }
  const binFile = path.join(tmp, `${model.key}.bin`);
  await writeFile(binFile, bin.body);
  return { json: { file: jsonFile, headers: {} }, binary: { file: binFile, headers: bin.headers } };
}

async function benchModel(model, features) {
  results.models[model.key] = { name: model.name, file: path.relative(ROOT, model.file), input: model.input, sampleShape: model.sampleShape, maxBatchSize: maxBatch(model) };
  const bodies = await prepareBodies(model);
  const referenceFile = path.join(tmp, `${model.key}.reference.json`);

  // (a) raw session.run, each session in a process of its own: one session with the default
  // threads at every batch size, then S sessions × T threads (the sweep); also writes the reference output
  const rawId = `raw/${model.key}`;
  const batches = selected(rawId) ? (quick ? model.quickBatches : model.batches) : [];
  log(`${rawId}: ${batches.length ? `batch ${batches.join(', ')}${settings.rawSweep ? `, then the sweep over sessions × threads on ${os.availableParallelism()} cores` : ''}` : 'reference output only'}`);
  const raw = await runNodeJson(
    path.join(BENCH_DIR, 'raw.mjs'),
    [
      JSON.stringify({
        model: model.key,
        batches,
        durationMs: settings.rawDurationS * 1000,
        warmupMs: Math.min(1000, settings.rawDurationS * 500),
        sessionOptions: settings.sessionOptions,
        referenceFile,
        sweep: settings.rawSweep,
        ...(settings.rawSessions ? { sessions: settings.rawSessions } : {}),
        ...(settings.rawThreads ? { threads: settings.rawThreads } : {}),
        top: settings.rawTop,
      }),
    ],
    { echo: true, timeoutMs: 900_000 },
  );
  if (batches.length) {
    const { batches: rows, best, defaultBest, batch1, grid, points, cores, elapsedS } = raw;
    results.raw[model.key] = { cores, batches: rows, best, defaultBest, batch1, grid, sweep: points, elapsedS };
    log(`${rawId}: raw best ${best?.samplesPerSec.toFixed(1)} samples/s (${best?.sessions} × ${best?.threads ?? 'default'} threads, batch ${best?.batch}); raw default ${defaultBest?.samplesPerSec.toFixed(1)} (batch ${defaultBest?.batch}); sweep ${Math.round(elapsedS)} s`);
  }
  const reference = JSON.parse(await readFile(referenceFile, 'utf8'));

  // (d) the naive server
  const naiveIds = ['json', 'binary'].map((p) => ({ protocol: p, id: `naive-${p}/${model.key}` })).filter((s) => selected(s.id));
  if (naiveIds.length > 0) {
    const server = await startServer(path.join(BENCH_DIR, 'naive-server.mjs'), [JSON.stringify({ models: [{ name: model.name, path: model.file }], sessionOptions: settings.sessionOptions })], {
      logFile: path.join(tmp, `naive-${model.key}.log`),
    });
    try {
      for (const { protocol, id } of naiveIds) await measureServed({ id, kind: 'naive', protocol, model, config: 'no batching', batching: null, server, body: bodies[protocol], reference });
    } finally {
      await server.stop();
    }
  }

  // (b, c) Tessera: one server per batcher setting; the adaptive one first
  const passthrough = { id: 'passthrough', batching: { batcher: 'passthrough', maxBatchSize: maxBatch(model) } };
  const order = (d) => (d === 'auto' ? -2 : d === 'passthrough' ? -1 : Number(d));
  const configs = features.dynamic
    ? [...features.delays].sort((a, b) => order(a) - order(b)).map((d) => (d === 'passthrough' ? passthrough : { id: d === 'auto' ? 'auto' : `delay-${d}`, batching: dynamicBatching(model, d) }))
    : [passthrough];
  // the raw best point's instances and threads, set by hand (not judged: what a tuned config reaches)
  const best = results.raw[model.key]?.best;
  if (settings.tuned && features.dynamic && selected(`tessera-binary/${model.key}/tuned`)) {
    if (!best) skip(`tessera-binary/${model.key}/tuned`, 'no raw sweep measured');
    else if (best.sessions === 1 && best.threads === null) skip(`tessera-binary/${model.key}/tuned`, 'the raw best point is one session with the default threads: the same as auto');
    else configs.push({ id: 'tuned', batching: dynamicBatching(model, 'auto'), tuned: { sessions: best.sessions, threads: best.threads } });
  }
  for (const cfg of configs) {
    const both = cfg.id === 'auto' || cfg.id === 'passthrough' || settings.sweep === 'all' || configs.length === 1;
    const protocols = both ? ['json', 'binary'] : [features.sweepProtocol];
    const runs = [];
    for (const protocol of protocols) {
      const id = `tessera-${protocol}/${model.key}/${cfg.id}`;
      if (!selected(id)) continue;
      if (protocol === 'binary' && !features.binary) skip(id, features.binaryReason);
      else runs.push({ id, protocol });
    }
    if (runs.length === 0) continue;
    const config = tesseraConfig(model, cfg.batching, cfg.tuned);
    if (cfg.id === 'auto' || cfg.id === 'tuned') {
      (results.serverChoice[model.key] ??= {})[cfg.id] = await serverChoice(model, tesseraConfig(model, cfg.batching, cfg.tuned, 'debug'), `choice-${model.key}-${cfg.id}.log`);
      log(`  ${model.key}/${cfg.id}: the server chose ${JSON.stringify(results.serverChoice[model.key][cfg.id])}`);
    }
    let server;
    try {
      server = await startTesseraServer(config, `tessera-${model.key}-${cfg.id}.log`);
    } catch (err) {
      // a hand-set config the build refuses is a finding, not the end of the run
      if (cfg.id !== 'tuned') throw err;
      for (const { id, protocol } of runs) results.scenarios.push({ id, kind: 'tessera', protocol, model: model.key, config: cfg.id, batching: cfg.batching, connections: null, failed: String(err.message).split('\n')[0] });
      log(`FAIL ${model.key}/tuned: ${err.message}`);
      continue;
    }
    try {
      for (const { id, protocol } of runs) await measureServed({ id, kind: 'tessera', protocol, model, config: cfg.id, batching: cfg.batching, ...(cfg.tuned ? { tuned: cfg.tuned } : {}), server, body: bodies[protocol], reference });
    } finally {
      await server.stop();
    }
  }
}

/** Pino's own fields and the tensor lists: left out of a recorded log line. */
const LOG_NOISE = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'inputs', 'outputs', 'reqId']);

/**
 * What the server chose for `config` (the same config at debug level, on a server of its own that
 * gets no load): `instanceGroupCount` and `instances` from `GET /v2/models/<model>/config`
 * (Triton's instance_group; Tessera's own settings), its `parameters` (the backend's keys), and
 * `sessions`, the fields of each "onnxruntime session created" debug line (intraOpNumThreads is
 * absent there when ORT picks).
 */
async function serverChoice(model, config, logName) {
  let server;
  try {
    server = await startTesseraServer(config, logName);
    const res = await fetch(`${server.url}/v2/models/${encodeURIComponent(model.name)}/config`, { signal: AbortSignal.timeout(10_000) });
    const body = res.ok ? await res.json() : null;
    const sessions = [];
    for (const line of (await readFile(path.join(tmp, logName), 'utf8')).split('\n')) {
      if (!line.includes('onnxruntime session created')) continue;
      try {
        const entry = JSON.parse(line);
        sessions.push(Object.fromEntries(Object.entries(entry).filter(([k]) => !LOG_NOISE.has(k))));
      } catch {
        // not a JSON line
      }
    }
    const parameters = Object.fromEntries(Object.entries(body?.parameters ?? {}).map(([k, v]) => [k, v?.string_value ?? v]));
    return {
      instanceGroupCount: body?.instance_group?.[0]?.count ?? null,
      instances: body?.tessera?.instances ?? null,
      parameters,
      sessions,
      ...(res.ok ? {} : { configStatus: res.status }),
    };
  } catch (err) {
    return { error: String(err?.message ?? err).split('\n')[0] };
  } finally {
    await server?.stop();
  }
}

function addRatios() {
  for (const s of results.scenarios) {
    if (s.failed) continue;
    const rawBest = results.raw[s.model]?.best?.samplesPerSec;
    const rawDefault = results.raw[s.model]?.defaultBest?.samplesPerSec;
    const naive = (protocol) => results.scenarios.find((n) => n.kind === 'naive' && n.protocol === protocol && n.model === s.model && n.connections === s.connections && !n.failed);
    const nj = naive('json');
    const np = naive(s.protocol);
    // a baseline that answered nothing in the window gives no ratio (not Infinity)
    s.ratios = {
      rawBest: rawBest ? s.samplesPerSec / rawBest : null,
      rawDefault: rawDefault ? s.samplesPerSec / rawDefault : null,
      naiveJson: nj?.samplesPerSec ? s.samplesPerSec / nj.samplesPerSec : null,
      naiveSameProtocol: np?.samplesPerSec ? s.samplesPerSec / np.samplesPerSec : null,
    };
  }
}

async function writeOutputs() {
  const name = `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}.json`;
  results.file = `bench/results/${name}`;
  const file = path.join(RESULTS_DIR, name);
  await writeFile(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  if (env.BENCH_WRITE === 'json') {
    log(`\nwrote ${path.relative(ROOT, file)} (BENCH_WRITE=json: ${path.relative(ROOT, DOCS)} left alone)`);
    return;
  }
  await writeOcrDocs(renderMarkdown(results), SECTION);
  log(`\nwrote ${path.relative(ROOT, file)} and ${path.relative(ROOT, DOCS)} (${MARKERS.start})`);
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  log(`bench: ${results.command}\n  ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memGiB} GiB, Node ${results.machine.node}`);
  if (preset) log(`  preset ${preset}: scenarios ${settings.scenarios.join(', ')}; connections ${settings.connections.join(', ')}; ${settings.durationS} s a point after ${settings.warmupS} s; raw ${settings.rawDurationS} s a point`);
  const busy = os.loadavg()[0];
  results.machine.loadavgAtStart = os.loadavg();
  if (busy > results.machine.cores * 0.25) {
    log(`  WARN load average ${busy.toFixed(2)} on ${results.machine.cores} cores before the run: other work is running, figures will be disturbed`);
  }
  results.features = await detectFeatures();
  const ft = results.features;
  log(
    `  dynamic batcher: ${ft.dynamic ? `yes (${ft.delays.join(', ')})` : `no — ${ft.dynamicReason}`}\n` +
      `  binary tensor extension: ${ft.binary ? 'yes' : `no — ${ft.binaryReason}`}\n` +
      `  tessera_batch_size: ${ft.batchSizeMetric ? 'yes' : `no — ${ft.batchSizeMetricReason}`}`,
  );
  const configIds = ft.dynamic ? ft.delays.map((d) => (d === 'auto' || d === 'passthrough' ? d : `delay-${d}`)) : ['passthrough'];
  for (const key of settings.models) {
    const ids = [`raw/${key}`, `naive-json/${key}`, `naive-binary/${key}`, ...[...configIds, ...(settings.tuned ? ['tuned'] : [])].flatMap((c) => [`tessera-json/${key}/${c}`, `tessera-binary/${key}/${c}`])];
    if (ids.some(selected)) await benchModel(MODELS[key], ft);
    else log(`${key}: no scenario selected by BENCH_SCENARIOS`);
  }
  addRatios();
  results.targets = markDisturbed(results, evaluateTargets(results), NOISY_OTHER_CPU_PCT);
  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  const disturbed = results.scenarios.filter((x) => x.otherCpuPct > NOISY_OTHER_CPU_PCT).length;
  results.disturbedPoints = disturbed;
  if (disturbed > 0) log(`WARN ${disturbed} point(s) ran while other processes used > ${NOISY_OTHER_CPU_PCT}% of a core (see otherCpuPct)`);
  log('');
  for (const t of results.targets) {
    log(`target ${t.pass === null ? 'n/a ' : t.pass ? 'MET ' : 'MISS'}${t.disturbed && t.pass !== null ? ' (disturbed)' : ''} ${t.target} [${t.scenario}]: ${t.measured === null ? 'n/a' : `${t.measured.toFixed(2)} ${t.unit}`}${t.note ? ` — ${t.note}` : ''}`);
  }
  if (env.BENCH_WRITE !== '0') await writeOutputs();
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
