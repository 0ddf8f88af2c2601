/** Weight of a new gap in the EWMA of inter-arrival times (and of samples per request). */
const ARRIVAL_ALPHA = 0.2;
/** Shape keys whose arrival statistics are kept (the least recently seen goes first past the cap). */
const ARRIVAL_KEYS_CAP = 256;

/** What the batcher knows about the arrivals of one shape key. */
export interface ArrivalStats {
  /** When the last request arrived (`performance.now()`). */
  last: number;
  /** EWMA of the time between arrivals, ms (undefined until two arrivals). */
  gap: number | undefined;
  /** EWMA of samples per request. */
  samples: number;
}

/**
 * Arrival statistics per shape key, for the adaptive delay: when the next request is due and how
 * many samples it brings. Bounded: a stream of ever new shapes cannot grow it without limit.
 */
export class ArrivalTracker {
  readonly #byKey = new Map<string, ArrivalStats>();

  get(key: string): ArrivalStats | undefined {
    return this.#byKey.get(key);
  }

  /** Records a request of `samples` samples arriving at `t`. */
  record(key: string, samples: number, t: number): void {
    const stats = this.#byKey.get(key);
    if (!stats) {
      if (this.#byKey.size >= ARRIVAL_KEYS_CAP) this.#byKey.delete(this.#byKey.keys().next().value!);
      this.#byKey.set(key, { last: t, gap: undefined, samples });
      return;
    }
    const gap = t - stats.last;
    stats.gap = stats.gap === undefined ? gap : stats.gap + ARRIVAL_ALPHA * (gap - stats.gap);
    stats.samples += ARRIVAL_ALPHA * (samples - stats.samples);
    stats.last = t;
    // most recently used last, so the cap evicts the stalest shape
    this.#byKey.delete(key);
    this.#byKey.set(key, stats);
  }
}
