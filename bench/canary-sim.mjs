// The canary-analysis simulation (part of `npm run bench`; alone: `node bench/canary-sim.mjs`).
// How fast does the canary router of @tessera/router-canary roll a worse version back, how often does
// it promote one anyway, and how often does it roll a good one back? It drives the REAL router (the
// built packages/router-canary/dist, `canaryRouterFactory`, options validated against its schema as
// the server does) on a testRouterContext's FakeClock with synthetic outcomes from a seeded PRNG:
// the baseline fails 1 % of requests (server faults) and answers in a lognormal time (median 20 ms,
// log-sd 0.5); no server, no sockets, so a rollout of minutes takes milliseconds.
//
//   (a) power: a canary k % worse, either its error rate × (1 + k) or its latency × (1 + k), at a
//       few traffic levels (requests per interval to the model, split by the router's weights):
//       the share rolled back, the share promoted anyway, and the canary requests and intervals
//       until the rollback (median and p90 over the seeds that rolled back).
//   (b) false rollbacks of a good canary (both versions drawn alike):
//       - the router over a long rollout (stepWeight 10 up to 90 %, judged every interval; a step
//         holds until its tests show the canary within the limits), and the fixed-horizon z-test
//         (fixedHorizonZTest of the package's stats) replayed at each of its looks, on the same
//         step's data at the same α;
//       - one step held for many intervals and judged at every one (the data accumulating): the
//         router's sequential tests (compareProportions / compareMeans with its τ and margin) against
//         the z-test peeked at the same looks with the same α: the peeking problem.
// See docs/benchmarks.md, "Canary analysis: simulated power and false rollbacks".
//
// Environment (all optional):
//   BENCH_SUITES=…,canary-sim          suites `npm run bench` runs; this one skips itself without `canary-sim`
//   BENCH_QUICK=1                      smoke run: fewer seeds (about 1/5)
//   BENCH_CANARY_SIM_SEEDS=40          rollouts per cell of (a)
//   BENCH_CANARY_SIM_EFFECTS=5,10,25,50,100,200   k, in percent
//   BENCH_CANARY_SIM_TRAFFIC=1000,10000   requests per interval to the model in (a)
//   BENCH_CANARY_SIM_GOOD_SEEDS=400    rollouts of the good canary in (b)
//   BENCH_CANARY_SIM_GOOD_TRAFFIC=1000 requests per interval in (b)
//   BENCH_CANARY_SIM_HELD_SEEDS=500    held steps in (b)
//   BENCH_CANARY_SIM_LOOKS=100         judgements of a held step
//   BENCH_CANARY_SIM_MAX_INTERVALS=40  a rollout still undecided after this many intervals counts as undecided
//   BENCH_CANARY_SIM_ERROR_RATE=0.01   the baseline's server-fault rate
//   BENCH_CANARY_SIM_LATENCY_MS=20     the baseline's median latency (lognormal)
//   BENCH_CANARY_SIM_LATENCY_SIGMA=0.5 its log-sd
//   BENCH_MACHINE=name                 the <machine> part of bench/results/<date>-<machine>-canary-sim.json
//   BENCH_WRITE=0                      write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_CANARY_SIM_SECTION=canary-sim  the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_CANARY_SIM_RENDER=<file>     simulate nothing: write a results file into that section
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envList, envNumber, packageVersion, resultsHeader, ROOT, skipUnlessSuite, summarize } from './lib/common.mjs';
import { gitInfo, writeDocsSection, writeSuiteOutputs } from './lib/contest.mjs';
import { canarySimMarkers, renderCanarySimMarkdown } from './lib/routing-sim-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Canary analysis: simulated power and false rollbacks';
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');

skipUnlessSuite('canary-sim', 'bench/canary-sim.mjs');

const section = canarySimMarkers(env.BENCH_CANARY_SIM_SECTION);
if (env.BENCH_CANARY_SIM_RENDER) {
  const saved = JSON.parse(await readFile(path.resolve(env.BENCH_CANARY_SIM_RENDER), 'utf8'));
  await writeDocsSection(DOCS, { ...section, heading: HEADING, block: renderCanarySimMarkdown(saved) });
  log(`wrote ${env.BENCH_CANARY_SIM_RENDER} into docs/benchmarks.md (${section.start})`);
  process.exit(0);
}

// the built router: `npm run build` (npm run bench does) writes packages/router-canary/dist
const { canaryRouterFactory } = await import('@tessera/router-canary').catch((err) => {
  throw new Error(`@tessera/router-canary did not load (${err.message}): run \`npm run build\` first (npm run bench does)`);
});
const { FakeClock, MemoryStateStore, silentLogger, testRouterContext } = await import('@tessera/core/testing');
const { noMetrics, simulateHeldStep, simulateRollout, versionModel, wilson } = await import('./lib/routing-sim.mjs');

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const seeds = (name, full) => envNumber(name, quick ? Math.max(5, Math.round(full / 5)) : full, { min: 1, integer: true });
const settings = {
  quick,
  seeds: seeds('BENCH_CANARY_SIM_SEEDS', 40),
  effectsPct: envList(env.BENCH_CANARY_SIM_EFFECTS, '5,10,25,50,100,200').map(Number),
  traffic: envList(env.BENCH_CANARY_SIM_TRAFFIC, '1000,10000').map(Number),
  goodSeeds: seeds('BENCH_CANARY_SIM_GOOD_SEEDS', 400),
  goodTraffic: envNumber('BENCH_CANARY_SIM_GOOD_TRAFFIC', 1000, { min: 1, integer: true }),
  heldSeeds: seeds('BENCH_CANARY_SIM_HELD_SEEDS', 500),
  looks: envNumber('BENCH_CANARY_SIM_LOOKS', 100, { min: 1, integer: true }),
  heldTraffic: 1000,
  heldShare: 0.5,
  maxIntervals: envNumber('BENCH_CANARY_SIM_MAX_INTERVALS', 40, { min: 1, integer: true }),
  baseline: {
    errorRate: envNumber('BENCH_CANARY_SIM_ERROR_RATE', 0.01),
    latencyMedianMs: envNumber('BENCH_CANARY_SIM_LATENCY_MS', 20, { min: 0.001 }),
    latencySigma: envNumber('BENCH_CANARY_SIM_LATENCY_SIGMA', 0.5, { min: 0.001 }),
  },
  /** The rollout of (a): the documented example; everything else the router's defaults. */
  routing: { baseline: '1', canary: '2', steps: [5, 25, 50, 100], interval: '30s' },
  /** The long rollout of (b). */
  longRouting: { baseline: '1', canary: '2', stepWeight: 10, maxWeight: 90, interval: '30s' },
};
for (const [k, list] of [['BENCH_CANARY_SIM_EFFECTS', settings.effectsPct], ['BENCH_CANARY_SIM_TRAFFIC', settings.traffic]]) {
  if (list.some((v) => !(v > 0))) throw new Error(`${k}: expected positive numbers`);
}

const results = {
  ...resultsHeader('canary-sim', 'bench/canary-sim.mjs'),
  versions: { core: packageVersion('@tessera/core'), routerCanary: packageVersion('@tessera/router-canary'), node: process.version },
  git: gitInfo(),
  settings,
  options: {},
  power: [],
  good: null,
  held: null,
};

/** A router factory's `create` on a fresh test context (FakeClock, memory state, no metrics), options validated as the server does. */
function routerMaker(options) {
  return async () => {
    const ctx = testRouterContext({ model: 'sim', versions: ['1', '2'], options, clock: new FakeClock(), state: new MemoryStateStore(), logger: silentLogger(), metrics: noMetrics }, canaryRouterFactory);
    return { ctx, router: await canaryRouterFactory.create(ctx) };
  };
}

/** The options as the router got them (its schema's defaults filled in). */
function resolvedOptions(options) {
  return testRouterContext({ options }, canaryRouterFactory).options;
}

const pct = (x) => Math.round(x * 1000) / 10;
const median = (xs) => summarize([...xs]).p50;
const p90 = (xs) => summarize([...xs]).p90;

/** (a): one cell: `seeds` rollouts of a canary worse by `k` % on `metric`. */
async function powerCell(metric, k, perInterval, base) {
  const f = 1 + k / 100;
  const canary = versionModel(metric === 'errorRate' ? { ...settings.baseline, errorRate: Math.min(1, settings.baseline.errorRate * f) } : { ...settings.baseline, latencyMedianMs: settings.baseline.latencyMedianMs * f });
  const makeRouter = routerMaker(settings.routing);
  const runs = [];
  for (let seed = 1; seed <= settings.seeds; seed++) runs.push(await simulateRollout({ makeRouter, seed, perInterval, baseline: base, canary, maxIntervals: settings.maxIntervals }));
  const back = runs.filter((r) => r.state === 'failed');
  const count = (state) => runs.filter((r) => r.state === state).length;
  return {
    metric,
    effectPct: k,
    perInterval,
    seeds: runs.length,
    rolledBack: wilson(back.length, runs.length),
    promoted: wilson(count('succeeded'), runs.length),
    undecided: runs.length - back.length - count('succeeded'),
    canaryRequestsToRollback: back.length ? { p50: median(back.map((r) => r.rolledBackAt.canaryRequests)), p90: p90(back.map((r) => r.rolledBackAt.canaryRequests)) } : null,
    intervalsToRollback: back.length ? { p50: median(back.map((r) => r.rolledBackAt.interval)), p90: p90(back.map((r) => r.rolledBackAt.interval)) } : null,
    intervalsToPromote: count('succeeded') ? { p50: median(runs.filter((r) => r.state === 'succeeded').map((r) => r.intervals)), p90: p90(runs.filter((r) => r.state === 'succeeded').map((r) => r.intervals)) } : null,
    holds: runs.reduce((s, r) => s + r.verdicts.hold, 0) / runs.length,
  };
}

async function main() {
  const started = performance.now();
  const m = results.machine;
  log(`bench canary-sim: ${results.command}\n  ${m.cpu}, ${m.cores} cores`);
  const base = versionModel(settings.baseline);
  results.options = { power: resolvedOptions(settings.routing), good: resolvedOptions(settings.longRouting) };

  // (a) power
  for (const metric of ['errorRate', 'latency']) {
    for (const perInterval of settings.traffic) {
      for (const k of settings.effectsPct) {
        const t = performance.now();
        const cell = await powerCell(metric, k, perInterval, base);
        cell.seconds = (performance.now() - t) / 1000;
        results.power.push(cell);
        log(
          `  (a) ${metric.padEnd(9)} +${String(k).padStart(3)} % at ${String(perInterval).padStart(6)}/interval: rolled back ${pct(cell.rolledBack.rate)} %, promoted ${pct(cell.promoted.rate)} %` +
            `${cell.canaryRequestsToRollback ? `, canary requests to rollback p50 ${cell.canaryRequestsToRollback.p50} p90 ${cell.canaryRequestsToRollback.p90}, intervals p50 ${cell.intervalsToRollback.p50} p90 ${cell.intervalsToRollback.p90}` : ''} (${cell.seconds.toFixed(1)} s)`,
        );
      }
    }
  }

  // (b) a good canary over a long rollout: the router, and the z-test replayed at its judgements
  {
    const t = performance.now();
    const makeRouter = routerMaker(settings.longRouting);
    const runs = [];
    for (let seed = 1; seed <= settings.goodSeeds; seed++) runs.push(await simulateRollout({ makeRouter, seed: 100_000 + seed, perInterval: settings.goodTraffic, baseline: base, canary: base, maxIntervals: settings.maxIntervals, replayZ: true }));
    const threshold = results.options.good.threshold;
    const n = runs.length;
    results.good = {
      seeds: n,
      perInterval: settings.goodTraffic,
      router: {
        rolledBack: wilson(runs.filter((r) => r.state === 'failed').length, n),
        anyFailedJudgement: wilson(runs.filter((r) => r.verdicts.fail > 0).length, n),
        promoted: wilson(runs.filter((r) => r.state === 'succeeded').length, n),
        undecided: wilson(runs.filter((r) => r.state !== 'succeeded' && r.state !== 'failed').length, n),
        stepReached: { p50: median(runs.map((r) => r.step)), p90: p90(runs.map((r) => r.step)) },
        judgements: runs.reduce((s, r) => s + r.verdicts.pass + r.verdicts.fail, 0) / n,
        holds: runs.reduce((s, r) => s + r.verdicts.hold, 0) / n,
        intervals: { p50: median(runs.map((r) => r.intervals)), p90: p90(runs.map((r) => r.intervals)) },
      },
      z: {
        looks: runs.reduce((s, r) => s + r.z.looks, 0) / n,
        anyFailedLook: wilson(runs.filter((r) => r.z.failed > 0).length, n),
        wouldRollBack: wilson(runs.filter((r) => r.z.failed >= threshold).length, n),
      },
      seconds: (performance.now() - t) / 1000,
    };
    const g = results.good;
    log(`  (b) good canary, long rollout (${n} rollouts): router rolled back ${pct(g.router.rolledBack.rate)} % (any failed judgement ${pct(g.router.anyFailedJudgement.rate)} %); z-test at the same looks: a failed look in ${pct(g.z.anyFailedLook.rate)} %, ≥ ${threshold} in ${pct(g.z.wouldRollBack.rate)} % (${g.seconds.toFixed(1)} s)`);
  }

  // (b) one step held and judged at every interval: the sequential tests against the z-test peeked
  {
    const t = performance.now();
    const o = results.options.power;
    // the α the router gives each test of a one-step rollout judged on error rate and latency
    const alpha = Number(((1 - o.confidence) / 2).toPrecision(12));
    const runs = [];
    for (let seed = 1; seed <= settings.heldSeeds; seed++) {
      runs.push(simulateHeldStep({ seed: 200_000 + seed, model: base, perInterval: settings.heldTraffic, share: settings.heldShare, looks: settings.looks, alpha, threshold: o.threshold, maxLatencyRatio: o.maxLatencyRatio }));
    }
    const at = [1, 2, 5, 10, 20, 50, 100, 200, 500].filter((l) => l < settings.looks);
    at.push(settings.looks);
    const share = (test, key, l) => wilson(runs.filter((r) => r[test][key] !== null && r[test][key] <= l).length, runs.length);
    results.held = {
      seeds: runs.length,
      perInterval: settings.heldTraffic,
      canaryShare: settings.heldShare,
      alpha,
      threshold: o.threshold,
      maxLatencyRatio: o.maxLatencyRatio,
      rows: at.map((l) => ({ looks: l, sequential: { anyFail: share('sequential', 'first', l), rollback: share('sequential', 'rollback', l) }, z: { anyFail: share('z', 'first', l), rollback: share('z', 'rollback', l) } })),
      seconds: (performance.now() - t) / 1000,
    };
    const last = results.held.rows.at(-1);
    log(`  (b) held step, ${settings.looks} looks (${runs.length} seeds, α ${alpha} per test): rolled back: sequential ${pct(last.sequential.rollback.rate)} %, z-test ${pct(last.z.rollback.rate)} % (${results.held.seconds.toFixed(1)} s)`);
  }

  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderCanarySimMarkdown, log });
  log(`done in ${results.elapsedS.toFixed(1)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench canary-sim: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
