import type { Measurement } from './measurement.js';

/** What the sweep found for a latency budget. */
export interface Choice {
  /** The highest throughput among error-free measurements whose p99 is within the budget. */
  best?: Measurement;
  /** Without a `best`: the error-free measurement with the lowest p99 (or, when every one had errors, the one with the fewest). */
  closest?: Measurement;
  /** Measurements that qualified. */
  qualified: number;
}

/** Whether `m` had answers, no errors and (with a budget) a p99 within it. */
export function qualifies(m: Measurement, budgetMs?: number): boolean {
  if (m.ok === 0 || m.errors > 0 || m.p99Ms === undefined) return false;
  return budgetMs === undefined || m.p99Ms <= budgetMs;
}

/**
 * The rule of `tessera tune`: the best point is the one with the highest throughput (samples per
 * second) whose p99 latency is within `budgetMs` and that answered every request; ties go to the
 * lower p99. Without a budget, the highest throughput that answered every request.
 */
export function chooseBest(measurements: readonly Measurement[], budgetMs?: number): Choice {
  const qualified = measurements.filter((m) => qualifies(m, budgetMs));
  if (qualified.length > 0) {
    const best = qualified.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec || (b.samplesPerSec === a.samplesPerSec && b.p99Ms! < a.p99Ms!) ? b : a));
    return { best, qualified: qualified.length };
  }
  const clean = measurements.filter((m) => m.ok > 0 && m.errors === 0 && m.p99Ms !== undefined);
  if (clean.length > 0) return { closest: clean.reduce((a, b) => (b.p99Ms! < a.p99Ms! ? b : a)), qualified: 0 };
  const answered = measurements.filter((m) => m.ok > 0);
  if (answered.length > 0) return { closest: answered.reduce((a, b) => (b.errors / (b.ok + b.errors) < a.errors / (a.ok + a.errors) ? b : a)), qualified: 0 };
  return { qualified: 0 };
}

/** The highest throughput among `measurements` whatever their latency, error-free ones first (how stage 1 ranks pairs). */
export function fastest(measurements: readonly Measurement[]): Measurement | undefined {
  const clean = measurements.filter((m) => m.errors === 0 && m.ok > 0);
  const pool = clean.length > 0 ? clean : measurements.filter((m) => m.ok > 0);
  return pool.reduce<Measurement | undefined>((a, b) => (a === undefined || b.samplesPerSec > a.samplesPerSec ? b : a), undefined);
}
