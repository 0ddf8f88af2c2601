import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ServingEvents } from './events.js';
import type { Tensor, TensorSpec } from './tensor.js';

/** What a loaded model version declares about itself (OIP v2 model metadata, plus batching). */
export interface ModelMetadata {
  /** Backend-specific platform string, e.g. `onnxruntime_onnx`. */
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * The largest batch (dim 0) one execution accepts; 0 means the model does not batch: its dim 0 is
   * not a batch dimension and requests are passed through exactly as shaped.
   */
  maxBatchSize: number;
}

/** Everything a backend needs to load one model version. */
export interface ModelVersionSpec {
  /** Model name from the config. */
  model: string;
  /** Version label (a positive integer as a string). */
  version: string;
  /** Absolute path of the model artifact, when the model has one. */
  path?: string;
  /**
   * The model's config section with the version's overrides applied: every key, including the
   * backend-specific ones the backend's `modelConfigSchema` declared (already validated).
   */
  config: Readonly<Record<string, unknown>>;
  /** Which of `instances` this is (0-based); a backend may use it to pin threads or devices. */
  instanceIndex: number;
  /** How many instances of this version are loaded; ONNX Runtime divides its threads among them. */
  instanceCount: number;
}

export interface LoadContext {
  /** A child logger bound to the model and version. */
  logger: Logger;
  /**
   * Aborted when the server shuts down during the load. Only for the load itself: an instance's
   * own lifetime ends with `unload()`.
   */
  signal: AbortSignal;
  /** The serving events, for backends that report their own telemetry (e.g. upstream health). */
  events: ServingEvents;
}

/** One request inside a batch: its input tensors and the outputs it wants. */
export interface InferenceRequest {
  /** The client's request id, when it sent one. */
  id?: string;
  inputs: Tensor[];
  /** Output names this request asked for; absent means every output. */
  outputs?: string[];
  /** Protocol-level parameters, passed through untouched. */
  parameters?: Record<string, unknown>;
  /** The request's trace context, set only while tracing is on (batchers link batch spans to it). */
  trace?: Context;
}

/** What `execute` receives: one or more requests to run as one execution (Triton's contract). */
export interface InferenceBatch {
  requests: InferenceRequest[];
  /**
   * Union of the outputs the requests asked for (absent when any request wants all outputs).
   * A backend may compute only these.
   */
  outputs?: string[];
}

/**
 * A request to an LLM in OpenAI's shape. The core validates only what it needs (`model`, `stream`,
 * `stream_options`, `messages`/`prompt` present); every other field passes through untouched.
 */
export interface GenerateRequest {
  /** `chat` for `/v1/chat/completions`, `completion` for `/v1/completions`. */
  kind: 'chat' | 'completion';
  /** The OpenAI request body as the client sent it. */
  body: Readonly<Record<string, unknown>>;
  /** `body.stream === true`. */
  stream: boolean;
  /**
   * Request headers a backend may use or forward, lower-cased: `x-session-id` (prefix affinity),
   * `x-request-id`, `traceparent`, `tracestate`.
   */
  headers: Readonly<Record<string, string>>;
  /**
   * The request's trace context, set only while tracing is on: a remote backend starts its client
   * span under it and injects `traceparent` (see `startClientSpan`).
   */
  trace?: Context;
}

/**
 * One piece of a generation, in OpenAI's wire shape. When streaming, each chunk is one SSE event
 * (`chat.completion.chunk` / `text_completion` chunk; the usage-only chunk has `choices: []`); when
 * not streaming, the backend yields exactly one chunk: the whole response object.
 */
export interface GenerateChunk {
  /** The chunk as an object. May be left out when `json` is given. */
  data?: Readonly<Record<string, unknown>>;
  /**
   * The chunk already serialised (e.g. the bytes an upstream sent), written as is so the core
   * neither parses nor stringifies it: a gateway forwarding a stream gives only this, and the core
   * reads what it needs (generated text present, `usage`) from the string, parsing only the chunks
   * that carry usage. Must be one JSON object.
   */
  json?: string;
}

/**
 * One loaded model version (or one replica of it). Tensor models implement `execute`, LLMs
 * implement `generate`; a model may implement both.
 */
export interface ModelInstance {
  readonly metadata: ModelMetadata;
  /**
   * Executes a whole batch and returns, for each request in order, its output tensors. Inputs of
   * requests in one batch share their non-batch dims. Rejects on failure; the batch fails as a whole.
   */
  execute?(batch: InferenceBatch, signal: AbortSignal): Promise<Tensor[][]>;
  /** Streams a generation; the engine batches internally. */
  generate?(request: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateChunk>;
  /** Runs representative work so that the first real request is not slow. */
  warmup?(): Promise<void>;
  /** Whether the instance can serve now (for remote replicas); absent means always. */
  ready?(): Promise<boolean>;
  /** Frees the instance; called once. */
  unload(): Promise<void>;
}

/** A JSON Schema (draft-07 subset understood by ajv). */
export type JSONSchema = Record<string, unknown>;

/** A backend: loads model versions. Registered by a plugin under a name (`onnxruntime`, `vllm`, …). */
export interface Backend {
  /**
   * JSON Schema for the backend-specific keys of a model's config (e.g. `sessionOptions`). The core
   * validates the model section against it before `load`; keys the core itself owns are removed first.
   */
  readonly modelConfigSchema?: JSONSchema;
  /** Whether a model of this backend needs a `path` (default true). */
  readonly requiresPath?: boolean;
  load(spec: ModelVersionSpec, ctx: LoadContext): Promise<ModelInstance>;
}

/** DI token for backends; bind with a name (`whenNamed('onnxruntime')`). */
export const BACKEND: symbol = Symbol.for('@tessera/core/Backend');
