// Shared by the suites that race several builds or settings of the same Tessera server in one run
// (bench/tracing.mjs, bench/pipeline.mjs): the two test models and their request bodies, starting
// `tessera serve` contenders, checking an answer, running the load generator, the CPU stolen by the
// hypervisor, one measured window of load, the git state recorded in a results file, the baseline's details,
// and rewriting a suite's own section of docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, benchModels, envNumber, freePort, makeSample, ROOT, spawnNode, writeResultsFile } from './common.mjs';
import { allProcessCpu, otherProcessCpu, startService } from './llm-procs.mjs';
import { histogramMeans, processCpuSeconds, scrapeMetrics, systemBusySeconds, waitIdle } from './probe.mjs';
import { binaryInferBody, decodeInferResponse, maxAbsDiff } from './oip.mjs';

const LOAD = path.join(BENCH_DIR, 'load.mjs');

/**
 * The PP-OCR classifier (binary tensor protocol) and the tiny `affine` test model (JSON), with a
 * request body for each written under `dir`. The classifier's expected answer is filled in by the
 * first `checkAnswer`; the tiny model's is known (y = 2x + 1, sum = Σy).
 */
export async function prepareModels(dir) {
  const testing = await import('@tessera/core/testing');
  const catalog = await testing.writeTestModels(path.join(dir, 'test-models'));
  const cls = benchModels().cls;
  const sample = makeSample(cls);
  const shape = [1, ...cls.sampleShape];
  let bin;
  let encoder;
  try {
    bin = testing.encodeBinaryInferRequest([{ name: cls.input, datatype: 'FP32', shape, data: sample }], { binaryOutput: true });
    encoder = '@tessera/core/testing encodeBinaryInferRequest';
  } catch (err) {
    bin = binaryInferBody(cls.input, shape, sample);
    encoder = `bench/lib/oip.mjs (${err.message})`;
  }
  const clsFile = path.join(dir, 'cls.bin');
  await writeFile(clsFile, bin.body);
  const x = [0.5, -1.25, 2, 3.5];
  const tinyFile = path.join(dir, 'affine.json');
  await writeFile(tinyFile, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: x }] }));
  return {
    cls: {
      key: 'cls',
      name: cls.name,
      file: cls.file,
      protocol: 'binary',
      warmupShapes: { [cls.input]: shape },
      body: { file: clsFile, headers: bin.headers, bytes: bin.body.length },
      encoder,
      expected: null,
    },
    tiny: {
      key: 'tiny',
      name: 'affine',
      file: catalog.affine.path,
      protocol: 'json',
      warmupShapes: { x: [1, 4] },
      body: { file: tinyFile, headers: {}, bytes: (await readFile(tinyFile)).length },
      expected: { y: x.map((v) => 2 * v + 1), sum: [x.reduce((s, v) => s + 2 * v + 1, 0)] },
    },
  };
}

/** The models as a results file records them (paths relative to the repository). */
export function describeModels(models) {
  return Object.fromEntries(
    Object.values(models).map((m) => [m.key, { name: m.name, file: path.relative(ROOT, m.file).startsWith('..') ? path.basename(m.file) : path.relative(ROOT, m.file), protocol: m.protocol, bodyBytes: m.body.bytes, ...(m.encoder ? { encoder: m.encoder } : {}) }]),
  );
}

/**
 * One request to `server` for `model`: resolves with `{ status, traceId, ok, error, maxAbsDiff }`;
 * ok when the answer matches the expected one within 1e-3 (the classifier's expected answer is
 * the first answer seen, `from` names the contender that gave it).
 */
export async function checkAnswer(server, model, from) {
  const res = await fetch(`${server.url}/v2/models/${model.name}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...model.body.headers }, body: await readFile(model.body.file), signal: AbortSignal.timeout(60_000) });
  const buf = Buffer.from(await res.arrayBuffer());
  const out = { status: res.status, traceId: res.headers.get('x-trace-id'), ok: false, error: null, maxAbsDiff: null };
  if (res.status !== 200) {
    out.error = `HTTP ${res.status}: ${buf.toString('utf8').slice(0, 300)}`;
    return out;
  }
  const decoded = decodeInferResponse(res.headers, buf);
  if (model.key === 'tiny') {
    const y = decoded.outputs.find((o) => o.name === 'y');
    const sum = decoded.outputs.find((o) => o.name === 'sum');
    out.maxAbsDiff = y && sum ? Math.max(maxAbsDiff(y.data, model.expected.y), maxAbsDiff(sum.data, model.expected.sum)) : Infinity;
  } else {
    const o = decoded.outputs[0];
    if (!model.expected) model.expected = { name: o.name, data: Array.from(o.data), from };
    out.maxAbsDiff = maxAbsDiff(o.data, model.expected.data);
    out.binaryOutput = o.binary;
  }
  out.ok = out.maxAbsDiff <= 1e-3;
  if (!out.ok) out.error = `output differs from the expected answer by ${out.maxAbsDiff}`;
  return out;
}

/**
 * Starts `node <cli> serve` for one contender with `config` (written to `dir`), its log in `dir`;
 * the service is pushed onto `services` (stopped at the end). Resolves once /v2/health/ready answers.
 */
export async function startTessera(services, dir, contender, cli, config) {
  const port = await freePort();
  const file = path.join(dir, `tessera-${contender}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const s = await startService(`tessera (${contender})`, cli, ['serve', '-c', file, '--port', String(port)], {
    logFile: path.join(dir, `tessera-${contender}.log`),
    readyUrl: `http://127.0.0.1:${port}/v2/health/ready`,
    timeoutMs: 120_000,
  });
  services.push(s);
  return { ...s, url: `http://127.0.0.1:${port}`, port, cli, configFile: file };
}

/**
 * bench/load.mjs (autocannon) in a process of its own against `url`; resolves with its JSON line.
 * `pace`: `{ rate }` paces the load (requests a second, all connections), `{ intervalS }` adds the
 * answers of each interval (load.mjs's `intervals`).
 */
export async function runLoad(url, body, connections, durationS, pace = {}) {
  const proc = spawnNode(LOAD, [JSON.stringify({ url, bodyFile: body.file, headers: body.headers, connections, durationS, ...pace })], { keep: 50 });
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), (durationS + 90) * 1000);
  const code = await proc.exited;
  clearTimeout(timer);
  const last = proc.stdout.filter((l) => l.trim().startsWith('{')).at(-1);
  if (code !== 0 || !last) throw new Error(`bench/load.mjs exited with ${code}\n${proc.stderr.slice(-20).join('\n')}`);
  return JSON.parse(last);
}

let clockTicks;
/** CPU seconds stolen from this VM by the hypervisor, all cores (/proc/stat); null elsewhere. */
export function stealSeconds() {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (cpu[7] ?? 0) / clockTicks;
  } catch {
    return null;
  }
}

/** Read-only git facts: the commit measured and whether the packages differ from it. */
export function gitInfo() {
  try {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages'], { encoding: 'utf8' }).trim();
    return { head, packagesDirty: dirty ? dirty.split('\n').length : 0 };
  } catch {
    return { head: null, packagesDirty: null };
  }
}

/**
 * Adds to a built baseline (bench/lib/baseline.mjs) the versions it runs on and the commits since
 * it that touch the core or the ONNX Runtime backend (what a comparison with it measures).
 */
export function describeBaseline(b) {
  const v = (name) => {
    try {
      return JSON.parse(readFileSync(path.join(b.dir, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  b.versions = { onnxruntime: v('onnxruntime-node'), fastify: v('fastify'), core: v('@tessera/core') };
  try {
    b.coreChangesSince = execFileSync('git', ['-C', ROOT, 'log', '--oneline', '--no-decorate', `${b.sha}..HEAD`, '--', 'packages/core/src', 'packages/backend-onnxruntime/src'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch {
    b.coreChangesSince = null;
  }
  return b;
}

/**
 * Replaces the text between `start` and `end` in `file` with `block` (between the markers); a
 * file without them gets `## heading` and the block appended. Read just before writing: other
 * suites may have rewritten their own sections meanwhile.
 */
export async function writeDocsSection(file, { start, end, heading, block }) {
  const text = `${start}\n${block}\n${end}`;
  const docs = existsSync(file) ? await readFile(file, 'utf8') : '# Benchmarks\n';
  const i = docs.indexOf(start);
  const j = docs.indexOf(end);
  const updated = i >= 0 && j > i ? docs.slice(0, i) + text + docs.slice(j + end.length) : `${docs.trimEnd()}\n\n## ${heading}\n\n${text}\n`;
  await writeFile(file, updated);
}

/**
 * A suite's BENCH_<SUITE>_RENDER mode: with `file` (a results file, e.g. one from the device
 * machine) writes `render` of it into `section` of docs/benchmarks.md and exits; without, returns.
 */
export async function renderSavedAndExit(file, { section, heading, render, log = () => {} }) {
  if (!file) return;
  const saved = JSON.parse(await readFile(path.resolve(file), 'utf8'));
  await writeDocsSection(path.join(ROOT, 'docs', 'benchmarks.md'), { ...section, heading, block: render(saved) });
  log(`wrote ${file} into docs/benchmarks.md (${section.start})`);
  process.exit(0);
}

/**
 * Runs a suite's `main()`; a failure is logged with its stack (`bench <name>: …`) and makes the
 * process exit non-zero (bench/index.mjs then stops), after the cleanup hooks have run.
 */
export async function runSuite(name, main, log) {
  try {
    await main();
  } catch (err) {
    log(`bench ${name}: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  }
}

/** Closes a run's bookkeeping: how long it took since `started` (performance.now()) and the load average at its end. */
export function finishRun(results, started) {
  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
}

/**
 * What a suite leaves, as BENCH_WRITE says: its results file (bench/results/…) and its section of
 * docs/benchmarks.md between `section`'s markers (`render(results)` is the Markdown); `json`: the
 * results file only; `0`: neither. Resolves with the results file's path (null with `0`).
 */
export async function writeSuiteOutputs(results, { quick = false, section, heading, render, log = () => {}, env = process.env }) {
  if (env.BENCH_WRITE === '0') return null;
  const file = await writeResultsFile(results, { quick });
  const docs = path.join(ROOT, 'docs', 'benchmarks.md');
  if (env.BENCH_WRITE === 'json') log(`\nwrote ${path.relative(ROOT, file)} (BENCH_WRITE=json: docs/benchmarks.md left alone)`);
  else {
    await writeDocsSection(docs, { ...section, heading, block: render(results) });
    log(`\nwrote ${path.relative(ROOT, file)} and ${path.relative(ROOT, docs)}`);
  }
  return file;
}

/**
 * The settings of a suite measured in rounds, from `BENCH_<PREFIX>_WINDOW`, `_WARMUP`, `_PRIME`,
 * `_ROUNDS` and `_RETRIES`: 3 s windows after 0.5 s of warm-up, 2 s of priming, 10 rounds, one
 * retry of a disturbed window; a quick run: `quickWindowS` windows, 1 s of priming, 3 rounds, no retry.
 */
export function roundSettings(prefix, quick, { quickWindowS = 1 } = {}) {
  return {
    windowS: envNumber(`BENCH_${prefix}_WINDOW`, quick ? quickWindowS : 3, { min: 0.5 }),
    warmupS: envNumber(`BENCH_${prefix}_WARMUP`, 0.5, { min: 0.2 }),
    primeS: envNumber(`BENCH_${prefix}_PRIME`, quick ? 1 : 2),
    rounds: envNumber(`BENCH_${prefix}_ROUNDS`, quick ? 3 : 10, { min: 2, integer: true }),
    retries: envNumber(`BENCH_${prefix}_RETRIES`, quick ? 0 : 1, { integer: true }),
  };
}

/** The empty fields of a contest's results file, filled as the suite runs. */
export function contestFields() {
  return { contenders: {}, points: [], rows: [], comparisons: [], verdicts: [], skipped: [] };
}

/** The contenders in round `round`'s order: rotated by one each round (ABC, BCA, CAB, …), so none is always first. */
export function rotated(contenders, round) {
  const k = (round - 1) % contenders.length;
  return [...contenders.slice(k), ...contenders.slice(0, k)];
}

/**
 * Measures with `once()` until a window is not disturbed (other processes used more than the
 * threshold of a core), at most `1 + retries` times; resolves with the least disturbed row.
 */
export async function measureWithRetries(once, retries, { log = () => {} } = {}) {
  let best = null;
  for (let attempt = 1; attempt <= 1 + retries; attempt++) {
    const row = await once();
    row.attempt = attempt;
    if (!best || row.otherProcsPct < best.otherProcsPct) best = row;
    if (!row.disturbed) break;
    if (attempt <= retries) log(`    disturbed (other processes ${row.otherProcsPct.toFixed(0)}% of a core): measuring again`);
  }
  return best;
}

/**
 * One measured window of one contender at one point: `settle()` (resolves with `{ waitedS }` once
 * the machine is quiet), `warmupS` of load, the processes in `idlePids` idle again, then `durationS`
 * of load with the CPU of the server, of every process in `extraPids` (`{ sink: pid }` gives
 * `sinkCpuPct`), of the whole machine and of processes outside `exclude`, and the server's batch
 * histograms. `onLoadEnd` runs as soon as the load ends. A row is `disturbed` when processes outside
 * the benchmark used more than `noisyPct` of a core.
 */
export async function measureWindow({ server, point, contender, round, warmupS, durationS, settle, exclude, idlePids = [server.pid], extraPids = {}, cores, noisyPct, onLoadEnd = () => {} }) {
  const model = point.model;
  const url = `${server.url}/v2/models/${model.name}/infer`;
  const quiet = await settle();
  await runLoad(url, model.body, point.connections, warmupS);
  // requests of the warm-up whose clients are gone may still be worked off
  await Promise.all(idlePids.map((pid) => waitIdle(pid)));
  const before = await scrapeMetrics(server.url, model.name);
  const extra = Object.entries(extraPids);
  const snap = () => ({ t: performance.now(), server: processCpuSeconds(server.pid), extra: extra.map(([, pid]) => processCpuSeconds(pid)), system: systemBusySeconds(), steal: stealSeconds(), all: allProcessCpu() });
  const s0 = snap();
  const r = await runLoad(url, model.body, point.connections, durationS);
  const s1 = snap();
  onLoadEnd();
  const means = histogramMeans(before, await scrapeMetrics(server.url, model.name));
  const wallS = (s1.t - s0.t) / 1000;
  const pct = (a, b) => (a === null || b === null ? null : ((b - a) / wallS) * 100);
  const serverCpuS = s0.server === null || s1.server === null ? null : s1.server - s0.server;
  const row = {
    point: point.id,
    model: model.key,
    protocol: model.protocol,
    connections: point.connections,
    contender,
    round,
    durationS: r.durationS,
    requests: r.requests,
    samplesPerSec: r.reqPerSec,
    latencyMs: r.latencyMs,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    meanBatchSize: means.batchSize?.mean ?? null,
    meanQueueMs: means.queueSeconds ? means.queueSeconds.mean * 1000 : null,
    meanInferenceMs: means.inferenceSeconds ? means.inferenceSeconds.mean * 1000 : null,
    wallS,
    serverCpuPct: pct(s0.server, s1.server),
    serverCpuUsPerRequest: serverCpuS === null || r.requests === 0 ? null : (serverCpuS / r.requests) * 1e6,
    ...Object.fromEntries(extra.map(([name], i) => [`${name}CpuPct`, pct(s0.extra[i], s1.extra[i])])),
    loadCpuPct: r.loadCpuPct,
    otherProcsPct: (otherProcessCpu(s0.all, s1.all, new Set(exclude)) / wallS) * 100,
    stealPct: s0.steal === null || s1.steal === null ? null : ((s1.steal - s0.steal) / wallS) * 100,
    machineBusyPct: s0.system === null || s1.system === null ? null : ((s1.system - s0.system) / wallS / cores) * 100,
    waitedForQuietS: quiet.waitedS,
  };
  row.disturbed = row.otherProcsPct > noisyPct;
  return row;
}

/** A point's heading: the model, the protocol, the concurrency and the request body's size. */
export function pointTitle(p, results) {
  const m = results.models?.[p.model];
  const int = (v) => Math.round(v).toLocaleString('en-US');
  return `${p.model === 'cls' ? 'PP-OCR classifier' : 'tiny `affine` model'} (\`${p.modelName}\`), ${p.protocol === 'binary' ? 'binary tensor protocol' : 'JSON'}, ${p.connections} connection${p.connections === 1 ? '' : 's'}${m?.bodyBytes ? ` (${int(m.bodyBytes)}-byte request body)` : ''}`;
}
