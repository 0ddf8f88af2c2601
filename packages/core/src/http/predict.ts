import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import type { DecodedInferRequest } from '../pipeline/types.js';
import { sendError, toTesseraError } from './errors.js';

export interface PredictBody {
  model: string;
  version?: string;
  inputs: Record<string, unknown>;
  outputs?: string[];
}

/** JSON Schema of a `/v1/predict` body: these four fields and no others. */
export const predictRequestSchema = {
  type: 'object',
  required: ['model', 'inputs'],
  // a misspelt field (`output`, `input`) is a 400 naming it rather than silently ignored
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1 },
    version: { type: 'string', pattern: '^[1-9][0-9]*$' },
    inputs: { type: 'object', minProperties: 1 },
    outputs: { type: 'array', items: { type: 'string', minLength: 1 } },
  },
} as const;

/** The shape of a nested array (`[[1,2],[3,4]]` → [2, 2]); a scalar has shape []. Ragged arrays are a 400. */
export function nestedShape(name: string, value: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = value;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  const check = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(v)) throw ragged(name);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw ragged(name);
    for (const item of v) check(item, depth + 1);
  };
  check(value, 0);
  return shape;
}

function ragged(name: string): TesseraError {
  return new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': nested arrays must be rectangular (every row of a level the same length)`);
}

function plainValue(t: Tensor, i: number): unknown {
  switch (t.datatype) {
    case 'BOOL':
      return (t.data as Uint8Array)[i] === 1;
    case 'FP16':
      return jsonNumber(halfToNumber((t.data as Uint16Array)[i]!));
    case 'INT64':
    case 'UINT64': {
      const v = (t.data as BigInt64Array)[i]!;
      // exact when it fits a double; a decimal string beyond 2^53
      return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v.toString();
    }
    case 'FP32':
    case 'FP64':
      return jsonNumber((t.data as Float64Array)[i]!);
    default:
      return (t.data as Int32Array | string[])[i];
  }
}

function jsonNumber(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** A tensor as a nested array following its shape. */
export function toNested(t: Tensor): unknown {
  let offset = 0;
  const build = (depth: number): unknown => {
    if (depth === t.shape.length) return plainValue(t, offset++);
    const out = new Array<unknown>(t.shape[depth]!);
    for (let i = 0; i < out.length; i++) out[i] = build(depth + 1);
    return out;
  };
  return build(0);
}

/** A `/v1/predict` body as the pipeline's decoded request: shapes from the nesting, datatypes from the model. */
export function decodePredictRequest(body: PredictBody): DecodedInferRequest {
  const inputs = Object.entries(body.inputs).map(([name, value]) => {
    const shape = nestedShape(name, value);
    return { name, shape, json: shape.length === 0 ? [value] : value };
  });
  return { inputs, ...(body.outputs ? { outputs: body.outputs } : {}) };
}

/**
 * `POST /v1/predict`: the simple protocol for callers that do not want OIP v2's tensor framing.
 * Shapes come from the nesting, datatypes from the model's signature; outputs come back nested.
 */
export function registerPredict(app: FastifyInstance, deps: { pipeline: ServingPipeline }): void {
  const { pipeline } = deps;
  app.post('/v1/predict', { schema: { body: predictRequestSchema }, config: { endpoint: 'infer' } }, async (request: FastifyRequest<{ Body: PredictBody }>, reply: FastifyReply) => {
    const req = request.tessera;
    req.protocol = 'predict';
    try {
      const body = request.body;
      const result = await pipeline.infer(req, { model: body.model, ...(body.version !== undefined ? { version: body.version } : {}), request: decodePredictRequest(body) });
      const outputs: Record<string, unknown> = {};
      for (const t of result.outputs) outputs[t.name] = toNested(t);
      return reply.send({ model_name: result.model, model_version: result.version, outputs });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
