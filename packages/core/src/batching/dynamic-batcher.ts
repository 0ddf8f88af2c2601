/**
 * The `dynamic` batcher: Triton's dynamic batcher, one queue per model version, plus an adaptive
 * delay and latency-budget shedding.
 *
 * Queueing. Requests wait in sub-queues keyed by their "shape key" (every input's name, datatype
 * and non-batch dims), so that one execution never mixes shapes; inside a sub-queue they are
 * ordered by priority level (`parameters.priority`, 1 = highest), then by arrival. Requested
 * outputs do not split batches: `execute` gets their union. A batch is formed from one sub-queue,
 * highest priority first, and counts samples along dim 0 up to `maxBatchSize`; a request that does
 * not fit in the remaining room ends the batch and leads the next one (requests are never split).
 * The sub-queue whose head has the highest priority (then the oldest) is served first. Each
 * instance runs one batch at a time, so N instances run up to N batches at once. A model whose
 * `maxBatchSize` is 0 does not batch: every request runs alone, with the same queue rules.
 *
 * When to dispatch, each time an instance is idle (checked on arrival, completion, cancellation
 * and timer): at once when draining, when the batch is full (or the next request does not fit),
 * or when a prefix of the queue reaches one of `preferredBatchSizes` (the largest such prefix
 * goes). Otherwise, with a fixed `maxQueueDelayMs`, when the oldest request of the forming batch
 * has waited that long (0: never wait; batches still form from whatever queued while every
 * instance was busy).
 *
 * Adaptive delay (`maxQueueDelayMs: auto`). The batcher learns the execution time t(b) of a batch
 * of b samples: an EWMA per batch size, fitted by weighted least squares to t(b) = a + c·b
 * (a = fixed cost per execution, c = cost per sample; a single observed size gives a = 0, i.e. no
 * gain assumed, so it never waits before it has evidence). It also keeps, per shape key, an EWMA
 * of the inter-arrival time and of the samples per request (s). With b samples formed and an idle
 * instance it compares, over the samples involved, the summed latency of two plans for the next
 * arrival, expected in δ = mean gap + time since the last arrival (silence makes waiting less
 * attractive):
 *   now:  b·t(b) + s·(max(F − δ, 0) + t(s))   — the next request waits for the first free
 *         instance, F = 0 when another instance is idle, else min(t(b), the earliest predicted end
 *         of a running batch);
 *   wait: b·δ + (b + s)·t(b + s)                — everyone waits δ, then one execution.
 * It waits only while `wait < now` (for an affine t: δ·(b + s) < s·(a − c·b) with one instance,
 * never when another instance is idle), and never past min(t(b), `adaptiveMaxDelayMs`, the
 * latency budget's slack) since the oldest request of the batch arrived. The model assumes arrivals
 * independent of our answers, which a closed loop (clients that wait for each answer; concurrency 1
 * at the extreme) breaks; so it also learns whether its holds gain samples (an EWMA of hits): after
 * holds that gain nothing it stops holding, and probes once in 64 decisions. At low load δ is large
 * and it dispatches at once (concurrency 1 sees the raw batch-1 latency); under load instances are
 * busy, samples accumulate, and batches grow by themselves.
 *
 * Limits. `maxQueueSize` bounds the waiting requests (503 `TESSERA_E_QUEUE_FULL`). A request that
 * waited longer than `timeoutMs` (or its lower `parameters.timeout`, ms) before its batch started
 * gets 503 `TESSERA_E_QUEUE_TIMEOUT`. With `latencyBudgetMs`, a request predicted to miss the budget
 * (queued so far + predicted wait + predicted execution) is shed with 503 `TESSERA_E_QUEUE_SHED`:
 * on admission, and when its batch is about to start (predictions need a few observed batches).
 * A client that goes away leaves the queue (499); a running batch is aborted only when all of its
 * clients went away. When an execution succeeds, each request settles from its own result slot:
 * its outputs, or the Error the backend put there (that request alone fails). 503s carry `Retry-After`: the work was refused for load, not for its content,
 * so another replica or a later retry can serve it.
 */
import type { InferenceRequest, JSONSchema, ModelInstance } from '../contracts/backend.js';
import type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from '../contracts/batcher.js';
import type { Tensor } from '../contracts/tensor.js';
import { DURATION_FORMAT, durationSchema } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { validateAgainstSchema } from '../config/validate.js';
import { TesseraError } from '../errors.js';
import { startBatchSpans, withContext } from '../telemetry/tracing.js';
import { asInferenceError, readResults, requestBatchSize } from './internal/batch-results.js';

/** Below this share of holds that gained samples, the adaptive delay stops holding (but probes). */
const HOLD_PAYOFF_MIN = 0.5;
/** While holds do not pay off, one hold in this many decisions checks whether they do again. */
const HOLD_PROBE_EVERY = 64;
/** Weight of the past in the hold pay-off EWMA. */
const HOLD_PAYOFF_DECAY = 0.8;

/** The `batching` options of the `dynamic` batcher, as written in the config. */
export interface DynamicBatcherOptions {
  /** Longest wait for a batch to fill, from its oldest request: ms (or a duration string), or `auto`. Default 0. */
  maxQueueDelayMs?: number | string;
  /** Batch sizes (samples) dispatched as soon as the queue can form one. Default none. */
  preferredBatchSizes?: number[];
  /** Most requests waiting (not executing); more get 503 TESSERA_E_QUEUE_FULL. 0 = unbounded. Default 1024. */
  maxQueueSize?: number;
  /** Longest wait before a request's batch starts; 0 = none. Requests may lower it with `parameters.timeout` (ms). Default 0. */
  timeoutMs?: number | string;
  /** Number of priority levels; requests choose with `parameters.priority` (1 = highest). Default 1. */
  priorityLevels?: number;
  /** Level of requests without `parameters.priority` (or with 0). Default: the lowest, `priorityLevels`. */
  defaultPriorityLevel?: number;
  /** Shed requests predicted to finish later than this after arrival; 0 = off. Default 0. */
  latencyBudgetMs?: number | string;
  /** Cap on the adaptive wait (`maxQueueDelayMs: auto`). Default 10 ms. */
  adaptiveMaxDelayMs?: number | string;
}

/** The options after defaults and unit conversion (every duration in ms). */
export interface ResolvedDynamicBatcherOptions {
  maxQueueDelayMs: number | 'auto';
  /** Ascending, without duplicates. */
  preferredBatchSizes: number[];
  maxQueueSize: number;
  timeoutMs: number;
  priorityLevels: number;
  defaultPriorityLevel: number;
  latencyBudgetMs: number;
  adaptiveMaxDelayMs: number;
}


/** JSON Schema (draft-07) of the `dynamic` batcher's options (the `batching` keys besides `batcher` and `maxBatchSize`). */
export const DYNAMIC_BATCHER_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxQueueDelayMs: {
      anyOf: [{ type: 'number', minimum: 0 }, { const: 'auto' }, { type: 'string', format: DURATION_FORMAT }],
      default: 0,
      description:
        'Longest time a forming batch waits for more requests, from its oldest request (ms, or a duration). 0 (the default, as in Triton) never waits: batches form from what queued while instances were busy. `auto` learns when waiting pays off.',
      examples: [2, 'auto'],
    },
    preferredBatchSizes: {
      type: 'array',
      items: { type: 'integer', minimum: 1 },
      uniqueItems: true,
      default: [],
      description: 'Batch sizes (samples along dim 0) to dispatch at once, without waiting further, when the queue can form one.',
      examples: [[8, 16]],
    },
    maxQueueSize: {
      type: 'integer',
      minimum: 0,
      default: 1024,
      description: 'Most requests waiting in the queue (executing ones not counted); more get 503 TESSERA_E_QUEUE_FULL with Retry-After. 0 = unbounded.',
      examples: [256],
    },
    timeoutMs: durationSchema(
      'Longest time a request may wait before its batch starts; then 503 TESSERA_E_QUEUE_TIMEOUT. 0 = no limit. A request may lower (never raise) it with `parameters.timeout` (ms).',
      0,
      [1000, '2s'],
    ),
    priorityLevels: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description: 'Number of priority levels. Requests pick one with `parameters.priority`: 1 is the highest (Triton\'s convention); higher levels are batched first.',
      examples: [3],
    },
    defaultPriorityLevel: {
      type: 'integer',
      minimum: 1,
      description: 'Level of requests that send no `parameters.priority` (or 0). Default: the lowest level (`priorityLevels`), so that only marked requests jump ahead.',
      examples: [2],
    },
    latencyBudgetMs: durationSchema(
      'Shed (503 TESSERA_E_QUEUE_SHED) requests predicted to finish later than this after they arrived: time queued + predicted wait + predicted execution. 0 = off.',
      0,
      [50],
    ),
    adaptiveMaxDelayMs: durationSchema('With `maxQueueDelayMs: auto`, the longest a batch may be held back (it is also never held longer than its predicted execution time).', 10, [5]),
  },
};

/** Defaults of `ResolvedDynamicBatcherOptions` (`defaultPriorityLevel` follows `priorityLevels`). */
export const DYNAMIC_BATCHER_DEFAULTS: Readonly<Omit<ResolvedDynamicBatcherOptions, 'defaultPriorityLevel'>> = {
  maxQueueDelayMs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 1024,
  timeoutMs: 0,
  priorityLevels: 1,
  latencyBudgetMs: 0,
  adaptiveMaxDelayMs: 10,
};

/**
 * Validates `batching` options against `DYNAMIC_BATCHER_OPTIONS_SCHEMA` (without changing the
 * object given) and resolves defaults and durations. Throws `TESSERA_E_CONFIG_INVALID`.
 */
export function resolveDynamicBatcherOptions(options: Readonly<Record<string, unknown>>, path = 'batching'): ResolvedDynamicBatcherOptions {
  const raw = validateAgainstSchema<DynamicBatcherOptions>(DYNAMIC_BATCHER_OPTIONS_SCHEMA, structuredClone({ ...options }), path);
  const d = DYNAMIC_BATCHER_DEFAULTS;
  const delay = raw.maxQueueDelayMs ?? d.maxQueueDelayMs;
  const priorityLevels = raw.priorityLevels ?? d.priorityLevels;
  return {
    maxQueueDelayMs: delay === 'auto' ? 'auto' : parseDuration(delay, `${path}.maxQueueDelayMs`),
    preferredBatchSizes: [...new Set(raw.preferredBatchSizes ?? d.preferredBatchSizes)].sort((x, y) => x - y),
    maxQueueSize: raw.maxQueueSize ?? d.maxQueueSize,
    timeoutMs: parseDuration(raw.timeoutMs ?? d.timeoutMs, `${path}.timeoutMs`),
    priorityLevels,
    defaultPriorityLevel: raw.defaultPriorityLevel ?? priorityLevels,
    latencyBudgetMs: parseDuration(raw.latencyBudgetMs ?? d.latencyBudgetMs, `${path}.latencyBudgetMs`),
    adaptiveMaxDelayMs: parseDuration(raw.adaptiveMaxDelayMs ?? d.adaptiveMaxDelayMs, `${path}.adaptiveMaxDelayMs`),
  };
}

/** Weight of a new measurement in the per-size EWMA of execution times. */
const EXEC_ALPHA = 0.2;
/** Weight of a new gap in the EWMA of inter-arrival times. */
const ARRIVAL_ALPHA = 0.2;
/** Most observations a batch size counts with in the fit (so a size seen often does not drown the others). */
const FIT_WEIGHT_CAP = 16;
/** Observed batches before predictions are trusted for shedding. */
const SHED_MIN_OBSERVATIONS = 3;
/** Shape keys whose arrival statistics are kept (most recent first out of the cap). */
const ARRIVAL_KEYS_CAP = 256;
const RETRY_AFTER = { 'retry-after': '1' };
/** Timers may fire a fraction of a millisecond before `performance.now()` says the time has come. */
const TIMER_SLACK_MS = 0.25;

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

interface ArrivalStats {
  last: number;
  /** EWMA of the time between arrivals, ms (undefined until two arrivals). */
  gap: number | undefined;
  /** EWMA of samples per request. */
  samples: number;
}

interface RunningBatch {
  controller: AbortController;
  size: number;
  aborted: number;
  samples: number;
  startedAt: number;
}

interface Entry {
  request: InferenceRequest;
  signal: AbortSignal;
  samples: number;
  /** 0-based priority level (0 = highest). */
  level: number;
  seq: number;
  enqueuedAt: number;
  queue: SubQueue;
  state: 'queued' | 'running' | 'done';
  batch: RunningBatch | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: (outputs: Tensor[]) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/** Requests of one shape key, one FIFO per priority level. */
class SubQueue {
  readonly levels: Entry[][];
  size = 0;

  constructor(
    readonly key: string,
    levels: number,
  ) {
    this.levels = Array.from({ length: levels }, () => []);
  }

  head(): Entry | undefined {
    for (const level of this.levels) if (level.length > 0) return level[0];
    return undefined;
  }
}

interface Plan {
  entries: Entry[];
  samples: number;
  /** Full, or the next request does not fit: waiting cannot grow it. */
  full: boolean;
  /** Entries in the largest prefix whose samples are a preferred size (0: none). */
  preferred: number;
  oldest: number;
}

type Decision = { take: number } | { wakeAt: number };

const now = (): number => performance.now();

/**
 * The dynamic batcher (see the file's header for the algorithm). Every submitted request settles
 * exactly once: outputs, or a TesseraError.
 */
export class DynamicBatcher implements Batcher {
  readonly options: ResolvedDynamicBatcherOptions;
  readonly #ctx: BatcherContext;
  readonly #batched: boolean;
  readonly #maxBatch: number;
  readonly #preferred: ReadonlySet<number>;
  readonly #idle: ModelInstance[];
  readonly #queues = new Map<string, SubQueue>();
  readonly #arrivals = new Map<string, ArrivalStats>();
  readonly #running = new Set<RunningBatch>();
  readonly #latency = new BatchLatencyModel();
  /** Per shape key: samples in the batch when an adaptive hold began (to learn whether holds pay off). */
  readonly #holds = new Map<string, number>();
  /**
   * EWMA of how often an adaptive hold gained samples before it ended. It starts undecided (0.5):
   * the first hold that gains nothing stops the holding until a probe shows that holds pay again.
   */
  #holdPayoff = HOLD_PAYOFF_MIN;
  /** Decisions since the last hold, for the occasional probe while holds do not pay off. */
  #sinceHold = 0;
  #seq = 0;
  #queued = 0;
  #executing = 0;
  #wake: ReturnType<typeof setTimeout> | undefined;
  #pumping = false;
  #pumpAgain = false;
  #draining = false;
  #drained: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;

  constructor(ctx: BatcherContext) {
    if (ctx.instances.length === 0) throw new Error('DynamicBatcher needs at least one instance');
    this.#ctx = ctx;
    const options = resolveDynamicBatcherOptions(ctx.options);
    this.#batched = ctx.metadata.maxBatchSize > 0;
    this.#maxBatch = this.#batched ? ctx.metadata.maxBatchSize : 1;
    const label = `${ctx.model} v${ctx.version}`;
    if (options.defaultPriorityLevel > options.priorityLevels) {
      ctx.logger.warn(`${label}: batching.defaultPriorityLevel ${options.defaultPriorityLevel} is above priorityLevels ${options.priorityLevels}; using ${options.priorityLevels}`);
      options.defaultPriorityLevel = options.priorityLevels;
    }
    const tooBig = options.preferredBatchSizes.filter((s) => s > this.#maxBatch);
    if (tooBig.length > 0 && this.#batched) {
      ctx.logger.warn(`${label}: batching.preferredBatchSizes ${tooBig.join(', ')} exceed maxBatchSize ${this.#maxBatch}; ignored`);
    }
    if (!this.#batched && (options.preferredBatchSizes.length > 0 || options.maxQueueDelayMs !== 0)) {
      ctx.logger.info(`${label} does not batch (maxBatchSize 0): requests run one at a time; the delay and preferred sizes do not apply`);
    }
    options.preferredBatchSizes = options.preferredBatchSizes.filter((s) => s <= this.#maxBatch);
    this.options = options;
    this.#preferred = new Set(this.#batched ? options.preferredBatchSizes : []);
    this.#idle = [...ctx.instances];
    ctx.logger.debug({ batching: options, maxBatchSize: ctx.metadata.maxBatchSize, instances: ctx.instances.length }, 'dynamic batcher created');
  }

  /** Async so that every refusal (draining, invalid parameters, full queue, shed) is a rejection; the request is queued synchronously. */
  async submit(request: InferenceRequest, signal: AbortSignal): Promise<Tensor[]> {
    const { model, version } = this.#ctx;
    if (this.#draining) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${model} v${version} is draining`, { headers: RETRY_AFTER });
    if (signal.aborted) throw cancelled();
    const samples = this.#samplesOf(request);
    const level = this.#levelOf(request) - 1;
    const timeoutMs = this.#timeoutOf(request);
    const { maxQueueSize, latencyBudgetMs } = this.options;
    if (maxQueueSize > 0 && this.#queued >= maxQueueSize) {
      throw new TesseraError('TESSERA_E_QUEUE_FULL', `${model} v${version}: the batching queue is full (${this.#queued} requests waiting, batching.maxQueueSize ${maxQueueSize}); retry later`, {
        headers: RETRY_AFTER,
      });
    }
    const t = now();
    const key = this.#shapeKey(request);
    this.#recordArrival(key, samples, t);
    if (latencyBudgetMs > 0) {
      const predicted = this.#predictCompletion(level, samples, t);
      if (predicted !== undefined && predicted > latencyBudgetMs) throw shed(model, version, predicted, latencyBudgetMs);
    }
    return new Promise<Tensor[]>((resolve, reject) => {
      let queue = this.#queues.get(key);
      if (!queue) {
        queue = new SubQueue(key, this.options.priorityLevels);
        this.#queues.set(key, queue);
      }
      const entry: Entry = {
        request,
        signal,
        samples,
        level,
        seq: this.#seq++,
        enqueuedAt: t,
        queue,
        state: 'queued',
        batch: undefined,
        timer: undefined,
        resolve,
        reject,
        onAbort: () => this.#abort(entry),
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => this.#expire(entry, timeoutMs), timeoutMs);
        entry.timer.unref?.();
      }
      queue.levels[level]!.push(entry);
      queue.size++;
      this.#queued++;
      this.#pump();
    });
  }

  stats(): BatcherStats {
    return { queued: this.#queued, executing: this.#executing };
  }

  drain(): Promise<void> {
    if (this.#drained) return this.#drained;
    this.#draining = true;
    this.#drained = new Promise<void>((resolve) => {
      this.#onDrained = resolve;
    });
    this.#pump();
    return this.#drained;
  }

  // ------------------------------------------------------------------------------------------
  // admission

  #samplesOf(request: InferenceRequest): number {
    const samples = requestBatchSize(request, this.#batched);
    if (!this.#batched) return samples;
    for (const input of request.inputs) {
      if ((input.shape[0] ?? 1) !== samples) {
        throw new TesseraError('TESSERA_E_INPUT_SHAPE', `inputs of one request must share dim 0 (the batch dim): '${input.name}' has ${input.shape[0]}, '${request.inputs[0]!.name}' has ${samples}`);
      }
    }
    if (samples > this.#maxBatch) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `a request of ${samples} samples (dim 0) exceeds the max batch size ${this.#maxBatch} of ${this.#ctx.model} v${this.#ctx.version}`);
    }
    return samples;
  }

  /** 1-based priority level from `parameters.priority` (0 or absent: the default level). */
  #levelOf(request: InferenceRequest): number {
    const { priorityLevels, defaultPriorityLevel } = this.options;
    const value = request.parameters?.['priority'];
    if (value === undefined || value === null) return defaultPriorityLevel;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `parameters.priority must be an integer ≥ 0 (1 = highest, 0 = the default level), got ${JSON.stringify(value)}`);
    }
    if (value === 0) return defaultPriorityLevel;
    return Math.min(value, priorityLevels);
  }

  /** The queue timeout of a request, ms (0 = none): `timeoutMs`, lowered by `parameters.timeout`. */
  #timeoutOf(request: InferenceRequest): number {
    const configured = this.options.timeoutMs;
    const value = request.parameters?.['timeout'];
    if (value === undefined || value === null) return configured;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `parameters.timeout must be a number of milliseconds ≥ 0 (0 = the model's default), got ${JSON.stringify(value)}`);
    }
    if (value === 0) return configured;
    return configured > 0 ? Math.min(configured, value) : value;
  }

  /** Requests with equal keys may share an execution: same inputs, datatypes and non-batch dims. */
  #shapeKey(request: InferenceRequest): string {
    if (!this.#batched) return '';
    const parts = request.inputs.map((t) => `${t.name}\u0000${t.datatype}\u0000${t.shape.slice(1).join(',')}`);
    if (parts.length > 1) parts.sort();
    return parts.join('\u0001');
  }

  #recordArrival(key: string, samples: number, t: number): void {
    const stats = this.#arrivals.get(key);
    if (!stats) {
      if (this.#arrivals.size >= ARRIVAL_KEYS_CAP) this.#arrivals.delete(this.#arrivals.keys().next().value!);
      this.#arrivals.set(key, { last: t, gap: undefined, samples });
      return;
    }
    const gap = t - stats.last;
    stats.gap = stats.gap === undefined ? gap : stats.gap + ARRIVAL_ALPHA * (gap - stats.gap);
    stats.samples += ARRIVAL_ALPHA * (samples - stats.samples);
    stats.last = t;
    // most recently used last, so the cap evicts the stalest shape
    this.#arrivals.delete(key);
    this.#arrivals.set(key, stats);
  }

  /**
   * Predicted time from now until a new request of `level` and `samples` would finish: the work
   * queued at its level or above runs in rounds of `maxBatchSize × instances` samples after the
   * first instance frees up, then its own batch runs. Undefined until the model has observations.
   */
  #predictCompletion(level: number, samples: number, t: number): number | undefined {
    if (this.#latency.observations < SHED_MIN_OBSERVATIONS) return undefined;
    let ahead = 0;
    for (const queue of this.#queues.values()) {
      for (let l = 0; l <= level; l++) for (const e of queue.levels[l]!) ahead += this.#batched ? e.samples : 1;
    }
    const perRound = this.#maxBatch * this.#ctx.instances.length;
    const rounds = Math.floor(ahead / perRound);
    const wait = this.#firstFreeIn(t) + rounds * this.#latency.predict(this.#maxBatch);
    const own = this.#batched ? Math.min(this.#maxBatch, (ahead % this.#maxBatch) + samples) : 1;
    return wait + this.#latency.predict(own);
  }

  /** Time until an instance is free: 0 when one is idle, else the earliest predicted end of a running batch. */
  #firstFreeIn(t: number): number {
    if (this.#idle.length > 0) return 0;
    const soonest = this.#firstBusyEnd(t);
    return Number.isFinite(soonest) ? soonest : 0;
  }

  // ------------------------------------------------------------------------------------------
  // leaving the queue

  #remove(entry: Entry): void {
    const level = entry.queue.levels[entry.level]!;
    const i = level.indexOf(entry);
    if (i < 0) return;
    level.splice(i, 1);
    entry.queue.size--;
    this.#queued--;
    if (entry.queue.size === 0) this.#queues.delete(entry.queue.key);
  }

  /** Settles an entry once: listeners and timer removed, promise settled. */
  #settle(entry: Entry, outcome: { outputs: Tensor[] } | { error: unknown }): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    entry.signal.removeEventListener('abort', entry.onAbort);
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    if ('outputs' in outcome) entry.resolve(outcome.outputs);
    else entry.reject(outcome.error);
  }

  /** Takes a queued entry out and rejects it; the queue may now form other batches. */
  #drop(entry: Entry, error: TesseraError): void {
    this.#remove(entry);
    this.#settle(entry, { error });
  }

  #abort(entry: Entry): void {
    if (entry.state === 'queued') {
      this.#drop(entry, cancelled());
      this.#pump();
    } else if (entry.state === 'running' && entry.batch) {
      // the batch runs on for its other clients; it is aborted only when all of them left
      const batch = entry.batch;
      batch.aborted++;
      if (batch.aborted === batch.size) batch.controller.abort(new Error('every client of the batch went away'));
    }
  }

  #expire(entry: Entry, timeoutMs: number): void {
    if (entry.state !== 'queued') return;
    const { model, version } = this.#ctx;
    this.#drop(
      entry,
      new TesseraError('TESSERA_E_QUEUE_TIMEOUT', `${model} v${version}: the request waited ${Math.round(now() - entry.enqueuedAt)} ms in the batching queue, over its timeout of ${timeoutMs} ms; retry later`, {
        headers: RETRY_AFTER,
      }),
    );
    this.#pump();
  }

  // ------------------------------------------------------------------------------------------
  // forming and dispatching batches

  /** The batch a sub-queue can form now: highest priority first, FIFO, until one does not fit. */
  #plan(queue: SubQueue): Plan {
    const entries: Entry[] = [];
    let samples = 0;
    let full = false;
    let preferred = 0;
    let oldest = Number.POSITIVE_INFINITY;
    outer: for (const level of queue.levels) {
      for (const e of level) {
        if (this.#batched ? samples + e.samples > this.#maxBatch : entries.length === 1) {
          full = true;
          break outer;
        }
        entries.push(e);
        samples += e.samples;
        if (e.enqueuedAt < oldest) oldest = e.enqueuedAt;
        if (this.#preferred.has(samples)) preferred = entries.length;
      }
    }
    if (!this.#batched || samples >= this.#maxBatch) full = true;
    return { entries, samples, full, preferred, oldest };
  }

  #decide(queue: SubQueue, plan: Plan, t: number): Decision {
    if (this.#draining || plan.full) return { take: plan.entries.length };
    if (plan.preferred > 0) return { take: plan.preferred };
    const delay = this.options.maxQueueDelayMs;
    if (delay === 'auto') return this.#decideAdaptive(queue, plan, t);
    if (t - plan.oldest >= delay - TIMER_SLACK_MS) return { take: plan.entries.length };
    return { wakeAt: plan.oldest + delay };
  }

  /** `maxQueueDelayMs: auto`: wait only while one more arrival is expected to lower the summed latency. */
  #decideAdaptive(queue: SubQueue, plan: Plan, t: number): Decision {
    const dispatch = { take: plan.entries.length };
    const stats = this.#arrivals.get(queue.key);
    if (this.#latency.observations === 0 || stats?.gap === undefined) return dispatch;
    const s = Math.max(1, stats.samples);
    const b = plan.samples;
    if (b + s > this.#maxBatch) return dispatch;
    // silence since the last arrival pushes the expected next one further out, so a hold ends
    // soon after the arrival it waited for failed to come
    const delta = stats.gap + (t - stats.last);
    const model = this.#latency;
    const tb = model.predict(b);
    // when the next request could start if this batch went now
    const free = this.#idle.length > 1 ? 0 : Math.min(tb, this.#firstBusyEnd(t));
    const costNow = b * tb + s * (Math.max(free - delta, 0) + model.predict(s));
    const costWait = b * delta + (b + s) * model.predict(b + s);
    if (costWait >= costNow) return dispatch;
    // The cost model assumes arrivals independent of our answers. A closed loop (each client
    // waiting for its answer before the next request: concurrency 1 is the extreme) breaks that,
    // so the model's promise is checked against what holds actually gained: while they mostly
    // gain nothing, dispatch at once and only probe now and then.
    if (!this.#holds.has(queue.key)) {
      if (this.#holdPayoff < HOLD_PAYOFF_MIN && ++this.#sinceHold < HOLD_PROBE_EVERY) return dispatch;
      this.#sinceHold = 0;
      this.#holds.set(queue.key, b);
    }
    let hold = Math.min(tb, this.options.adaptiveMaxDelayMs);
    if (this.options.latencyBudgetMs > 0) hold = Math.min(hold, this.options.latencyBudgetMs - model.predict(b + s));
    const limit = plan.oldest + hold;
    if (t >= limit - TIMER_SLACK_MS) return dispatch;
    return { wakeAt: Math.min(limit, t + delta) };
  }

  /** Predicted time until the first running batch ends (infinity when none runs). */
  #firstBusyEnd(t: number): number {
    let soonest = Number.POSITIVE_INFINITY;
    for (const b of this.#running) soonest = Math.min(soonest, Math.max(0, b.startedAt + this.#latency.predict(b.samples) - t));
    return soonest;
  }

  /** With a latency budget: sheds entries predicted to miss it if their batch started now. Returns whether any was shed. */
  #shedLate(entries: Entry[], t: number): boolean {
    const budget = this.options.latencyBudgetMs;
    if (budget <= 0 || this.#latency.observations < SHED_MIN_OBSERVATIONS) return false;
    const exec = this.#latency.predict(entries.reduce((n, e) => n + e.samples, 0));
    let any = false;
    for (const e of entries) {
      const total = t - e.enqueuedAt + exec;
      if (total > budget) {
        this.#drop(e, shed(this.#ctx.model, this.#ctx.version, total, budget));
        any = true;
      }
    }
    return any;
  }

  /** Dispatches whatever may go now and sets the timer for the next decision. Not re-entrant: a nested call (an execute that throws synchronously) makes the outer call go round again. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#pumpOnce();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
    this.#checkDrained();
  }

  #pumpOnce(): void {
    if (this.#wake !== undefined) {
      clearTimeout(this.#wake);
      this.#wake = undefined;
    }
    while (this.#idle.length > 0 && this.#queued > 0) {
      const t = now();
      const queues = [...this.#queues.values()];
      if (queues.length > 1) queues.sort(byHead);
      let wakeAt = Number.POSITIVE_INFINITY;
      let progressed = false;
      for (const queue of queues) {
        const plan = this.#plan(queue);
        const decision = this.#decide(queue, plan, t);
        if ('wakeAt' in decision) {
          wakeAt = Math.min(wakeAt, decision.wakeAt);
          continue;
        }
        const entries = plan.entries.slice(0, decision.take);
        progressed = true;
        // shed entries leave the queue: plan again from what is left
        if (!this.#shedLate(entries, t)) this.#dispatch(entries, t);
        break;
      }
      if (!progressed) {
        if (Number.isFinite(wakeAt)) this.#schedule(wakeAt, t);
        break;
      }
    }
  }

  #schedule(wakeAt: number, t: number): void {
    this.#wake = setTimeout(
      () => {
        this.#wake = undefined;
        this.#pump();
      },
      Math.max(0, wakeAt - t),
    );
  }

  #dispatch(entries: Entry[], t: number): void {
    const instance = this.#idle.pop()!;
    const batch: RunningBatch = { controller: new AbortController(), size: entries.length, aborted: 0, samples: 0, startedAt: t };
    for (const e of entries) {
      this.#remove(e);
      e.state = 'running';
      e.batch = batch;
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      batch.samples += e.samples;
      if (e.signal.aborted) batch.aborted++;
    }
    if (batch.aborted === batch.size) batch.controller.abort(new Error('every client of the batch went away'));
    const key = entries[0]!.queue.key;
    const heldAt = this.#holds.get(key);
    if (heldAt !== undefined) {
      this.#holds.delete(key);
      this.#holdPayoff = HOLD_PAYOFF_DECAY * this.#holdPayoff + (1 - HOLD_PAYOFF_DECAY) * (batch.samples > heldAt ? 1 : 0);
    }
    this.#running.add(batch);
    this.#executing += entries.length;
    void this.#run(instance, entries, batch);
  }

  async #run(instance: ModelInstance, entries: Entry[], batch: RunningBatch): Promise<void> {
    const { model, version, events } = this.#ctx;
    const started = batch.startedAt;
    let ok = false;
    let failed = 0;
    let failure: unknown;
    // entries carry a trace context only while tracing is on: otherwise no tracing code runs
    const spans = entries[0]!.request.trace ? startBatchSpans(model, version, entries.map((e) => ({ trace: e.request.trace, enqueuedAt: e.enqueuedAt })), batch.samples, started) : undefined;
    try {
      const requests = entries.map((e) => e.request);
      const outputs = outputUnion(requests);
      const results = await withContext(spans?.context, () => instance.execute!({ requests, ...(outputs ? { outputs } : {}) }, batch.controller.signal));
      const settlements = readResults(results, entries.length, model, version);
      ok = true;
      entries.forEach((e, i) => {
        const outcome = settlements[i]!;
        if ('error' in outcome) failed++;
        this.#settle(e, outcome);
      });
    } catch (err) {
      const error = asInferenceError(err, model, version);
      failure = error;
      for (const e of entries) this.#settle(e, { error });
    } finally {
      spans?.end(ok, failure);
      const executeMs = now() - started;
      // an execution that failed some of its requests still ran the whole batch
      if (ok) this.#latency.observe(batch.samples, executeMs);
      this.#running.delete(batch);
      this.#executing -= entries.length;
      this.#idle.push(instance);
      events.emit('batch', {
        model,
        version,
        size: batch.samples,
        requests: entries.length,
        queueMs: entries.map((e) => started - e.enqueuedAt),
        executeMs,
        ok,
        failed,
      });
      this.#pump();
    }
  }

  #checkDrained(): void {
    if (this.#draining && this.#queued === 0 && this.#executing === 0 && this.#onDrained) {
      const done = this.#onDrained;
      this.#onDrained = undefined;
      done();
    }
  }
}

function byHead(x: SubQueue, y: SubQueue): number {
  const a = x.head()!;
  const b = y.head()!;
  return a.level - b.level || a.seq - b.seq;
}

/** Union of the requested outputs, in first-asked order; undefined when any request wants all. */
function outputUnion(requests: readonly InferenceRequest[]): string[] | undefined {
  const names = new Set<string>();
  for (const r of requests) {
    if (!r.outputs) return undefined;
    for (const name of r.outputs) names.add(name);
  }
  return [...names];
}

function cancelled(): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the connection before the answer was ready');
}

function shed(model: string, version: string, predictedMs: number, budgetMs: number): TesseraError {
  return new TesseraError(
    'TESSERA_E_QUEUE_SHED',
    `${model} v${version}: the request would take about ${Math.round(predictedMs)} ms, over batching.latencyBudgetMs ${budgetMs}; shed early, retry later`,
    { headers: RETRY_AFTER },
  );
}

/** The built-in `dynamic` batcher (`batching.batcher: dynamic`). */
export const dynamicBatcherFactory: BatcherFactory = {
  optionsSchema: DYNAMIC_BATCHER_OPTIONS_SCHEMA,
  create: (ctx) => new DynamicBatcher(ctx),
};
