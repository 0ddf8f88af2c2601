import type { InstancePair, QueueDelay } from './space.js';

/**
 * The staged search of `tessera tune`, and how it fits the time budget.
 *
 * 1. *instances × threads*: each pair on a server of its own (loading is the costly part), at the
 *    largest max batch size, the adaptive delay and the highest concurrency;
 * 2. *max batch size* on the best pair: each size (adaptive delay) at every concurrency, changed by
 *    a config reload of the same server;
 * 3. *queue delay* at the best size: the fixed delays at every concurrency;
 * 4. *confirmation* (with a latency budget): the chosen point once more.
 *
 * When the whole search does not fit, candidates are dropped from the end of their priority lists,
 * the longest list first (ties: delays, sizes, pairs, concurrencies with a latency budget;
 * concurrencies first without one), until it fits with measurements of `preferMeasureMs` (or, at the
 * smallest search, of at least `minMeasureMs`).
 */

/** What one step of the sweep costs, ms: estimated before the first server, measured after. */
export interface SweepCosts {
  /** Starting a server: spawn, plugins, loading and warming the model. */
  startMs: number;
  /** A config reload that loads the model afresh (a batching change does). */
  reloadMs: number;
  /** Around each measurement: metric scrapes, connection set-up, the load generator's start and stop. */
  overheadMs: number;
}

/** First guesses, replaced by what the first server start and reload take. */
export const DEFAULT_COSTS: SweepCosts = { startMs: 3000, reloadMs: 1000, overheadMs: 300 };

export interface PlanInput {
  /** Stage 1 candidates, in priority order (one pair: stage 1 is skipped or already done). */
  pairs: readonly InstancePair[];
  /** Max batch sizes, in priority order (empty: the model does not batch; stages 2 and 3 are skipped). */
  batchSizes: readonly number[];
  /** Queue delays, in priority order, `auto` first. */
  delays: readonly QueueDelay[];
  /** Concurrencies, in priority order, the highest first. */
  concurrency: readonly number[];
  /** Time for everything the plan does, ms. */
  timeMs: number;
  costs: SweepCosts;
  /** Whether a latency budget was given: adds the confirmation, and keeps concurrencies longer when the time is short. */
  budget: boolean;
  /** Whether stage 1 still has to run (false when re-planning after it). Default true. */
  stage1?: boolean;
  /** Whether the best pair's server must be started for stage 2 (re-planning after stage 1: false when it still runs). */
  restart?: boolean;
  /** Shortest measurement, ms (default 1000). */
  minMeasureMs?: number;
  /** Candidates are dropped until measurements are at least this long, ms (default 2000): fewer points measured well beat many measured badly. */
  preferMeasureMs?: number;
  /** Longest measurement, ms (default 15000): a long budget measures more points rather than much longer ones. */
  maxMeasureMs?: number;
}

export interface SweepPlan {
  pairs: InstancePair[];
  batchSizes: number[];
  delays: QueueDelay[];
  /** Ascending. */
  concurrency: number[];
  /** Measured load per point, ms. */
  measureMs: number;
  /** Load before each measurement, not counted (the adaptive delay learns, caches warm), ms. */
  warmupMs: number;
  measurements: number;
  servers: number;
  reloads: number;
  /** What the plan should take, ms. */
  estimatedMs: number;
  /** False when even the smallest search at `minMeasureMs` overruns the time. */
  fits: boolean;
  /** Candidates left out for time, as the output says them (`threads: 2×1, 1×1`). */
  dropped: string[];
}

/** The warm-up that goes with a measurement of `measureMs`: a third of it, from 0.5 s to 3 s. */
export function warmupFor(measureMs: number): number {
  return Math.floor(Math.min(3000, Math.max(500, measureMs / 3)));
}

/** The measurement whose measurement, warm-up and overhead together take `perMs` (the inverse of `warmupFor` plus overhead). */
function measureFor(perMs: number, overheadMs: number): number {
  const net = perMs - overheadMs;
  // warm-up 0.5 s up to measurements of 1.5 s, a third of the measurement up to 9 s, then 3 s
  if (net - 500 <= 1500) return net - 500;
  if ((net * 3) / 4 <= 9000) return (net * 3) / 4;
  return net - 3000;
}

interface Counts {
  measurements: number;
  servers: number;
  reloads: number;
}

/** Servers, reloads and measurements of a search over these lists. */
export function countSweep(pairs: number, sizes: number, delays: number, concurrency: number, options: { budget: boolean; stage1: boolean; restart: boolean }): Counts {
  let measurements = 0;
  let servers = 0;
  let reloads = 0;
  if (options.stage1) {
    measurements += pairs;
    servers += pairs;
  }
  // the best pair's server again, unless it is the one still running
  if (options.restart && (!options.stage1 || pairs > 1)) servers += 1;
  // stage 2: the first size is stage 1's setting (no reload), which stage 1 measured at the highest concurrency
  const sizeCount = Math.max(1, sizes);
  measurements += concurrency - 1 + (sizeCount - 1) * concurrency;
  reloads += sizeCount - 1;
  if (sizes > 0) {
    measurements += (delays - 1) * concurrency;
    reloads += delays - 1;
  }
  if (options.budget) {
    measurements += 1;
    reloads += 1;
  }
  return { measurements, servers, reloads };
}

/** Plans the search to fit `timeMs` (see the file's comment). Pure: the same input gives the same plan. */
export function planSweep(input: PlanInput): SweepPlan {
  const minMeasure = input.minMeasureMs ?? 1000;
  const preferMeasure = Math.max(minMeasure, input.preferMeasureMs ?? 2000);
  const maxMeasure = input.maxMeasureMs ?? 15_000;
  const stage1 = input.stage1 ?? true;
  const restart = input.restart ?? true;
  const lists = {
    pairs: [...input.pairs],
    batchSizes: [...input.batchSizes],
    delays: input.batchSizes.length === 0 || Math.max(...input.batchSizes) <= 1 ? input.delays.slice(0, 1) : [...input.delays],
    concurrency: [...input.concurrency],
  };
  const dropped = { pairs: [] as string[], batchSizes: [] as string[], delays: [] as string[], concurrency: [] as string[] };
  // without a budget only the best throughput counts: concurrencies go first; with one they go last (on ties)
  const order: Array<keyof typeof lists> = input.budget ? ['delays', 'batchSizes', 'pairs', 'concurrency'] : ['concurrency', 'delays', 'batchSizes', 'pairs'];
  const evaluate = (): { counts: Counts; measureMs: number } => {
    const counts = countSweep(lists.pairs.length, lists.batchSizes.length, lists.delays.length, lists.concurrency.length, { budget: input.budget, stage1, restart });
    const fixed = counts.servers * input.costs.startMs + counts.reloads * input.costs.reloadMs;
    const per = counts.measurements > 0 ? (input.timeMs - fixed) / counts.measurements : Number.POSITIVE_INFINITY;
    return { counts, measureMs: measureFor(per, input.costs.overheadMs) };
  };
  let current = evaluate();
  while (current.measureMs < preferMeasure) {
    // the longest list loses its last candidate; ties go in `order`
    const key = order.reduce((a, b) => (lists[b].length > lists[a].length ? b : a));
    if (lists[key].length <= 1) break;
    const value = lists[key].pop()!;
    dropped[key].push(typeof value === 'object' ? pairLabel(value) : String(value));
    current = evaluate();
  }
  const fits = current.measureMs >= minMeasure;
  const measureMs = Math.floor(Math.min(maxMeasure, Math.max(minMeasure, current.measureMs)));
  const warmupMs = warmupFor(measureMs);
  const { counts } = current;
  const estimatedMs = counts.servers * input.costs.startMs + counts.reloads * input.costs.reloadMs + counts.measurements * (measureMs + warmupMs + input.costs.overheadMs);
  const said: string[] = [];
  if (dropped.pairs.length > 0) said.push(`instances×threads ${dropped.pairs.join(', ')}`);
  if (dropped.batchSizes.length > 0) said.push(`max batch ${dropped.batchSizes.join(', ')}`);
  if (dropped.delays.length > 0) said.push(`delay ${dropped.delays.join(', ')}`);
  if (dropped.concurrency.length > 0) said.push(`concurrency ${dropped.concurrency.join(', ')}`);
  return {
    pairs: lists.pairs,
    batchSizes: lists.batchSizes,
    delays: lists.delays,
    concurrency: [...lists.concurrency].sort((a, b) => a - b),
    measureMs,
    warmupMs,
    ...counts,
    estimatedMs,
    fits,
    dropped: said,
  };
}

/** `2×6` (instances × threads), or `2` without threads. */
export function pairLabel(p: InstancePair): string {
  return p.threads === undefined ? String(p.instances) : `${p.instances}×${p.threads}`;
}
