// The routing-strategy overhead benchmark (part of `npm run bench`; alone: `node bench/routing.mjs`).
// What does each strategy of @tessera/router-canary cost per request, against the built-in `latest`?
// One `tessera serve` process serves the tiny `affine` model (the same file as versions 1 and 2, so
// every version answers alike and costs the same) once per contender, each under its own name and
// `routing:`:
//
//   latest      the built-in router (the reference)
//   latest-2    a second model routed exactly like `latest`: the A/A control
//   canary      strategy canary mid-rollout (steps [50, 100]: half the traffic on each version),
//               with an interval of an hour so it neither judges nor moves during the run
//   ab          strategy ab, variants 50/50, stickyHeader x-user-id (the load sends one value, so
//               every request goes to the same variant: the sticky hashing without a split)
//   ab-split    the same without the header: half the requests on each version, like the canary
//               (two half-loaded batchers instead of one: what splitting traffic costs by itself)
//   shadow-10   strategy shadow, primary 1, 10 % of the requests mirrored to version 2
//   shadow-100  the same with every request mirrored
//
// Points: concurrency 1 (the latency: p50 difference in µs) and under load (the throughput ratio),
// JSON. Rounds: one measured window per contender back to back, the order rotated each round
// (ABC BCA CAB …); each strategy is compared with `latest` on the rounds' ratios (differences) with
// a 95 % confidence interval (bench/lib/routing-report.mjs, with pipeline-report.mjs's statistics).
// See docs/benchmarks.md, "Routing strategies: overhead".
//
// Environment (all optional):
//   BENCH_SUITES=…,routing           suites `npm run bench` runs; this one skips itself without `routing`
//   BENCH_QUICK=1                    smoke run: 1 s windows, 3 rounds, no retries
//   BENCH_ROUTING_WINDOW=3           seconds measured per window
//   BENCH_ROUTING_WARMUP=0.5         seconds of warm-up load before each window (not measured)
//   BENCH_ROUTING_PRIME=2            seconds of load on every contender before a point's first round
//   BENCH_ROUTING_ROUNDS=10          rounds per point (≥ 2)
//   BENCH_ROUTING_CONNECTIONS=1,16   the points: concurrency of the load generator
//   BENCH_ROUTING_CONTENDERS=latest,latest-2,canary,ab,ab-split,shadow-10,shadow-100   (latest is always measured)
//   BENCH_ROUTING_LOG_LEVEL=warn     server.logLevel
//   BENCH_ROUTING_RETRIES=1          a window during which other processes used > 40% of a core is measured again
//   BENCH_THREADS=…                  intraOpNumThreads (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name               the <machine> part of bench/results/<date>-<machine>-routing.json
//   BENCH_WRITE=0                    write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                 keep the temporary folder (config, server log, router state)
//   BENCH_ROUTING_SECTION=routing    the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_ROUTING_RENDER=<file>      measure nothing: write a results file (e.g. one from the device machine) into that section
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envList, envNumber, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, suiteTempDir } from './lib/common.mjs';
import { checkAnswer, describeModels, gitInfo, measureWindow, measureWithRetries, prepareModels, runLoad, startTessera, writeDocsSection, writeSuiteOutputs } from './lib/contest.mjs';
import { waitQuiet } from './lib/llm-procs.mjs';
import { waitIdle } from './lib/probe.mjs';
import { REFERENCE, comparisonLine, evaluateRouting, renderRoutingMarkdown, routingMarkers } from './lib/routing-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Routing strategies: overhead';

skipUnlessSuite('routing', 'bench/routing.mjs');

const section = routingMarkers(env.BENCH_ROUTING_SECTION);
if (env.BENCH_ROUTING_RENDER) {
  const saved = JSON.parse(await readFile(path.resolve(env.BENCH_ROUTING_RENDER), 'utf8'));
  await writeDocsSection(path.join(ROOT, 'docs', 'benchmarks.md'), { ...section, heading: HEADING, block: renderRoutingMarkdown(saved) });
  log(`wrote ${env.BENCH_ROUTING_RENDER} into docs/benchmarks.md (${section.start})`);
  process.exit(0);
}

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const PLUGIN = '@tessera/router-canary';
const PLUGIN_DIST = path.join(ROOT, 'packages', 'router-canary', 'dist', 'index.js');
const NOISY_OTHER_CPU_PCT = 40;
const STICKY_HEADER = 'x-user-id';

/** Each contender's `routing:` and the headers its load sends. */
const CONTENDERS = {
  latest: { routing: { strategy: 'latest' } },
  'latest-2': { routing: { strategy: 'latest' } },
  canary: { routing: { strategy: 'canary', baseline: '1', canary: '2', steps: [50, 100], interval: 3_600_000 } },
  ab: { routing: { strategy: 'ab', variants: { 1: 50, 2: 50 }, stickyHeader: STICKY_HEADER }, headers: { [STICKY_HEADER]: 'bench-user-1' } },
  // the same A/B test without the header: requests are placed by their id, half on each version (as the canary's)
  'ab-split': { routing: { strategy: 'ab', variants: { 1: 50, 2: 50 } } },
  'shadow-10': { routing: { strategy: 'shadow', primary: '1', shadow: '2', percent: 10 } },
  'shadow-100': { routing: { strategy: 'shadow', primary: '1', shadow: '2', percent: 100 } },
};

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const picked = envList(env.BENCH_ROUTING_CONTENDERS, Object.keys(CONTENDERS).join(','));
for (const c of picked) if (!CONTENDERS[c]) throw new Error(`BENCH_ROUTING_CONTENDERS: unknown contender '${c}' (${Object.keys(CONTENDERS).join(', ')})`);
const settings = {
  quick,
  windowS: envNumber('BENCH_ROUTING_WINDOW', quick ? 1 : 3, { min: 0.5 }),
  warmupS: envNumber('BENCH_ROUTING_WARMUP', 0.5, { min: 0.2 }),
  primeS: envNumber('BENCH_ROUTING_PRIME', quick ? 1 : 2),
  rounds: envNumber('BENCH_ROUTING_ROUNDS', quick ? 3 : 10, { min: 2, integer: true }),
  connections: envList(env.BENCH_ROUTING_CONNECTIONS, '1,16').map(Number),
  logLevel: env.BENCH_ROUTING_LOG_LEVEL ?? 'warn',
  retries: envNumber('BENCH_ROUTING_RETRIES', quick ? 0 : 1, { integer: true }),
  sessionOptions: sessionOptionsFromEnv(),
  batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' },
  contenders: [REFERENCE, ...picked.filter((c) => c !== REFERENCE)],
};
if (settings.connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_ROUTING_CONNECTIONS=${env.BENCH_ROUTING_CONNECTIONS}: expected positive integers`);

installCleanup();
const tmp = suiteTempDir('routing');

const results = {
  ...resultsHeader('routing', 'bench/routing.mjs'),
  versions: { core: packageVersion('@tessera/core'), routerCanary: packageVersion(PLUGIN), onnxruntime: packageVersion('onnxruntime-node'), autocannon: packageVersion('autocannon'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  contenders: {},
  points: [],
  rows: [],
  comparisons: [],
  skipped: [],
};

const modelName = (contender) => `affine-${contender}`;

function serverConfig(tiny) {
  const needsPlugin = settings.contenders.some((c) => CONTENDERS[c].routing.strategy !== 'latest');
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel, stateDir: path.join(tmp, 'state') },
    ...(needsPlugin ? { plugins: [PLUGIN] } : {}),
    models: Object.fromEntries(
      settings.contenders.map((c) => [
        modelName(c),
        {
          backend: 'onnxruntime',
          versions: { 1: { path: tiny.file }, 2: { path: tiny.file } },
          batching: { ...settings.batching },
          warmupShapes: tiny.warmupShapes,
          ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}),
          routing: CONTENDERS[c].routing,
        },
      ]),
    ),
  };
}

/** `GET /v1/routing/{model}` (the weights, the router's state and step) and the shadow copies sent so far (`tessera_shadow_requests_total`). */
async function routingOf(server, contender) {
  const res = await fetch(`${server.url}/v1/routing/${modelName(contender)}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) return { error: `HTTP ${res.status}` };
  const body = await res.json();
  const metrics = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const total = (name) => {
    let sum = 0;
    for (const m of metrics.matchAll(new RegExp(`^${name}\\{([^}]*)\\}\\s+(\\S+)`, 'gm'))) if (m[1].includes(`model="${modelName(contender)}"`)) sum += Number(m[2]);
    return sum;
  };
  return { weights: body.weights, ...(body.state !== undefined ? { state: body.state } : {}), ...(body.step !== undefined ? { step: body.step } : {}), requests: total('tessera_requests_total'), shadowCopies: total('tessera_shadow_requests_total') };
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  if (settings.contenders.some((c) => CONTENDERS[c].routing.strategy !== 'latest') && !existsSync(PLUGIN_DIST)) throw new Error(`${path.relative(ROOT, PLUGIN_DIST)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench routing: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);

  const { tiny } = await prepareModels(tmp);
  results.models = describeModels({ tiny });
  const services = [];
  const t = performance.now();
  const server = await startTessera(services, tmp, 'routing', CLI, serverConfig(tiny));
  results.server = { cli: path.relative(ROOT, CLI), startS: (performance.now() - t) / 1000, pid: server.pid };
  log(`  server: ${server.url} (pid ${server.pid}), models ${settings.contenders.map(modelName).join(', ')}`);
  const exclude = [process.pid, ...services.map((s) => s.pid)];
  const settle = async () => {
    await waitIdle(server.pid);
    return waitQuiet(new Set(exclude), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 500 });
  };
  /** The tiny model as one contender sees it: its name, and the body with its headers. */
  const modelOf = (c) => ({ ...tiny, name: modelName(c), body: { ...tiny.body, headers: { ...tiny.body.headers, ...(CONTENDERS[c].headers ?? {}) } } });

  try {
    // every contender must give the expected answer before anything is measured
    for (const c of settings.contenders) {
      const preflight = await checkAnswer(server, modelOf(c), c).catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
      if (!preflight.ok) throw new Error(`preflight ${c}: ${preflight.error}`);
      results.contenders[c] = { model: modelName(c), routing: CONTENDERS[c].routing, headers: CONTENDERS[c].headers ?? {}, preflight, routingBefore: await routingOf(server, c) };
    }
    log('  preflight: every contender gives the expected answer');

    results.points = settings.connections.map((n) => ({ id: `c${n}`, model: 'tiny', modelName: 'affine-<contender>', protocol: 'json', connections: n }));
    for (const point of results.points) {
      log(`${point.id}: ${point.connections} connection(s), ${settings.rounds} rounds × ${settings.contenders.join(', ')}`);
      const of = (c) => ({ id: point.id, model: modelOf(c), connections: point.connections });
      if (settings.primeS > 0) for (const c of settings.contenders) await runLoad(`${server.url}/v2/models/${modelName(c)}/infer`, modelOf(c).body, point.connections, settings.primeS);
      for (let round = 1; round <= settings.rounds; round++) {
        const k = (round - 1) % settings.contenders.length;
        for (const c of [...settings.contenders.slice(k), ...settings.contenders.slice(0, k)]) {
          const once = () => measureWindow({ server, point: of(c), contender: c, round, warmupS: settings.warmupS, durationS: settings.windowS, settle, exclude, cores: m.cores, noisyPct: NOISY_OTHER_CPU_PCT });
          const row = await measureWithRetries(once, settings.retries, { log });
          results.rows.push(row);
          log(
            `  ${point.id} round ${String(round).padStart(2)} ${c.padEnd(10)}: ${row.samplesPerSec.toFixed(1)} samples/s, p50 ${row.latencyMs.p50?.toFixed(3)} p99 ${row.latencyMs.p99?.toFixed(3)} ms, ` +
              `server CPU ${row.serverCpuUsPerRequest?.toFixed(0)} µs/req, other ${row.otherProcsPct.toFixed(0)}%${row.errors + row.timeouts + row.non2xx > 0 ? `, errors ${row.errors} timeouts ${row.timeouts} non-2xx ${row.non2xx}` : ''}${row.disturbed ? '  ⚠ disturbed' : ''}`,
          );
        }
      }
    }
    for (const c of settings.contenders) {
      const after = (results.contenders[c].routingAfter = await routingOf(server, c));
      log(`  ${c} after the run: weights ${JSON.stringify(after.weights)}${after.state ? `, state ${after.state}${after.step !== undefined ? `, step ${after.step}` : ''}` : ''}, ${after.requests} requests, ${after.shadowCopies} shadow copies`);
    }
  } finally {
    await server.stop();
  }

  results.comparisons = evaluateRouting(results).comparisons;
  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  log('');
  for (const c of results.comparisons) log(comparisonLine(c));
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderRoutingMarkdown, log });
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench routing: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
