import type { InferenceRequest } from '../../contracts/backend.js';
import type { Tensor } from '../../contracts/tensor.js';
import { TesseraError, errorMessage, isTesseraError } from '../../errors.js';

/** How one request of an execution that resolved settles. */
export type Settlement = { outputs: Tensor[] } | { error: TesseraError };

/** Number of samples a request carries along dim 0 (1 for models that do not batch). */
export function requestBatchSize(request: InferenceRequest, batched: boolean): number {
  if (!batched) return 1;
  return request.inputs[0]?.shape[0] ?? 1;
}

/** Wraps any backend failure as a TesseraError so the HTTP edge maps it to a status. */
export function asInferenceError(err: unknown, model: string, version: string): TesseraError {
  if (isTesseraError(err)) return err;
  return new TesseraError('TESSERA_E_INFERENCE_FAILED', `${model} v${version}: ${errorMessage(err)}`, { cause: err });
}

/**
 * Reads what `execute` resolved with, one settlement per request: its outputs, or the `Error` in
 * its slot (a TesseraError as is, any other wrapped by `asInferenceError`). Throws — failing the
 * whole batch — when the result is not `count` slots, each a tensor list or an Error.
 */
export function readResults(results: unknown, count: number, model: string, version: string): Settlement[] {
  if (!Array.isArray(results) || results.length !== count) {
    throw new Error(`the backend returned ${Array.isArray(results) ? results.length : 'no'} output lists for a batch of ${count} requests`);
  }
  return results.map((slot: unknown, i): Settlement => {
    if (slot instanceof Error) return { error: asInferenceError(slot, model, version) };
    if (Array.isArray(slot)) return { outputs: slot as Tensor[] };
    throw new Error(`the backend returned ${slot === null ? 'null' : typeof slot} for request ${i + 1} of the batch, neither its outputs nor an Error`);
  });
}
