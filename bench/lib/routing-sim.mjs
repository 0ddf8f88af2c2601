// bench/canary-sim.mjs's simulations.
//
// simulateRollout: one rollout of the real canary router (@tessera/router-canary), driven by a
// FakeClock and synthetic outcomes. Every request goes through the router's `select` (its weights
// decide which version serves it) and its outcome through `observe`; time moves in sub-steps of the
// interval, so the router's interval timer fires after the interval's requests, as on a server.
// Beside the router, the same outcomes are tallied the way the router's arms count them (per step,
// server faults apart, log latency of successes), so that each of its judgements can be replayed
// with the fixed-horizon z-test on the same data and the same α.
//
// simulateHeldStep: the router's tests on one step judged at every interval for `looks` intervals
// (the data accumulating), against the z-test peeked at the same looks: the peeking problem.

import { compareMeans, compareProportions, DEFAULT_TAU, fixedHorizonZTest, RunningMoments } from '@tessera/router-canary';
import { mulberry32 } from '@tessera/core/testing';

/** Uniform [0, 1) (the core's seeded mulberry32) and standard normal (Box–Muller) deviates from one seed. */
export function randomSource(seed) {
  const uniform = mulberry32(seed);
  let spare = null;
  const normal = () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const t = 2 * Math.PI * uniform();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
  return { uniform, normal };
}

/**
 * What a version's requests look like: server faults with probability `errorRate`, latency
 * lognormal with median `latencyMedianMs` and log-sd `latencySigma`.
 */
export function versionModel({ errorRate, latencyMedianMs, latencySigma }) {
  return { errorRate, mu: Math.log(latencyMedianMs), sigma: latencySigma };
}

/** A MetricRegistrar that drops everything: the in-memory one's label keys cost more than the router itself. */
export const noMetrics = {
  counter: () => ({ inc() {} }),
  gauge: () => ({ set() {}, inc() {}, dec() {}, remove() {} }),
  histogram: () => ({ observe() {} }),
};

/** One arm as the router counts it: answered requests, server faults, log latency of the successes. */
function arm() {
  return { n: 0, errors: 0, logLatency: new RunningMoments() };
}

/** One request of `model`: a server fault or not, and the logarithm of its latency in ms. */
function draw(model, rnd) {
  return { failed: rnd.uniform() < model.errorRate, logMs: model.mu + model.sigma * rnd.normal() };
}

function tally(a, { failed, logMs }) {
  a.n += 1;
  if (failed) a.errors += 1;
  else a.logLatency.add(logMs);
}

/**
 * Whether the z-test, two-sided at `alpha`, finds the canary worse: on the error rate (against the
 * baseline's) or on log latency against the margin log(maxLatencyRatio). The same comparisons as
 * the router's judgement, the same α, the verdict on the same (worse) side.
 */
export function zJudgement(base, canary, alpha, { errorRate = true, latency = true, maxLatencyRatio }) {
  if (errorRate) {
    const z = fixedHorizonZTest({ n: base.n, successes: base.errors }, { n: canary.n, successes: canary.errors }, alpha);
    if (z.reject && z.z > 0) return true;
  }
  if (latency) {
    const c = canary.logLatency.summary();
    // H0: the log-ratio is at the margin; testing (canary − margin) against the baseline is that test
    const z = fixedHorizonZTest(base.logLatency.summary(), { ...c, mean: c.mean - Math.log(maxLatencyRatio) }, alpha);
    if (z.reject && z.z > 0) return true;
  }
  return false;
}

/** The router's own judgement on the same two arms (compareProportions / compareMeans, its τ and margin): the canary worse? */
export function sequentialJudgement(base, canary, alpha, { errorRate = true, latency = true, maxLatencyRatio }) {
  if (errorRate) {
    const cmp = compareProportions({ n: base.n, successes: base.errors }, { n: canary.n, successes: canary.errors }, { alpha, tau: DEFAULT_TAU.errorRate });
    if (cmp && cmp.lower > 0) return true;
  }
  if (latency) {
    const margin = Math.log(maxLatencyRatio);
    const cmp = compareMeans(base.logLatency.summary(), canary.logLatency.summary(), { alpha, tau: DEFAULT_TAU.logLatency, delta0: margin });
    if (cmp && cmp.lower > margin) return true;
  }
  return false;
}

/**
 * Runs one rollout until the router is `succeeded` or `failed`, or `maxIntervals` passed.
 * `makeRouter()` resolves with `{ router, ctx }` (a fresh router on a testRouterContext's FakeClock).
 * With `replayZ`, each judgement of the router that compared with the baseline is replayed with the
 * z-test (zJudgement) on the same step's data at the α the router used, and the z-verdicts are
 * counted along the router's path. Resolves with the end state, intervals, requests per version,
 * the judgements by verdict and, with `replayZ`, the z-test's failed looks.
 */
export async function simulateRollout({ makeRouter, seed, perInterval, subSteps = 10, baseline, canary, maxIntervals = 200, replayZ = false }) {
  const { router, ctx } = await makeRouter();
  const { clock } = ctx;
  const o = router.status();
  const [b, c] = [String(o.baseline), String(o.canary)];
  const candidates = [{ version: b, ready: true }, { version: c, ready: true }];
  const rnd = randomSource(seed);
  const served = { [b]: 0, [c]: 0 };
  let step = { [b]: arm(), [c]: arm() };
  const verdicts = { pass: 0, fail: 0, hold: 0 };
  const z = { looks: 0, failed: 0 };
  let seq = 0;
  let interval = 0;
  let status = o;
  let rolledBackAt = null;
  const headers = {};
  try {
    while (interval < maxIntervals && status.state !== 'succeeded' && status.state !== 'failed') {
      for (let s = 0; s < subSteps; s++) {
        const n = Math.floor(((s + 1) * perInterval) / subSteps) - Math.floor((s * perInterval) / subSteps);
        for (let i = 0; i < n; i++) {
          const id = `s${seed}-r${seq++}`;
          const target = router.select({ model: ctx.model, kind: 'tensor', protocol: 'v2', id, headers }, candidates);
          const v = target.version;
          const r = draw(v === c ? canary : baseline, rnd);
          served[v] += 1;
          tally(step[v], r);
          router.observe({
            id,
            model: ctx.model,
            version: v,
            target,
            explicit: false,
            shadow: false,
            kind: 'tensor',
            status: r.failed ? 500 : 200,
            statusClass: r.failed ? 'server_error' : 'ok',
            ...(r.failed ? { code: 'TESSERA_E_INFERENCE_FAILED' } : {}),
            durationMs: Math.exp(r.logMs),
            at: clock.monotonic(),
          });
        }
        await clock.advance(o.intervalMs / subSteps);
      }
      interval += 1;
      const before = status;
      status = router.status();
      const j = status.lastJudgement;
      if (j && j !== before.lastJudgement) {
        verdicts[j.verdict] += 1;
        const compared = j.checks.filter((k) => k.against === 'baseline');
        if (replayZ && compared.length > 0) {
          z.looks += 1;
          const metrics = new Set(compared.map((k) => k.metric));
          if (zJudgement(step[b], step[c], compared[0].alpha, { errorRate: metrics.has('errorRate'), latency: metrics.has('latency'), maxLatencyRatio: status.limits.maxLatencyRatio })) z.failed += 1;
        }
      }
      if (status.state === 'failed' && rolledBackAt === null) rolledBackAt = { interval, canaryRequests: served[c], requests: seq };
      // the router starts fresh statistics on every new step (and for promoting): so do the tallies
      if (status.step !== before.step || status.state !== before.state) step = { [b]: arm(), [c]: arm() };
    }
  } finally {
    await router.close?.();
  }
  return { state: status.state, step: status.step, intervals: interval, requests: seq, canaryRequests: served[c], rolledBackAt, verdicts, failures: status.failures, ...(replayZ ? { z } : {}) };
}

/**
 * One step held for `looks` intervals, `perInterval` requests each split `share` to the canary,
 * both versions drawn from the same `model`: after each interval the router's tests and the z-test
 * judge the data so far, each at `alpha`. Resolves with the look (1-based) of each test's first and
 * `threshold`-th failed judgement (null: none within `looks`).
 */
export function simulateHeldStep({ seed, model, perInterval, share, looks, alpha, threshold, maxLatencyRatio, latency = true }) {
  const rnd = randomSource(seed);
  const base = arm();
  const can = arm();
  const out = { sequential: { first: null, rollback: null, fails: 0 }, z: { first: null, rollback: null, fails: 0 } };
  const record = (r, look, failed) => {
    if (!failed) return;
    r.fails += 1;
    if (r.first === null) r.first = look;
    if (r.fails === threshold) r.rollback = look;
  };
  for (let look = 1; look <= looks; look++) {
    for (let i = 0; i < perInterval; i++) tally(rnd.uniform() < share ? can : base, draw(model, rnd));
    record(out.sequential, look, sequentialJudgement(base, can, alpha, { latency, maxLatencyRatio }));
    record(out.z, look, zJudgement(base, can, alpha, { latency, maxLatencyRatio }));
  }
  return out;
}

/** Wilson's 95 % interval of a proportion `k` of `n`. */
export function wilson(k, n) {
  if (n === 0) return { rate: null, low: null, high: null };
  const z = 1.959964;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}
