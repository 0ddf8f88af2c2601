import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

/** The part of autocannon's API used here (it ships no types). */
interface AutocannonInstance extends EventEmitter, PromiseLike<AutocannonResult> {
  stop(): void;
}
interface AutocannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;

let autocannon: Autocannon | undefined;

/** autocannon, loaded on first use (only `tessera tune` needs it). */
function loadAutocannon(): Autocannon {
  autocannon ??= createRequire(import.meta.url)('autocannon') as Autocannon;
  return autocannon;
}

/** A closed-loop load: `connections` clients, each sending `body` again once answered, for `durationMs`. */
export interface LoadSpec {
  url: string;
  body: Buffer;
  headers: Record<string, string>;
  connections: number;
  durationMs: number;
  /** One request's timeout, s (default 10): it counts as an error. */
  timeoutS?: number;
}

export interface LoadResult {
  /** From the first request to the stop, ms. */
  elapsedMs: number;
  /** Latencies of the 2xx answers, ms, ascending (autocannon's own histogram rounds to whole milliseconds; these come from each response). */
  latenciesMs: Float64Array;
  /** Non-2xx answers by status code. */
  statusCodes: Record<string, number>;
  /** Connection errors and timeouts. */
  errors: number;
}

/**
 * Runs one load with autocannon and collects every answer's latency. It always ends: at its
 * duration (autocannon checks every `sampleInt`, 100 ms here), at `signal`, or at a guard of the
 * duration plus the request timeout should autocannon itself hang.
 */
export async function runLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  const timeoutS = spec.timeoutS ?? 10;
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const instance = loadAutocannon()({
    url: spec.url,
    method: 'POST',
    headers: spec.headers,
    body: spec.body,
    connections: spec.connections,
    duration: spec.durationMs / 1000,
    sampleInt: 100,
    timeout: timeoutS,
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms);
    else statusCodes[status] = (statusCodes[status] ?? 0) + 1;
  });
  const started = performance.now();
  const stop = (): void => instance.stop();
  if (signal?.aborted) stop();
  else signal?.addEventListener('abort', stop, { once: true });
  const guard = setTimeout(stop, spec.durationMs + timeoutS * 1000 + 5000);
  let result: AutocannonResult;
  try {
    result = await instance;
  } finally {
    clearTimeout(guard);
    signal?.removeEventListener('abort', stop);
  }
  const elapsedMs = performance.now() - started;
  const sorted = Float64Array.from(latencies).sort();
  return { elapsedMs, latenciesMs: sorted, statusCodes, errors: result.errors };
}
