import type { LimitsConfig } from '../config/types.js';
import type { InferenceRequest } from '../contracts/backend.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { shapeSize } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import { decodeBinaryTensor } from '../http/binary-codec.js';
import { decodeJsonData } from '../http/json-codec.js';
import type { DecodedInferRequest, DecodedInput, Signature } from './types.js';

/** The element limits validation enforces (`server.limits`). */
export type TensorLimits = Pick<LimitsConfig, 'maxTensorElements' | 'maxRequestElements'>;

/** `server.limits`' defaults for tensors: 2^27 elements per input, 2^28 per request. */
export const DEFAULT_TENSOR_LIMITS: Readonly<TensorLimits> = Object.freeze({ maxTensorElements: 2 ** 27, maxRequestElements: 2 ** 28 });

/**
 * Validates a decoded request against the signature a version is served with, once, and builds the
 * `InferenceRequest` every later stage relies on (see its contract): exactly the declared inputs,
 * in the signature's order, with the declared datatypes, ranks and fixed dims, data that fits the
 * shape, one shared dim 0 within the max batch size, and only declared outputs. Every failure is a
 * 400 with a code naming what is wrong.
 */
export function validateInferRequest(decoded: DecodedInferRequest, signature: Signature, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): InferenceRequest {
  const given = inSignatureOrder(decoded.inputs, signature);
  let batch: number | undefined;
  let elements = 0;
  // every shape is checked (and counted against the limits) before any input's data is decoded
  for (let i = 0; i < signature.inputs.length; i++) {
    const spec = signature.inputs[i]!;
    const input = given[i];
    if (!input) throw new TesseraError('TESSERA_E_INPUT_MISSING', `missing input '${spec.name}' (${spec.datatype} [${spec.shape.join(', ')}])`);
    elements += checkElementCount(spec.name, input.shape, limits);
    if (elements > limits.maxRequestElements) {
      throw new TesseraError(
        'TESSERA_E_INPUT_TOO_LARGE',
        `the request's inputs have ${elements} elements or more together, over server.limits.maxRequestElements (${limits.maxRequestElements}); split the request or raise the limit`,
      );
    }
    checkShape(spec, input.datatype ?? spec.datatype, input.shape, signature.maxBatchSize);
    if (signature.maxBatchSize > 0 && input.shape.length > 0) {
      if (batch === undefined) batch = input.shape[0];
      else if (batch !== input.shape[0]) {
        throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${spec.name}': batch size ${input.shape[0]} differs from the other inputs' ${batch}`);
      }
    }
  }
  const inputs = new Array<Tensor>(signature.inputs.length);
  for (let i = 0; i < signature.inputs.length; i++) inputs[i] = tensorOf(signature.inputs[i]!, given[i]!);
  const request: InferenceRequest = { inputs };
  if (decoded.id !== undefined) request.id = decoded.id;
  if (decoded.parameters) request.parameters = decoded.parameters;
  if (decoded.outputs) {
    const wanted: string[] = [];
    for (const name of decoded.outputs) {
      if (!signature.outputs.some((s) => s.name === name)) {
        throw new TesseraError('TESSERA_E_OUTPUT_UNKNOWN', `unknown output '${name}'; the model's outputs are: ${names(signature.outputs)}`);
      }
      if (!wanted.includes(name)) wanted.push(name);
    }
    if (wanted.length > 0) request.outputs = wanted;
  }
  return request;
}

/**
 * The request's inputs in the signature's order (undefined where one is missing); unknown and
 * repeated names refused. Clients usually send the inputs in the metadata's order: that case costs
 * one comparison per input.
 */
function inSignatureOrder(given: readonly DecodedInput[], signature: Signature): (DecodedInput | undefined)[] {
  const specs = signature.inputs;
  if (given.length === specs.length && given.every((input, i) => input.name === specs[i]!.name)) return given as DecodedInput[];
  const ordered = new Array<DecodedInput | undefined>(specs.length);
  for (const input of given) {
    const k = specs.findIndex((s) => s.name === input.name);
    if (k === -1) throw new TesseraError('TESSERA_E_INPUT_UNKNOWN', `unknown input '${input.name}'; the model's inputs are: ${names(specs)}`);
    if (ordered[k]) throw new TesseraError('TESSERA_E_INPUT_DUPLICATE', `input '${input.name}' is given twice`);
    ordered[k] = input;
  }
  return ordered;
}

function tensorOf(spec: TensorSpec, input: DecodedInput): Tensor {
  const { name, datatype } = spec;
  const shape = input.shape;
  if ('bytes' in input) return { name, datatype, shape, data: decodeBinaryTensor(datatype, shape, input.bytes, `input '${name}'`, spec.content) };
  if ('json' in input) {
    if (input.json === undefined) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `invalid request: input '${name}' has no data (send \`data\`, or binary tensor data with parameters.binary_data_size)`);
    }
    return decodeJsonData(name, datatype, shape, input.json);
  }
  const count = shapeSize(shape);
  if (input.data.length !== count) {
    throw new TesseraError('TESSERA_E_INPUT_DATA', `input '${name}': shape ${dimsText(shape)} needs ${count} elements but data has ${input.data.length}`);
  }
  return { name, datatype, shape, data: input.data };
}

/**
 * The element count of a request input's shape, checked to be a list of whole non-negative dims
 * within `server.limits.maxTensorElements`, each dim too (so a zero dim cannot hide a huge one:
 * `[1e15, 0]` has no elements but no backend takes it). Pure arithmetic on the shape: nothing is
 * allocated before it passes, and the product never overflows (it stops at the limit).
 */
export function checkElementCount(name: string, shape: unknown, limits: TensorLimits = DEFAULT_TENSOR_LIMITS): number {
  if (!Array.isArray(shape)) throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': shape must be an array of non-negative integers`);
  const max = limits.maxTensorElements;
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': dim ${i} of the shape is ${shownDim(d)}; dims are non-negative integers`);
    }
    if (d > max) throw tooLarge(name, shape, `dim ${i} is ${d}`, max);
    count *= d;
    if (count > max) throw tooLarge(name, shape, `it has more than ${max} elements`, max);
  }
  return count;
}

function tooLarge(name: string, shape: readonly unknown[], what: string, max: number): TesseraError {
  return new TesseraError('TESSERA_E_INPUT_TOO_LARGE', `input '${name}': shape ${dimsText(shape)} is too large: ${what}, over server.limits.maxTensorElements (${max}); split the request or raise the limit`);
}

/** A shape for a message, at most 8 dims of it. */
function dimsText(shape: readonly unknown[]): string {
  return shape.length > 8 ? `[${shape.slice(0, 8).join(', ')}, … (rank ${shape.length})]` : `[${shape.join(', ')}]`;
}

function shownDim(d: unknown): string {
  if (typeof d === 'number') return String(d);
  if (typeof d === 'string') return JSON.stringify(d.slice(0, 20));
  return d === null ? 'null' : typeof d;
}

/** Checks a request input's datatype and shape against its declaration. */
export function checkShape(spec: TensorSpec, datatype: string, shape: readonly number[], maxBatchSize: number): void {
  if (datatype !== spec.datatype) {
    throw new TesseraError('TESSERA_E_INPUT_DATATYPE', `input '${spec.name}': datatype ${datatype} does not match the model's ${spec.datatype}`);
  }
  const want = spec.shape;
  if (shape.length !== want.length) {
    throw new TesseraError(
      'TESSERA_E_INPUT_SHAPE',
      `input '${spec.name}': shape ${dimsText(shape)} has rank ${shape.length}; the model expects [${want.join(', ')}] (rank ${want.length}, -1 = any size)`,
    );
  }
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w !== -1 && w !== shape[i]) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${spec.name}': shape ${dimsText(shape)} differs from the model's [${want.join(', ')}] at dim ${i} (-1 = any size)`);
    }
  }
  if (maxBatchSize > 0 && shape.length > 0 && shape[0]! > maxBatchSize) {
    throw new TesseraError(
      'TESSERA_E_INPUT_SHAPE',
      `input '${spec.name}': batch size ${shape[0]} (dim 0) exceeds the model's max batch size ${maxBatchSize}; split the request, or raise batching.maxBatchSize (0 when dim 0 is not a batch dimension)`,
    );
  }
  if (maxBatchSize > 0 && shape.length > 0 && shape[0] === 0) {
    throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${spec.name}': batch size must be at least 1`);
  }
}

/**
 * The outputs a request asked for, in the order it asked, or every output of the signature in its
 * order; extra outputs a backend returned are dropped. A missing one is the backend's fault.
 */
export function selectOutputs(outputs: readonly Tensor[], wanted: readonly string[] | undefined, signature: Signature): Tensor[] {
  const names = wanted ?? signature.outputs.map((s) => s.name);
  // the usual case: the backend returned exactly what is wanted, in order
  if (outputs.length === names.length && outputs.every((t, i) => t.name === names[i])) {
    for (const t of outputs) checkedOutput(t);
    return outputs as Tensor[];
  }
  return names.map((name) => {
    const t = outputs.find((o) => o.name === name);
    if (!t) throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `the backend did not return output '${name}' (it returned: ${outputs.map((o) => o.name).join(', ') || 'none'})`);
    return checkedOutput(t);
  });
}

/**
 * A backend's output as the encoders need it: data of its datatype's kind (a typed array; a list
 * for BYTES) with exactly as many elements as its shape says — one check per output, so that a
 * faulty backend is a 500, never a 200 with garbage.
 */
function checkedOutput(t: Tensor): Tensor {
  const data: unknown = t.data;
  const length = (data as { length?: unknown } | null | undefined)?.length;
  const kindOk = t.datatype === 'BYTES' ? Array.isArray(data) || ArrayBuffer.isView(data) : ArrayBuffer.isView(data);
  const shapeOk = Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= 0);
  if (!kindOk || !shapeOk || typeof length !== 'number' || length !== t.shape.reduce((a, d) => a * d, 1)) {
    throw new TesseraError(
      'TESSERA_E_INFERENCE_FAILED',
      `the backend returned output '${String(t.name)}' malformed: ${!shapeOk ? `shape ${JSON.stringify(t.shape)} is not a list of dims ≥ 0` : !kindOk ? `its data is not ${t.datatype === 'BYTES' ? 'a list' : `a typed array for ${t.datatype}`}` : `${String(length)} elements for shape [${t.shape.join(', ')}]`}`,
    );
  }
  return t;
}

function names(specs: readonly TensorSpec[]): string {
  return specs.map((s) => s.name).join(', ');
}
