import type { ClockTimer, RouteCandidate, RouteOutcome, RouteRequest, RouteTarget, Router, RouterContext, RouterFactory, RoutingActionInput, RoutingStatus } from '@tessera/core';
import { TesseraError, errorMessage } from '@tessera/core';
import { CANARY_ERRORS } from './errors.js';
import type { ArmJSON, Timing } from './internal/arm.js';
import { Arm, round } from './internal/arm.js';
import { headerValue, unitHash } from './internal/hash.js';
import { pushHistory } from './internal/history.js';
import { StateWriter, readStored } from './internal/stored.js';
import type { RouteMetrics } from './internal/metrics.js';
import { countOutcome, routeMetrics, setState } from './internal/metrics.js';
import type { CanaryMetric, CanaryOptions } from './options.js';
import { CANARY_OPTIONS_SCHEMA, resolveCanaryOptions } from './options.js';
import type { SequentialComparison } from './stats/index.js';
import { DEFAULT_TAU, compareMeans, compareProportions, proportionSequence, runningMin } from './stats/index.js';

export const CANARY_STRATEGY = 'canary';
export const CANARY_STATES = ['progressing', 'paused', 'promoting', 'succeeded', 'failed'] as const;
export type CanaryState = (typeof CANARY_STATES)[number];
/** The state store key (one file per model under `server.stateDir/routers/<model>/`). */
export const CANARY_STATE_KEY = 'canary-rollout';
export const CANARY_ACTIONS = ['promote', 'rollback', 'pause', 'resume', 'restart'] as const;

/** Which states each operator action may start from. */
const ACTION_FROM: Record<(typeof CANARY_ACTIONS)[number], readonly CanaryState[]> = {
  pause: ['progressing', 'promoting'],
  resume: ['paused'],
  promote: ['progressing', 'paused', 'promoting', 'failed'],
  rollback: ['progressing', 'paused', 'promoting', 'succeeded'],
  restart: ['succeeded', 'failed'],
};

/** One test of a judgement, with its numbers. */
export interface CanaryCheck {
  metric: CanaryMetric;
  /** `baseline`: the canary against the baseline on the same window; `limit`: against an absolute limit. */
  against: 'baseline' | 'limit';
  /** What is estimated: a difference of rates, a ratio of geometric means, a rate, a p99 (ms). */
  measure: 'rateDifference' | 'ratio' | 'rate' | 'p99Ms';
  estimate: number;
  /** The confidence sequence at this look (absent for the p99, a point estimate). */
  lower?: number;
  upper?: number;
  /** The value the canary must stay under (the worse side of which fails). */
  limit: number;
  /** The mixture likelihood ratio against "exactly at the limit" (baseline comparisons) and the always-valid p-value (running minimum over looks). */
  lambda?: number;
  pValue?: number;
  alpha?: number;
  samples: { baseline?: number; canary: number };
  /**
   * `fail`: worse than allowed at the test's confidence (the whole sequence on the bad side);
   * `pass`: shown to be within it (the whole sequence on the good side of the pass limit);
   * `inconclusive`: not yet either — the step holds and collects more requests.
   */
  result: 'pass' | 'fail' | 'inconclusive';
  /** The bound a pass needs (when it differs from `limit`: the error rate's margin). */
  passLimit?: number;
  failed: boolean;
}

export interface CanaryJudgement {
  kind: 'judgement';
  at: string;
  /** 1-based step, and the canary's share at it. */
  step: number;
  weight: number;
  state: CanaryState;
  verdict: 'pass' | 'fail' | 'hold';
  reason: string;
  window: { baseline: number; canary: number };
  checks: CanaryCheck[];
}

export interface CanaryTransition {
  kind: 'transition';
  at: string;
  from: CanaryState | null;
  to: CanaryState;
  step: number;
  weight: number;
  by: 'judgement' | 'operator' | 'config';
  reason: string;
}

export type CanaryHistoryEntry = CanaryJudgement | CanaryTransition;

interface Persisted {
  format: 1;
  identity: string;
  state: CanaryState;
  pausedFrom?: CanaryState;
  step: number;
  failures: number;
  startedAt: number;
  stepStartedAt: number;
  arms: { baseline: ArmJSON; canary: ArmJSON };
  pValues: Record<string, number>;
  history: CanaryHistoryEntry[];
}

const TIMING_OF: Record<Exclude<CanaryMetric, 'errorRate'>, Timing> = { latency: 'latency', ttft: 'ttft', tpot: 'tpot' };

/** What identifies a rollout: a config with other versions or steps starts a new one; other changes keep it going. */
function identityOf(o: CanaryOptions): string {
  return JSON.stringify({ baseline: o.baseline, canary: o.canary, steps: o.steps });
}

function percent(share: number): number {
  return round(share * 100, 2);
}

/**
 * A progressive canary: the canary gets a growing share of the requests that name no version,
 * step by step; every `interval` it is judged against the baseline on the requests both served in
 * that interval's window (and before, within the step), with always-valid sequential tests; a
 * pass moves to the next step, `threshold` failures roll it back, passing the last step promotes
 * it. The rollout's state lives in the router's state store, so a restart resumes it.
 */
export class CanaryRouter implements Router {
  readonly actions = CANARY_ACTIONS;
  readonly #ctx: RouterContext;
  readonly #o: CanaryOptions;
  readonly #m: RouteMetrics;
  #state: CanaryState = 'progressing';
  #pausedFrom: CanaryState | undefined;
  #step = 0;
  #failures = 0;
  #startedAt: number;
  #stepStartedAt: number;
  #arms = { baseline: new Arm(), canary: new Arm() };
  #pValues: Record<string, number> = {};
  #history: CanaryHistoryEntry[] = [];
  #timer: ClockTimer | undefined;
  readonly #writer: StateWriter;
  #closed = false;

  constructor(ctx: RouterContext, options: CanaryOptions) {
    this.#ctx = ctx;
    this.#writer = new StateWriter(ctx, CANARY_STATE_KEY, 'canary rollout');
    this.#o = options;
    this.#m = routeMetrics(ctx.metrics);
    this.#startedAt = this.#stepStartedAt = ctx.clock.now();
  }

  /** Loads a stored rollout of the same identity, or starts a new one; starts the judgement timer. */
  async start(): Promise<void> {
    const stored = await readStored<Persisted>(this.#ctx, CANARY_STATE_KEY, 'canary rollout');
    const identity = identityOf(this.#o);
    if (stored && stored.format === 1 && stored.identity === identity && (CANARY_STATES as readonly string[]).includes(stored.state)) {
      this.#state = stored.state;
      if (stored.pausedFrom) this.#pausedFrom = stored.pausedFrom;
      this.#step = Math.min(Math.max(0, stored.step | 0), this.#o.steps.length - 1);
      this.#failures = stored.failures | 0;
      this.#startedAt = stored.startedAt;
      this.#stepStartedAt = stored.stepStartedAt;
      this.#arms = { baseline: Arm.fromJSON(stored.arms?.baseline), canary: Arm.fromJSON(stored.arms?.canary) };
      this.#pValues = { ...stored.pValues };
      this.#history = Array.isArray(stored.history) ? stored.history : [];
      this.#ctx.logger.info({ state: this.#state, step: this.#displayStep(), weight: percent(this.#share()) }, `canary rollout of ${this.#o.canary} resumed: ${this.#state} at step ${this.#displayStep()} (${percent(this.#share())} %)`);
    } else {
      const reason = stored ? `a new rollout: the stored one was of another config (${stored.identity ?? 'unknown'})` : `rollout of version ${this.#o.canary} against ${this.#o.baseline} started`;
      const initial: CanaryState = this.#o.steps[0]! >= 1 ? 'promoting' : 'progressing';
      this.#transition(initial, 'config', reason, null);
    }
    setState(this.#m, this.#ctx.model, CANARY_STRATEGY, CANARY_STATES, this.#state);
    this.#m.rollbacks.inc({ model: this.#ctx.model, version: this.#o.canary }, 0);
    for (const verdict of ['pass', 'fail', 'hold']) this.#m.judgements.inc({ model: this.#ctx.model, version: this.#o.canary, verdict }, 0);
    this.#timer = this.#ctx.clock.setInterval(() => this.#tick(), this.#o.intervalMs);
    await this.#persist();
  }

  /** The 1-based step for people: at 100 % the last one when the steps end with 100. */
  #displayStep(): number {
    const atFull = this.#state === 'promoting' || this.#state === 'succeeded' || (this.#state === 'paused' && this.#pausedFrom === 'promoting');
    return atFull && this.#o.steps.at(-1)! >= 1 ? this.#o.steps.length : this.#step + 1;
  }

  /** The canary's share of new requests now. */
  #share(): number {
    switch (this.#state) {
      case 'failed':
        return 0;
      case 'promoting':
      case 'succeeded':
        return 1;
      case 'paused':
        return this.#pausedFrom === 'promoting' ? 1 : this.#o.steps[this.#step]!;
      default:
        return this.#o.steps[this.#step]!;
    }
  }

  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget {
    let baselineReady = false;
    let canaryReady = false;
    for (const c of candidates) {
      if (c.version === this.#o.baseline) baselineReady = c.ready;
      else if (c.version === this.#o.canary) canaryReady = c.ready;
    }
    const share = this.#share();
    if (baselineReady && canaryReady) {
      if (share <= 0) return { version: this.#o.baseline };
      if (share >= 1) return { version: this.#o.canary };
      const key = headerValue(request.headers, this.#o.stickyHeader) ?? request.id;
      return { version: unitHash(key) < share ? this.#o.canary : this.#o.baseline };
    }
    if (baselineReady) return { version: this.#o.baseline };
    // the canary alone serves only while it is not rolled back
    if (canaryReady && share > 0) return { version: this.#o.canary };
    throw new TesseraError(
      'TESSERA_E_MODEL_NOT_READY',
      `model '${this.#ctx.model}': the canary rollout's ${share > 0 ? `baseline '${this.#o.baseline}' and canary '${this.#o.canary}' are` : `baseline '${this.#o.baseline}' is`} not ready`,
    );
  }

  weights(candidates: readonly RouteCandidate[]): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of candidates) out[c.version] = 0;
    const ready = (v: string): boolean => candidates.some((c) => c.version === v && c.ready);
    const share = this.#share();
    const b = ready(this.#o.baseline);
    const c = ready(this.#o.canary);
    if (b && c) {
      out[this.#o.baseline] = 1 - share;
      out[this.#o.canary] = share;
    } else if (b) out[this.#o.baseline] = 1;
    else if (c && share > 0) out[this.#o.canary] = 1;
    return out;
  }

  observe(outcome: RouteOutcome): void {
    // only the requests the router placed: a client naming a version, or a shadow copy, is not the rollout's traffic
    if (outcome.explicit || outcome.shadow) return;
    const role = outcome.version === this.#o.canary ? 'canary' : outcome.version === this.#o.baseline ? 'baseline' : undefined;
    if (!role) return;
    countOutcome(this.#m, outcome, role);
    if (this.#state === 'succeeded' || this.#state === 'failed') return;
    this.#arms[role].observe(outcome);
  }

  #tick(): void {
    if (this.#closed || (this.#state !== 'progressing' && this.#state !== 'promoting')) return;
    try {
      this.#apply(this.#judge());
    } catch (err) {
      this.#ctx.logger.error({ err }, `canary judgement failed: ${errorMessage(err)}`);
    }
    // a window too small to judge grows into the next interval: at low traffic the step is judged
    // once minRequests have come, however many intervals that takes, instead of holding for ever
    if (this.#arms.canary.window.requests >= this.#o.minRequests) {
      this.#arms.baseline.nextWindow();
      this.#arms.canary.nextWindow();
    }
    void this.#persist();
  }

  /** α for one test: the rollout's 1 − confidence split over the tests of a judgement and the steps that compare with the baseline. */
  #alpha(tests: number): number {
    const comparingSteps = Math.max(1, this.#o.steps.filter((s) => s < 1).length);
    return (1 - this.#o.confidence) / Math.max(1, tests) / comparingSteps;
  }

  #judge(): CanaryJudgement {
    const { baseline: b, canary: c } = this.#arms;
    const promoting = this.#state === 'promoting';
    const base = {
      kind: 'judgement' as const,
      at: new Date(this.#ctx.clock.now()).toISOString(),
      step: this.#displayStep(),
      weight: percent(this.#share()),
      state: this.#state,
      window: { baseline: b.window.requests, canary: c.window.requests },
    };
    if (c.window.requests < this.#o.minRequests) {
      return { ...base, verdict: 'hold', reason: `${c.window.requests} canary requests since the last judgement, ${this.#o.minRequests} needed to judge: the step holds`, checks: [] };
    }
    // the tests of this judgement (for the split of α): metrics with samples on either side, and the limits
    const timings = this.#o.metrics.filter((m): m is Exclude<CanaryMetric, 'errorRate'> => m !== 'errorRate' && (b.timings[TIMING_OF[m]].n > 0 || c.timings[TIMING_OF[m]].n > 0));
    const judgesErrors = this.#o.metrics.includes('errorRate');
    const tests = (promoting ? 0 : timings.length + (judgesErrors ? 1 : 0)) + (judgesErrors && this.#o.maxErrorRate !== undefined ? 1 : 0);
    const alpha = this.#alpha(tests);
    const checks: CanaryCheck[] = [];
    if (judgesErrors) {
      if (!promoting) {
        const cmp = compareProportions({ n: b.requests, successes: b.errors }, { n: c.requests, successes: c.errors }, { alpha, tau: DEFAULT_TAU.errorRate });
        if (cmp) checks.push(this.#compared('errorRate', 'rateDifference', cmp, 0, this.#o.errorRateMargin, alpha, (x) => x));
      }
      if (this.#o.maxErrorRate !== undefined) {
        const seq = proportionSequence({ n: c.requests, successes: c.errors }, { alpha, tau: DEFAULT_TAU.errorRate });
        if (seq) {
          const result = seq.lower > this.#o.maxErrorRate ? 'fail' : seq.upper <= this.#o.maxErrorRate ? 'pass' : 'inconclusive';
          checks.push({ metric: 'errorRate', against: 'limit', measure: 'rate', estimate: round(seq.estimate, 6), lower: round(seq.lower, 6), upper: round(seq.upper, 6), limit: this.#o.maxErrorRate, alpha, samples: { canary: c.requests }, result, failed: result === 'fail' });
        }
      }
    }
    if (!promoting) {
      for (const metric of timings) {
        const t = TIMING_OF[metric];
        const cmp = compareMeans(b.timings[t].summary(), c.timings[t].summary(), { alpha, tau: DEFAULT_TAU.logLatency, delta0: Math.log(this.#o.maxLatencyRatio) });
        const limit = Math.log(this.#o.maxLatencyRatio);
        if (cmp) checks.push(this.#compared(metric, 'ratio', cmp, limit, limit, alpha, Math.exp));
      }
    }
    if (this.#o.maxP99Ms !== undefined && this.#o.metrics.includes('latency')) {
      const p99 = c.windowQuantile(0.99);
      if (p99 !== undefined) {
        const result = p99 > this.#o.maxP99Ms ? 'fail' : 'pass';
        checks.push({ metric: 'latency', against: 'limit', measure: 'p99Ms', estimate: round(p99), limit: this.#o.maxP99Ms, samples: { canary: c.window.latencies.values.length }, result, failed: result === 'fail' });
      }
    }
    const failed = checks.filter((k) => k.result === 'fail');
    const open = checks.filter((k) => k.result === 'inconclusive');
    if (checks.length === 0) {
      // at 100 % there is no baseline traffic to compare with: only the absolute limits can fail it
      if (promoting) return { ...base, verdict: 'pass', reason: `${c.window.requests} requests at 100 % and no absolute limit (maxErrorRate, maxP99) set`, checks };
      return { ...base, verdict: 'hold', reason: 'nothing to judge yet (fewer than 2 samples on a side)', checks };
    }
    if (failed.length > 0) return { ...base, verdict: 'fail', reason: `worse: ${failed.map(describeCheck).join('; ')}`, checks };
    if (open.length > 0) return { ...base, verdict: 'hold', reason: `not yet shown to be within the limits, collecting more: ${open.map(describeCheck).join('; ')}`, checks };
    return { ...base, verdict: 'pass', reason: `within the limits: ${checks.map(describeCheck).join('; ')}`, checks };
  }

  /**
   * A baseline comparison as a check: fails when the whole sequence lies above `failAbove`, passes
   * when it lies at or below `passAtOrBelow`; `show` maps the estimate's scale to the reported one
   * (exp for log ratios).
   */
  #compared(metric: CanaryMetric, measure: CanaryCheck['measure'], cmp: SequentialComparison, failAbove: number, passAtOrBelow: number, alpha: number, show: (x: number) => number): CanaryCheck {
    const key = `${this.#step}:${metric}`;
    const pValue = runningMin(this.#pValues[key], cmp.pValue);
    this.#pValues[key] = pValue;
    const result = cmp.lower > failAbove ? 'fail' : cmp.upper <= passAtOrBelow ? 'pass' : 'inconclusive';
    return {
      metric,
      against: 'baseline',
      measure,
      estimate: round(show(cmp.estimate), 6),
      lower: round(show(cmp.lower), 6),
      upper: round(show(cmp.upper), 6),
      limit: round(show(failAbove), 6),
      ...(passAtOrBelow !== failAbove ? { passLimit: round(show(passAtOrBelow), 6) } : {}),
      lambda: round(cmp.lambda, 4),
      pValue: round(pValue, 6),
      alpha,
      samples: { baseline: cmp.nControl, canary: cmp.nTreatment },
      result,
      failed: result === 'fail',
    };
  }

  #apply(j: CanaryJudgement): void {
    pushHistory(this.#history, j);
    this.#m.judgements.inc({ model: this.#ctx.model, version: this.#o.canary, verdict: j.verdict });
    const log = { verdict: j.verdict, step: j.step, weight: j.weight, window: j.window, checks: j.checks };
    if (j.verdict === 'fail') this.#ctx.logger.warn(log, `canary ${this.#o.canary} judged: fail (${this.#failures + 1}/${this.#o.threshold}) — ${j.reason}`);
    else this.#ctx.logger.info(log, `canary ${this.#o.canary} judged: ${j.verdict} — ${j.reason}`);
    if (j.verdict === 'hold') return;
    if (j.verdict === 'fail') {
      this.#failures++;
      if (this.#failures >= this.#o.threshold) this.#rollback('judgement', `${this.#failures} failed judgements (threshold ${this.#o.threshold}); last: ${j.reason}`);
      return;
    }
    if (this.#state === 'promoting') {
      this.#transition('succeeded', 'judgement', 'passed at 100 %: promoted');
      return;
    }
    const next = this.#step + 1;
    if (next < this.#o.steps.length && this.#o.steps[next]! < 1) {
      this.#step = next;
      this.#newStep();
      this.#transition('progressing', 'judgement', `step ${next} passed: ${percent(this.#o.steps[next]!)} % to the canary`);
    } else {
      this.#newStep();
      this.#transition('promoting', 'judgement', 'the last step passed: the canary takes every request for one more interval');
    }
  }

  /** Fresh statistics for a new step: each step compares the two versions on its own traffic split. */
  #newStep(): void {
    this.#arms = { baseline: new Arm(), canary: new Arm() };
    this.#stepStartedAt = this.#ctx.clock.now();
  }

  #rollback(by: CanaryTransition['by'], reason: string): void {
    this.#m.rollbacks.inc({ model: this.#ctx.model, version: this.#o.canary });
    this.#transition('failed', by, `rolled back: ${reason}`);
  }

  #transition(to: CanaryState, by: CanaryTransition['by'], reason: string, from: CanaryState | null = this.#state): void {
    this.#state = to;
    if (to !== 'paused') this.#pausedFrom = undefined;
    const t: CanaryTransition = { kind: 'transition', at: new Date(this.#ctx.clock.now()).toISOString(), from, to, step: this.#displayStep(), weight: percent(this.#share()), by, reason };
    pushHistory(this.#history, t);
    setState(this.#m, this.#ctx.model, CANARY_STRATEGY, CANARY_STATES, to);
    const log = { from, to, step: t.step, weight: t.weight, by };
    if (to === 'failed') this.#ctx.logger.warn(log, `canary ${this.#o.canary}: ${from ?? 'new'} → ${to} (${reason})`);
    else this.#ctx.logger.info(log, `canary ${this.#o.canary}: ${from ?? 'new'} → ${to} (${reason})`);
  }

  async act(action: string, input: RoutingActionInput): Promise<void> {
    const allowed = ACTION_FROM[action as (typeof CANARY_ACTIONS)[number]];
    if (!allowed) throw CANARY_ERRORS.CANARY_E_ACTION_INVALID(`unknown action '${action}'`);
    if (!allowed.includes(this.#state)) {
      const fits = CANARY_ACTIONS.filter((a) => ACTION_FROM[a].includes(this.#state));
      throw CANARY_ERRORS.CANARY_E_ACTION_CONFLICT(`cannot ${action} the canary rollout of model '${this.#ctx.model}': it is ${this.#state}; actions that fit now: ${fits.join(', ') || 'none'}`);
    }
    const reason = input.reason ? `${action} by an operator: ${input.reason}` : `${action} by an operator`;
    switch (action) {
      case 'pause':
        this.#pausedFrom = this.#state;
        this.#transition('paused', 'operator', reason);
        break;
      case 'resume':
        this.#arms.baseline.nextWindow();
        this.#arms.canary.nextWindow();
        this.#transition(this.#pausedFrom ?? 'progressing', 'operator', reason);
        break;
      case 'promote':
        this.#transition('succeeded', 'operator', reason);
        break;
      case 'rollback':
        this.#rollback('operator', reason);
        break;
      case 'restart':
        this.#step = 0;
        this.#failures = 0;
        this.#pValues = {};
        this.#startedAt = this.#ctx.clock.now();
        this.#newStep();
        this.#transition(this.#o.steps[0]! >= 1 ? 'promoting' : 'progressing', 'operator', reason);
        break;
    }
    await this.#persist();
  }

  status(): RoutingStatus {
    const arm = (a: Arm): Record<string, unknown> => ({ ...a.summary(), window: { requests: a.window.requests, errors: a.window.errors } });
    const last = this.#history.findLast((h): h is CanaryJudgement => h.kind === 'judgement');
    return {
      strategy: CANARY_STRATEGY,
      state: this.#state,
      baseline: this.#o.baseline,
      canary: this.#o.canary,
      step: this.#displayStep(),
      steps: this.#o.steps.map(percent),
      canaryWeight: percent(this.#share()),
      failures: this.#failures,
      threshold: this.#o.threshold,
      intervalMs: this.#o.intervalMs,
      minRequests: this.#o.minRequests,
      confidence: this.#o.confidence,
      metrics: this.#o.metrics,
      limits: {
        maxLatencyRatio: this.#o.maxLatencyRatio,
        errorRateMargin: this.#o.errorRateMargin,
        ...(this.#o.maxErrorRate !== undefined ? { maxErrorRate: this.#o.maxErrorRate } : {}),
        ...(this.#o.maxP99Ms !== undefined ? { maxP99Ms: this.#o.maxP99Ms } : {}),
      },
      startedAt: new Date(this.#startedAt).toISOString(),
      stepStartedAt: new Date(this.#stepStartedAt).toISOString(),
      stats: { baseline: arm(this.#arms.baseline), canary: arm(this.#arms.canary) },
      lastJudgement: last ?? null,
      history: this.#history,
    };
  }

  #snapshot(): Persisted {
    return {
      format: 1,
      identity: identityOf(this.#o),
      state: this.#state,
      ...(this.#pausedFrom ? { pausedFrom: this.#pausedFrom } : {}),
      step: this.#step,
      failures: this.#failures,
      startedAt: this.#startedAt,
      stepStartedAt: this.#stepStartedAt,
      arms: { baseline: this.#arms.baseline.toJSON(), canary: this.#arms.canary.toJSON() },
      pValues: this.#pValues,
      history: this.#history,
    };
  }

  /** Writes the rollout (atomically: the store replaces the file) after the writes before it. */
  #persist(): Promise<void> {
    const snapshot = this.#snapshot();
    return this.#writer.write(snapshot);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#ctx.clock.clearTimer(this.#timer);
    await this.#persist();
  }
}

function describeCheck(k: CanaryCheck): string {
  const what = k.against === 'baseline' ? `${k.metric} vs baseline` : `${k.metric} limit`;
  const interval = k.lower !== undefined ? ` [${k.lower}, ${k.upper}]` : '';
  const bound = k.result === 'fail' ? `> ${k.limit}` : k.result === 'pass' ? `≤ ${k.passLimit ?? k.limit}` : `straddles ${k.passLimit !== undefined ? `${k.limit}..${k.passLimit}` : k.limit}`;
  return `${what}: ${k.measure} ${k.estimate}${interval} ${bound}`;
}

/** `routing: { strategy: canary, baseline, canary, steps | stepWeight + maxWeight, interval, … }`. */
export const canaryRouterFactory: RouterFactory = {
  optionsSchema: CANARY_OPTIONS_SCHEMA,
  async create(ctx) {
    const router = new CanaryRouter(ctx, resolveCanaryOptions(ctx.model, ctx.versions, ctx.options));
    await router.start();
    return router;
  },
};
