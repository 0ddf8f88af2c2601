/** What the sequential tests read from one arm of a continuous metric (e.g. log latency). */
export interface SampleSummary {
  /** Observations. */
  n: number;
  mean: number;
  /** Unbiased sample variance (divisor n − 1); 0 when n < 2. */
  variance: number;
}

/** What the sequential tests read from one arm of a rate (e.g. server faults): `successes` of `n` trials. */
export interface CountSummary {
  /** Trials. */
  n: number;
  /** Trials that had the outcome being counted (for an error rate: the errors). */
  successes: number;
}

/** The persisted form of `RunningMoments`: `m2` is the sum of squared deviations from the mean. */
export interface RunningMomentsJSON {
  n: number;
  mean: number;
  m2: number;
}

/**
 * Count, mean and variance of a stream in O(1) memory (Welford's update; Chan et al.'s merge), numerically
 * stable where the textbook Σx² − n·mean² loses every digit to cancellation (latencies around a large offset).
 */
export class RunningMoments {
  #n = 0;
  #mean = 0;
  #m2 = 0;

  /** Moments of `values` (non-finite ones skipped, as in `add`). */
  static of(values: Iterable<number>): RunningMoments {
    const m = new RunningMoments();
    for (const x of values) m.add(x);
    return m;
  }

  /**
   * Restores what `toJSON` wrote. Anything else (a value from an older format, a hand-edited file) gives
   * empty moments rather than an error: the router then starts judging afresh, which is always safe.
   */
  static fromJSON(json: unknown): RunningMoments {
    const m = new RunningMoments();
    if (typeof json !== 'object' || json === null) return m;
    const { n, mean, m2 } = json as Partial<Record<keyof RunningMomentsJSON, unknown>>;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return m;
    if (typeof mean !== 'number' || !Number.isFinite(mean) || typeof m2 !== 'number' || !Number.isFinite(m2) || m2 < 0) return m;
    // a single observation has no spread; an empty stream no mean
    if (n === 0 || (n === 1 && m2 !== 0)) return m;
    m.#n = n;
    m.#mean = mean;
    m.#m2 = m2;
    return m;
  }

  /** Observations added so far. */
  get n(): number {
    return this.#n;
  }

  /** Mean of the observations; 0 when there are none. */
  get mean(): number {
    return this.#mean;
  }

  /** Unbiased sample variance (divisor n − 1); 0 when n < 2. */
  get variance(): number {
    return this.#n < 2 ? 0 : this.#m2 / (this.#n - 1);
  }

  /** Adds one observation. Non-finite values are skipped: one NaN would poison every later statistic. */
  add(x: number): void {
    if (!Number.isFinite(x)) return;
    this.#n += 1;
    const d = x - this.#mean;
    this.#mean += d / this.#n;
    this.#m2 += d * (x - this.#mean);
  }

  /** Adds every observation `other` has seen (e.g. one interval's moments into the running total); `other` is unchanged. */
  merge(other: RunningMoments): this {
    const nb = other.#n;
    if (nb === 0) return this;
    const na = this.#n;
    const n = na + nb;
    const d = other.#mean - this.#mean;
    this.#mean += (d * nb) / n;
    this.#m2 += other.#m2 + (d * d * na * nb) / n;
    this.#n = n;
    return this;
  }

  /** A snapshot for the sequential tests. */
  summary(): SampleSummary {
    return { n: this.#n, mean: this.#mean, variance: this.variance };
  }

  /** The persisted form; `fromJSON` restores it exactly. */
  toJSON(): RunningMomentsJSON {
    return { n: this.#n, mean: this.#mean, m2: this.#m2 };
  }
}
