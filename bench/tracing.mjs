// The tracing overhead benchmark (part of `npm run bench`; alone: `node bench/tracing.mjs`).
// Throughput and latency of the same Tessera server with tracing off and on, in one run:
//
//   base     the server built from the commit just before the core got its spans (74da4e3^), in a
//            cached git worktree under /tmp (bench/lib/baseline.mjs)
//   absent   today's server without the tracing plugin (the default): no span code runs
//   on-1.0   plugins: ['@tessera/tracing'], sampleRatio 1, OTLP http/protobuf to a local sink
//   on-0.0   the plugin with sampleRatio 0: spans are created but not recorded (context)
//   absent-2 a second process exactly like `absent` (an A/A control: how far two identical
//            servers measured in the same run differ, i.e. the noise floor the targets are judged against)
//
// Each contender is a `tessera serve` process of its own, all started once and kept; the load
// generator (bench/load.mjs, autocannon) runs against them in turn, `rounds` times per point
// (ABCD ABCD …: drift shows), each point after the servers and the machine went quiet. Spans go to
// bench/lib/otlp-sink.mjs (a process of its own) under a prefix per contender; it counts them, so
// the report shows what was exported and what was dropped. See docs/benchmarks.md, "Tracing overhead".
//
// Environment (all optional):
//   BENCH_SUITES=ocr,llm,tracing     suites `npm run bench` runs; this one skips itself without `tracing`
//   BENCH_QUICK=1                    smoke run: 2 s windows after 1 s warm-up, 2 rounds, no retries
//   BENCH_TRACING_DURATION=4         seconds measured per point
//   BENCH_TRACING_WARMUP=1.5         seconds of warm-up load per point (not measured)
//   BENCH_TRACING_PRIME=2            seconds of load on every contender before a point's first round (not
//                                    measured: the first round would otherwise run on colder servers); 0: none
//   BENCH_TRACING_ROUNDS=4           rounds of every contender per point (≥ 2)
//   BENCH_TRACING_CONNECTIONS=16,64  concurrency on the OCR classifier (binary tensor protocol)
//   BENCH_TRACING_TINY_CONNECTIONS=16  concurrency on the tiny `affine` model (JSON); `none` skips it
//   BENCH_TRACING_CONTENDERS=base,absent,on-1.0,on-0.0,absent-2   which contenders, in this order per round
//   BENCH_TRACING_ORDER=fixed        fixed: the same order every round (ABCD ABCD); rotate: round r starts
//                                    with the r-th contender (ABCD BCDA …), so no contender always
//                                    follows the same one
//   BENCH_TRACING_BASE=74da4e3^      git ref of the baseline server; `none` skips that contender
//   BENCH_TRACING_PROTOCOL=http/protobuf  OTLP encoding of the on-* contenders (http/json also works)
//   BENCH_TRACING_LOG_LEVEL=warn     server.logLevel of every contender (info adds an access-log line
//                                    per request to all of them alike)
//   BENCH_THREADS=…                  intraOpNumThreads for every contender (default: ORT's), as in run.mjs
//   BENCH_TRACING_RETRIES=1          a point during which other processes used > 40% of a core is
//                                    measured again (the least disturbed attempt is kept)
//   BENCH_MACHINE=name               the <machine> part of bench/results/<date>-<machine>-tracing.json
//   BENCH_TRACING_TAG=name           bench/results/<date>-<machine>-tracing-<name>.json
//   BENCH_WRITE=0                    write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                 keep the temporary folder (configs, server logs)
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_DIR, envList, envNumber, freePort, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, spawnNode, suiteTempDir, writeResultsFile } from './lib/common.mjs';
import { checkAnswer, describeBaseline, describeModels, gitInfo, measureWindow, measureWithRetries, prepareModels, runLoad, startTessera as startContender, writeDocsSection } from './lib/contest.mjs';
import { startService, waitQuiet } from './lib/llm-procs.mjs';
import { waitIdle } from './lib/probe.mjs';
import { ensureBaseline } from './lib/baseline.mjs';
import { TRACING_MARKER_END, TRACING_MARKER_START, evaluateTracing, renderTracingMarkdown } from './lib/tracing-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);

skipUnlessSuite('tracing', 'bench/tracing.mjs');

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const PLUGIN_DIST = path.join(ROOT, 'packages', 'tracing', 'dist', 'index.js');
const SINK = path.join(BENCH_DIR, 'lib', 'otlp-sink.mjs');
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
/** Above this much CPU (100 = one core) used by processes outside the benchmark, a point is flagged disturbed. */
const NOISY_OTHER_CPU_PCT = 40;
const ALL_CONTENDERS = ['base', 'absent', 'on-1.0', 'on-0.0', 'absent-2'];

const number = (name, fallback, opts) => envNumber(name, fallback, opts);
const list = envList;

function delayOf(v) {
  if (v === 'auto') return v;
  const n = Number(v);
  if (!(n >= 0)) throw new Error(`BENCH_TRACING_TINY_DELAY=${v}: expected auto or a number of ms ≥ 0`);
  return n;
}

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  durationS: number('BENCH_TRACING_DURATION', quick ? 2 : 4, { min: 0.5 }),
  warmupS: number('BENCH_TRACING_WARMUP', quick ? 1 : 1.5, { min: 0.5 }),
  primeS: number('BENCH_TRACING_PRIME', quick ? 1 : 2),
  rounds: number('BENCH_TRACING_ROUNDS', quick ? 2 : 4, { min: 1, integer: true }),
  connections: list(env.BENCH_TRACING_CONNECTIONS, '16,64').map(Number),
  tinyConnections: env.BENCH_TRACING_TINY_CONNECTIONS === 'none' ? [] : list(env.BENCH_TRACING_TINY_CONNECTIONS, '16').map(Number),
  contenders: list(env.BENCH_TRACING_CONTENDERS, ALL_CONTENDERS.join(',')),
  baseRef: env.BENCH_TRACING_BASE ?? '74da4e3^',
  otlpProtocol: env.BENCH_TRACING_PROTOCOL ?? 'http/protobuf',
  logLevel: env.BENCH_TRACING_LOG_LEVEL ?? 'warn',
  sessionOptions: sessionOptionsFromEnv(),
  retries: number('BENCH_TRACING_RETRIES', quick ? 0 : 1, { integer: true }),
  order: env.BENCH_TRACING_ORDER ?? 'fixed',
  // the plugin's defaults (docs/tracing.md), written out so the results say what was used
  exportBatch: { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelay: '5s' },
  batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' },
  tinyBatching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: delayOf(env.BENCH_TRACING_TINY_DELAY ?? 'auto') },
};
for (const c of [...settings.connections, ...settings.tinyConnections]) if (!Number.isInteger(c) || c < 1) throw new Error(`BENCH_TRACING_*CONNECTIONS: expected positive integers, got ${c}`);
for (const c of settings.contenders) if (!ALL_CONTENDERS.includes(c)) throw new Error(`BENCH_TRACING_CONTENDERS: unknown contender '${c}' (${ALL_CONTENDERS.join(', ')})`);
if (!['fixed', 'rotate'].includes(settings.order)) throw new Error(`BENCH_TRACING_ORDER=${settings.order}: expected fixed or rotate`);
if (!['http/protobuf', 'http/json'].includes(settings.otlpProtocol)) throw new Error(`BENCH_TRACING_PROTOCOL=${settings.otlpProtocol}: expected http/protobuf or http/json`);
if (settings.baseRef === 'none') settings.contenders = settings.contenders.filter((c) => c !== 'base');
if (settings.rounds < 2) log(`WARN BENCH_TRACING_ROUNDS=${settings.rounds}: with one round the run-to-run spread is unknown, every verdict is "within noise"`);
const SCHEDULED_DELAY_MS = 5000;

installCleanup();
const tmp = suiteTempDir('tracing');

const results = {
  ...resultsHeader('tracing', 'bench/tracing.mjs'),
  versions: {
    core: packageVersion('@tessera/core'),
    tracing: packageVersion('@tessera/tracing'),
    otelApi: packageVersion('@opentelemetry/api'),
    otelSdkTraceBase: packageVersion('@opentelemetry/sdk-trace-base'),
    otelExporterProto: packageVersion('@opentelemetry/exporter-trace-otlp-proto'),
    onnxruntime: packageVersion('onnxruntime-node'),
    autocannon: packageVersion('autocannon'),
    fastify: packageVersion('fastify'),
    node: process.version,
  },
  git: gitInfo(),
  settings: { ...settings },
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  baseline: null,
  contenders: {},
  points: [],
  rows: [],
  spans: [],
  comparisons: [],
  targets: [],
  skipped: [],
};

function skip(id, reason) {
  results.skipped.push({ id, reason });
  log(`skip ${id}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Servers

function serverConfig(models, contender, plugin, sinkUrl) {
  const config = {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel },
    models: Object.fromEntries(
      Object.values(models).map((m) => [m.name, { backend: 'onnxruntime', path: m.file, batching: { ...(m.key === 'tiny' ? settings.tinyBatching : settings.batching) }, warmupShapes: m.warmupShapes, ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}) }]),
    ),
  };
  if (contender.startsWith('on-')) {
    config.plugins = [plugin];
    config.tracing = {
      endpoint: `${sinkUrl}/${contender}`,
      protocol: settings.otlpProtocol,
      serviceName: `tessera-bench-${contender}`,
      sampleRatio: Number(contender.slice(3)),
      batch: { ...settings.exportBatch },
    };
  }
  return config;
}

/** The plugin as a package name when it resolves (from the config folder, else the core's), else by absolute path. */
async function pluginSpecifier(models, sinkUrl) {
  for (const plugin of ['@tessera/tracing', PLUGIN_DIST]) {
    const file = path.join(tmp, 'validate.json');
    await writeFile(file, JSON.stringify(serverConfig(models, 'on-1.0', plugin, sinkUrl)));
    const proc = spawnNode(CLI, ['validate', '-c', file]);
    if ((await proc.exited) === 0) return plugin;
    log(`  tessera validate with plugin ${plugin}: ${proc.stderr.at(-1) ?? 'failed'}`);
  }
  throw new Error('tessera validate rejects the tracing config with the plugin by name and by path');
}

const services = [];

const startTessera = (contender, cli, config) => startContender(services, tmp, contender, cli, config);

async function startSink() {
  const port = await freePort();
  const s = await startService('otlp sink', SINK, [JSON.stringify({ port })], { logFile: path.join(tmp, 'otlp-sink.log'), readyUrl: `http://127.0.0.1:${port}/health` });
  services.push(s);
  return { ...s, url: `http://127.0.0.1:${port}` };
}

async function sinkStats(sink) {
  const res = await fetch(`${sink.url}/stats`, { signal: AbortSignal.timeout(10_000) });
  return res.json();
}

/** Sum of every series of one metric in a Prometheus text (null when absent). */
function metricSum(text, name) {
  let sum = 0;
  let found = false;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(re)) {
    found = true;
    sum += Number(m[1]);
  }
  return found ? sum : null;
}

/** Inference requests answered and batches executed, all models, from /metrics. */
async function serverCounts(server) {
  try {
    const text = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    return { requests: metricSum(text, 'tessera_requests_total'), queued: metricSum(text, 'tessera_queue_duration_seconds_count'), batches: metricSum(text, 'tessera_batch_size_count') };
  } catch {
    return { requests: null, queued: null, batches: null };
  }
}

// ---------------------------------------------------------------------------------------------
// Checks and measurements

/** One request before any load: the answer must be right, and X-Trace-Id present exactly when tracing is on. */
async function preflight(server, contender, model) {
  const out = await checkAnswer(server, model, contender);
  const wantTrace = contender.startsWith('on-');
  if (out.status === 200 && Boolean(out.traceId) !== wantTrace) {
    out.ok = false;
    out.error = wantTrace ? 'no X-Trace-Id header: the tracing plugin is not active' : `X-Trace-Id ${out.traceId} although no tracing SDK should be registered`;
  }
  return out;
}

const servers = {};
let sink = null;
/** performance.now() when each contender's last load ended (its spans are in the sink scheduledDelay later). */
const lastLoadEnd = {};

/** Waits until every server (and the sink) is idle and other processes use < 40% of a core. */
async function settle() {
  await Promise.all([...Object.values(servers), sink].filter(Boolean).map((s) => waitIdle(s.pid)));
  return waitQuiet(new Set([process.pid, ...services.map((s) => s.pid)]), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 500 });
}

/** Span accounting: a snapshot of what the sink got from a contender and what its server did. */
async function spanSnapshot(contender) {
  const server = servers[contender];
  if (!contender.startsWith('on-')) return null;
  // everything the server finished before now has reached the sink once the export timer fired
  const since = lastLoadEnd[contender] === undefined ? Infinity : performance.now() - lastLoadEnd[contender];
  if (since < SCHEDULED_DELAY_MS + 1000) await new Promise((r) => setTimeout(r, SCHEDULED_DELAY_MS + 1000 - since));
  const [stats, counts] = await Promise.all([sinkStats(sink), serverCounts(server)]);
  const s = stats[`/${contender}`] ?? { requests: 0, bytes: 0, spans: 0, byName: {} };
  return { at: performance.now(), exportRequests: s.requests, bytes: s.bytes, spans: s.spans, byName: { ...s.byName }, requests: counts.requests, queued: counts.queued, batches: counts.batches, decodeErrors: s.decodeErrors ?? 0 };
}

const INFER_SPAN = 'POST /v2/models/:model/infer';

/**
 * What the sink received between two snapshots, against what the server made: per request a server
 * span and `tessera.route`, per request that reached a batch `tessera.queue` (a request whose
 * client left while it was queued, e.g. at the end of a load, never gets one), per batch
 * `tessera.batch` and `tessera.inference`.
 */
function spanDelta(a, b, sampled) {
  if (!a || !b) return null;
  const d = (k) => (a[k] === null || b[k] === null ? null : b[k] - a[k]);
  const name = (n) => (b.byName[n] ?? 0) - (a.byName[n] ?? 0);
  const requests = d('requests');
  const queued = d('queued');
  const batches = d('batches');
  const received = { server: name(INFER_SPAN), route: name('tessera.route'), queue: name('tessera.queue'), batch: name('tessera.batch'), inference: name('tessera.inference') };
  const expected = !sampled ? 0 : requests === null || queued === null || batches === null ? null : 2 * requests + queued + 2 * batches;
  const got = received.server + received.route + received.queue + received.batch + received.inference;
  return {
    requests,
    queued,
    batches,
    expectedSpans: expected,
    receivedSpans: got,
    allReceivedSpans: d('spans'),
    received,
    dropped: expected === null ? null : Math.max(0, expected - got),
    extra: expected === null ? null : Math.max(0, got - expected),
    exportedFraction: expected ? got / expected : null,
    exportRequests: d('exportRequests'),
    bytes: d('bytes'),
  };
}

async function measure(point, contender, round) {
  const server = servers[contender];
  const once = () =>
    measureWindow({
      server,
      point,
      contender,
      round,
      warmupS: settings.warmupS,
      durationS: settings.durationS,
      settle,
      exclude: [process.pid, ...services.map((s) => s.pid)],
      idlePids: [server, sink].filter(Boolean).map((s) => s.pid),
      extraPids: sink ? { sink: sink.pid } : {},
      cores: results.machine.cores,
      noisyPct: NOISY_OTHER_CPU_PCT,
      onLoadEnd: () => {
        lastLoadEnd[contender] = performance.now();
      },
    });
  const best = await measureWithRetries(once, settings.retries, { log });
  const f = (v, d = 1) => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
  log(
    `  ${point.id} round ${round} ${contender.padEnd(6)}: ${f(best.samplesPerSec)} samples/s (waited ${f(best.waitedForQuietS)} s for quiet, steal ${f(best.stealPct, 0)}%), p50 ${f(best.latencyMs.p50, 2)} p99 ${f(best.latencyMs.p99, 2)} ms, ` +
      `batch ${f(best.meanBatchSize, 2)}, CPU server ${f(best.serverCpuPct, 0)}% (${f(best.serverCpuUsPerRequest, 0)} µs/req) sink ${f(best.sinkCpuPct, 0)}% load ${f(best.loadCpuPct, 0)}% other ${f(best.otherProcsPct, 0)}%` +
      `${best.errors + best.timeouts + best.non2xx > 0 ? `, errors ${best.errors} timeouts ${best.timeouts} non-2xx ${best.non2xx}` : ''}${best.disturbed ? '  ⚠ disturbed' : ''}`,
  );
  return best;
}

// ---------------------------------------------------------------------------------------------
// Output

async function writeOutputs() {
  const file = await writeResultsFile(results, { quick, tag: env.BENCH_TRACING_TAG });
  if (env.BENCH_WRITE === 'json') {
    log(`\nwrote ${path.relative(ROOT, file)} (BENCH_WRITE=json: docs/benchmarks.md left alone)`);
    return;
  }
  await writeDocsSection(DOCS, { start: TRACING_MARKER_START, end: TRACING_MARKER_END, heading: 'Tracing overhead', block: renderTracingMarkdown(results) });
  log(`\nwrote ${path.relative(ROOT, file)} and ${path.relative(ROOT, DOCS)}`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  for (const f of [CLI, PLUGIN_DIST]) if (!existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench tracing: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);
  if (m.loadavgAtStart[0] > m.cores * 0.25) log(`  WARN load average ${m.loadavgAtStart[0].toFixed(2)} on ${m.cores} cores before the run: other work is running, figures will be disturbed`);
  const otel = Object.keys(env).filter((k) => k.startsWith('OTEL_'));
  if (otel.length > 0) log(`  WARN OTEL_* variables are set (${otel.join(', ')}); the tracing: keys written by the benchmark take precedence over them`);

  // the baseline first: building it must not overlap any measurement
  let baseCli = null;
  if (settings.contenders.includes('base')) {
    const b = await ensureBaseline(ROOT, settings.baseRef, { log });
    results.baseline = b;
    if (b.ok) {
      baseCli = b.cli;
      describeBaseline(b);
      log(`  baseline ${settings.baseRef} = ${b.sha.slice(0, 12)}: ${b.cli} (${b.reused ? 'reused' : `built in ${b.seconds.toFixed(0)} s`})`);
    } else {
      skip('base', `baseline ${settings.baseRef} could not be built: ${b.reason}`);
      settings.contenders = settings.contenders.filter((c) => c !== 'base');
      results.settings.contenders = settings.contenders;
    }
  }

  const models = await prepareModels(tmp);
  results.models = describeModels(models);
  const needsSink = settings.contenders.some((c) => c.startsWith('on-'));
  if (needsSink) sink = await startSink();
  const plugin = needsSink ? await pluginSpecifier(models, sink.url) : null;
  results.settings.plugin = plugin;

  try {
    for (const c of settings.contenders) {
      const cli = c === 'base' ? baseCli : CLI;
      const t = performance.now();
      servers[c] = await startTessera(c, cli, serverConfig(models, c, plugin, sink?.url));
      results.contenders[c] = { cli: path.relative(ROOT, cli).startsWith('..') ? cli : path.relative(ROOT, cli), pid: servers[c].pid, startS: (performance.now() - t) / 1000, preflight: {}, ...(c.startsWith('on-') ? { tracing: JSON.parse(await readFile(servers[c].configFile, 'utf8')).tracing } : {}) };
      log(`  ${c}: ${servers[c].url} (pid ${servers[c].pid})`);
    }
    if (sink) log(`  OTLP sink: ${sink.url} (pid ${sink.pid}), plugin ${plugin}`);

    // preflight: absent first (it gives the classifier's reference answer)
    const order = ['absent', ...settings.contenders.filter((c) => c !== 'absent')].filter((c) => settings.contenders.includes(c));
    for (const c of order) {
      for (const md of Object.values(models)) {
        const p = await preflight(servers[c], c, md).catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
        results.contenders[c].preflight[md.key] = p;
        if (!p.ok) throw new Error(`preflight ${c} ${md.name}: ${p.error}`);
      }
    }
    log(`  preflight: every contender answers the same, X-Trace-Id exactly on the on-* contenders`);

    const points = [
      ...settings.connections.map((c) => ({ id: `cls-binary-c${c}`, model: models.cls, connections: c })),
      ...settings.tinyConnections.map((c) => ({ id: `tiny-json-c${c}`, model: models.tiny, connections: c })),
    ];
    results.points = points.map((p) => ({ id: p.id, model: p.model.key, modelName: p.model.name, protocol: p.model.protocol, connections: p.connections }));
    for (const point of points) {
      log(`${point.id}: ${point.model.name}, ${point.model.protocol}, ${point.connections} connections, ${settings.rounds} rounds × ${settings.contenders.join(', ')}`);
      if (settings.primeS > 0) {
        for (const c of settings.contenders) {
          // the priming load's spans get a window of their own
          const snap = await spanSnapshot(c);
          if (snap) (spanWindows[c] ??= []).push({ point: point.id, round: 'prime', snap });
          await runLoad(`${servers[c].url}/v2/models/${point.model.name}/infer`, point.model.body, point.connections, settings.primeS);
          lastLoadEnd[c] = performance.now();
        }
      }
      for (let round = 1; round <= settings.rounds; round++) {
        const k = settings.order === 'rotate' ? (round - 1) % settings.contenders.length : 0;
        for (const c of [...settings.contenders.slice(k), ...settings.contenders.slice(0, k)]) {
          const snapBefore = await spanSnapshot(c);
          const row = await measure(point, c, round);
          results.rows.push(row);
          if (snapBefore) (spanWindows[c] ??= []).push({ point: point.id, round, snap: snapBefore });
        }
      }
    }
    // final span accounting: stop the traced servers (the plugin flushes at close), then read the sink
    for (const c of settings.contenders.filter((x) => x.startsWith('on-'))) {
      const last = await spanSnapshot(c);
      spanWindows[c].push({ point: null, round: null, snap: last });
      const counts = await serverCounts(servers[c]);
      await servers[c].stop();
      await new Promise((r) => setTimeout(r, 500));
      const stats = (await sinkStats(sink))[`/${c}`] ?? null;
      results.contenders[c].sinkTotal = stats;
      results.contenders[c].serverTotal = counts;
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
    await sink?.stop();
  }

  // spans per window: from the snapshot before a point to the one before the same contender's next point
  for (const [c, wins] of Object.entries(spanWindows)) {
    for (let i = 0; i + 1 < wins.length; i++) results.spans.push({ contender: c, point: wins[i].point, round: wins[i].round, ...spanDelta(wins[i].snap, wins[i + 1].snap, c !== 'on-0.0') });
  }
  for (const [c, info] of Object.entries(results.contenders)) {
    const logLines = servers[c]?.tail?.(400) ?? '';
    info.exportWarnings = logLines.split('\n').filter((l) => /span export|dropped|Dropped/i.test(l)).slice(-5);
  }

  const evaluated = evaluateTracing(results);
  results.comparisons = evaluated.comparisons;
  results.targets = evaluated.targets;
  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  results.disturbedPoints = results.rows.filter((r) => r.disturbed).length;
  log('');
  for (const t of results.targets) log(`target ${t.verdict.padEnd(12)} ${t.point} ${t.target}: ${t.summary}`);
  for (const s of results.spans.filter((x) => x.dropped > 0)) log(`  ${s.contender} ${s.point} round ${s.round}: ${s.dropped} of ${s.expectedSpans} spans not exported`);
  if (env.BENCH_WRITE !== '0') await writeOutputs();
  log(`done in ${Math.round(results.elapsedS)} s`);
}

const spanWindows = {};

try {
  await main();
} catch (err) {
  log(`bench tracing: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
