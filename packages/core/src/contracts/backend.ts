import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { ServingEvents } from './events.js';
import type { MetricRegistrar } from './metrics.js';
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
   * The model's config section as the backend sees it: the backend-specific keys (those the core
   * does not own), with the version's overrides applied and validated against the backend's
   * `modelConfigSchema` (its defaults filled in), plus `batching` — the resolved batching section
   * (`batcher`, `maxBatchSize` when set, and the batcher's options), so that a backend can honour
   * `batching.maxBatchSize` in the metadata it reports. The keys the core consumes itself
   * (`backend`, `path`, `versions`, `instances`, `routing`, `warmup`, `preprocess`, `postprocess`)
   * are not here: `path` arrives as `spec.path`, `instances` as `instanceIndex`/`instanceCount`.
   */
  config: Readonly<Record<string, unknown>>;
  /** Which of `instances` this is (0-based); a backend may use it to pin threads or devices. */
  instanceIndex: number;
  /** How many instances of this version are loaded (`instances`, `auto` resolved); ONNX Runtime divides its threads among them. */
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
  /**
   * The server's metric registry, for a backend's own series (e.g. worker restarts); served on
   * `/metrics`. Absent where no server runs (a backend loaded alone, in a test).
   */
  metrics?: MetricRegistrar;
}

/**
 * One request inside a batch: its input tensors and the outputs it wants.
 *
 * **What a backend may rely on.** The serving pipeline validates every request once, against the
 * metadata the instance reported, before any batcher or backend sees it. So `inputs` holds exactly
 * the model's inputs, each once and **in `metadata.inputs` order**, each with the declared datatype,
 * rank and fixed dims, data whose length matches the shape (typed arrays for numeric types, strings
 * for BYTES), and — when `maxBatchSize > 0` — one dim 0 shared by all inputs and at most
 * `maxBatchSize`. `outputs`, when present, names only declared outputs, each once. A backend need
 * not (and should not) check any of that again.
 */
export interface InferenceRequest {
  /** The client's request id, when it sent one. */
  id?: string;
  /** The model's inputs, in `metadata.inputs` order, validated (see above). */
  inputs: Tensor[];
  /** Output names this request asked for (declared ones, no repeats); absent means every output. */
  outputs?: string[];
  /** Protocol-level parameters, passed through untouched. */
  parameters?: Record<string, unknown>;
  /** The request's trace context, set only while tracing is on (batchers link batch spans to it). */
  trace?: Context;
  /**
   * The request headers the instance declared in `requestHeaders` (lower-cased), when the client
   * sent them; absent when the instance declares none.
   */
  headers?: Readonly<Record<string, string>>;
}

/**
 * What `execute` returns for one request of a batch: its output tensors, or an `Error` that fails
 * this request alone (the others of the batch still get their outputs) — Triton's per-request
 * error. A `TesseraError` keeps its code and status (e.g. `TESSERA_E_INPUT_DATA`, 400, for a value
 * the model cannot take); any other `Error` becomes `TESSERA_E_INFERENCE_FAILED` (500).
 */
export type RequestResult = Tensor[] | Error;

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
   * Request headers a backend may use or forward, lower-cased: always `x-request-id` (the client's,
   * or the id the server gave the request), `traceparent` and `tracestate` when sent, plus every
   * header the instance declared in `ModelInstance.requestHeaders` (e.g. a session header for
   * prefix affinity).
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
   * Executes a whole batch and returns, for each request in order, its result: its output tensors
   * (at least the outputs it asked for; extra ones are dropped by the core), or an `Error` that
   * fails that request alone. Inputs of requests in one batch share their non-batch dims and are
   * validated (see `InferenceRequest`). Rejecting fails the whole batch. `signal` aborts when every
   * client of the batch went away.
   */
  execute?(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]>;
  /**
   * Whether the dynamic batcher may hand it its next batch while one still runs (default: no, one
   * `execute` at a time). For an instance whose executions queue in a thread or process of their
   * own: the next batch is waiting there when the running one ends, instead of one hand-off away
   * (the answer back to the event loop, the next batch out), time its session would otherwise sit
   * idle for every batch. The batcher sends it shortly before the running batch is predicted to
   * end, so the queue still gathers until then, and never more than one ahead.
   */
  readonly acceptsNextBatch?: boolean;
  /** Streams a generation; the engine batches internally. */
  generate?(request: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateChunk>;
  /**
   * Runs representative work so that the first real request is not slow (called when the model's
   * `warmup` is true, the default). A tensor instance without it is warmed by the core with one
   * `execute` of zeros shaped from its metadata (dynamic dims as 1).
   */
  warmup?(): Promise<void>;
  /** Whether the instance can serve now (for remote replicas); absent means always. */
  ready?(): Promise<boolean>;
  /**
   * Why the instance cannot serve now, in a few words (`restarting: …`), while `ready()` answers
   * false; shown in the readiness answers (`/v2/health/ready`, `/v2/models/{m}/ready`).
   */
  readonly notReadyReason?: string | undefined;
  /**
   * Request headers (lower-case names) this instance needs from each request: the core copies
   * them, when the client sent them, into `GenerateRequest.headers` / `InferenceRequest.headers`.
   * Read once, after `load`. E.g. a gateway's session-affinity header.
   */
  readonly requestHeaders?: readonly string[];
  /**
   * What the backend chose for this instance where the config left it open (threads, execution
   * providers, …), as plain JSON: logged when the model is ready and shown by the model
   * configuration extension (`GET /v2/models/{m}/config`, `tessera.instance_settings`), so an
   * operator can see what a default turned into. Read once, after `load`.
   */
  readonly settings?: Readonly<Record<string, unknown>>;
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
  /**
   * How many instances `instances: auto` (the default) loads of a model version on `cores` CPU
   * cores (`availableCores()`: the cgroup quota included). Without it, `auto` loads 1. The core
   * calls it once per version load; an answer below 1 counts as 1.
   */
  autoInstances?(spec: Pick<ModelVersionSpec, 'model' | 'version' | 'path' | 'config'>, cores: number): number;
  load(spec: ModelVersionSpec, ctx: LoadContext): Promise<ModelInstance>;
  /**
   * Ahead-of-time work for one model version, done before serving so that a server starts warm:
   * e.g. TensorRT engines built for every shape profile and written to their cache (`tessera
   * build-engine` calls it for each version whose backend has it; `spec` is that of instance 0 of
   * 1). Idempotent: what is up to date is reused, not rebuilt. Rejects with a TesseraError saying
   * why it cannot be done here.
   */
  build?(spec: ModelVersionSpec, ctx: LoadContext): Promise<BuildReport>;
}

/** One file a `Backend.build` wrote or found up to date. */
export interface BuildFile {
  /** Absolute path. */
  path: string;
  bytes: number;
  /** `built`: written (or rewritten) by this build; `reused`: already there and up to date. */
  state: 'built' | 'reused';
}

/** What `Backend.build` did for one model version. */
export interface BuildReport {
  /** The files written or reused (caches, engines), in any order. */
  files: BuildFile[];
  /** Short lines on what was built, for the command's output (e.g. the shapes of each profile). */
  notes?: string[];
}

/** DI token for backends; bind with a name (`whenNamed('onnxruntime')`). */
export const BACKEND: symbol = Symbol.for('@tessera/core/Backend');
