/**
 * What `tessera tune` may try: instance × thread pairs for the cores there are, max batch sizes up
 * to the model's, queue delays, client concurrencies. Each list comes in priority order: the plan
 * (`plan.ts`) drops candidates from the end when the time budget is short.
 */

/** `batching.maxQueueDelayMs`: a fixed delay in ms, or the adaptive one. */
export type QueueDelay = number | 'auto';

/** Instances per version and, for backends with an intra-op thread pool, threads per instance. */
export interface InstancePair {
  instances: number;
  /** `sessionOptions.intraOpNumThreads`; undefined for backends without one. */
  threads?: number;
}

/** One configuration of the server under test. */
export interface TunePoint extends InstancePair {
  /** `batching.maxBatchSize`; undefined: the model's own (the first server reads it). */
  maxBatchSize?: number;
  maxQueueDelayMs: QueueDelay;
}

/** Queue delays tried at the chosen max batch size, in priority order (`auto` first: it is what stage 1 and 2 use). */
export const QUEUE_DELAYS: readonly QueueDelay[] = ['auto', 0, 2, 5, 1];

/** Backends whose instances have an intra-op thread pool set by `sessionOptions.intraOpNumThreads`. */
export const THREADED_BACKENDS: ReadonlySet<string> = new Set(['onnxruntime']);

/** Powers of two from 1 up to `max` (at least `[1]`). */
function powersOfTwo(max: number): number[] {
  const out: number[] = [];
  for (let n = 1; n <= Math.max(1, max); n *= 2) out.push(n);
  return out;
}

/**
 * `values` reordered so that any prefix spreads over the range: the last, the first, then the middle
 * of each gap in turn (breadth first). A plan cut short keeps the extremes and a few between.
 */
export function spreadOrder<T>(values: readonly T[]): T[] {
  if (values.length <= 2) return [...values].reverse();
  const out: T[] = [values.at(-1)!, values[0]!];
  let gaps: Array<[number, number]> = [[0, values.length - 1]];
  while (gaps.length > 0) {
    const next: Array<[number, number]> = [];
    for (const [lo, hi] of gaps) {
      if (hi - lo < 2) continue;
      const mid = Math.floor((lo + hi) / 2);
      out.push(values[mid]!);
      next.push([lo, mid], [mid, hi]);
    }
    gaps = next;
  }
  return out;
}

/**
 * Instance × thread pairs for `cores` cores, in priority order. With threads: for each power-of-two
 * instance count, the threads that fill the cores less a reserve for the event loop and the load
 * generator (an eighth of them from 4 cores up; measured: ORT's pool over every core runs at 0.41× of
 * raw on 16 cores, two instances of six threads at 0.91×), balanced pairs first; then the pairs that
 * fill every core; then half the threads. Without threads: power-of-two instance counts up to the cores.
 */
export function instancePairs(cores: number, threaded: boolean): InstancePair[] {
  const c = Math.max(1, Math.floor(cores));
  if (!threaded) return spreadOrder(powersOfTwo(c)).map((instances) => ({ instances }));
  const reserve = c >= 4 ? Math.ceil(c / 8) : 0;
  const usable = c - reserve;
  const seen = new Set<string>();
  const pairs: InstancePair[] = [];
  const add = (instances: number, threads: number): void => {
    const t = Math.max(1, threads);
    const key = `${instances}x${t}`;
    if (instances * t > c || seen.has(key)) return;
    seen.add(key);
    pairs.push({ instances, threads: t });
  };
  // balanced pairs first within each group: the extremes (one big pool, many single threads) last
  const balance = (p: InstancePair): number => Math.abs(Math.log2(p.instances) - Math.log2(p.threads!));
  const group = (threadsFor: (i: number) => number, counts: number[]): void => {
    const list = counts.map((i) => ({ instances: i, threads: Math.max(1, threadsFor(i)) }));
    for (const p of list.sort((a, b) => balance(a) - balance(b) || a.instances - b.instances)) add(p.instances, p.threads);
  };
  group((i) => Math.floor(usable / i), powersOfTwo(usable));
  group((i) => Math.floor(c / i), powersOfTwo(c));
  group((i) => Math.floor(usable / i / 2), powersOfTwo(usable));
  return pairs;
}

/** Max batch sizes to try for a model that batches up to `cap`: powers of two below it and `cap`, spread (cap first); `[]` for a model that does not batch. */
export function batchSizes(cap: number): number[] {
  if (cap <= 0) return [];
  const sizes = powersOfTwo(cap).filter((n) => n < cap);
  return spreadOrder([...sizes, cap]);
}

/**
 * Client concurrencies (connections, each waiting for its answer) when `--concurrency` is not
 * given: 1, the max batch size and twice it — one client alone, enough to fill one batch, and
 * enough to keep a batch queued while one runs; with a latency budget also a quarter and a half of
 * the max batch size, since the budget is met up to some concurrency and the search looks for it.
 * A model that does not batch gets the cores in place of the max batch size.
 */
export function defaultConcurrency(cap: number, cores: number, budget = false): number[] {
  const base = cap > 1 ? cap : Math.max(2, cores);
  const levels = budget ? [1, Math.floor(base / 4), Math.floor(base / 2), base, 2 * base] : [1, base, 2 * base];
  return [...new Set(levels.filter((n) => n >= 1))].sort((a, b) => a - b);
}

/** Concurrencies in priority order: the highest (stage 1 uses it), the lowest, then spread between. */
export function concurrencyOrder(values: readonly number[]): number[] {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  return spreadOrder(sorted);
}

/** A point as the output and the overlay's comment write it: `instances 2, threads 6, max batch 32, delay auto`. */
export function describePoint(p: TunePoint): string {
  const parts = [`instances ${p.instances}`];
  if (p.threads !== undefined) parts.push(`threads ${p.threads}`);
  if (p.maxBatchSize !== undefined) parts.push(`max batch ${p.maxBatchSize}`);
  if (p.maxBatchSize !== 0) parts.push(`delay ${p.maxQueueDelayMs === 'auto' ? 'auto' : `${p.maxQueueDelayMs} ms`}`);
  return parts.join(', ');
}
