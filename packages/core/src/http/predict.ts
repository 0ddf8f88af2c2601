import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import type { DecodedInferRequest, DecodedInput, Signature, TensorResult } from '../pipeline/types.js';
import { sendError, toTesseraError } from './errors.js';

export interface PredictBody {
  model: string;
  version?: string;
  inputs: Record<string, unknown>;
  outputs?: string[];
  /** Passed to the model's processors and backend as the request's parameters (OIP v2's `parameters`). */
  parameters?: Record<string, unknown>;
}

/** JSON Schema of a `/v1/predict` body: these five fields and no others. */
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
    parameters: { type: 'object' },
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

/**
 * A `/v1/predict` body as the pipeline's decoded request, given the signature it is served with:
 * shapes from the nesting, datatypes from the model. A string for a BYTES input (an image, a text)
 * is one element: shape `[1]` for an input of rank 1 (`[-1]` when the model batches), `[]` for a
 * scalar input; a list of strings is that many elements.
 */
export function decodePredictRequest(body: PredictBody, signature: Signature): DecodedInferRequest {
  const inputs = Object.entries(body.inputs).map(([name, value]): DecodedInput => {
    const spec = signature.inputs.find((s) => s.name === name);
    if (typeof value === 'string' && spec?.datatype === 'BYTES') return { name, shape: spec.shape.map(() => 1), json: [value] };
    const shape = nestedShape(name, value);
    return { name, shape, json: shape.length === 0 ? [value] : value };
  });
  return { inputs, ...(body.outputs ? { outputs: body.outputs } : {}), ...(body.parameters ? { parameters: body.parameters } : {}) };
}

/** One class of a `predictions` answer. */
export interface Prediction {
  label: string;
  score: number | string;
}

/**
 * `predictions` of an answer whose last post step names label and score outputs: one list of
 * `{label, score}` (the row's top k, best first) per row of them, or the one list alone when the
 * request sent its image (its BYTES inputs) as a single string rather than a list, or when the
 * outputs have no rows (rank 1). Undefined when the outputs asked for leave either out.
 */
export function predictionsOf(result: TensorResult, single: boolean): Prediction[] | Prediction[][] | undefined {
  const names = result.predictions;
  if (!names) return undefined;
  const label = result.outputs.find((t) => t.name === names.label);
  const score = result.outputs.find((t) => t.name === names.score);
  if (!label || !score || label.datatype !== 'BYTES' || score.datatype === 'BYTES' || label.shape.length === 0 || label.data.length !== score.data.length) return undefined;
  const k = label.shape.at(-1)!;
  const rows: Prediction[][] = [];
  for (let offset = 0; k > 0 && offset < label.data.length; offset += k) {
    const row: Prediction[] = [];
    for (let j = 0; j < k; j++) row.push({ label: (label.data as string[])[offset + j]!, score: plainValue(score, offset + j) as number | string });
    rows.push(row);
  }
  if (label.shape.length === 1 || (single && rows.length === 1)) return rows[0] ?? [];
  return rows;
}

/** Whether the body sends its BYTES inputs as single strings (one image, not a list of them). */
function sentSingly(body: PredictBody, signature: Signature): boolean {
  const bytes = signature.inputs.filter((s) => s.datatype === 'BYTES');
  return bytes.length > 0 && bytes.every((s) => typeof body.inputs[s.name] === 'string');
}

/**
 * `POST /v1/predict`: the simple protocol for callers that do not want OIP v2's tensor framing.
 * Shapes come from the nesting, datatypes from the model's signature; outputs come back nested,
 * with `predictions` when the model's last post step names label and score outputs.
 */
export function registerPredict(app: FastifyInstance, deps: { pipeline: ServingPipeline }): void {
  const { pipeline } = deps;
  app.post('/v1/predict', { schema: { body: predictRequestSchema }, config: { endpoint: 'infer' } }, async (request: FastifyRequest<{ Body: PredictBody }>, reply: FastifyReply) => {
    const req = request.tessera;
    req.protocol = 'predict';
    try {
      const body = request.body;
      let single = false;
      const decode = (signature: Signature): DecodedInferRequest => {
        single = sentSingly(body, signature);
        return decodePredictRequest(body, signature);
      };
      const result = await pipeline.infer(req, { model: body.model, ...(body.version !== undefined ? { version: body.version } : {}), request: decode });
      const outputs: Record<string, unknown> = {};
      for (const t of result.outputs) outputs[t.name] = toNested(t);
      const predictions = predictionsOf(result, single);
      return reply.send({ model_name: result.model, model_version: result.version, outputs, ...(predictions ? { predictions } : {}) });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
