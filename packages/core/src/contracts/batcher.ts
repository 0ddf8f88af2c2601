import type { Logger } from 'pino';
import type { InferenceRequest, JSONSchema, ModelInstance, ModelMetadata } from './backend.js';
import type { Tensor } from './tensor.js';
import type { ServingEvents } from './events.js';

export interface BatcherStats {
  /** Requests waiting in the queue. */
  queued: number;
  /** Requests being executed. */
  executing: number;
}

/**
 * Takes requests for one model version and runs them on its instances, alone or combined into
 * batches. Every submitted request settles exactly once.
 */
export interface Batcher {
  /**
   * Resolves with the request's outputs; rejects with a TesseraError. `signal` aborts when the
   * client goes away or when the request's deadline passes (its reason is then a
   * `TESSERA_E_REQUEST_DEADLINE_EXCEEDED` error: `isDeadlineExceeded`). A batcher should settle the
   * request then: a queued one with 503 `TESSERA_E_QUEUE_TIMEOUT` (deadline) or 499 (client gone),
   * a running one with the deadline's 504, dropping its result when it comes.
   */
  submit(request: InferenceRequest, signal: AbortSignal): Promise<Tensor[]>;
  /** Stops admitting, waits for queued and running work to finish. Idempotent. */
  drain(): Promise<void>;
  stats(): BatcherStats;
  /**
   * Whether `submit` would refuse a request for a full queue, were `incoming` more requests (those
   * admitted whose bodies are still being read) to arrive first. Cheap, no side effects: the HTTP
   * edge asks it before it reads a request's body, and answers 503 at once when it says true.
   */
  saturated?(incoming?: number): boolean;
}

export interface BatcherContext {
  model: string;
  version: string;
  metadata: ModelMetadata;
  /** The loaded instances of this version; each runs one execution at a time. */
  instances: readonly ModelInstance[];
  /** The model's `batching` config section (validated against the factory's schema). */
  options: Readonly<Record<string, unknown>>;
  events: ServingEvents;
  logger: Logger;
}

/** Makes one batcher per model version; bound under BATCHER_FACTORY with a name (`passthrough`, `dynamic`). */
export interface BatcherFactory {
  /** JSON Schema of the options this batcher reads from `batching:` (besides `batcher` itself). */
  readonly optionsSchema?: JSONSchema;
  create(ctx: BatcherContext): Batcher;
}

export const BATCHER_FACTORY: symbol = Symbol.for('@tessera/core/BatcherFactory');
