import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import type { InferenceRequest, ModelMetadata } from '../contracts/backend.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { DATA_TYPES } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import {
  INFERENCE_HEADER_CONTENT_LENGTH,
  alignBinaryTail,
  chunksLength,
  decodeBinaryTensor,
  decodeRawBinaryRequest,
  encodeBinaryTensor,
  parseBinaryHeader,
  parseInferenceHeaderLength,
  splitBinaryInputs,
} from './binary-codec.js';
import type { BinaryInferRequestHeader } from './binary-codec.js';
import { clientGoneSignal } from './context.js';
import { traceRoute } from '../telemetry/tracing.js';
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

/**
 * An OIP v2 inference request: a JSON body, or the JSON header of a binary one (the same structure;
 * declared once, beside the binary framing that made `data` optional).
 */
export type JsonInferRequest = BinaryInferRequestHeader;

/**
 * JSON Schema of an OIP v2 inference request body, or of the JSON header of a binary one
 * (structure only; tensors are checked against the model). An input carries `data` or, with the
 * binary tensor extension, `parameters.binary_data_size`; which one is checked in code.
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
        properties: { name: { type: 'string', minLength: 1 }, parameters: { type: 'object', properties: { binary_data: { type: 'boolean' } } } },
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
 * `blobs[i]`, when given, is the binary data of `body.inputs[i]` (see `splitBinaryInputs`); the
 * other inputs carry JSON `data`.
 */
export function decodeInferRequest(body: JsonInferRequest, md: ModelMetadata, blobs?: readonly (Buffer | undefined)[]): InferenceRequest {
  const specs = new Map(md.inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const inputs: Tensor[] = [];
  let batch: number | undefined;
  for (let i = 0; i < body.inputs.length; i++) {
    const input = body.inputs[i]!;
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
    const blob = blobs?.[i];
    if (blob !== undefined) {
      inputs.push({ name: input.name, datatype: spec.datatype, shape: input.shape, data: decodeBinaryTensor(spec.datatype, input.shape, blob, `input '${input.name}'`) });
    } else if (input.data === undefined) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `invalid request: body/inputs/${i} must have property 'data' (or, with binary tensor data, parameters.binary_data_size)`);
    } else {
      inputs.push(decodeJsonData(input.name, spec.datatype, input.shape, input.data));
    }
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

function outputHead(t: Tensor): string {
  return `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
}

/** Writes an OIP v2 inference response without JSON.stringify on the tensor data. */
export function encodeInferResponse(model: string, version: string, id: string | undefined, outputs: Tensor[]): string {
  return encodeInferResponseParts(model, version, id, outputs).header;
}

/**
 * Writes an OIP v2 inference response in parts: the JSON (header) and the binary blobs of the
 * outputs for which `binary(name)` is true (Triton's binary tensor extension): those outputs carry
 * `"parameters": {"binary_data_size": N}` instead of `data`, and their bytes follow the JSON in
 * output order, as views on the outputs' memory.
 */
export function encodeInferResponseParts(
  model: string,
  version: string,
  id: string | undefined,
  outputs: Tensor[],
  binary?: (name: string) => boolean,
): { header: string; blobs: Buffer[] } {
  let s = `{"model_name":${JSON.stringify(model)},"model_version":${JSON.stringify(version)}`;
  if (id !== undefined) s += `,"id":${JSON.stringify(id)}`;
  s += ',"outputs":[';
  const blobs: Buffer[] = [];
  for (let i = 0; i < outputs.length; i++) {
    const t = outputs[i]!;
    if (i > 0) s += ',';
    if (binary?.(t.name)) {
      const chunks = encodeBinaryTensor(t);
      s += `${outputHead(t)},"parameters":{"binary_data_size":${chunksLength(chunks)}}}`;
      for (const c of chunks) if (c.length > 0) blobs.push(c);
    } else {
      s += `${outputHead(t)},"data":${encodeJsonData(t)}}`;
    }
  }
  return { header: `${s}]}`, blobs };
}

/**
 * Which outputs a request wants in binary: per output `parameters.binary_data`, else the request's
 * `parameters.binary_data_output` (which also covers the outputs returned when `outputs` is
 * absent). Undefined when none is (the plain JSON response).
 */
export function binaryOutputChoice(body: Pick<JsonInferRequest, 'parameters' | 'outputs'>): ((name: string) => boolean) | undefined {
  const all = body.parameters?.['binary_data_output'] === true;
  let perOutput: Map<string, boolean> | undefined;
  for (const o of body.outputs ?? []) {
    const b = o.parameters?.['binary_data'];
    if (typeof b === 'boolean' && !perOutput?.has(o.name)) (perOutput ??= new Map()).set(o.name, b);
  }
  if (!all && !(perOutput && [...perOutput.values()].includes(true))) return undefined;
  return (name) => perOutput?.get(name) ?? all;
}

/** Binary responses at least this large are written chunk by chunk (no concatenation copy). */
const STREAM_RESPONSE_BYTES = 1024 * 1024;

/**
 * Sends an inference response: plain JSON, or — when some output is binary and has bytes — the JSON
 * header and the blobs with `Inference-Header-Content-Length` and `application/octet-stream`, as
 * Triton does (Triton answers application/json when no binary bytes follow the JSON).
 */
export function sendInferResponse(reply: FastifyReply, parts: { header: string; blobs: Buffer[] }): FastifyReply {
  if (parts.blobs.length === 0) return reply.type('application/json').send(parts.header);
  const header = Buffer.from(parts.header, 'utf8');
  const chunks = [header, ...parts.blobs];
  const total = chunksLength(chunks);
  void reply.header(INFERENCE_HEADER_CONTENT_LENGTH, String(header.length)).type('application/octet-stream');
  if (total < STREAM_RESPONSE_BYTES) return reply.send(Buffer.concat(chunks, total));
  return reply.header('content-length', String(total)).send(Readable.from(chunks, { objectMode: false }));
}

/** What the content-type parser keeps of a binary body for the handler: the bytes after the JSON header. */
interface BinaryBody {
  /** A raw binary request (`Inference-Header-Content-Length: 0`): no JSON, `tail` is the whole body. */
  raw: boolean;
  tail: Buffer;
}

const binaryBodies = new WeakMap<FastifyRequest, BinaryBody>();
const EMPTY = Buffer.alloc(0);

/** The request body read whole, within the route's body limit (as fastify's own parsers do). */
function readBody(request: FastifyRequest, payload: NodeJS.ReadableStream & { receivedEncodedLength?: number }): Promise<Buffer> {
  const limit = request.routeOptions.bodyLimit;
  const declared = Number(request.headers['content-length']);
  if (declared > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(chunk: Buffer | string): void {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      received += b.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        cleanup();
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      chunks.push(b);
    }
    function onEnd(err?: Error & { statusCode?: number }): void {
      cleanup();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        reject(err);
      } else if (!Number.isNaN(declared) && (payload.receivedEncodedLength ?? received) !== declared) {
        reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      } else {
        resolve(Buffer.concat(chunks, received));
      }
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

/**
 * Body parsers of the inference routes (in their own fastify scope). With
 * `Inference-Header-Content-Length` a body of any content type is binary: the parser returns the
 * parsed JSON header (so the route schema validates it like a JSON body) and keeps the raw body for
 * the handler. Without it: application/json and application/octet-stream (Triton's rule: the whole
 * body is JSON) and a body without a content type are JSON; text/plain stays a string (and fails
 * validation) and any other type is a 415, as before.
 */
function installInferParsers(scope: FastifyInstance, app: FastifyInstance): void {
  const defaultJson = scope.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error') as (
    request: FastifyRequest,
    body: string,
    done: (err: Error | null, value?: unknown) => void,
  ) => void;
  const parseJson = (request: FastifyRequest, text: string): unknown => {
    const out: { error: Error | null; value?: unknown } = { error: null };
    defaultJson(request, text, (err, value) => {
      out.error = err;
      out.value = value;
    });
    if (out.error) throw out.error;
    return out.value;
  };
  const parseHeader = (request: FastifyRequest) => (text: string): unknown => {
    try {
      return parseJson(request, text);
    } catch (err) {
      JSON.parse(text); // a SyntaxError that says where the header stops being JSON
      throw err; // valid JSON refused by the prototype-poisoning check
    }
  };
  /** A binary body (`headerLength` given), or undefined when the request has no Inference-Header-Content-Length. */
  const parseBinary = (request: FastifyRequest, body: Buffer): { value: unknown } | undefined => {
    const headerLength = parseInferenceHeaderLength(request.headers[INFERENCE_HEADER_CONTENT_LENGTH], body.length);
    if (headerLength === undefined) return undefined;
    if (headerLength === 0) {
      // a raw binary request has no JSON; its handler builds the request from the model's metadata
      binaryBodies.set(request, { raw: true, tail: body });
      return { value: null };
    }
    const header = parseBinaryHeader(body, headerLength, parseHeader(request));
    // the body is this request's own copy (fastify concatenates the chunks), so its tensors may be aligned in place
    binaryBodies.set(request, { raw: false, tail: alignBinaryTail(body, headerLength) });
    return { value: header };
  };
  const unsupported = (): TesseraError =>
    new TesseraError('TESSERA_E_REQUEST_MEDIA_TYPE', 'Unsupported Media Type; send application/json, or binary tensor data with the Inference-Header-Content-Length header');

  scope.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    try {
      done(null, (parseBinary(request, body) ?? { value: parseJson(request, body.toString('utf8')) }).value);
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  scope.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    try {
      done(null, (parseBinary(request, body) ?? { value: body.toString('utf8') }).value);
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  scope.addContentTypeParser('*', async (request: FastifyRequest, payload: NodeJS.ReadableStream) => {
    const binary = request.headers[INFERENCE_HEADER_CONTENT_LENGTH] !== undefined;
    const untyped = request.headers['content-type'] === undefined;
    if (!binary && !untyped) throw unsupported();
    const body = await readBody(request, payload);
    return (parseBinary(request, body) ?? { value: parseJson(request, body.toString('utf8')) }).value;
  });
}

/** Registers the OIP v2 REST endpoints (health, metadata, readiness, inference). */
export function registerOipV2(app: FastifyInstance, deps: OipDeps): void {
  const { registry } = deps;

  app.get('/v2/health/live', async (_req, reply) => reply.send({ live: true }));

  app.get('/v2/health/ready', async (_req, reply) => {
    const ready = deps.accepting() && (await registry.serving());
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
        const serving = await v.serving();
        const reason = v.reason ?? (v.ready && !serving ? 'loaded, but its instances cannot serve now (e.g. no healthy upstream replica)' : undefined);
        const body = { name: entry.name, version: v.version, ready: serving, state: v.state, ...(reason ? { reason } : {}) };
        return reply.code(serving ? 200 : 503).send(body);
      }
      const versions = [...entry.versions.values()];
      const serving = (await Promise.all(versions.map((v) => v.serving()))).every(Boolean) && versions.length > 0;
      const states = Object.fromEntries(versions.map((v) => [v.version, v.state]));
      return reply.code(serving ? 200 : 503).send({ name: entry.name, ready: serving, versions: states });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model/ready', ready);
  app.get('/v2/models/:model/versions/:version/ready', ready);

  const infer = async (request: FastifyRequest<{ Params: ModelParams; Body: JsonInferRequest }>, reply: FastifyReply): Promise<FastifyReply> => {
    const binaryBody = binaryBodies.get(request);
    const raw = binaryBody?.raw === true;
    // the schema's verdict (attached, so that a raw binary request, which has no JSON, can pass)
    if (request.validationError && !raw) return sendError(request, reply, toTesseraError(request.validationError));
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
      traceRoute(ctx.trace, entry.name, target.version, target.shadow);
      const v = registry.requireVersion(entry, target.version);
      ctx.version = v.version;
      const md = v.metadata;
      if (!v.batcher || !md) throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' does not accept tensor inference requests`);
      let inferRequest: InferenceRequest;
      let binary: ((name: string) => boolean) | undefined;
      if (binaryBody && raw) {
        // Triton's raw binary request: the body is the only input's data; every output comes back in binary
        inferRequest = { inputs: [decodeRawBinaryRequest(binaryBody.tail, md.inputs, md.maxBatchSize)] };
        binary = () => true;
      } else {
        const body = request.body;
        inferRequest = decodeInferRequest(body, md, splitBinaryInputs(body, binaryBody?.tail ?? EMPTY, binaryBody !== undefined));
        binary = binaryOutputChoice(body);
      }
      if (ctx.trace) inferRequest.trace = ctx.trace;
      const outputs = await v.batcher.submit(inferRequest, clientGoneSignal(request, reply));
      const parts = encodeInferResponseParts(entry.name, v.version, inferRequest.id, selectOutputs(outputs, inferRequest.outputs), binary);
      observe(200);
      return sendInferResponse(reply, parts);
    } catch (err) {
      const e = toTesseraError(err);
      observe?.(e.status);
      return sendError(request, reply, e);
    }
  };
  // the inference routes get their own scope for their body parsers (binary bodies of any content type)
  void app.register(async (scope) => {
    installInferParsers(scope, app);
    const inferOptions = { schema: { body: inferRequestSchema }, attachValidation: true };
    scope.post('/v2/models/:model/infer', inferOptions, infer);
    scope.post('/v2/models/:model/versions/:version/infer', inferOptions, infer);
  });
}
