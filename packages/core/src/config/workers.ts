import { availableCores } from '../internal/cores.js';

/** The most workers `server.workers: auto` starts. */
export const AUTO_WORKERS_MAX = 8;
/** Fewer cores than this: `auto` is one process (a cluster's primary and IPC cost more than they give). */
export const AUTO_WORKERS_MIN_CORES = 8;

/** What else decides `auto`. */
export interface WorkersContext {
  /** `server.rateLimit` counts in memory (no `redis`): several workers would count apart, so `auto` is 1. */
  localRateLimit?: boolean;
}

/**
 * `server.workers` as a count: an integer as given; `auto`: a worker per 4 cores this process may
 * use (`availableCores()`: the cgroup CPU quota included), one below 8 cores, at most
 * {@link AUTO_WORKERS_MAX}; 1 where several workers would change what the server does, not only how
 * fast (a rate limit counted in memory). Why a quarter, measured on 16 cores
 * (docs/benchmarks.md, `bench/sizing.mjs` and `bench/llm.mjs`): one event loop tops out at about
 * 4,000 binary OCR requests a second and about 23,000 streamed tokens; 4 workers serve the
 * classifier at 1.7 × one process and stream 256 paced streams within 0.75 ms of the direct TTFT;
 * 8 workers did no better for the classifier and skewed least-loaded balancing (each counts its own
 * requests in flight: 2.3 × between replicas against 1.02 × with 4). Each worker sizes itself for
 * its share of the cores (`coreShares`).
 */
export function resolveWorkers(value: number | 'auto', cores: number = availableCores(), context: WorkersContext = {}): number {
  if (value !== 'auto') return value;
  if (context.localRateLimit || cores < AUTO_WORKERS_MIN_CORES) return 1;
  return Math.min(AUTO_WORKERS_MAX, Math.floor(cores / 4));
}

/**
 * Each worker's share of the cores, by slot (1…N): `cores / workers` rounded down, the remainder
 * given one each to the first slots, at least 1. The primary hands a worker its share as
 * `TESSERA_CPUS` (and its share of the memory as `TESSERA_MEMORY`), so whatever sizes itself from
 * the machine inside the worker (the ONNX Runtime backend's `instances: auto` and threads,
 * libuv's pool) sizes for its part of the cores, not for all of them N times over.
 */
export function coreShares(cores: number, workers: number): number[] {
  const base = Math.floor(cores / workers);
  const extra = cores - base * workers;
  return Array.from({ length: workers }, (_, i) => Math.max(1, base + (i < extra ? 1 : 0)));
}
