import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { InferenceRequest, ModelMetadata } from '../contracts/backend.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { DATA_TYPES } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { clientGoneSignal } from './context.js';
import { sendError, toTesseraError } from './errors.js';
import { checkInputAgainstSpec, decodeJsonData, encodeJsonData } from './json-codec.js';

/** What the OIP v2 routes need from the server. */
export interface OipDeps {
  registry: ModelRegistry;
  serverName: string;
  serverVersion: string;
  extensions: string[];
  /** True while the server admits requests (false while starting up and draining). */
  accepting: () => boolean;
  /** True while draining (new inference requests get 503). */
  draining: () => boolean;
}

interface ModelParams {
  model: string;
  version?: string;
}

interface JsonInput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown;
}

interface JsonInferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: JsonInput[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

/** JSON Schema of an OIP v2 inference request body (structure only; tensors are checked against the model). */
export const inferRequestSchema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string', minLength: 1 },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          datatype: { type: 'string', enum: DATA_TYPES },
          parameters: { type: 'object' },
          data: {},
        },
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string', minLength: 1 }, parameters: { type: 'object' } },
      },
    },
  },
} as const;

function specJson(s: TensorSpec): { name: string; datatype: string; shape: number[] } {
  return { name: s.name, datatype: s.datatype, shape: s.shape };
}

/** OIP v2 model metadata for one version. */
export function modelMetadataBody(entry: ModelEntry, v: ModelVersion, md: ModelMetadata): Record<string, unknown> {
  return {
    name: entry.name,
    versions: [...entry.versions.keys()],
    platform: md.platform,
    inputs: md.inputs.map(specJson),
    outputs: md.outputs.map(specJson),
    parameters: { version: v.version, max_batch_size: md.maxBatchSize, state: v.state },
  };
}

/**
 * Validates the request's tensors against the model's metadata and decodes them. Everything a
 * backend receives has the model's datatypes, ranks, fixed dims and one shared batch size.
 */
export function decodeInferRequest(body: JsonInferRequest, md: ModelMetadata): InferenceRequest {
  const specs = new Map(md.inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const inputs: Tensor[] = [];
  let batch: number | undefined;
  for (const input of body.inputs) {
    const spec = specs.get(input.name);
    if (!spec) {
      throw new TesseraError('TESSERA_E_INPUT_UNKNOWN', `unknown input '${input.name}'; the model's inputs are: ${md.inputs.map((s) => s.name).join(', ')}`);
    }
    if (seen.has(input.name)) throw new TesseraError('TESSERA_E_INPUT_DUPLICATE', `input '${input.name}' is given twice`);
    seen.add(input.name);
    checkInputAgainstSpec(spec, input.datatype, input.shape, md.maxBatchSize);
    if (md.maxBatchSize > 0 && input.shape.length > 0) {
      if (batch === undefined) batch = input.shape[0];
      else if (batch !== input.shape[0]) {
        throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${input.name}': batch size ${input.shape[0]} differs from the other inputs' ${batch}`);
      }
    }
    inputs.push(decodeJsonData(input.name, spec.datatype, input.shape, input.data));
  }
  for (const s of md.inputs) {
    if (!seen.has(s.name)) {
      throw new TesseraError('TESSERA_E_INPUT_MISSING', `missing input '${s.name}' (${s.datatype} [${s.shape.join(', ')}])`);
    }
  }
  const request: InferenceRequest = { inputs };
  if (body.id !== undefined) request.id = body.id;
  if (body.parameters) request.parameters = body.parameters;
  if (body.outputs) {
    const names = new Set(md.outputs.map((s) => s.name));
    const wanted: string[] = [];
    for (const o of body.outputs) {
      if (!names.has(o.name)) {
        throw new TesseraError('TESSERA_E_OUTPUT_UNKNOWN', `unknown output '${o.name}'; the model's outputs are: ${md.outputs.map((s) => s.name).join(', ')}`);
      }
      if (!wanted.includes(o.name)) wanted.push(o.name);
    }
    if (wanted.length > 0) request.outputs = wanted;
  }
  return request;
}

/** Picks the outputs a request asked for, in the order it asked, or all in the model's order. */
export function selectOutputs(outputs: Tensor[], wanted: string[] | undefined): Tensor[] {
  if (!wanted) return outputs;
  const byName = new Map(outputs.map((t) => [t.name, t]));
  const selected: Tensor[] = [];
  for (const name of wanted) {
    const t = byName.get(name);
    if (!t) throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `the backend did not return output '${name}'`);
    selected.push(t);
  }
  return selected;
}

/** Writes an OIP v2 inference response without JSON.stringify on the tensor data. */
export function encodeInferResponse(model: string, version: string, id: string | undefined, outputs: Tensor[]): string {
  let s = `{"model_name":${JSON.stringify(model)},"model_version":${JSON.stringify(version)}`;
  if (id !== undefined) s += `,"id":${JSON.stringify(id)}`;
  s += ',"outputs":[';
  for (let i = 0; i < outputs.length; i++) {
    const t = outputs[i]!;
    if (i > 0) s += ',';
    s += `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${encodeJsonData(t)}}`;
  }
  return `${s}]}`;
}

/** Registers the OIP v2 REST endpoints (health, metadata, readiness, inference). */
export function registerOipV2(app: FastifyInstance, deps: OipDeps): void {
  const { registry } = deps;

  app.get('/v2/health/live', async (_req, reply) => reply.send({ live: true }));

  app.get('/v2/health/ready', async (_req, reply) => {
    const ready = deps.accepting() && registry.ready;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get('/v2', async (_req, reply) => reply.send({ name: deps.serverName, version: deps.serverVersion, extensions: deps.extensions }));

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const entry = registry.require(request.params.model);
      const v = request.params.version === undefined ? entry.latest() : registry.requireVersion(entry, request.params.version);
      const md = v?.metadata;
      if (!v || !md) {
        throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${entry.name}'${v ? ` version ${v.version}` : ''} has no metadata yet (state: ${v?.state ?? 'none'}${v?.reason ? `: ${v.reason}` : ''})`, { headers: { 'retry-after': '1' } });
      }
      return reply.send(modelMetadataBody(entry, v, md));
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model', metadata);
  app.get('/v2/models/:model/versions/:version', metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const entry = registry.require(request.params.model);
      if (request.params.version !== undefined) {
        const v = registry.requireVersion(entry, request.params.version);
        const body = { name: entry.name, version: v.version, ready: v.ready, state: v.state, ...(v.reason ? { reason: v.reason } : {}) };
        return reply.code(v.ready ? 200 : 503).send(body);
      }
      const states = Object.fromEntries([...entry.versions.values()].map((v) => [v.version, v.state]));
      return reply.code(entry.ready ? 200 : 503).send({ name: entry.name, ready: entry.ready, versions: states });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model/ready', ready);
  app.get('/v2/models/:model/versions/:version/ready', ready);

  const infer = async (request: FastifyRequest<{ Params: ModelParams; Body: JsonInferRequest }>, reply: FastifyReply): Promise<FastifyReply> => {
    const ctx = request.tessera;
    ctx.protocol = 'v2';
    const started = performance.now();
    let observe: ((status: number) => void) | undefined;
    try {
      if (deps.draining()) {
        throw new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server is shutting down', { headers: { 'retry-after': '1' } });
      }
      const entry = registry.require(request.params.model);
      ctx.model = entry.name;
      const target = entry.router.select(
        { model: entry.name, ...(request.params.version !== undefined ? { version: request.params.version } : {}), headers: request.headers },
        entry.candidates(),
      );
      observe = (status) => entry.router.observe(target, { status, durationMs: performance.now() - started });
      const v = registry.requireVersion(entry, target.version);
      ctx.version = v.version;
      const md = v.metadata;
      if (!v.batcher || !md) throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' does not accept tensor inference requests`);
      const inferRequest = decodeInferRequest(request.body, md);
      const outputs = await v.batcher.submit(inferRequest, clientGoneSignal(request, reply));
      const body = encodeInferResponse(entry.name, v.version, inferRequest.id, selectOutputs(outputs, inferRequest.outputs));
      observe(200);
      return reply.type('application/json').send(body);
    } catch (err) {
      const e = toTesseraError(err);
      observe?.(e.status);
      return sendError(request, reply, e);
    }
  };
  const inferOptions = { schema: { body: inferRequestSchema } };
  app.post('/v2/models/:model/infer', inferOptions, infer);
  app.post('/v2/models/:model/versions/:version/infer', inferOptions, infer);
}
