import type { ArrivalStats } from './arrival-stats.js';
import type { Plan } from './batch-queue.js';
import type { Decision } from './dispatch-decision.js';
import { TIMER_SLACK_MS } from './dispatch-decision.js';
import type { BatchLatencyModel } from './latency-model.js';

/** Below this share of holds that gained samples, the adaptive delay stops holding (but probes). */
const HOLD_PAYOFF_MIN = 0.5;
/** While holds do not pay off, one hold in this many decisions checks whether they do again. */
const HOLD_PROBE_EVERY = 64;
/** Weight of the past in the hold pay-off EWMA. */
const HOLD_PAYOFF_DECAY = 0.8;

/** What one adaptive decision looks at, besides the plan. */
export interface AdaptiveInput {
  /** The shape key of the plan's sub-queue. */
  key: string;
  plan: Plan;
  t: number;
  arrivals: ArrivalStats | undefined;
  latency: BatchLatencyModel;
  maxBatch: number;
  /** Instances idle now (this batch would take one of them). */
  idleInstances: number;
  /** Predicted ms until the first running batch ends (infinity when none runs); called only when needed. */
  firstBusyEnd: () => number;
}

/**
 * `maxQueueDelayMs: auto`: holds a forming batch only while one more arrival is expected to lower
 * the summed latency of the requests involved, and learns whether its holds actually gain samples.
 */
export class AdaptiveDelay {
  readonly #maxDelayMs: number;
  readonly #latencyBudgetMs: number;
  /** Per shape key: samples in the batch when a hold began (to learn whether holds pay off). */
  readonly #holds = new Map<string, number>();
  /**
   * EWMA of how often a hold gained samples before it ended. It starts undecided (0.5): the first
   * hold that gains nothing stops the holding until a probe shows that holds pay again.
   */
  #holdPayoff = HOLD_PAYOFF_MIN;
  /** Decisions since the last hold, for the occasional probe while holds do not pay off. */
  #sinceHold = 0;

  constructor(options: { adaptiveMaxDelayMs: number; latencyBudgetMs: number }) {
    this.#maxDelayMs = options.adaptiveMaxDelayMs;
    this.#latencyBudgetMs = options.latencyBudgetMs;
  }

  decide(input: AdaptiveInput): Decision {
    const { key, plan, t, arrivals: stats, latency: model } = input;
    const dispatch = { take: plan.entries.length };
    if (model.observations === 0 || stats?.gap === undefined) return dispatch;
    const s = Math.max(1, stats.samples);
    const b = plan.samples;
    if (b + s > input.maxBatch) return dispatch;
    // silence since the last arrival pushes the expected next one further out, so a hold ends
    // soon after the arrival it waited for failed to come
    const delta = stats.gap + (t - stats.last);
    const tb = model.predict(b);
    // when the next request could start if this batch went now
    const free = input.idleInstances > 1 ? 0 : Math.min(tb, input.firstBusyEnd());
    const costNow = b * tb + s * (Math.max(free - delta, 0) + model.predict(s));
    const costWait = b * delta + (b + s) * model.predict(b + s);
    if (costWait >= costNow) return dispatch;
    // The cost model assumes arrivals independent of our answers. A closed loop (each client
    // waiting for its answer before the next request: concurrency 1 is the extreme) breaks that,
    // so the model's promise is checked against what holds actually gained: while they mostly
    // gain nothing, dispatch at once and only probe now and then.
    if (!this.#holds.has(key)) {
      if (this.#holdPayoff < HOLD_PAYOFF_MIN && ++this.#sinceHold < HOLD_PROBE_EVERY) return dispatch;
      this.#sinceHold = 0;
      this.#holds.set(key, b);
    }
    let hold = Math.min(tb, this.#maxDelayMs);
    if (this.#latencyBudgetMs > 0) hold = Math.min(hold, this.#latencyBudgetMs - model.predict(b + s));
    const limit = plan.oldest + hold;
    if (t >= limit - TIMER_SLACK_MS) return dispatch;
    return { wakeAt: Math.min(limit, t + delta) };
  }

  /** A batch of `key` went with `samples` samples: a hold pending on that key learns whether it gained any. */
  dispatched(key: string, samples: number): void {
    const heldAt = this.#holds.get(key);
    if (heldAt === undefined) return;
    this.#holds.delete(key);
    this.#holdPayoff = HOLD_PAYOFF_DECAY * this.#holdPayoff + (1 - HOLD_PAYOFF_DECAY) * (samples > heldAt ? 1 : 0);
  }
}
