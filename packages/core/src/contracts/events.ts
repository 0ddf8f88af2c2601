import { EventEmitter } from 'node:events';
import type { EndpointKind } from './hook.js';

export type ModelState = 'loading' | 'warming' | 'ready' | 'draining' | 'closed' | 'failed';

/** The events exporters observe. Emitting never throws into the request path. */
export interface ServingEventMap {
  /**
   * A request to a Tessera endpoint was answered (any protocol, any status, including refusals by
   * hooks and 499s). Health probes, metrics scrapes and unknown routes are not requests here.
   */
  request: [event: RequestEvent];
  /** A shadow copy of a request ended (its answer was discarded). */
  shadow: [event: { model: string; version: string; kind: 'tensor' | 'generate'; status: number; code?: string; durationMs: number }];
  /**
   * A batch was executed. `size`: samples along dim 0; `queueMs`: each request's wait, in request
   * order; `ok`: whether the execution itself succeeded; `failed`: requests that failed inside a
   * successful execution (an `Error` in their slot, see `RequestResult`) — 0 when `ok` is false,
   * since then every request of the batch failed.
   */
  batch: [event: { model: string; version: string; size: number; requests: number; queueMs: number[]; executeMs: number; ok: boolean; failed: number }];
  /**
   * A model version changed state. `replaced`: a reload put a new object of the same label in its
   * place, which already serves; this one is draining and closing (statistics and series of the
   * label go on).
   */
  modelState: [event: { model: string; version: string; state: ModelState; reason?: string; replaced?: boolean }];
  /** An LLM generation ended (any outcome). Token counts come from the engine's `usage`. */
  generation: [event: GenerationEvent];
  /** An upstream replica changed health, or left the pool (`removed`). */
  upstream: [event: UpstreamEvent];
}

export interface RequestEvent {
  /** The server's request id (the client's `x-request-id` when it sent one). */
  id: string;
  method: string;
  /** URL path without the query string. */
  path: string;
  /** The route template, e.g. `/v2/models/:model/infer`. */
  route: string;
  /** `v2`, `predict`, `openai`, or `http` for metadata and management endpoints. */
  protocol: string;
  /** The endpoint kind (see `EndpointKind`). */
  endpoint: EndpointKind;
  model: string | undefined;
  version: string | undefined;
  status: number;
  code?: string;
  durationMs: number;
  /**
   * Tensor requests that passed validation (and their `parameters`): where their time went in the
   * pipeline. Absent for generations and for requests refused before (bad input, unknown model,
   * not ready, auth), so its presence says the request reached the version's work.
   */
  tensor?: TensorTimings;
}

/**
 * A tensor request's own phases, ms (Triton's statistics read them as `compute_input` and
 * `compute_output`). Queue and execution times are per batch: see the `batch` event.
 */
export interface TensorTimings {
  /** Validation and tensor preparation (JSON or binary data into typed arrays, range checks), then the preprocess steps. */
  inputMs: number;
  /** The postprocess steps and the selection of the outputs asked for; 0 when the request failed before its outputs were ready. */
  outputMs: number;
}

export interface GenerationEvent {
  model: string;
  version: string;
  kind: 'chat' | 'completion';
  stream: boolean;
  /** Whether the generation completed (false: upstream error, client gone, interrupted stream). */
  ok: boolean;
  /** From arrival to the first chunk carrying generated text (streaming only). */
  ttftMs?: number;
  /** Mean time between output tokens after the first (streaming, ≥ 2 output tokens). */
  tpotMs?: number;
  promptTokens?: number;
  completionTokens?: number;
  durationMs: number;
}

export interface UpstreamEvent {
  model: string;
  /** The replica's base URL (a configured value, so label cardinality stays bounded). */
  upstream: string;
  healthy: boolean;
  /** The replica was removed from the pool (unload, or a managed replica stopped for good). */
  removed?: boolean;
  reason?: string;
}

/**
 * A typed event hub between the serving path and exporters. Listener errors are caught and
 * reported once through `onListenerError`: telemetry never fails a request.
 */
export class ServingEvents {
  readonly #emitter = new EventEmitter();
  #reported = false;
  onListenerError: (err: unknown) => void = () => {};

  on<K extends keyof ServingEventMap>(event: K, listener: (...args: ServingEventMap[K]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof ServingEventMap>(event: K, listener: (...args: ServingEventMap[K]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  emit<K extends keyof ServingEventMap>(event: K, ...args: ServingEventMap[K]): void {
    if (this.#emitter.listenerCount(event) === 0) return;
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (err) {
        if (!this.#reported) {
          this.#reported = true;
          this.onListenerError(err);
        }
      }
    }
  }
}
