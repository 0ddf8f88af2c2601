import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { InferenceRequest } from '../contracts/backend.js';
import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { clientGoneSignal } from './context.js';
import { traceRoute } from '../telemetry/tracing.js';
import { sendError, toTesseraError } from './errors.js';
import { checkInputAgainstSpec, decodeJsonData } from './json-codec.js';

interface PredictBody {
  model: string;
  version?: string;
  inputs: Record<string, unknown>;
  outputs?: string[];
}

/** JSON Schema of a `/v1/predict` body. */
export const predictRequestSchema = {
  type: 'object',
  required: ['model', 'inputs'],
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

/**
 * `POST /v1/predict`: the simple protocol for callers that do not want OIP v2's tensor framing.
 * Shapes come from the nesting, datatypes from the model's metadata.
 */
export function registerPredict(app: FastifyInstance, deps: { registry: ModelRegistry; draining: () => boolean }): void {
  const { registry } = deps;
  app.post('/v1/predict', { schema: { body: predictRequestSchema } }, async (request: FastifyRequest<{ Body: PredictBody }>, reply: FastifyReply) => {
    const ctx = request.tessera;
    ctx.protocol = 'predict';
    const started = performance.now();
    let observe: ((status: number) => void) | undefined;
    try {
      if (deps.draining()) throw new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server is shutting down', { headers: { 'retry-after': '1' } });
      const body = request.body;
      const entry = registry.require(body.model);
      ctx.model = entry.name;
      const target = entry.router.select({ model: entry.name, ...(body.version !== undefined ? { version: body.version } : {}), headers: request.headers }, entry.candidates());
      observe = (status) => entry.router.observe(target, { status, durationMs: performance.now() - started });
      traceRoute(ctx.trace, entry.name, target.version, target.shadow);
      const v = registry.requireVersion(entry, target.version);
      ctx.version = v.version;
      const md = v.metadata;
      if (!v.batcher || !md) throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' does not accept tensor inference requests`);
      const specs = new Map(md.inputs.map((s) => [s.name, s]));
      const inputs: Tensor[] = [];
      let batch: number | undefined;
      for (const [name, value] of Object.entries(body.inputs)) {
        const spec = specs.get(name);
        if (!spec) throw new TesseraError('TESSERA_E_INPUT_UNKNOWN', `unknown input '${name}'; the model's inputs are: ${md.inputs.map((s) => s.name).join(', ')}`);
        const shape = nestedShape(name, value);
        checkInputAgainstSpec(spec, spec.datatype, shape, md.maxBatchSize);
        if (md.maxBatchSize > 0 && shape.length > 0) {
          if (batch !== undefined && batch !== shape[0]) {
            throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': batch size ${shape[0]} differs from the other inputs' ${batch}`);
          }
          batch = shape[0];
        }
        inputs.push(decodeJsonData(name, spec.datatype, shape, shape.length === 0 ? [value] : value));
      }
      for (const s of md.inputs) {
        if (!(s.name in body.inputs)) throw new TesseraError('TESSERA_E_INPUT_MISSING', `missing input '${s.name}' (${s.datatype} [${s.shape.join(', ')}])`);
      }
      const req: InferenceRequest = { inputs, ...(ctx.trace ? { trace: ctx.trace } : {}) };
      if (body.outputs) {
        const names = new Set(md.outputs.map((s) => s.name));
        for (const o of body.outputs) {
          if (!names.has(o)) throw new TesseraError('TESSERA_E_OUTPUT_UNKNOWN', `unknown output '${o}'; the model's outputs are: ${md.outputs.map((s) => s.name).join(', ')}`);
        }
        req.outputs = [...new Set(body.outputs)];
      }
      const results = await v.batcher.submit(req, clientGoneSignal(request, reply));
      const wanted = req.outputs ?? md.outputs.map((s) => s.name);
      const outputs: Record<string, unknown> = {};
      for (const name of wanted) {
        const t = results.find((r) => r.name === name);
        if (!t) throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `the backend did not return output '${name}'`);
        outputs[name] = toNested(t);
      }
      observe(200);
      return reply.send({ model_name: entry.name, model_version: v.version, outputs });
    } catch (err) {
      const e = toTesseraError(err);
      observe?.(e.status);
      return sendError(request, reply, e);
    }
  });
}
