import type { TunePoint } from './space.js';

/** The stage of the search a measurement belongs to (see `plan.ts`). */
export type TuneStage = 'threads' | 'batch' | 'delay' | 'confirm';

/** One point measured at one concurrency. */
export interface Measurement {
  stage: TuneStage;
  point: TunePoint;
  /** Connections, each sending its next request when the last was answered. */
  concurrency: number;
  /** How long the measured load ran, ms. */
  durationMs: number;
  /** 2xx answers. */
  ok: number;
  /** Non-2xx answers, connection errors and timeouts. */
  errors: number;
  /** Answered samples (dim 0) per second. */
  samplesPerSec: number;
  /** Latency of the 2xx answers, ms (undefined without any). */
  p50Ms?: number;
  p99Ms?: number;
  /** Samples per executed batch, from the server's `tessera_batch_size` histogram. */
  meanBatch?: number;
  /** The status codes of the errors, for the output (`503: 12`). */
  errorCodes?: Record<string, number>;
}

/** The nearest-rank percentile `q` (0–1) of `sorted` (ascending). */
export function percentile(sorted: ArrayLike<number>, q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Whether two points have the same settings. */
export function samePoint(a: TunePoint, b: TunePoint): boolean {
  return a.instances === b.instances && a.threads === b.threads && a.maxBatchSize === b.maxBatchSize && a.maxQueueDelayMs === b.maxQueueDelayMs;
}
