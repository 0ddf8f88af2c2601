import type { SequentialComparison } from '../stats/index.js';
import { DEFAULT_TAU, compareMeans, compareProportions } from '../stats/index.js';
import type { Arm } from './arm.js';
import { round } from './arm.js';

/** One metric of a version against a reference version, for people: the estimate, its confidence sequence and the always-valid p-value. */
export interface VersusMetric {
  estimate: number;
  lower: number;
  upper: number;
  pValue: number;
  /** `better` or `worse` at the confidence asked for (the sequence excludes "no difference"), else `inconclusive`. */
  verdict: 'better' | 'worse' | 'inconclusive';
}

export interface Versus {
  /** Success rate of the version minus the reference's (server faults are failures; 4xx never count). */
  successRate?: VersusMetric;
  /** Geometric-mean latency of the version over the reference's. */
  latencyRatio?: VersusMetric;
}

/** A comparison's report; `better` says which side of zero is good for the version. */
function report(cmp: SequentialComparison, pValue: number, flip: boolean, show: (x: number) => number): VersusMetric {
  const sign = flip ? -1 : 1;
  const lo = sign * (flip ? cmp.upper : cmp.lower);
  const hi = sign * (flip ? cmp.lower : cmp.upper);
  // the reported quantity: larger success rate is better; smaller latency ratio is better
  return { estimate: round(show(sign * cmp.estimate), 6), lower: round(show(lo), 6), upper: round(show(hi), 6), pValue: round(pValue, 6), verdict: 'inconclusive' };
}

/**
 * The always-valid comparison of `arm` with `reference` on success rate and latency, at `alpha`
 * each; `pValues` keeps each metric's running minimum under `key` (the always-valid p-value is the
 * smallest seen so far).
 */
export function versus(reference: Arm, arm: Arm, alpha: number, pValues: Record<string, number>, key: string): Versus {
  const out: Versus = {};
  const errors = compareProportions({ n: reference.requests, successes: reference.errors }, { n: arm.requests, successes: arm.errors }, { alpha, tau: DEFAULT_TAU.errorRate });
  if (errors) {
    const p = (pValues[`${key}:successRate`] = Math.min(pValues[`${key}:successRate`] ?? 1, errors.pValue));
    const r = report(errors, p, true, (x) => x);
    r.verdict = r.lower > 0 ? 'better' : r.upper < 0 ? 'worse' : 'inconclusive';
    out.successRate = r;
  }
  const latency = compareMeans(reference.timings.latency.summary(), arm.timings.latency.summary(), { alpha, tau: DEFAULT_TAU.logLatency });
  if (latency) {
    const p = (pValues[`${key}:latency`] = Math.min(pValues[`${key}:latency`] ?? 1, latency.pValue));
    const r = report(latency, p, false, Math.exp);
    r.verdict = r.upper < 1 ? 'better' : r.lower > 1 ? 'worse' : 'inconclusive';
    out.latencyRatio = r;
  }
  return out;
}
