import type { ServingEventMap, ServingEvents } from '../contracts/events.js';

/** Triton's `$duration_stat`: how many times, and the total time in nanoseconds. */
export interface DurationStat {
  count: number;
  ns: number;
}

/** Triton's `$batch_stats`: executions of one batch size. */
export interface TritonBatchStats {
  batch_size: number;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
}

/** Triton's `$inference_stats`. */
export interface TritonInferenceStats {
  success: DurationStat;
  fail: DurationStat;
  queue: DurationStat;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
  cache_hit: DurationStat;
  cache_miss: DurationStat;
}

/** Triton's `$model_stat`: one model version's statistics since it was loaded. */
export interface TritonModelStats {
  name: string;
  version: string;
  /** When the last successful execution ended, ms since the epoch (0: none yet). */
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: TritonInferenceStats;
  /** Per-response statistics of decoupled models; Tessera's tensor models answer once: always empty. */
  response_stats: Record<string, never>;
  batch_stats: TritonBatchStats[];
  memory_usage: never[];
}

const NS_PER_MS = 1e6;

/** A running count and total, in nanoseconds (a double: exact to the nanosecond up to 104 days of summed time). */
class Duration {
  count = 0;
  ns = 0;

  add(ms: number, times = 1): void {
    this.count += times;
    this.ns += ms * NS_PER_MS;
  }

  json(): DurationStat {
    return { count: this.count, ns: Math.round(this.ns) };
  }
}

/** One model version's counters (created on its first event). */
class VersionStats {
  lastInference = 0;
  inferences = 0;
  executions = 0;
  readonly success = new Duration();
  readonly fail = new Duration();
  readonly queue = new Duration();
  readonly input = new Duration();
  readonly infer = new Duration();
  readonly output = new Duration();
  /** Per batch size: its executions and their total time. */
  readonly batches = new Map<number, Duration>();
}

type Listener<K extends keyof ServingEventMap> = (...args: ServingEventMap[K]) => void;

/**
 * Triton's statistics extension over the serving events: per model version, what its requests
 * and executions cost, as `GET /v2/models/{m}[/versions/{v}]/stats` reports it. Tessera's
 * pipeline mapped onto Triton's phases:
 *
 *   success / fail   tensor requests that passed validation (the `request` event's `tensor`),
 *                    by their HTTP status (< 400 / ≥ 400), with their duration from arrival to
 *                    the answer; shadow copies by theirs (2xx / 5xx; a 4xx copy is the version
 *                    refusing the copied input, and not counted, like invalid client requests)
 *   queue            each request's wait in the batcher (`batch` event), successful executions
 *   compute_input    validation and tensor preparation, then the preprocess steps (successful
 *                    client requests: shadow copies' own phases are not timed)
 *   compute_infer    the batch's execution, once per request of it (as Triton counts it)
 *   compute_output   the postprocess steps and output selection (as compute_input)
 *   inference_count  samples (dim 0) of successful executions; execution_count: those executions
 *   batch_stats      per batch size: executions and their time (compute_input/compute_output
 *                    count them with 0 ns: the backend's copies in and out are inside the execution)
 *
 * Stats are kept per model and version label while the version is loaded: a version's `closed`
 * state drops them, unless a reload `replaced` its object (the label goes on serving). Listening
 * costs a map lookup and a few additions per request and per batch.
 */
export class ModelStatsCollector {
  readonly #versions = new Map<string, Map<string, VersionStats>>();
  readonly #now: () => number;
  #events: ServingEvents | undefined;

  /** `now`: wall-clock ms since the epoch, for `last_inference` (tests pass a fixed clock). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Starts listening to `events` (one hub at a time: `detach()` first to move). */
  attach(events: ServingEvents): void {
    if (this.#events) throw new Error('ModelStatsCollector is attached already: detach() first');
    this.#events = events;
    events.on('request', this.#onRequest).on('batch', this.#onBatch).on('shadow', this.#onShadow).on('modelState', this.#onModelState);
  }

  /** Stops listening. */
  detach(): void {
    this.#events?.off('request', this.#onRequest).off('batch', this.#onBatch).off('shadow', this.#onShadow).off('modelState', this.#onModelState);
    this.#events = undefined;
  }

  /** Triton's `$model_stat` of one version: zeros when it has seen no traffic since it was loaded. */
  report(model: string, version: string): TritonModelStats {
    const s = this.#versions.get(model)?.get(version);
    const zero = { count: 0, ns: 0 };
    const batches = s ? [...s.batches].sort(([a], [b]) => a - b) : [];
    return {
      name: model,
      version,
      last_inference: s?.lastInference ?? 0,
      inference_count: s?.inferences ?? 0,
      execution_count: s?.executions ?? 0,
      inference_stats: {
        success: s?.success.json() ?? { ...zero },
        fail: s?.fail.json() ?? { ...zero },
        queue: s?.queue.json() ?? { ...zero },
        compute_input: s?.input.json() ?? { ...zero },
        compute_infer: s?.infer.json() ?? { ...zero },
        compute_output: s?.output.json() ?? { ...zero },
        cache_hit: { ...zero },
        cache_miss: { ...zero },
      },
      response_stats: {},
      batch_stats: batches.map(([size, b]) => ({
        batch_size: size,
        compute_input: { count: b.count, ns: 0 },
        compute_infer: b.json(),
        compute_output: { count: b.count, ns: 0 },
      })),
      memory_usage: [],
    };
  }

  #stats(model: string, version: string): VersionStats {
    let byVersion = this.#versions.get(model);
    if (!byVersion) this.#versions.set(model, (byVersion = new Map()));
    let s = byVersion.get(version);
    if (!s) byVersion.set(version, (s = new VersionStats()));
    return s;
  }

  readonly #onRequest: Listener<'request'> = (e) => {
    const timings = e.tensor;
    if (!timings || e.model === undefined || e.version === undefined) return;
    const s = this.#stats(e.model, e.version);
    if (e.status >= 400) {
      s.fail.add(e.durationMs);
      return;
    }
    s.success.add(e.durationMs);
    s.input.add(timings.inputMs);
    s.output.add(timings.outputMs);
  };

  readonly #onBatch: Listener<'batch'> = (e) => {
    // a rejected execution, or one whose every request failed, is no inference (Triton's backends report neither)
    if (!e.ok || e.failed >= e.requests) return;
    const s = this.#stats(e.model, e.version);
    s.executions++;
    s.inferences += e.size;
    s.lastInference = this.#now();
    let queued = 0;
    for (const ms of e.queueMs) queued += ms;
    s.queue.add(queued, e.requests);
    // every request of the batch waited for the whole execution
    s.infer.add(e.executeMs * e.requests, e.requests);
    let size = s.batches.get(e.size);
    if (!size) s.batches.set(e.size, (size = new Duration()));
    size.add(e.executeMs);
  };

  readonly #onShadow: Listener<'shadow'> = (e) => {
    if (e.kind !== 'tensor' || (e.status >= 400 && e.status < 500)) return;
    const s = this.#stats(e.model, e.version);
    (e.status < 400 ? s.success : s.fail).add(e.durationMs);
  };

  readonly #onModelState: Listener<'modelState'> = (e) => {
    if (e.state !== 'closed' || e.replaced) return;
    const byVersion = this.#versions.get(e.model);
    byVersion?.delete(e.version);
    if (byVersion?.size === 0) this.#versions.delete(e.model);
  };
}
