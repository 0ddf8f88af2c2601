import type { InferenceRequest } from '../contracts/backend.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { shapeSize } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import { decodeBinaryTensor } from '../http/binary-codec.js';
import { decodeJsonData } from '../http/json-codec.js';
import type { DecodedInferRequest, DecodedInput, Signature } from './types.js';

/**
 * Validates a decoded request against the signature a version is served with, once, and builds the
 * `InferenceRequest` every later stage relies on (see its contract): exactly the declared inputs,
 * in the signature's order, with the declared datatypes, ranks and fixed dims, data that fits the
 * shape, one shared dim 0 within the max batch size, and only declared outputs. Every failure is a
 * 400 with a code naming what is wrong.
 */
export function validateInferRequest(decoded: DecodedInferRequest, signature: Signature): InferenceRequest {
  const given = inSignatureOrder(decoded.inputs, signature);
  const inputs = new Array<Tensor>(signature.inputs.length);
  let batch: number | undefined;
  for (let i = 0; i < signature.inputs.length; i++) {
    const spec = signature.inputs[i]!;
    const input = given[i];
    if (!input) throw new TesseraError('TESSERA_E_INPUT_MISSING', `missing input '${spec.name}' (${spec.datatype} [${spec.shape.join(', ')}])`);
    checkShape(spec, input.datatype ?? spec.datatype, input.shape, signature.maxBatchSize);
    if (signature.maxBatchSize > 0 && input.shape.length > 0) {
      if (batch === undefined) batch = input.shape[0];
      else if (batch !== input.shape[0]) {
        throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${spec.name}': batch size ${input.shape[0]} differs from the other inputs' ${batch}`);
      }
    }
    inputs[i] = tensorOf(spec, input);
  }
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
  if ('bytes' in input) return { name, datatype, shape, data: decodeBinaryTensor(datatype, shape, input.bytes, `input '${name}'`) };
  if ('json' in input) {
    if (input.json === undefined) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `invalid request: input '${name}' has no data (send \`data\`, or binary tensor data with parameters.binary_data_size)`);
    }
    return decodeJsonData(name, datatype, shape, input.json);
  }
  const count = shapeSize(shape);
  if (input.data.length !== count) {
    throw new TesseraError('TESSERA_E_INPUT_DATA', `input '${name}': shape [${shape.join(', ')}] needs ${count} elements but data has ${input.data.length}`);
  }
  return { name, datatype, shape, data: input.data };
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
      `input '${spec.name}': shape [${shape.join(', ')}] has rank ${shape.length}; the model expects [${want.join(', ')}] (rank ${want.length}, -1 = any size)`,
    );
  }
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w !== -1 && w !== shape[i]) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${spec.name}': shape [${shape.join(', ')}] differs from the model's [${want.join(', ')}] at dim ${i} (-1 = any size)`);
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
  if (outputs.length === names.length && outputs.every((t, i) => t.name === names[i])) return outputs as Tensor[];
  return names.map((name) => {
    const t = outputs.find((o) => o.name === name);
    if (!t) throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `the backend did not return output '${name}' (it returned: ${outputs.map((o) => o.name).join(', ') || 'none'})`);
    return t;
  });
}

function names(specs: readonly TensorSpec[]): string {
  return specs.map((s) => s.name).join(', ');
}
