/**
 * The messages between a model instance (main thread) and the worker thread that runs its ONNX
 * Runtime session (`session-worker.ts`). Types only: nothing here exists at run time, so the worker
 * imports no more than `onnxruntime-node`.
 *
 * The wire format is plain data — names, type strings, number arrays, typed arrays, string arrays —
 * so that it survives structured clone; ORT `Tensor` objects are rebuilt on each side.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';

/** Tensor data on the wire: a typed array (its buffer copied or transferred) or a string array. */
export type WireData = OrtTensor.DataType;

/** One tensor on the wire: ORT's type name (`float32`, `int64`, `string`, …), dims and data. */
export interface WireTensor {
  name: string;
  type: OrtTensor.Type;
  dims: readonly number[];
  data: WireData;
}

/** Main thread → worker. */
export type ToWorker =
  /** Creates the session; answered with `loaded` or `load-failed`. */
  | { op: 'load'; path: string; sessionOptions: InferenceSession.SessionOptions; spinMs: number }
  /** Runs the session; answered with a `RunReply` of the same id. */
  | { op: 'run'; id: number; feeds: WireTensor[]; fetches: string[]; spin?: boolean }
  /** Releases the session; answered with `released`, after which the worker exits. */
  | { op: 'release' }
  /**
   * For tests only: the thread exits at once with `code`, as a crash would end it. Handled on
   * arrival, not after the runs queued before it (which are not inside ONNX Runtime yet).
   */
  | { op: 'exit'; code: number }
  /**
   * For tests only: an uncaught exception in the thread's JavaScript, with `message` (the worker's
   * `error` event, then its exit with code 1). Handled on arrival, as `exit` is.
   */
  | { op: 'crash'; message: string };

/** The answer to one `run`: its outputs in `fetches` order, or ORT's error message. */
export type RunReply = { id: number; outputs: WireTensor[]; error?: undefined } | { id: number; outputs?: undefined; error: string };

/** Worker → main thread. */
export type FromWorker =
  | RunReply
  | { id?: undefined; op: 'loaded'; inputMetadata: readonly InferenceSession.ValueMetadata[]; outputMetadata: readonly InferenceSession.ValueMetadata[] }
  | { id?: undefined; op: 'load-failed'; message: string }
  | { id?: undefined; op: 'released' };
