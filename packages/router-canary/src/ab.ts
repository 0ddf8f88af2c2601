import type { ClockTimer, RouteCandidate, RouteOutcome, RouteRequest, RouteTarget, Router, RouterContext, RouterFactory, RoutingActionInput, RoutingStatus } from '@tessera/core';
import { TesseraError, errorMessage } from '@tessera/core';
import { CANARY_ERRORS } from './errors.js';
import type { ArmJSON } from './internal/arm.js';
import { Arm, round } from './internal/arm.js';
import { headerValue, unitHash } from './internal/hash.js';
import { pushHistory } from './internal/history.js';
import { StateWriter, readStored } from './internal/stored.js';
import type { RouteMetrics } from './internal/metrics.js';
import { countOutcome, routeMetrics, setState } from './internal/metrics.js';
import type { Versus } from './internal/versus.js';
import { versus } from './internal/versus.js';
import type { AbOptions } from './options.js';
import { AB_OPTIONS_SCHEMA, resolveAbOptions } from './options.js';

export const AB_STRATEGY = 'ab';
export const AB_STATES = ['running', 'paused', 'concluded'] as const;
export type AbState = (typeof AB_STATES)[number];
export const AB_STATE_KEY = 'ab-test';
export const AB_ACTIONS = ['promote', 'rollback', 'pause', 'resume', 'restart'] as const;

const ACTION_FROM: Record<(typeof AB_ACTIONS)[number], readonly AbState[]> = {
  promote: ['running', 'paused'],
  rollback: ['running', 'paused'],
  pause: ['running'],
  resume: ['paused'],
  restart: ['concluded', 'running', 'paused'],
};

export interface AbEvent {
  at: string;
  event: 'started' | 'dropped' | 'concluded' | 'paused' | 'resumed' | 'restarted';
  version?: string;
  by: 'statistics' | 'operator' | 'config';
  reason: string;
}

interface Persisted {
  format: 1;
  identity: string;
  state: AbState;
  winner?: string;
  dropped: string[];
  arms: Record<string, ArmJSON>;
  pValues: Record<string, number>;
  history: AbEvent[];
}

/**
 * A/B/n: every request that names no version goes to one variant, chosen by hashing the sticky
 * header's value (the same user always gets the same variant, on every replica and after
 * restarts) or else the request id. Each variant's success rate and latency are compared with the
 * control (the first variant) with always-valid confidence sequences: looking at them after every
 * request does not make a false winner likelier. With `autoConclude`, a variant that loses is
 * dropped and one that wins takes all traffic.
 */
export class AbRouter implements Router {
  readonly actions = AB_ACTIONS;
  readonly #ctx: RouterContext;
  readonly #o: AbOptions;
  readonly #m: RouteMetrics;
  readonly #control: string;
  #state: AbState = 'running';
  #winner: string | undefined;
  #dropped = new Set<string>();
  /** `#shares()` until the winner or the dropped variants change. */
  #sharesNow: readonly { version: string; weight: number }[] | undefined;
  #arms: Record<string, Arm> = {};
  #pValues: Record<string, number> = {};
  #history: AbEvent[] = [];
  #timer: ClockTimer | undefined;
  readonly #writer: StateWriter;
  #closed = false;

  constructor(ctx: RouterContext, options: AbOptions) {
    this.#ctx = ctx;
    this.#writer = new StateWriter(ctx, AB_STATE_KEY, 'A/B test');
    this.#o = options;
    this.#m = routeMetrics(ctx.metrics);
    this.#control = options.variants[0]!.version;
    for (const v of options.variants) this.#arms[v.version] = new Arm();
  }

  async start(): Promise<void> {
    const stored = await readStored<Persisted>(this.#ctx, AB_STATE_KEY, 'A/B test');
    if (stored?.format === 1 && stored.identity === this.#identity() && (AB_STATES as readonly string[]).includes(stored.state)) {
      this.#state = stored.state;
      if (stored.winner) this.#winner = stored.winner;
      this.#dropped = new Set(stored.dropped);
      this.#sharesNow = undefined;
      for (const v of this.#o.variants) this.#arms[v.version] = Arm.fromJSON(stored.arms?.[v.version]);
      this.#pValues = { ...stored.pValues };
      this.#history = Array.isArray(stored.history) ? stored.history : [];
      this.#ctx.logger.info({ state: this.#state }, `A/B test of ${this.#o.variants.map((v) => v.version).join(', ')} resumed: ${this.#state}`);
    } else {
      this.#event('started', 'config', `A/B test of ${this.#o.variants.map((v) => `${v.version} (${round(v.weight * 100, 2)} %)`).join(', ')} started; control ${this.#control}`);
    }
    setState(this.#m, this.#ctx.model, AB_STRATEGY, AB_STATES, this.#state);
    this.#timer = this.#ctx.clock.setInterval(() => this.#tick(), this.#o.intervalMs);
    await this.#persist();
  }

  #identity(): string {
    return JSON.stringify(this.#o.variants);
  }

  /** The shares now: the winner's 1 once concluded, dropped variants' 0, the rest as configured (renormalised). Kept until they change. */
  #shares(): readonly { version: string; weight: number }[] {
    if (this.#sharesNow) return this.#sharesNow;
    if (this.#winner) return (this.#sharesNow = this.#o.variants.map((v) => ({ version: v.version, weight: v.version === this.#winner ? 1 : 0 })));
    const live = this.#o.variants.filter((v) => !this.#dropped.has(v.version));
    const total = live.reduce((a, v) => a + v.weight, 0);
    return (this.#sharesNow = this.#o.variants.map((v) => ({ version: v.version, weight: !this.#dropped.has(v.version) && total > 0 ? v.weight / total : 0 })));
  }

  /**
   * Picks by walking the cumulative shares of the ready variants at the point `u`. On the hot path:
   * two passes over the shares, nothing allocated.
   */
  #pick(u: number, candidates: readonly RouteCandidate[]): string | undefined {
    const shares = this.#shares();
    let total = 0;
    for (const s of shares) if (s.weight > 0 && isReady(candidates, s.version)) total += s.weight;
    if (total <= 0) return undefined;
    let acc = 0;
    let last: string | undefined;
    for (const s of shares) {
      if (s.weight <= 0 || !isReady(candidates, s.version)) continue;
      acc += s.weight / total;
      last = s.version;
      if (u < acc) return s.version;
    }
    return last;
  }

  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget {
    const key = headerValue(request.headers, this.#o.stickyHeader) ?? request.id;
    const version = this.#pick(unitHash(key), candidates);
    if (version === undefined) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${this.#ctx.model}': no variant of the A/B test is ready`);
    return { version };
  }

  weights(candidates: readonly RouteCandidate[]): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of candidates) out[c.version] = 0;
    const ready = new Set(candidates.filter((c) => c.ready).map((c) => c.version));
    const shares = this.#shares().filter((s) => ready.has(s.version));
    const total = shares.reduce((a, s) => a + s.weight, 0);
    if (total > 0) for (const s of shares) out[s.version] = s.weight / total;
    return out;
  }

  observe(outcome: RouteOutcome): void {
    if (outcome.explicit || outcome.shadow) return;
    const arm = this.#arms[outcome.version];
    if (!arm) return;
    countOutcome(this.#m, outcome, 'variant');
    if (this.#state !== 'concluded') arm.observe(outcome);
  }

  /** α of one comparison: 1 − confidence split over the variants compared with the control. */
  get #alpha(): number {
    return (1 - this.#o.confidence) / Math.max(1, this.#o.variants.length - 1);
  }

  #comparisons(): Record<string, Versus> {
    const out: Record<string, Versus> = {};
    const control = this.#arms[this.#control]!;
    for (const v of this.#o.variants.slice(1)) out[v.version] = versus(control, this.#arms[v.version]!, this.#alpha, this.#pValues, v.version);
    return out;
  }

  #tick(): void {
    if (this.#closed || this.#state !== 'running') return;
    try {
      if (this.#o.autoConclude) this.#conclude();
    } catch (err) {
      this.#ctx.logger.error({ err }, `A/B evaluation failed: ${errorMessage(err)}`);
    }
    void this.#persist();
  }

  /** Acts on the statistics: a loser is dropped, a winner (or the control, once every other variant lost) concludes the test. */
  #conclude(): void {
    const comparisons = this.#comparisons();
    const metric = this.#o.metric === 'latency' ? 'latencyRatio' : 'successRate';
    const control = this.#arms[this.#control]!;
    for (const [version, cmp] of Object.entries(comparisons)) {
      if (this.#dropped.has(version)) continue;
      const arm = this.#arms[version]!;
      if (arm.requests < this.#o.minRequests || control.requests < this.#o.minRequests) continue;
      const m = cmp[metric];
      if (!m) continue;
      const numbers = `${metric} ${m.estimate} [${m.lower}, ${m.upper}], always-valid p ${m.pValue}, ${arm.requests} vs ${control.requests} requests`;
      if (m.verdict === 'better') {
        this.#finish(version, 'statistics', `${version} beats the control ${this.#control} at ${this.#o.confidence}: ${numbers}`);
        return;
      }
      if (m.verdict === 'worse') {
        this.#dropped.add(version);
        this.#sharesNow = undefined;
        this.#event('dropped', 'statistics', `${version} loses to the control ${this.#control} at ${this.#o.confidence}: ${numbers}`, version);
      }
    }
    if (this.#o.variants.every((v) => v.version === this.#control || this.#dropped.has(v.version))) this.#finish(this.#control, 'statistics', `every other variant lost to the control ${this.#control}`);
  }

  #finish(winner: string, by: AbEvent['by'], reason: string): void {
    this.#winner = winner;
    this.#sharesNow = undefined;
    this.#state = 'concluded';
    setState(this.#m, this.#ctx.model, AB_STRATEGY, AB_STATES, this.#state);
    this.#event('concluded', by, reason, winner);
  }

  #event(event: AbEvent['event'], by: AbEvent['by'], reason: string, version?: string): void {
    const e: AbEvent = { at: new Date(this.#ctx.clock.now()).toISOString(), event, ...(version ? { version } : {}), by, reason };
    pushHistory(this.#history, e);
    this.#ctx.logger.info({ event, version, by }, `A/B test: ${event}${version ? ` ${version}` : ''} (${reason})`);
  }

  async act(action: string, input: RoutingActionInput): Promise<void> {
    const allowed = ACTION_FROM[action as (typeof AB_ACTIONS)[number]];
    if (!allowed) throw CANARY_ERRORS.CANARY_E_ACTION_INVALID(`unknown action '${action}'`);
    if (!allowed.includes(this.#state)) {
      const fits = AB_ACTIONS.filter((a) => ACTION_FROM[a].includes(this.#state));
      throw CANARY_ERRORS.CANARY_E_ACTION_CONFLICT(`cannot ${action} the A/B test of model '${this.#ctx.model}': it is ${this.#state}; actions that fit now: ${fits.join(', ')}`);
    }
    const reason = input.reason ? `${action} by an operator: ${input.reason}` : `${action} by an operator`;
    switch (action) {
      case 'promote': {
        const version = input.version;
        if (!version || !this.#arms[version]) {
          throw CANARY_ERRORS.CANARY_E_ACTION_INVALID(`promote needs the winning variant: {"version": one of ${this.#o.variants.map((v) => `"${v.version}"`).join(', ')}}`);
        }
        this.#finish(version, 'operator', reason);
        break;
      }
      case 'rollback':
        this.#finish(this.#control, 'operator', `${reason} (back to the control)`);
        break;
      case 'pause':
        this.#state = 'paused';
        this.#event('paused', 'operator', `${reason}: the split stays, the automatic conclusion waits`);
        break;
      case 'resume':
        this.#state = 'running';
        this.#event('resumed', 'operator', reason);
        break;
      case 'restart':
        this.#state = 'running';
        this.#winner = undefined;
        this.#dropped.clear();
        this.#sharesNow = undefined;
        this.#pValues = {};
        for (const v of this.#o.variants) this.#arms[v.version] = new Arm();
        this.#event('restarted', 'operator', `${reason}: fresh statistics`);
        break;
    }
    setState(this.#m, this.#ctx.model, AB_STRATEGY, AB_STATES, this.#state);
    await this.#persist();
  }

  status(): RoutingStatus {
    const comparisons = this.#comparisons();
    const shares = this.#shares();
    const variants: Record<string, unknown> = {};
    for (const v of this.#o.variants) {
      variants[v.version] = {
        configuredWeight: round(v.weight, 6),
        weight: round(shares.find((s) => s.version === v.version)!.weight, 6),
        control: v.version === this.#control,
        dropped: this.#dropped.has(v.version),
        ...this.#arms[v.version]!.summary(),
        ...(comparisons[v.version] ? { vsControl: comparisons[v.version] } : {}),
      };
    }
    return {
      strategy: AB_STRATEGY,
      state: this.#state,
      control: this.#control,
      winner: this.#winner ?? null,
      stickyHeader: this.#o.stickyHeader ?? null,
      confidence: this.#o.confidence,
      metric: this.#o.metric,
      autoConclude: this.#o.autoConclude,
      minRequests: this.#o.minRequests,
      stats: variants,
      history: this.#history,
    };
  }

  #persist(): Promise<void> {
    const snapshot: Persisted = {
      format: 1,
      identity: this.#identity(),
      state: this.#state,
      ...(this.#winner ? { winner: this.#winner } : {}),
      dropped: [...this.#dropped],
      arms: Object.fromEntries(Object.entries(this.#arms).map(([v, a]) => [v, a.toJSON()])),
      pValues: this.#pValues,
      history: this.#history,
    };
    return this.#writer.write(snapshot);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#ctx.clock.clearTimer(this.#timer);
    await this.#persist();
  }
}

/** `routing: { strategy: ab, variants: {version: weight}, stickyHeader, confidence, autoConclude, … }`. */
export const abRouterFactory: RouterFactory = {
  optionsSchema: AB_OPTIONS_SCHEMA,
  async create(ctx) {
    const router = new AbRouter(ctx, resolveAbOptions(ctx.model, ctx.versions, ctx.options));
    await router.start();
    return router;
  },
};

function isReady(candidates: readonly RouteCandidate[], version: string): boolean {
  for (const c of candidates) if (c.version === version) return c.ready;
  return false;
}
