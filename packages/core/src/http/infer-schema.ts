import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { DATA_TYPES } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { BinaryInferRequestHeader } from './binary-codec.js';

/**
 * An OIP v2 inference request: a JSON body, or the JSON header of a binary one (the same structure;
 * declared once, beside the binary framing that made `data` optional).
 */
export type JsonInferRequest = BinaryInferRequestHeader;

/**
 * JSON Schema of an OIP v2 inference request body, or of the JSON header of a binary one
 * (structure only; tensors are checked against the model by the pipeline). An input carries
 * `data` or, with the binary tensor extension, `parameters.binary_data_size`.
 */
export const inferRequestSchema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object', properties: { binary_data_output: { type: 'boolean' } } },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype'],
        properties: {
          name: { type: 'string', minLength: 1 },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          datatype: { type: 'string', enum: DATA_TYPES },
          parameters: { type: 'object', properties: { binary_data_size: { type: 'integer', minimum: 0 } } },
          data: {},
        },
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1 },
          // Triton's classification extension: the top `classification` classes instead of the tensor
          parameters: { type: 'object', properties: { binary_data: { type: 'boolean' }, classification: { type: 'integer', minimum: 1 } } },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: false, coerceTypes: false, strict: false }).compile<JsonInferRequest>(inferRequestSchema);

/**
 * Checks the structure of an inference request (a JSON body, or a binary request's JSON header):
 * a 400 `TESSERA_E_REQUEST_INVALID` naming the field, as fastify's schema errors do.
 */
export function checkInferRequest(value: unknown): JsonInferRequest {
  if (validate(value)) return value;
  throw new TesseraError('TESSERA_E_REQUEST_INVALID', `invalid request: ${describe(validate.errors?.[0])}`);
}

function describe(error: ErrorObject | undefined): string {
  if (!error) return 'body does not match the inference request schema';
  const where = `body${error.instancePath}`;
  if (error.keyword === 'enum') return `${where} must be one of: ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${where} ${error.message ?? 'is invalid'}`;
}
