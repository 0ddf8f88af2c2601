import type { InferenceRequest, ModelInstance } from '../contracts/backend.js';
import type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from '../contracts/batcher.js';
import type { Tensor } from '../contracts/tensor.js';
import { startBatchSpans, withContext } from '../telemetry/tracing.js';
import { asInferenceError, readResults, requestBatchSize } from './internal/batch-results.js';
import { cancelled, draining } from './internal/refusals.js';

interface Waiter {
  request: InferenceRequest;
  signal: AbortSignal;
  enqueuedAt: number;
  resolve: (outputs: Tensor[]) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/**
 * One request, one execution: no batching across requests. Each instance runs one execution at a
 * time (Triton's instance semantics); requests wait in FIFO order for a free instance and leave the
 * queue when their client goes away. Requests arrive validated against the model's metadata (see
 * `InferenceRequest`) and go to the backend as they are.
 */
export class PassthroughBatcher implements Batcher {
  readonly #ctx: BatcherContext;
  readonly #idle: ModelInstance[];
  readonly #queue: Waiter[] = [];
  #executing = 0;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(ctx: BatcherContext) {
    if (ctx.instances.length === 0) throw new Error('PassthroughBatcher needs at least one instance');
    this.#ctx = ctx;
    this.#idle = [...ctx.instances];
  }

  submit(request: InferenceRequest, signal: AbortSignal): Promise<Tensor[]> {
    if (this.#draining) return Promise.reject(draining(this.#ctx.model, this.#ctx.version));
    if (signal.aborted) return Promise.reject(cancelled());
    return new Promise<Tensor[]>((resolve, reject) => {
      const waiter: Waiter = {
        request,
        signal,
        enqueuedAt: performance.now(),
        resolve,
        reject,
        onAbort: () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) {
            this.#queue.splice(i, 1);
            reject(cancelled());
            this.#checkDrained();
          }
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const instance = this.#idle.pop()!;
      const waiter = this.#queue.shift()!;
      waiter.signal.removeEventListener('abort', waiter.onAbort);
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
        waiter.resolve(outcome.outputs);
      } else {
        failed = 1;
        waiter.reject(outcome.error);
      }
    } catch (err) {
      failure = asInferenceError(err, model, version);
      waiter.reject(failure);
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
  optionsSchema: { type: 'object', properties: {}, additionalProperties: false },
  create: (ctx) => new PassthroughBatcher(ctx),
};
