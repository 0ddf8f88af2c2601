/**
 * The sequential comparisons against values computed independently: `python3 packages/router-canary/src/stats/reference.py`
 * integrates the mixture likelihood ratio numerically (scipy.integrate.quad), finds the confidence sequence's ends as
 * the roots of Λ(δ0) = 1/α (scipy.optimize.brentq), takes z-test p-values from scipy.stats.norm and quantiles from
 * numpy.quantile. Each block below is the section of its output with the same name.
 */
import { describe, expect, it } from 'vitest';
import type { CountSummary, SampleSummary } from './moments.js';
import type { SequentialComparison, SequentialOptions } from './sequential.js';
import {
  DEFAULT_TAU,
  compareMeans,
  compareProportions,
  fixedHorizonZTest,
  meanSequence,
  proportionSequence,
  quantile,
  runningMin,
  shrunkRate,
} from './sequential.js';

function expectClose(actual: number, expected: number, rel = 1e-9): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(rel * Math.abs(expected) + 1e-15);
}

function expectComparison(actual: SequentialComparison | undefined, expected: SequentialComparison): void {
  expect(actual).toBeDefined();
  for (const key of Object.keys(expected) as (keyof SequentialComparison)[]) expectClose(actual![key], expected[key]);
}

const sample = (n: number, mean: number, variance: number): SampleSummary => ({ n, mean, variance });
const counts = (n: number, successes: number): CountSummary => ({ n, successes });

// [control, treatment, options, reference] — reference.py's MEANS and `compareMeans` section
const MEANS: [SampleSummary, SampleSummary, SequentialOptions, SequentialComparison][] = [
  [sample(400, 5.0, 0.09), sample(380, 5.04, 0.11), { tau: 0.1, alpha: 0.05 }, {
    estimate: 0.040000000000000036, lower: -0.02980869245907988, upper: 0.10980869245907995, lambda: 0.9706588631393686,
    pValue: 1.0, variance: 0.0005144736842105263, nControl: 400, nTreatment: 380,
  }],
  [sample(50, 1.2, 0.5), sample(60, 0.9, 0.4), { tau: 0.1, alpha: 0.01 }, {
    estimate: -0.29999999999999993, lower: -0.9559249279951316, upper: 0.3559249279951317, lambda: 2.176021447596053,
    pValue: 0.4595542939637585, variance: 0.016666666666666666, nControl: 50, nTreatment: 60,
  }],
  [sample(1000, 2.0, 0.25), sample(1200, 2.12, 0.3), { tau: 0.05, alpha: 0.0125, delta0: 0.05 }, {
    estimate: 0.1200000000000001, lower: 0.04041678793146464, upper: 0.19958321206853558, lambda: 24.226658038569983,
    pValue: 0.041276844639815895, variance: 0.0005, nControl: 1000, nTreatment: 1200,
  }],
  [sample(200, 0.0, 1.0), sample(200, 0.1, 1.2), { tau: 0.2, alpha: 0.1, delta0: -0.1 }, {
    estimate: 0.1, lower: -0.1934295233210941, upper: 0.39342952332109415, lambda: 1.932974050127698,
    pValue: 0.5173375193184497, variance: 0.011, nControl: 200, nTreatment: 200,
  }],
  [sample(500, 3.0, 0.2), sample(500, 3.3, 0.2), { tau: 0.1, alpha: 0.05 }, {
    estimate: 0.2999999999999998, lower: 0.21382953373153146, upper: 0.3861704662684682, lambda: 1.1332804099288735e22,
    pValue: 8.823941464432104e-23, variance: 0.0008, nControl: 500, nTreatment: 500,
  }],
];

// reference.py's PROPS and `compareProportions` section; variances use the shrunk rate (k + ½)/(n + 1)
const PROPS: [CountSummary, CountSummary, SequentialOptions, SequentialComparison][] = [
  [counts(100, 0), counts(100, 30), { tau: 0.03, alpha: 0.05 }, {
    estimate: 0.3, lower: 0.08446094944905902, upper: 0.515539050550941, lambda: 390.3171444676234,
    pValue: 0.002562019153332245, variance: 0.0021571414567199292, nControl: 100, nTreatment: 100,
  }],
  [counts(100, 0), counts(100, 0), { tau: 0.03, alpha: 0.05 }, {
    estimate: 0.0, lower: -0.030133766723260975, upper: 0.030133766723260975, lambda: 0.31411113117382433,
    pValue: 1.0, variance: 9.851975296539556e-5, nControl: 100, nTreatment: 100,
  }],
  [counts(1000, 12), counts(1000, 25), { tau: 0.03, alpha: 0.0125 }, {
    estimate: 0.013000000000000001, lower: -0.00854008406354239, upper: 0.03454008406354239, lambda: 1.7684638302489408,
    pValue: 0.5654625120940321, variance: 3.715714854575994e-5, nControl: 1000, nTreatment: 1000,
  }],
  [counts(100, 100), counts(100, 98), { tau: 0.03, alpha: 0.05 }, {
    estimate: -0.020000000000000018, lower: -0.07334889050422327, upper: 0.03334889050422324, lambda: 0.8311564297821648,
    pValue: 1.0, variance: 0.0002906577786491523, nControl: 100, nTreatment: 100,
  }],
  [counts(5000, 50), counts(5000, 120), { tau: 0.03, alpha: 0.05, delta0: 0.01 }, {
    estimate: 0.014, lower: 0.005421572679832161, upper: 0.02257842732016784, lambda: 0.2811501626394139,
    pValue: 1.0, variance: 6.702122882761981e-6, nControl: 5000, nTreatment: 5000,
  }],
  // the sequence clipped to [−1, 1]
  [counts(2, 0), counts(2, 2), { tau: 0.03, alpha: 0.05 }, {
    estimate: 1.0, lower: -1.0, upper: 1.0, lambda: 1.0201485564555464,
    pValue: 0.9802493898285252, variance: 0.1388888888888889, nControl: 2, nTreatment: 2,
  }],
];

// [z, p] for MEANS in order: reference.py's `fixedHorizonZTest` section, z_m1 … z_m5
const Z_MEANS: [number, number][] = [
  [1.7635119575870288, 0.0778141823257048],
  [-2.3237900077244498, 0.02013675155034635],
  [5.3665631459995, 8.025111266927373e-8],
  [0.9534625892455924, 0.3403557423852016],
  [10.606601717798206, 2.776649386030749e-26],
];

describe(compareMeans, () => {
  it('should match the numerically integrated mixture and its inverted bounds', () => {
    for (const [c, t, opts, ref] of MEANS) expectComparison(compareMeans(c, t, opts), ref);
  });

  it('should reject exactly when the confidence sequence excludes δ0', () => {
    for (const [c, t, opts] of MEANS) {
      const r = compareMeans(c, t, opts)!;
      const delta0 = opts.delta0 ?? 0;
      expect(r.lambda >= 1 / opts.alpha).toBe(delta0 < r.lower || delta0 > r.upper);
    }
  });

  it('should be undefined while either side has fewer than two observations', () => {
    expect(compareMeans(sample(1, 0, 0), sample(10, 1, 1), { tau: 0.1, alpha: 0.05 })).toBeUndefined();
    expect(compareMeans(sample(10, 0, 1), sample(0, 0, 0), { tau: 0.1, alpha: 0.05 })).toBeUndefined();
  });

  it('should floor a zero variance instead of dividing by it', () => {
    const opts = { tau: 0.1, alpha: 0.05 };
    const same = compareMeans(sample(10, 1, 0), sample(10, 1, 0), opts)!;
    expect(same.variance).toBe(1e-12 * opts.tau * opts.tau);
    expect(same.pValue).toBe(1);
    expect(same.upper - same.lower).toBeLessThan(2e-5 * opts.tau);
    const apart = compareMeans(sample(10, 1, 0), sample(10, 1.001, 0), opts)!;
    expect(apart.pValue).toBe(0);
    expect(apart.lambda).toBe(Infinity);
  });

  it('should refuse options and summaries that are not ones', () => {
    const s = sample(10, 0, 1);
    const badOptions = [
      { tau: 0.1, alpha: 0 }, { tau: 0.1, alpha: 1 }, { tau: 0, alpha: 0.05 }, { tau: Number.NaN, alpha: 0.05 }, { tau: 0.1, alpha: 0.05, delta0: Infinity },
    ];
    for (const opts of badOptions) expect(() => compareMeans(s, s, opts)).toThrow(RangeError);
    expect(() => compareMeans(sample(10, 0, -1), s, { tau: 0.1, alpha: 0.05 })).toThrow(RangeError);
    expect(() => compareMeans(sample(2.5, 0, 1), s, { tau: 0.1, alpha: 0.05 })).toThrow(RangeError);
  });
});

describe(compareProportions, () => {
  it('should match the numerically integrated mixture with the shrunk-rate variance', () => {
    for (const [c, t, opts, ref] of PROPS) expectComparison(compareProportions(c, t, opts), ref);
  });

  it('should not take 0 errors against 0 errors for significant, and should take 30 of 100 against 0 of 100', () => {
    // at the default τ, even with α = 0.05 split over four metrics
    const opts = { tau: DEFAULT_TAU.errorRate, alpha: 0.05 / 4 };
    for (const n of [2, 10, 100, 10_000, 1_000_000]) expect(compareProportions(counts(n, 0), counts(n, 0), opts)!.pValue).toBe(1);
    const bad = compareProportions(counts(100, 0), counts(100, 30), opts)!;
    expect(bad.pValue).toBeLessThan(opts.alpha);
    expect(bad.lower).toBeGreaterThan(0);
  });

  it('should refuse counts that are not counts', () => {
    const opts = { tau: 0.03, alpha: 0.05 };
    for (const bad of [counts(10, 11), counts(10, -1), counts(10, 0.5), counts(-1, 0)]) {
      expect(() => compareProportions(bad, counts(10, 1), opts)).toThrow(RangeError);
    }
    expect(compareProportions(counts(1, 0), counts(10, 1), opts)).toBeUndefined();
  });
});

describe(shrunkRate, () => {
  it('should shrink toward ½ by one pseudo-observation and never reach 0 or 1', () => {
    expect(shrunkRate(counts(100, 0))).toBe(0.5 / 101);
    expect(shrunkRate(counts(100, 100))).toBe(100.5 / 101);
    expect(shrunkRate(counts(0, 0))).toBe(0.5);
  });
});

describe(meanSequence, () => {
  it('should match the reference one-sample sequence', () => {
    const r = meanSequence(sample(30, 0.7, 2.0), { tau: 0.1, alpha: 0.05 })!;
    expectClose(r.estimate, 0.7);
    expectClose(r.lower, -1.0702367026795048);
    expectClose(r.upper, 2.4702367026795047);
    expect(meanSequence(sample(1, 0.7, 0), { tau: 0.1, alpha: 0.05 })).toBeUndefined();
  });
});

describe(proportionSequence, () => {
  it('should match the reference one-sample sequence, clipped to [0, 1]', () => {
    const r = proportionSequence(counts(200, 7), { tau: 0.03, alpha: 0.05 })!;
    expectClose(r.estimate, 0.035);
    expect(r.lower).toBe(0);
    expectClose(r.upper, 0.0759545487175548);
    expect(proportionSequence(counts(3, 0), { tau: 0.03, alpha: 0.05 })).toEqual({ estimate: 0, lower: 0, upper: 1 });
  });
});

describe(fixedHorizonZTest, () => {
  it('should match scipy.stats.norm for means (unpooled) and rates (pooled), far into the tail', () => {
    const cases: [SampleSummary | CountSummary, SampleSummary | CountSummary, number, number][] = [
      ...MEANS.map(([c, t], i): [SampleSummary, SampleSummary, number, number] => [c, t, ...Z_MEANS[i]!]),
      [sample(1000, 0, 1), sample(1000, 0.313, 1), 6.998892769574342, 2.5799321588296453e-12],
      [counts(100, 0), counts(100, 30), 5.940885257860046, 2.834869930488161e-9],
      [counts(1000, 12), counts(1000, 25), 2.1572344060855686, 0.030987404928045],
      [counts(5000, 50), counts(5000, 120), 5.414979544815266, 6.129571281496162e-8],
    ];
    for (const [c, t, z, p] of cases) {
      const r = fixedHorizonZTest(c as SampleSummary, t as SampleSummary, 0.05);
      expectClose(r.z, z);
      expectClose(r.pValue, p);
      expect(r.reject).toBe(p < 0.05);
    }
  });

  it('should handle constant and too small samples without NaN', () => {
    expect(fixedHorizonZTest(counts(100, 0), counts(100, 0), 0.05)).toEqual({ z: 0, pValue: 1, reject: false });
    expect(fixedHorizonZTest(sample(5, 1, 0), sample(5, 2, 0), 0.05)).toEqual({ z: Infinity, pValue: 0, reject: true });
    expect(fixedHorizonZTest(sample(1, 1, 0), sample(5, 2, 1), 0.05)).toEqual({ z: 0, pValue: 1, reject: false });
    expect(() => fixedHorizonZTest(counts(5, 1) as never, sample(5, 2, 1) as never, 0.05)).toThrow(TypeError);
  });
});

describe(quantile, () => {
  it('should interpolate linearly like numpy.quantile', () => {
    const values = [0.5, 1.0, 2.2, 3.1, 4.4, 7.3, 9.7];
    const qs = [0, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 1];
    const ref = [0.5, 0.8, 1.6, 3.1, 8.26, 8.979999999999997, 9.555999999999997, 9.7];
    qs.forEach((q, i) => expectClose(quantile(values, q), ref[i]!));
    expect([0, 0.3, 0.5, 1].map((q) => quantile([10, 20], q))).toEqual([10, 13, 15, 20]);
    expect(quantile([42], 0.7)).toBe(42);
  });

  it('should give NaN for no values and refuse a q outside [0, 1]', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
    expect(() => quantile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe(runningMin, () => {
  it('should keep the smallest p-value seen, starting from the first', () => {
    let p: number | undefined;
    for (const next of [1, 0.4, 0.7, Number.NaN, 0.2, 0.9]) p = runningMin(p, next);
    expect(p).toBe(0.2);
    expect(runningMin(undefined, 0.3)).toBe(0.3);
  });
});
