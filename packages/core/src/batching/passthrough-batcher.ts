import type { InferenceRequest, JSONSchema, ModelInstance } from '../contracts/backend.js';
import type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from '../contracts/batcher.js';
import type { Tensor } from '../contracts/tensor.js';
import { validateAgainstSchema } from '../config/validate.js';
import { startBatchSpans, withContext } from '../telemetry/tracing.js';
import { asInferenceError, readResults, requestBatchSize } from './internal/batch-results.js';
import { abortedError, cancelled, draining, queueFull } from './internal/refusals.js';

/** The `passthrough` batcher's options (`batching` keys besides `batcher` and `maxBatchSize`). */
export interface PassthroughBatcherOptions {
  /** Most requests waiting for a free instance (executing ones not counted); 0 = unbounded. Default 1024. */
  maxQueueSize: number;
}

/** JSON Schema of the `passthrough` batcher's options. */
export const PASSTHROUGH_BATCHER_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxQueueSize: {
      type: 'integer',
      minimum: 0,
      default: 1024,
      description: 'Most requests waiting for a free instance (executing ones not counted); more get 503 TESSERA_E_QUEUE_FULL with Retry-After. 0 = unbounded.',
      examples: [64],
    },
  },
};

interface Waiter {
  request: InferenceRequest;
  signal: AbortSignal;
  enqueuedAt: number;
  state: 'queued' | 'running' | 'done';
  resolve: (outputs: Tensor[]) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/**
 * One request, one execution: no batching across requests. Each instance runs one execution at a
 * time (Triton's instance semantics); requests wait in FIFO order for a free instance, at most
 * `maxQueueSize` of them, and leave the queue when their client goes away or their deadline
 * passes. Requests arrive validated against the model's metadata (see `InferenceRequest`) and go
 * to the backend as they are.
 */
export class PassthroughBatcher implements Batcher {
  readonly options: PassthroughBatcherOptions;
  readonly #ctx: BatcherContext;
  readonly #idle: ModelInstance[];
  readonly #queue: Waiter[] = [];
  #executing = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(ctx: BatcherContext) {
    if (ctx.instances.length === 0) throw new Error('PassthroughBatcher needs at least one instance');
    this.#ctx = ctx;
    this.options = validateAgainstSchema<PassthroughBatcherOptions>(PASSTHROUGH_BATCHER_OPTIONS_SCHEMA, structuredClone({ ...ctx.options }), 'batching');
    this.#idle = [...ctx.instances];
  }

  submit(request: InferenceRequest, signal: AbortSignal): Promise<Tensor[]> {
    const { model, version } = this.#ctx;
    if (this.#draining) return Promise.reject(draining(model, version));
    if (signal.aborted) return Promise.reject(abortedError(signal.reason, model, version, 'queued', 0));
    const { maxQueueSize } = this.options;
    // the queue holds only requests that wait: with an idle instance a request never counts
    if (maxQueueSize > 0 && this.#idle.length === 0 && this.#queue.length >= maxQueueSize) return Promise.reject(queueFull(model, version, this.#queue.length, maxQueueSize));
    return new Promise<Tensor[]>((resolve, reject) => {
      const waiter: Waiter = {
        request,
        signal,
        enqueuedAt: performance.now(),
        state: 'queued',
        resolve,
        reject,
        onAbort: () => this.#abort(waiter),
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /** Whether a request would be refused for a full queue, were `incoming` more to arrive first (idle instances take some at once). */
  saturated(incoming = 0): boolean {
    const { maxQueueSize } = this.options;
    return maxQueueSize > 0 && this.#queue.length + Math.max(0, incoming - this.#idle.length) >= maxQueueSize;
  }

  /**
   * A queued request leaves (499, or 503 TESSERA_E_QUEUE_TIMEOUT at its deadline); a running one is
   * answered at its deadline (504) and its result dropped when it comes. A client that leaves a
   * running request changes nothing: the execution cannot be interrupted.
   */
  #abort(waiter: Waiter): void {
    const { model, version } = this.#ctx;
    if (waiter.state === 'queued') {
      const i = this.#queue.indexOf(waiter);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#settle(waiter, abortedError(waiter.signal.reason, model, version, 'queued', performance.now() - waiter.enqueuedAt));
      this.#checkDrained();
    } else if (waiter.state === 'running') {
      const error = abortedError(waiter.signal.reason, model, version, 'running', 0);
      if (error.code !== cancelled().code) this.#settle(waiter, error);
    }
  }

  /** Settles a waiter once, with its outputs or an error. */
  #settle(waiter: Waiter, outcome: unknown): void {
    if (waiter.state === 'done') return;
    waiter.state = 'done';
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    if (Array.isArray(outcome)) waiter.resolve(outcome as Tensor[]);
    else waiter.reject(outcome);
  }

  #pump(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const instance = this.#idle.pop()!;
      const waiter = this.#queue.shift()!;
      waiter.state = 'running';
      void this.#run(instance, waiter);
    }
  }

  async #run(instance: ModelInstance, waiter: Waiter): Promise<void> {
    const { model, version, metadata, events } = this.#ctx;
    this.#executing++;
    const started = performance.now();
    let ok = false;
    let failed = 0;
    let failure: unknown;
    const size = requestBatchSize(waiter.request, metadata.maxBatchSize > 0);
    const spans = waiter.request.trace ? startBatchSpans(model, version, [{ trace: waiter.request.trace, enqueuedAt: waiter.enqueuedAt }], size, started) : undefined;
    try {
      const results = await withContext(spans?.context, () => instance.execute!({ requests: [waiter.request], ...(waiter.request.outputs ? { outputs: waiter.request.outputs } : {}) }, waiter.signal));
      const outcome = readResults(results, 1, model, version)[0]!;
      ok = true;
      if ('outputs' in outcome) {
        this.#settle(waiter, outcome.outputs);
      } else {
        failed = 1;
        this.#settle(waiter, outcome.error);
      }
    } catch (err) {
      failure = asInferenceError(err, model, version);
      this.#settle(waiter, failure);
    } finally {
      spans?.end(ok, failure);
      const finished = performance.now();
      this.#executing--;
      this.#idle.push(instance);
      events.emit('batch', {
        model,
        version,
        size,
        requests: 1,
        queueMs: [started - waiter.enqueuedAt],
        executeMs: finished - started,
        ok,
        failed,
      });
      this.#pump();
      this.#checkDrained();
    }
  }

  #checkDrained(): void {
    if (this.#draining && this.#executing === 0 && this.#queue.length === 0) this.#drained?.();
  }

  drain(): Promise<void> {
    this.#draining = true;
    if (this.#executing === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const previous = this.#drained;
      this.#drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  stats(): BatcherStats {
    return { queued: this.#queue.length, executing: this.#executing };
  }
}

/** The built-in `passthrough` batcher. */
export const passthroughBatcherFactory: BatcherFactory = {
  optionsSchema: PASSTHROUGH_BATCHER_OPTIONS_SCHEMA,
  create: (ctx) => new PassthroughBatcher(ctx),
};
