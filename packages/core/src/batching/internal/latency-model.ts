/** Weight of a new measurement in the per-size EWMA of execution times. */
const EXEC_ALPHA = 0.2;
/** Most observations a batch size counts with in the fit (so a size seen often does not drown the others). */
const FIT_WEIGHT_CAP = 16;

/**
 * Execution time against batch size, learned online: an EWMA per size, and an affine fit
 * t(b) = a + c·b over the sizes seen, weighted by how often each was seen (capped).
 */
export class BatchLatencyModel {
  readonly #mean = new Map<number, { ms: number; n: number }>();
  #observations = 0;
  #a = 0;
  #c = 0;
  #dirty = false;

  /** Records one execution of `samples` samples that took `ms`. */
  observe(samples: number, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const cell = this.#mean.get(samples);
    if (cell) {
      cell.ms += EXEC_ALPHA * (ms - cell.ms);
      cell.n++;
    } else {
      this.#mean.set(samples, { ms, n: 1 });
    }
    this.#observations++;
    this.#dirty = true;
  }

  /** Executions observed so far. */
  get observations(): number {
    return this.#observations;
  }

  /** The fitted fixed cost per execution (a) and cost per sample (c), in ms. */
  coefficients(): { a: number; c: number } {
    if (this.#dirty) this.#fit();
    return { a: this.#a, c: this.#c };
  }

  /** Predicted execution time of a batch of `samples` samples (0 before any observation). */
  predict(samples: number): number {
    const { a, c } = this.coefficients();
    return a + c * samples;
  }

  #fit(): void {
    this.#dirty = false;
    let s0 = 0;
    let sb = 0;
    let sbb = 0;
    let st = 0;
    let sbt = 0;
    for (const [b, { ms, n }] of this.#mean) {
      const w = Math.min(n, FIT_WEIGHT_CAP);
      s0 += w;
      sb += w * b;
      sbb += w * b * b;
      st += w * ms;
      sbt += w * b * ms;
    }
    if (s0 === 0) return;
    const denominator = s0 * sbb - sb * sb;
    if (this.#mean.size >= 2 && denominator > 0) {
      let c = (s0 * sbt - sb * st) / denominator;
      let a = (st - c * sb) / s0;
      if (c < 0) {
        // bigger batches measured faster: noise; take the cost as flat
        c = 0;
        a = st / s0;
      } else if (a < 0) {
        c = sbb > 0 ? sbt / sbb : 0;
        a = 0;
      }
      this.#a = a;
      this.#c = c;
    } else if (sb > 0) {
      // one size seen: no evidence that batching saves anything, so assume it does not
      this.#a = 0;
      this.#c = st / sb;
    } else {
      this.#a = st / s0;
      this.#c = 0;
    }
  }
}
