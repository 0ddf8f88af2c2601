import type { Plan } from './batch-queue.js';

/** Dispatch the first `take` entries of the plan now, or decide again at `wakeAt`. */
export type Decision = { take: number } | { wakeAt: number };

/** Timers may fire a fraction of a millisecond before `performance.now()` says the time has come. */
export const TIMER_SLACK_MS = 0.25;

/**
 * The decisions that need no delay policy: everything goes when draining or when the plan is full
 * (or the next request does not fit), the largest preferred prefix goes when there is one.
 * Undefined: the delay policy decides.
 */
export function immediateDecision(plan: Plan, draining: boolean): Decision | undefined {
  if (draining || plan.full) return { take: plan.entries.length };
  if (plan.preferred > 0) return { take: plan.preferred };
  return undefined;
}

/** A fixed `maxQueueDelayMs`: the plan goes once its oldest request has waited `delayMs`. */
export function fixedDelayDecision(plan: Plan, delayMs: number, t: number): Decision {
  if (t - plan.oldest >= delayMs - TIMER_SLACK_MS) return { take: plan.entries.length };
  return { wakeAt: plan.oldest + delayMs };
}
