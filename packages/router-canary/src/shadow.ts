import type { ClockTimer, RouteCandidate, RouteOutcome, RouteRequest, RouteTarget, Router, RouterContext, RouterFactory, RoutingStatus } from '@tessera/core';
import { TesseraError } from '@tessera/core';
import { CANARY_ERRORS } from './errors.js';
import type { ArmJSON } from './internal/arm.js';
import { Arm, round } from './internal/arm.js';
import { unitHash } from './internal/hash.js';
import type { RouteMetrics } from './internal/metrics.js';
import { countOutcome, routeMetrics, setState } from './internal/metrics.js';
import { StateWriter, readStored } from './internal/stored.js';
import { versus } from './internal/versus.js';
import type { ShadowOptions } from './options.js';
import { SHADOW_OPTIONS_SCHEMA, resolveShadowOptions } from './options.js';

export const SHADOW_STRATEGY = 'shadow';
export const SHADOW_STATES = ['mirroring', 'paused'] as const;
export type ShadowState = (typeof SHADOW_STATES)[number];
export const SHADOW_STATE_KEY = 'shadow-traffic';
export const SHADOW_ACTIONS = ['pause', 'resume', 'restart'] as const;
/** How often the counters are written to the state store (and at shutdown). */
export const SHADOW_PERSIST_MS = 5000;
/** The confidence of the primary-vs-shadow comparisons shown in the status. */
const CONFIDENCE = 0.95;

/** How the shadow's answers compared with the primary's. */
interface Agreement {
  /** Shadow answers compared (both succeeded). */
  compared: number;
  /** Tensors: compared answers, the largest and the sum of their max abs diffs, and those with every value equal. */
  tensors: number;
  maxAbsDiff: number;
  sumMaxAbsDiff: number;
  identical: number;
  /** Classifier-like outputs: answers with a label agreement, and the sum of their agreements. */
  labelled: number;
  sumLabelAgreement: number;
  /** Generations: compared, and the number whose text was exactly the primary's. */
  generations: number;
  exactMatches: number;
}

const NO_AGREEMENT: Agreement = { compared: 0, tensors: 0, maxAbsDiff: 0, sumMaxAbsDiff: 0, identical: 0, labelled: 0, sumLabelAgreement: 0, generations: 0, exactMatches: 0 };

interface Persisted {
  format: 1;
  identity: string;
  state: ShadowState;
  primary: ArmJSON;
  shadow: ArmJSON;
  agreement: Agreement;
}

/**
 * Shadow traffic: every request that names no version is answered by `primary`; `percent` % of
 * them (chosen by hashing the request id) are also sent, after the primary answered, to `shadow`.
 * The core discards the shadow's answer and never lets it slow or fail the client; this router
 * records the shadow's errors and latency against the primary's, and how its answers differ.
 */
export class ShadowRouter implements Router {
  readonly actions = SHADOW_ACTIONS;
  readonly #ctx: RouterContext;
  readonly #o: ShadowOptions;
  readonly #m: RouteMetrics;
  #state: ShadowState = 'mirroring';
  #primary = new Arm();
  #shadow = new Arm();
  #agreement: Agreement = { ...NO_AGREEMENT };
  #pValues: Record<string, number> = {};
  #timer: ClockTimer | undefined;
  #dirty = false;
  readonly #writer: StateWriter;
  #closed = false;

  constructor(ctx: RouterContext, options: ShadowOptions) {
    this.#ctx = ctx;
    this.#writer = new StateWriter(ctx, SHADOW_STATE_KEY, 'shadow counters');
    this.#o = options;
    this.#m = routeMetrics(ctx.metrics);
  }

  async start(): Promise<void> {
    const stored = await readStored<Persisted>(this.#ctx, SHADOW_STATE_KEY, 'shadow counters');
    if (stored?.format === 1 && stored.identity === this.#identity()) {
      this.#state = (SHADOW_STATES as readonly string[]).includes(stored.state) ? stored.state : 'mirroring';
      this.#primary = Arm.fromJSON(stored.primary);
      this.#shadow = Arm.fromJSON(stored.shadow);
      this.#agreement = { ...NO_AGREEMENT, ...stored.agreement };
    }
    setState(this.#m, this.#ctx.model, SHADOW_STRATEGY, SHADOW_STATES, this.#state);
    this.#timer = this.#ctx.clock.setInterval(() => {
      if (this.#dirty) void this.#persist();
    }, SHADOW_PERSIST_MS);
  }

  #identity(): string {
    return JSON.stringify({ primary: this.#o.primary, shadow: this.#o.shadow });
  }

  #mirrors(id: string): boolean {
    return this.#state === 'mirroring' && this.#o.share > 0 && unitHash(id) < this.#o.share;
  }

  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget {
    // the shadow never answers a client: without a ready primary there is no answer
    if (!candidates.some((c) => c.version === this.#o.primary && c.ready)) {
      throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${this.#ctx.model}': the primary version '${this.#o.primary}' is not ready (the shadow '${this.#o.shadow}' only gets copies)`);
    }
    return this.#mirrors(request.id) ? { version: this.#o.primary, shadow: [this.#o.shadow] } : { version: this.#o.primary };
  }

  shadowsFor(request: RouteRequest): readonly string[] | undefined {
    return this.#o.mirrorExplicit && request.version === this.#o.primary && this.#mirrors(request.id) ? [this.#o.shadow] : undefined;
  }

  weights(candidates: readonly RouteCandidate[]): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const c of candidates) out[c.version] = c.version === this.#o.primary && c.ready ? 1 : 0;
    return out;
  }

  observe(outcome: RouteOutcome): void {
    if (outcome.shadow) {
      if (outcome.version !== this.#o.shadow) return;
      countOutcome(this.#m, outcome, 'shadow');
      this.#shadow.observe(outcome);
      const c = outcome.comparison;
      if (c) {
        const a = this.#agreement;
        a.compared++;
        if (c.maxAbsDiff !== undefined) {
          a.tensors++;
          a.maxAbsDiff = Math.max(a.maxAbsDiff, c.maxAbsDiff);
          if (Number.isFinite(c.maxAbsDiff)) a.sumMaxAbsDiff += c.maxAbsDiff;
          if (c.maxAbsDiff === 0) a.identical++;
        }
        if (c.labelAgreement !== undefined) {
          a.labelled++;
          a.sumLabelAgreement += c.labelAgreement;
        }
        if (c.exactMatch !== undefined) {
          a.generations++;
          if (c.exactMatch) a.exactMatches++;
        }
      }
    } else if (outcome.version === this.#o.primary) {
      countOutcome(this.#m, outcome, 'primary');
      this.#primary.observe(outcome);
    } else return;
    this.#dirty = true;
  }

  async act(action: string): Promise<void> {
    if (action === 'pause' || action === 'resume') {
      const to: ShadowState = action === 'pause' ? 'paused' : 'mirroring';
      if (this.#state === to) throw CANARY_ERRORS.CANARY_E_ACTION_CONFLICT(`the shadow traffic of model '${this.#ctx.model}' is already ${to}`);
      this.#state = to;
      setState(this.#m, this.#ctx.model, SHADOW_STRATEGY, SHADOW_STATES, to);
    } else if (action === 'restart') {
      this.#primary = new Arm();
      this.#shadow = new Arm();
      this.#agreement = { ...NO_AGREEMENT };
      this.#pValues = {};
    } else throw CANARY_ERRORS.CANARY_E_ACTION_INVALID(`unknown action '${action}'`);
    this.#ctx.logger.info({ action }, `shadow traffic of '${this.#ctx.model}': ${action}`);
    await this.#persist();
  }

  status(): RoutingStatus {
    const a = this.#agreement;
    const rate = (k: number, n: number): number | null => (n > 0 ? round(k / n, 6) : null);
    return {
      strategy: SHADOW_STRATEGY,
      state: this.#state,
      primary: this.#o.primary,
      shadow: this.#o.shadow,
      percent: round(this.#o.share * 100, 2),
      mirrorExplicit: this.#o.mirrorExplicit,
      stats: {
        primary: this.#primary.summary(),
        shadow: {
          ...this.#shadow.summary(),
          vsPrimary: versus(this.#primary, this.#shadow, 1 - CONFIDENCE, this.#pValues, 'shadow'),
          agreement: {
            compared: a.compared,
            ...(a.tensors > 0 ? { maxAbsDiff: a.maxAbsDiff, meanMaxAbsDiff: round(a.sumMaxAbsDiff / a.tensors, 9), identicalRate: rate(a.identical, a.tensors) } : {}),
            ...(a.labelled > 0 ? { labelAgreement: rate(a.sumLabelAgreement, a.labelled) } : {}),
            ...(a.generations > 0 ? { exactMatchRate: rate(a.exactMatches, a.generations) } : {}),
          },
        },
      },
    };
  }

  #persist(): Promise<void> {
    this.#dirty = false;
    const snapshot: Persisted = { format: 1, identity: this.#identity(), state: this.#state, primary: this.#primary.toJSON(), shadow: this.#shadow.toJSON(), agreement: { ...this.#agreement } };
    return this.#writer.write(snapshot);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#ctx.clock.clearTimer(this.#timer);
    await this.#persist();
  }
}

/** `routing: { strategy: shadow, primary, shadow, percent, mirrorExplicit }`. */
export const shadowRouterFactory: RouterFactory = {
  optionsSchema: SHADOW_OPTIONS_SCHEMA,
  async create(ctx) {
    const router = new ShadowRouter(ctx, resolveShadowOptions(ctx.model, ctx.versions, ctx.options));
    await router.start();
    return router;
  },
};
