import type { Logger } from 'pino';
import type { JSONSchema, ModelMetadata } from './backend.js';
import type { Tensor, TensorSpec } from './tensor.js';

/** Where a processor runs: before the batcher (`pre`) or after it (`post`). */
export type ProcessorStage = 'pre' | 'post';

/** What a processor factory gets, once per model version, when the version becomes ready. */
export interface ProcessorContext {
  model: string;
  version: string;
  stage: ProcessorStage;
  /**
   * The step's options: its entry in `preprocess`/`postprocess` without `processor`, validated
   * against the factory's schema (its `default`s filled in, strings converted).
   */
  options: Readonly<Record<string, unknown>>;
  /**
   * The tensors the step is next to. For `pre`: the specs it must produce (the model's inputs, or
   * what the next pre step accepts). For `post`: the specs it receives (the model's outputs, or what
   * the previous post step produces).
   */
  specs: readonly TensorSpec[];
  /** The backend's metadata of the version. */
  metadata: ModelMetadata;
  logger: Logger;
  /**
   * The config file's folder, that relative paths in the step's options resolve against (e.g. the
   * `classification` step's `labelsFile`). Absent in contexts made by hand: the working directory.
   */
  configDir?: string;
}

/** What `process` gets with each request's tensors. */
export interface ProcessContext {
  model: string;
  version: string;
  stage: ProcessorStage;
  /** The request's id. */
  id: string;
  /** The request's protocol parameters (OIP v2 `parameters`), untouched. */
  parameters: Readonly<Record<string, unknown>>;
  /** Aborted when the client went away. */
  signal: AbortSignal;
  /**
   * The outputs the client asked for (names of the served signature), when it asked for some. The
   * core selects them after the last post step; a post step may use this to skip work.
   */
  outputs?: readonly string[];
}

/**
 * A per-request step before or after the model (KServe's transformer, Triton's ensemble step):
 * decode an image into a tensor, normalise, turn scores into labels. Configured per model as
 * `preprocess: [...]` / `postprocess: [...]`; steps run in order, per request (not per batch).
 *
 * The pipeline validates the client's request against the **served** signature — the model's
 * inputs as the first pre step accepts them, the outputs as the last post step produces them — so a
 * pre step gets tensors that match its `specs` (or the version's inputs when it declares none).
 * What the last pre step returns is checked against the model's inputs (names, datatypes, ranks,
 * fixed dims); a mismatch is the processor's fault (500 `TESSERA_E_PROCESSOR_FAILED`).
 */
export interface Processor {
  /**
   * The tensors this step accepts (pre) or produces (post), when they differ from `ctx.specs`:
   * e.g. an image decoder accepts `image` BYTES `[-1]` and produces `x` FP32 `[-1, 3, H, W]`.
   * Absent: the same as `ctx.specs`.
   */
  readonly specs?: readonly TensorSpec[];
  /**
   * A post step whose outputs are class labels and their scores names them here (the built-in
   * `classification` step does): two of its `specs`, BYTES and numeric, of the same shape
   * `[..., k]` (the top k of each row, best first). When the last post step declares them,
   * `/v1/predict` answers `predictions: [{label, score}, …]` besides the outputs.
   */
  readonly predictions?: { readonly label: string; readonly score: string };
  /**
   * Transforms one request's tensors. Throw a TesseraError with a 4xx code for input the step
   * cannot take (e.g. `TESSERA_E_IMAGE_INVALID` for an undecodable image); any other error is a 500
   * `TESSERA_E_PROCESSOR_FAILED`. Must not modify its input tensors in place.
   */
  process(tensors: readonly Tensor[], ctx: ProcessContext): Tensor[] | Promise<Tensor[]>;
  /** Frees resources when the version unloads. Idempotent. */
  close?(): Promise<void>;
}

/** Makes a processor per model version and stage; registered with `registerProcessor(name, factory)`. */
export interface ProcessorFactory {
  /** JSON Schema of the step's options (its entry's keys besides `processor`). */
  readonly optionsSchema?: JSONSchema;
  create(ctx: ProcessorContext): Processor | Promise<Processor>;
}

/** DI token for processor factories; bound with the processor name. */
export const PROCESSOR_FACTORY: symbol = Symbol.for('@tessera/core/ProcessorFactory');
