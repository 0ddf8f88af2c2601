/**
 * The `dynamic` batcher: Triton's dynamic batcher (one queue per model version, batches that never
 * mix shapes, priorities, preferred sizes, a queue delay), plus an adaptive delay and latency-budget
 * shedding. Why: a model's fixed cost per execution is shared by every request of a batch, so under
 * load batches raise throughput; at low load waiting only adds latency, hence a delay that is 0 by
 * default or learned (`auto`). The algorithm is described in docs/architecture.md.
 */
import type { InferenceRequest, ModelInstance } from '../contracts/backend.js';
import type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from '../contracts/batcher.js';
import type { Tensor } from '../contracts/tensor.js';
import type { TesseraError } from '../errors.js';
import { startBatchSpans, withContext } from '../telemetry/tracing.js';
import type { ResolvedDynamicBatcherOptions } from './dynamic-batcher-options.js';
import { DYNAMIC_BATCHER_OPTIONS_SCHEMA, resolveDynamicBatcherOptions } from './dynamic-batcher-options.js';
import { AdaptiveDelay } from './internal/adaptive-delay.js';
import { ArrivalTracker } from './internal/arrival-stats.js';
import type { Entry, Plan, RunningBatch, SubQueue } from './internal/batch-queue.js';
import { BatchQueue, planBatch, shapeKey } from './internal/batch-queue.js';
import type { Settlement } from './internal/batch-results.js';
import { asInferenceError, readResults, requestBatchSize } from './internal/batch-results.js';
import type { Decision } from './internal/dispatch-decision.js';
import { TIMER_SLACK_MS, fixedDelayDecision, immediateDecision } from './internal/dispatch-decision.js';
import { BatchLatencyModel } from './internal/latency-model.js';
import { abortedError, draining, invalidParameter, queueFull, queueTimeout, shed } from './internal/refusals.js';

// the options live in their own module; the package index takes them from here
export type { DynamicBatcherOptions, ResolvedDynamicBatcherOptions } from './dynamic-batcher-options.js';
export { DYNAMIC_BATCHER_DEFAULTS, DYNAMIC_BATCHER_OPTIONS_SCHEMA, resolveDynamicBatcherOptions } from './dynamic-batcher-options.js';

/** Observed batches before predictions are trusted for shedding. */
const SHED_MIN_OBSERVATIONS = 3;

/**
 * How long before its running batch is predicted to end an instance that takes the next batch
 * while one runs (`ModelInstance.acceptsNextBatch`) is handed it, ms: about what the hand-off
 * between the event loop and the instance's thread costs (the answer going back, the next batch
 * going out: 0.2–0.3 ms on 2 cores, about 0.7 ms at concurrency 1 on 16). Later, and the
 * session idles through the hand-off; earlier, and the batch stops gathering sooner than it needs to.
 */
export const NEXT_BATCH_LEAD_MS = 1;

/** A batch on an instance that takes the next one while it runs: what decides when that one goes. */
interface InstanceState {
  /** Batches handed to the instance and not finished, in the order they run. */
  running: RunningBatch[];
}

const now = (): number => performance.now();

/**
 * The dynamic batcher. Every submitted request settles exactly once: outputs, or a TesseraError.
 * Requests arrive validated against the model's metadata (see `InferenceRequest`); only their
 * `parameters.priority` is read and checked here. A request's deadline reaches it as its signal's
 * abort (the pipeline read `parameters.timeout` and the deadline headers): queued, it leaves with
 * 503 TESSERA_E_QUEUE_TIMEOUT; running, it is answered with the deadline's 504 and its slot of the
 * batch's result is dropped.
 */
export class DynamicBatcher implements Batcher {
  readonly options: ResolvedDynamicBatcherOptions;
  readonly #ctx: BatcherContext;
  readonly #batched: boolean;
  readonly #maxBatch: number;
  readonly #preferred: ReadonlySet<number>;
  readonly #idle: ModelInstance[];
  /** Instances that take the next batch while one runs (`acceptsNextBatch`), and what they run. */
  readonly #pipelined = new Map<ModelInstance, InstanceState>();
  readonly #queue: BatchQueue;
  readonly #arrivals = new ArrivalTracker();
  readonly #running = new Set<RunningBatch>();
  readonly #latency = new BatchLatencyModel();
  readonly #adaptive: AdaptiveDelay;
  #seq = 0;
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
    for (const instance of ctx.instances) if (instance.acceptsNextBatch === true) this.#pipelined.set(instance, { running: [] });
    this.#queue = new BatchQueue(options.priorityLevels);
    this.#adaptive = new AdaptiveDelay(options);
    ctx.logger.debug({ batching: options, maxBatchSize: ctx.metadata.maxBatchSize, instances: ctx.instances.length }, 'dynamic batcher created');
  }

  /** Async so that every refusal (draining, invalid parameters, full queue, shed) is a rejection; the request is queued synchronously. */
  async submit(request: InferenceRequest, signal: AbortSignal): Promise<Tensor[]> {
    const { model, version } = this.#ctx;
    if (this.#draining) throw draining(model, version);
    if (signal.aborted) throw abortedError(signal.reason, model, version, 'queued', 0);
    const samples = requestBatchSize(request, this.#batched);
    const level = this.#levelOf(request) - 1;
    const { maxQueueSize, latencyBudgetMs, timeoutMs } = this.options;
    if (maxQueueSize > 0 && this.#queue.size >= maxQueueSize) throw queueFull(model, version, this.#queue.size, maxQueueSize);
    const t = now();
    const key = shapeKey(request, this.#batched);
    this.#arrivals.record(key, samples, t);
    if (latencyBudgetMs > 0) {
      const predicted = this.#predictCompletion(level, samples, t);
      if (predicted !== undefined && predicted > latencyBudgetMs) throw shed(model, version, predicted, latencyBudgetMs);
    }
    return new Promise<Tensor[]>((resolve, reject) => {
      const entry: Entry = {
        request,
        signal,
        samples,
        level,
        seq: this.#seq++,
        enqueuedAt: t,
        queue: this.#queue.subQueue(key),
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
      this.#queue.add(entry);
      this.#pump();
    });
  }

  stats(): BatcherStats {
    return { queued: this.#queue.size, executing: this.#executing };
  }

  /** Whether a request would be refused for a full queue, were `incoming` more to arrive first (idle instances take a batch each at once). */
  saturated(incoming = 0): boolean {
    const { maxQueueSize } = this.options;
    return maxQueueSize > 0 && this.#queue.size + Math.max(0, incoming - this.#idle.length * this.#maxBatch) >= maxQueueSize;
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
  // admission: `parameters` are the only part of a request not validated before it gets here

  /** 1-based priority level from `parameters.priority` (0 or absent: the default level). */
  #levelOf(request: InferenceRequest): number {
    const { priorityLevels, defaultPriorityLevel } = this.options;
    const value = request.parameters?.['priority'];
    if (value === undefined || value === null) return defaultPriorityLevel;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw invalidParameter(`parameters.priority must be an integer ≥ 0 (1 = highest, 0 = the default level), got ${JSON.stringify(value)}`);
    }
    if (value === 0) return defaultPriorityLevel;
    return Math.min(value, priorityLevels);
  }

  // ------------------------------------------------------------------------------------------
  // predictions (latency budget, adaptive delay)

  /**
   * Predicted time from now until a new request of `level` and `samples` would finish: the work
   * queued at its level or above runs in rounds of `maxBatchSize × instances` samples after the
   * first instance frees up, then its own batch runs. Undefined until the model has observations.
   */
  #predictCompletion(level: number, samples: number, t: number): number | undefined {
    if (this.#latency.observations < SHED_MIN_OBSERVATIONS) return undefined;
    const ahead = this.#queue.ahead(level, this.#batched);
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

  /** Predicted time until the first running batch ends (infinity when none runs). */
  #firstBusyEnd(t: number): number {
    let soonest = Number.POSITIVE_INFINITY;
    for (const b of this.#running) soonest = Math.min(soonest, Math.max(0, b.startedAt + this.#latency.predict(b.samples) - t));
    return soonest;
  }

  // ------------------------------------------------------------------------------------------
  // leaving the queue

  /** Settles an entry once: listeners and timer removed, promise settled. */
  #settle(entry: Entry, outcome: Settlement): void {
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
    this.#queue.remove(entry);
    this.#settle(entry, { error });
  }

  #abort(entry: Entry): void {
    const { model, version } = this.#ctx;
    if (entry.state === 'queued') {
      this.#drop(entry, abortedError(entry.signal.reason, model, version, 'queued', now() - entry.enqueuedAt));
      this.#pump();
    } else if (entry.state === 'running' && entry.batch) {
      // past its deadline a request is answered now (504), its slot of the result dropped later;
      // a client that left needs no answer
      const error = abortedError(entry.signal.reason, model, version, 'running', 0);
      if (error.code !== 'TESSERA_E_REQUEST_CANCELLED') this.#settle(entry, { error });
      // the batch runs on for its other clients; it is aborted only when all of them left
      const batch = entry.batch;
      batch.aborted++;
      if (batch.aborted === batch.size) batch.controller.abort(new Error('every client of the batch went away'));
    }
  }

  #expire(entry: Entry, timeoutMs: number): void {
    if (entry.state !== 'queued') return;
    this.#drop(entry, queueTimeout(this.#ctx.model, this.#ctx.version, now() - entry.enqueuedAt, timeoutMs));
    this.#pump();
  }

  // ------------------------------------------------------------------------------------------
  // forming and dispatching batches

  #decide(queue: SubQueue, plan: Plan, t: number): Decision {
    const immediate = immediateDecision(plan, this.#draining);
    if (immediate) return immediate;
    const delay = this.options.maxQueueDelayMs;
    if (delay !== 'auto') return fixedDelayDecision(plan, delay, t);
    return this.#adaptive.decide({
      key: queue.key,
      plan,
      t,
      arrivals: this.#arrivals.get(queue.key),
      latency: this.#latency,
      maxBatch: this.#maxBatch,
      idleInstances: this.#idle.length,
      firstBusyEnd: () => this.#firstBusyEnd(t),
    });
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
    const limits = { batched: this.#batched, maxBatch: this.#maxBatch, preferred: this.#preferred };
    while (this.#queue.size > 0) {
      const t = now();
      if (this.#idle.length === 0) {
        // every instance is busy: one that takes its next batch while it runs gets it shortly
        // before its batch ends (the queue gathers until then), the rest wait for an instance to end
        const next = this.#nextBatchSlot(t);
        if (next === undefined) break;
        if ('wakeAt' in next) {
          this.#schedule(next.wakeAt, t);
          break;
        }
        const entries = planBatch(this.#queue.byHead()[0]!, limits).entries;
        if (!this.#shedLate(entries, t)) this.#dispatch(entries, t, next.instance);
        continue;
      }
      let wakeAt = Number.POSITIVE_INFINITY;
      let progressed = false;
      for (const queue of this.#queue.byHead()) {
        const plan = planBatch(queue, limits);
        const decision = this.#decide(queue, plan, t);
        if ('wakeAt' in decision) {
          wakeAt = Math.min(wakeAt, decision.wakeAt);
          continue;
        }
        const entries = plan.entries.slice(0, decision.take);
        progressed = true;
        // shed entries leave the queue: plan again from what is left
        if (!this.#shedLate(entries, t)) this.#dispatch(entries, t, this.#idle.pop()!);
        break;
      }
      if (!progressed) {
        if (Number.isFinite(wakeAt)) this.#schedule(wakeAt, t);
        break;
      }
    }
  }

  /**
   * With no instance idle, the instance that takes its next batch while one runs and whose batch is
   * predicted to end first: now when that end is within `NEXT_BATCH_LEAD_MS` (or the batcher is
   * draining), else when to look again. Undefined when no instance takes a next batch now (none
   * does, each already holds one, or nothing has been observed to predict from).
   */
  #nextBatchSlot(t: number): { instance: ModelInstance } | { wakeAt: number } | undefined {
    if (this.#pipelined.size === 0 || this.#latency.observations === 0) return undefined;
    let best: ModelInstance | undefined;
    let bestEnd = Number.POSITIVE_INFINITY;
    for (const [instance, state] of this.#pipelined) {
      if (state.running.length !== 1) continue;
      const b = state.running[0]!;
      const end = b.startedAt + this.#latency.predict(b.samples);
      if (end < bestEnd) {
        bestEnd = end;
        best = instance;
      }
    }
    if (best === undefined) return undefined;
    const at = bestEnd - NEXT_BATCH_LEAD_MS;
    return this.#draining || t >= at - TIMER_SLACK_MS ? { instance: best } : { wakeAt: at };
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

  #dispatch(entries: Entry[], t: number, instance: ModelInstance): void {
    const state = this.#pipelined.get(instance);
    const ahead = state?.running[state.running.length - 1];
    // behind a running batch, it is predicted to start when that one ends (set for real then)
    const startedAt = ahead ? Math.max(t, ahead.startedAt + this.#latency.predict(ahead.samples)) : t;
    const batch: RunningBatch = { controller: new AbortController(), size: entries.length, aborted: 0, samples: 0, startedAt };
    state?.running.push(batch);
    for (const e of entries) {
      this.#queue.remove(e);
      e.state = 'running';
      e.batch = batch;
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      batch.samples += e.samples;
      if (e.signal.aborted) batch.aborted++;
    }
    if (batch.aborted === batch.size) batch.controller.abort(new Error('every client of the batch went away'));
    this.#adaptive.dispatched(entries[0]!.queue.key, batch.samples);
    this.#running.add(batch);
    this.#executing += entries.length;
    void this.#run(instance, entries, batch, t);
  }

  /** Executes a dispatched batch (`dispatched`: when it was handed over) and settles its entries. */
  async #run(instance: ModelInstance, entries: Entry[], batch: RunningBatch, dispatched: number): Promise<void> {
    const { model, version, events } = this.#ctx;
    let ok = false;
    let failed = 0;
    let failure: unknown;
    // entries carry a trace context only while tracing is on: otherwise no tracing code runs
    const spans = entries[0]!.request.trace ? startBatchSpans(model, version, entries.map((e) => ({ trace: e.request.trace, enqueuedAt: e.enqueuedAt })), batch.samples, dispatched) : undefined;
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
      const ended = now();
      // a batch that waited in its instance behind another started when that one ended (below)
      const started = Math.min(batch.startedAt, ended);
      const executeMs = ended - started;
      // an execution that failed some of its requests still ran the whole batch
      if (ok) this.#latency.observe(batch.samples, executeMs);
      this.#running.delete(batch);
      this.#executing -= entries.length;
      const state = this.#pipelined.get(instance);
      if (state) {
        state.running.splice(state.running.indexOf(batch), 1);
        // the batch behind it starts now
        const next = state.running[0];
        if (next) next.startedAt = ended;
        else this.#idle.push(instance);
      } else {
        this.#idle.push(instance);
      }
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
    if (this.#draining && this.#queue.size === 0 && this.#executing === 0 && this.#onDrained) {
      const done = this.#onDrained;
      this.#onDrained = undefined;
      done();
    }
  }
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

/** The built-in `dynamic` batcher (`batching.batcher: dynamic`). */
export const dynamicBatcherFactory: BatcherFactory = {
  optionsSchema: DYNAMIC_BATCHER_OPTIONS_SCHEMA,
  create: (ctx) => new DynamicBatcher(ctx),
};
