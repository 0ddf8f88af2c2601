import type { DataType, Tensor, TensorData, TensorSpec } from '../contracts/tensor.js';

/**
 * One input as a protocol adapter decoded it, before the pipeline validates it against the model:
 * with its data already typed (`data`), as binary bytes still to be read with the model's datatype
 * (`bytes`, Triton's binary extension), or as JSON (`json`, flat or nested, row-major). `datatype`
 * is what the client declared; absent when the protocol has none (`/v1/predict`): the model's.
 */
export type DecodedInput = { name: string; datatype?: DataType; shape: number[] } & ({ data: TensorData } | { bytes: Buffer } | { json: unknown });

/** A tensor request as a protocol adapter decoded it (framing only; nothing checked against the model yet). */
export interface DecodedInferRequest {
  id?: string;
  inputs: DecodedInput[];
  /** Output names asked for, in the order asked (repeats allowed; the pipeline drops them). */
  outputs?: string[];
  parameters?: Record<string, unknown>;
}

/** The tensors a model version is served with: its inputs as the first pre-processor accepts them, its outputs as the last post-processor produces them. */
export interface Signature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** The backend's max batch size (0: dim 0 is not a batch dim). */
  readonly maxBatchSize: number;
}

/** A tensor request for the pipeline. */
export interface TensorCall {
  model: string;
  /** The version the client named (`/versions/N/infer`); absent: the router picks. */
  version?: string;
  /**
   * The decoded request, or a function of the serving version's signature for protocols whose
   * framing needs it (Triton's raw binary request: the body is the only input).
   */
  request: DecodedInferRequest | ((signature: Signature) => DecodedInferRequest);
}

/** What a tensor request answers. */
export interface TensorResult {
  model: string;
  version: string;
  id: string | undefined;
  /** The outputs asked for, in the order asked; all of the signature's, in its order, when none was named. */
  outputs: Tensor[];
  /** The label and score outputs the version's last post step names (`Processor.predictions`), when it names them. */
  predictions?: { readonly label: string; readonly score: string };
}

/** A generation request for the pipeline (OpenAI-compatible body). */
export interface GenerateCall {
  kind: 'chat' | 'completion';
  /** The body as the client sent it (schema-checked by the adapter: `model`, `stream`, `stream_options`). */
  body: Readonly<Record<string, unknown>> & { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean | null } | null };
}
