/**
 * Always-valid two-sample comparisons: the normal-mixture SPRT (mSPRT) of Johari, Pekelis & Walsh in its
 * asymptotic form, and the confidence sequence it inverts to (Robbins' normal mixture). The test may be
 * looked at after every request without inflating its error rate; docs/router-canary.md explains the choices.
 */
import type { CountSummary, SampleSummary } from './moments.js';
import { normalTwoSidedP } from './normal.js';

/** How one metric is judged. */
export interface SequentialOptions {
  /** The probability of a false alarm over all looks, however many, for this one metric (the router splits its α over metrics). */
  alpha: number;
  /**
   * The mixing standard deviation τ, in the estimate's units: roughly the effect size worth detecting.
   * Too small delays the detection of large effects a lot; too large costs only a logarithmic factor.
   */
  tau: number;
  /** The effect under the null hypothesis; 0 (no difference) unless a margin is tested. */
  delta0?: number;
}

/** A confidence sequence at one look: it holds the true value at every look at once with probability ≥ 1 − α. */
export interface ConfidenceSequence {
  estimate: number;
  lower: number;
  upper: number;
}

/** One look of an always-valid comparison of treatment (the canary) against control (the baseline). */
export interface SequentialComparison extends ConfidenceSequence {
  /** Treatment − control (means, or rates). */
  estimate: number;
  /** The (1 − α) confidence sequence; it excludes δ0 exactly when the test rejects. */
  lower: number;
  upper: number;
  /** The mixture likelihood ratio Λ; reject H0 when Λ ≥ 1/α. May be `Infinity`. */
  lambda: number;
  /** min(1, 1/Λ) at this look; the always-valid p-value is its running minimum over looks (`runningMin`). */
  pValue: number;
  /** The variance V of the estimate used, after the floors. */
  variance: number;
  nControl: number;
  nTreatment: number;
}

/** Result of the classic fixed-horizon two-sided z-test. */
export interface ZTest {
  /** (treatment − control) / standard error. */
  z: number;
  pValue: number;
  /** pValue < α: valid only if this is the one and only look. */
  reject: boolean;
}

/**
 * Default τ per metric. Error rate (an absolute rate difference): 0.03 keeps a gross failure (0 % → 30 % errors)
 * detectable within ~100 requests per arm while costing only 5–6 % more requests than τ = 0.02 on a +1 point
 * regression; log latency: 0.1, a 10 % change of the geometric mean. docs/router-canary.md has the numbers.
 */
export const DEFAULT_TAU: Readonly<{ errorRate: number; logLatency: number }> = Object.freeze({ errorRate: 0.03, logLatency: 0.1 });

/**
 * V never goes below this fraction of τ²: identical constant samples would otherwise give V = 0 and 0/0.
 * At the floor the sequence is Δ̂ ± 6·10⁻⁶·τ (α = 0.05): any real difference is significant, no difference is not.
 */
const MIN_VARIANCE_RATIO = 1e-12;

/** Compares the means of two samples (e.g. log latency, whose difference is the log of the ratio of geometric means). Undefined while either has n < 2. */
export function compareMeans(control: SampleSummary, treatment: SampleSummary, opts: SequentialOptions): SequentialComparison | undefined {
  checkOptions(opts);
  checkSample(control);
  checkSample(treatment);
  if (control.n < 2 || treatment.n < 2) return undefined;
  const v = control.variance / control.n + treatment.variance / treatment.n;
  return mixture(treatment.mean - control.mean, v, opts, control.n, treatment.n, -Infinity, Infinity);
}

/**
 * Compares two rates (estimate: treatment rate − control rate). The variance uses `shrunkRate` so that 0 of n
 * (no errors yet, the usual case) is not taken for certainty. The sequence is clipped to [−1, 1]. Undefined while either has n < 2.
 */
export function compareProportions(control: CountSummary, treatment: CountSummary, opts: SequentialOptions): SequentialComparison | undefined {
  checkOptions(opts);
  checkCounts(control);
  checkCounts(treatment);
  if (control.n < 2 || treatment.n < 2) return undefined;
  const v = rateVariance(control) + rateVariance(treatment);
  return mixture(treatment.successes / treatment.n - control.successes / control.n, v, opts, control.n, treatment.n, -1, 1);
}

/** The (1 − α) confidence sequence of one sample's mean (V = s²/n; `delta0` is not used). Undefined while n < 2. */
export function meanSequence(sample: SampleSummary, opts: SequentialOptions): ConfidenceSequence | undefined {
  checkOptions(opts);
  checkSample(sample);
  if (sample.n < 2) return undefined;
  const { estimate, lower, upper } = mixture(sample.mean, sample.variance / sample.n, opts, 0, sample.n, -Infinity, Infinity);
  return { estimate, lower, upper };
}

/** The (1 − α) confidence sequence of one rate, clipped to [0, 1], with the variance of `shrunkRate`. Undefined while n < 2. */
export function proportionSequence(sample: CountSummary, opts: SequentialOptions): ConfidenceSequence | undefined {
  checkOptions(opts);
  checkCounts(sample);
  if (sample.n < 2) return undefined;
  const { estimate, lower, upper } = mixture(sample.successes / sample.n, rateVariance(sample), opts, 0, sample.n, 0, 1);
  return { estimate, lower, upper };
}

/**
 * The rate used for a variance: (k + ½)/(n + 1), one pseudo-observation at ½ per arm. Moving toward ½ only raises
 * p(1 − p), so this never understates the plug-in variance, and it is never 0: 0 errors of 100 gives p̃(1 − p̃)/n ≈ 4.9·10⁻⁵.
 */
export function shrunkRate(counts: CountSummary): number {
  return (counts.successes + 0.5) / (counts.n + 1);
}

/**
 * The classic two-sided z-test: pooled under H0 for rates, unpooled (Welch) for means. Here for the benchmark that
 * shows its false alarms when it is peeked at; never judge a rollout with it. With n < 2 on either side: z 0, p 1.
 */
export function fixedHorizonZTest(control: CountSummary, treatment: CountSummary, alpha: number): ZTest;
export function fixedHorizonZTest(control: SampleSummary, treatment: SampleSummary, alpha: number): ZTest;
export function fixedHorizonZTest(control: CountSummary | SampleSummary, treatment: CountSummary | SampleSummary, alpha: number): ZTest {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  let diff: number;
  let se: number;
  if ('successes' in control && 'successes' in treatment) {
    checkCounts(control);
    checkCounts(treatment);
    if (control.n < 2 || treatment.n < 2) return { z: 0, pValue: 1, reject: false };
    const pooled = (control.successes + treatment.successes) / (control.n + treatment.n);
    diff = treatment.successes / treatment.n - control.successes / control.n;
    se = Math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n));
  } else if ('variance' in control && 'variance' in treatment) {
    checkSample(control);
    checkSample(treatment);
    if (control.n < 2 || treatment.n < 2) return { z: 0, pValue: 1, reject: false };
    diff = treatment.mean - control.mean;
    se = Math.sqrt(control.variance / control.n + treatment.variance / treatment.n);
  } else {
    throw new TypeError('fixedHorizonZTest compares two count summaries or two sample summaries, not one of each');
  }
  // se is 0 only for constant samples: equal ones differ by nothing, different ones by infinitely many standard errors
  const z = se > 0 ? diff / se : diff === 0 ? 0 : Math.sign(diff) * Infinity;
  const pValue = normalTwoSidedP(z);
  return { z, pValue, reject: pValue < alpha };
}

/** The `q`-quantile of ascending values by linear interpolation between order statistics (numpy's default); NaN for no values. */
export function quantile(sortedAscending: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const n = sortedAscending.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const i = Math.floor(h);
  const a = sortedAscending[i] as number;
  const b = sortedAscending[Math.min(i + 1, n - 1)] as number;
  const t = h - i;
  // numpy's lerp: from the nearer end, so that q = 1 gives the maximum exactly
  return t < 0.5 ? a + (b - a) * t : b - (b - a) * (1 - t);
}

/** The running minimum of the per-look p-values: the always-valid p-value. `prev` is undefined before the first look; a NaN look is ignored. */
export function runningMin(prev: number | undefined, next: number): number {
  if (prev === undefined) return next;
  if (Number.isNaN(next)) return prev;
  return Math.min(prev, next);
}

/** Λ and the confidence sequence for an estimate with variance `rawVariance`; the sequence is clipped to [min, max], the parameter's range. */
function mixture(
  estimate: number, rawVariance: number, opts: SequentialOptions, nControl: number, nTreatment: number, min: number, max: number,
): SequentialComparison {
  const tau2 = opts.tau * opts.tau;
  const variance = Math.max(rawVariance, MIN_VARIANCE_RATIO * tau2);
  const delta = estimate - (opts.delta0 ?? 0);
  // ln((V + τ²)/V) through log1p: V ≪ τ² is the common case once data accumulates
  const logInflation = Math.log1p(tau2 / variance);
  const logLambda = (delta * delta * tau2) / (2 * variance * (variance + tau2)) - logInflation / 2;
  const halfWidth = Math.sqrt(((variance * (variance + tau2)) / tau2) * (2 * Math.log(1 / opts.alpha) + logInflation));
  return {
    estimate,
    lower: Math.max(min, estimate - halfWidth),
    upper: Math.min(max, estimate + halfWidth),
    lambda: Math.exp(logLambda),
    pValue: Math.min(1, Math.exp(-logLambda)),
    variance,
    nControl,
    nTreatment,
  };
}

function rateVariance(counts: CountSummary): number {
  const p = shrunkRate(counts);
  return (p * (1 - p)) / counts.n;
}

function checkOptions(opts: SequentialOptions): void {
  if (!(opts.alpha > 0 && opts.alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${opts.alpha}`);
  if (!(opts.tau > 0 && Number.isFinite(opts.tau))) throw new RangeError(`tau must be a positive number, got ${opts.tau}`);
  if (opts.delta0 !== undefined && !Number.isFinite(opts.delta0)) throw new RangeError(`delta0 must be finite, got ${opts.delta0}`);
}

function checkSample(s: SampleSummary): void {
  if (!(Number.isSafeInteger(s.n) && s.n >= 0 && Number.isFinite(s.mean) && s.variance >= 0 && Number.isFinite(s.variance))) {
    throw new RangeError(`not a sample summary: n ${s.n}, mean ${s.mean}, variance ${s.variance}`);
  }
}

function checkCounts(c: CountSummary): void {
  if (!(Number.isSafeInteger(c.n) && c.n >= 0 && Number.isSafeInteger(c.successes) && c.successes >= 0 && c.successes <= c.n)) {
    throw new RangeError(`not a count summary: ${c.successes} of ${c.n}`);
  }
}
