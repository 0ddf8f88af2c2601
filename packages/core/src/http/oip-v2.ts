import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LimitsConfig } from '../config/types.js';
import type { TensorSpec } from '../contracts/tensor.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import type { DecodedInferRequest, DecodedInput, Signature } from '../pipeline/types.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { decodeRawBinaryRequest, splitBinaryInputs } from './binary-codec.js';
import { applyClassification, classificationRequests } from './classification-extension.js';
import { sendError, toTesseraError } from './errors.js';
import type { ModelParams } from './model-params.js';
import { loadedVersion } from './model-params.js';
import type { InferBody } from './infer-body.js';
import { installInferParsers } from './infer-body.js';
import { DEFAULT_LIMITS } from './limits.js';
import { binaryOutputChoice, encodeInferResponseParts, sendInferResponse } from './infer-response.js';
import type { JsonInferRequest } from './infer-schema.js';
import { checkInferRequest } from './infer-schema.js';

/** What the OIP v2 routes need from the server. */
export interface OipDeps {
  registry: ModelRegistry;
  pipeline: ServingPipeline;
  serverName: string;
  serverVersion: string;
  extensions: string[];
  /** True while the server admits requests (false while starting up and draining). */
  accepting: () => boolean;
  /** `server.limits` (the JSON depth of bodies and binary headers); default `DEFAULT_LIMITS`. */
  limits?: Pick<LimitsConfig, 'maxJsonDepth'>;
}


const EMPTY = Buffer.alloc(0);

function specJson(s: TensorSpec): { name: string; datatype: string; shape: number[] } {
  return { name: s.name, datatype: s.datatype, shape: s.shape };
}

/** OIP v2 model metadata for one version: the tensors it is served with (after its processors). */
export function modelMetadataBody(entry: ModelEntry, v: ModelVersion): Record<string, unknown> {
  const md = v.metadata!;
  const signature: Signature = v.signature ?? md;
  return {
    name: entry.name,
    versions: [...entry.versions.keys()],
    platform: md.platform,
    inputs: signature.inputs.map(specJson),
    outputs: signature.outputs.map(specJson),
    parameters: { version: v.version, max_batch_size: md.maxBatchSize, state: v.state },
  };
}

/** An OIP v2 request body (JSON, or a binary request's header and blobs) as the pipeline's decoded request. */
export function decodeOipRequest(body: JsonInferRequest, tail: Buffer, binary: boolean): DecodedInferRequest {
  const blobs = splitBinaryInputs(body, tail, binary);
  const inputs: DecodedInput[] = body.inputs.map((input, i) => {
    const datatype = input.datatype as DecodedInput['datatype'] & string;
    const blob = blobs[i];
    return blob !== undefined ? { name: input.name, datatype, shape: input.shape, bytes: blob } : { name: input.name, datatype, shape: input.shape, json: input.data };
  });
  const decoded: DecodedInferRequest = { inputs };
  if (body.id !== undefined) decoded.id = body.id;
  if (body.parameters) decoded.parameters = body.parameters;
  if (body.outputs) decoded.outputs = body.outputs.map((o) => o.name);
  return decoded;
}

/** Registers the OIP v2 REST endpoints (health, metadata, readiness, inference). */
export function registerOipV2(app: FastifyInstance, deps: OipDeps): void {
  const { registry, pipeline } = deps;
  const health = { config: { endpoint: 'health' as const } };
  const metadataRoute = { config: { endpoint: 'metadata' as const } };

  app.get('/v2/health/live', health, async (_req, reply) => reply.send({ live: true }));

  // 503 says why: the server not accepting (starting, draining), and every version that cannot serve
  // (failed, loading, restarting, …) with its state and reason; 200 stays `{ready: true}`
  app.get('/v2/health/ready', health, async (_req, reply) => {
    const accepting = deps.accepting();
    const models = await registry.notServing();
    if (accepting && models.length === 0) return reply.code(200).send({ ready: true });
    return reply.code(503).send({ ready: false, ...(accepting ? {} : { reason: 'the server is not accepting requests (starting up or draining)' }), models });
  });

  app.get('/v2', metadataRoute, async (_req, reply) => reply.send({ name: deps.serverName, version: deps.serverVersion, extensions: deps.extensions }));

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const { entry, v } = loadedVersion(registry, request, 'metadata');
      const body = modelMetadataBody(entry, v);
      // a loaded version whose instances cannot serve now (e.g. restarting) says so
      const availability = v.ready ? await v.availability() : { serving: false };
      if (v.ready && !availability.serving) Object.assign(body['parameters'] as object, { serving: false, reason: availability.reason });
      return reply.send(body);
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model', metadataRoute, metadata);
  app.get('/v2/models/:model/versions/:version', metadataRoute, metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const entry = registry.require(request.params.model);
      request.tessera.model = entry.name;
      if (request.params.version !== undefined) {
        const v = registry.requireVersion(entry, request.params.version);
        request.tessera.version = v.version;
        const { serving, reason: why } = await v.availability();
        const reason = v.reason ?? (serving ? undefined : why);
        const body = { name: entry.name, version: v.version, ready: serving, state: v.state, ...(reason ? { reason } : {}) };
        return reply.code(serving ? 200 : 503).send(body);
      }
      const versions = [...entry.versions.values()];
      const answers = await Promise.all(versions.map((v) => v.availability()));
      const serving = answers.every((a) => a.serving) && versions.length > 0;
      const states = Object.fromEntries(versions.map((v) => [v.version, v.state]));
      const reasons = Object.fromEntries(versions.flatMap((v, i) => (answers[i]!.serving ? [] : [[v.version, answers[i]!.reason ?? v.state]])));
      return reply.code(serving ? 200 : 503).send({ name: entry.name, ready: serving, versions: states, ...(serving ? {} : { reasons }) });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model/ready', metadataRoute, ready);
  app.get('/v2/models/:model/versions/:version/ready', metadataRoute, ready);

  // decode → pipeline → encode
  const infer = async (request: FastifyRequest<{ Params: ModelParams; Body: InferBody }>, reply: FastifyReply): Promise<FastifyReply> => {
    const req = request.tessera;
    req.protocol = 'v2';
    try {
      const body = request.body;
      let decoded: DecodedInferRequest | ((signature: Signature) => DecodedInferRequest);
      let binary: ((name: string) => boolean) | undefined;
      let classes: Map<string, number> | undefined;
      if (body.kind === 'raw') {
        // Triton's raw binary request: the body is the only input's data; every output comes back in binary
        decoded = (signature) => ({ inputs: [decodeRawBinaryRequest(body.tail, signature.inputs, signature.maxBatchSize)] });
        binary = () => true;
      } else {
        const json = checkInferRequest(body.kind === 'binary' ? body.header : body.value);
        decoded = decodeOipRequest(json, body.kind === 'binary' ? body.tail : EMPTY, body.kind === 'binary');
        binary = binaryOutputChoice(json);
        classes = classificationRequests(json);
      }
      const { model, version } = request.params;
      const result = await pipeline.infer(req, { model, ...(version !== undefined ? { version } : {}), request: decoded });
      let outputs = result.outputs;
      if (classes) {
        const entry = deps.registry.get(result.model);
        const batched = (entry?.versions.get(result.version)?.signature?.maxBatchSize ?? 0) > 0;
        outputs = applyClassification(outputs, classes, batched, (name) => entry?.config.signature?.outputs?.find((o) => o.name === name)?.labels);
      }
      return sendInferResponse(reply, encodeInferResponseParts(result.model, result.version, result.id, outputs, binary));
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  // the inference routes get their own scope for their body parsers (binary bodies of any content type)
  void app.register(async (scope) => {
    installInferParsers(scope, app, deps.limits ?? DEFAULT_LIMITS);
    const inferOptions = { config: { endpoint: 'infer' as const } };
    scope.post('/v2/models/:model/infer', inferOptions, infer);
    scope.post('/v2/models/:model/versions/:version/infer', inferOptions, infer);
  });
}
