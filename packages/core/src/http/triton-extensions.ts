import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { resolveDynamicBatcherOptions } from '../batching/dynamic-batcher-options.js';
import type { ModelConfig, NamedEntryConfig } from '../config/types.js';
import type { DataType, TensorSpec } from '../contracts/tensor.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { mayList } from '../security/auth/access.js';
import { principalOf } from '../security/principal.js';
import type { ModelStatsCollector } from '../telemetry/model-stats.js';
import { sendError, toTesseraError } from './errors.js';
import type { ModelParams } from './model-params.js';
import { loadedVersion } from './model-params.js';

/** What the Triton extension routes need from the server. */
export interface TritonExtensionDeps {
  registry: ModelRegistry;
  stats: ModelStatsCollector;
}


/** Execution providers of ONNX Runtime that run on a GPU (an instance group's `KIND_GPU`). */
const GPU_PROVIDERS: ReadonlySet<string> = new Set(['cuda', 'tensorrt', 'rocm', 'migraphx', 'dml', 'webgpu']);

/** Option names whose values are secrets (an upstream's `apiKey`, a token): never sent in a config. */
const SECRET_KEY = /(api[-_]?key|secret|password|passphrase|authorization|credentials?|token|key)$/i;
/** A URL with credentials in it (`https://user:pass@host`). */
const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/i;

/**
 * Triton's statistics and model-configuration extensions: `GET /v2/models/stats`,
 * `GET /v2/models/{m}[/versions/{v}]/stats` and `GET /v2/models/{m}[/versions/{v}]/config`, in
 * Triton's JSON shapes, so that Triton's clients and tools (tritonclient, perf_analyzer) read them.
 * Endpoint kind `metadata`, like the model metadata routes; a model-restricted credential sees only
 * its models in `/v2/models/stats`.
 */
export function registerTritonExtensions(app: FastifyInstance, deps: TritonExtensionDeps): void {
  const { registry, stats } = deps;
  const metadataRoute = { config: { endpoint: 'metadata' as const } };

  // every version of every model the caller may see; a version without traffic since it loaded shows zeros
  app.get('/v2/models/stats', metadataRoute, async (request, reply) => {
    const principal = principalOf(request.tessera);
    const models = registry.models().filter((m) => mayList(principal, m.name));
    return reply.send({ model_stats: models.flatMap((m) => [...m.versions.keys()].map((v) => stats.report(m.name, v))) });
  });

  const modelStats = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const entry = registry.require(request.params.model);
      request.tessera.model = entry.name;
      if (request.params.version === undefined) return reply.send({ model_stats: [...entry.versions.keys()].map((v) => stats.report(entry.name, v)) });
      const v = registry.requireVersion(entry, request.params.version);
      request.tessera.version = v.version;
      return reply.send({ model_stats: [stats.report(entry.name, v.version)] });
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model/stats', metadataRoute, modelStats);
  app.get('/v2/models/:model/versions/:version/stats', metadataRoute, modelStats);

  // the newest ready version when none is named (as the metadata routes choose)
  const modelConfig = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const { entry, v } = loadedVersion(registry, request, 'configuration to report');
      return reply.send(tritonModelConfig(entry, v));
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  };
  app.get('/v2/models/:model/config', metadataRoute, modelConfig);
  app.get('/v2/models/:model/versions/:version/config', metadataRoute, modelConfig);
}

/**
 * Triton's `version_policy` of a model: the versions it is configured with (`specific`).
 * Repository version policies (`latest: N`, `all`) map here as they come.
 */
export function tritonVersionPolicy(entry: ModelEntry): Record<string, unknown> {
  // the policy the config (or the repository folder, whose default is `latest: 1`) gave; else the versions listed
  const policy = entry.config.versionPolicy;
  if (policy === 'all') return { all: {} };
  if (policy && 'latest' in policy) return { latest: { num_versions: policy.latest } };
  if (policy && 'specific' in policy) return { specific: { versions: [...policy.specific] } };
  return { specific: { versions: [...entry.versions.keys()].map(Number) } };
}

/** Triton's `data_type` of a datatype (`TYPE_FP32`; BYTES is `TYPE_STRING`). */
export function tritonDataType(datatype: DataType): string {
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

/**
 * The effective configuration of a loaded version as Triton's `ModelConfig` JSON (its field names,
 * and every scalar and list field Triton prints), plus `tessera`: Tessera's own settings of the
 * model. `input`/`output` are the tensors the version is served with (after its processors), with
 * `dims` leaving out the batch dimension when `max_batch_size` > 0, as Triton writes them.
 */
export function tritonModelConfig(entry: ModelEntry, v: ModelVersion): Record<string, unknown> {
  const config = entry.config;
  const md = v.metadata!;
  const signature = v.signature ?? md;
  const maxBatchSize = signature.maxBatchSize;
  const generative = !v.signature && typeof v.instances[0]?.generate === 'function';
  const options = backendOptions(entry, v);
  const file = config.versions[v.version]?.path;
  const body: Record<string, unknown> = {
    name: entry.name,
    platform: md.platform,
    backend: config.backend,
    runtime: '',
    version_policy: tritonVersionPolicy(entry),
    max_batch_size: maxBatchSize,
    input: signature.inputs.map((s) => ({
      name: s.name,
      data_type: tritonDataType(s.datatype),
      format: 'FORMAT_NONE',
      dims: dims(s, maxBatchSize),
      is_shape_tensor: false,
      allow_ragged_batch: false,
      optional: false,
      is_non_linear_format_io: false,
    })),
    output: signature.outputs.map((s) => ({ name: s.name, data_type: tritonDataType(s.datatype), dims: dims(s, maxBatchSize), label_filename: '', is_shape_tensor: false, is_non_linear_format_io: false })),
    batch_input: [],
    batch_output: [],
    instance_group: [{ name: `${entry.name}_0`, kind: instanceKind(config, options, v), count: v.instances.length, gpus: [], secondary_devices: [], profile: [], passive: false, host_policy: '' }],
    default_model_filename: file ? path.basename(file) : '',
    cc_model_filenames: {},
    metric_tags: {},
    parameters: Object.fromEntries(Object.entries(redact(options) as Record<string, unknown>).map(([k, value]) => [k, { string_value: typeof value === 'string' ? value : JSON.stringify(value) }])),
    model_warmup: [],
  };
  if (config.batching.batcher === 'dynamic' && !generative) body['dynamic_batching'] = dynamicBatching(config);
  body['model_transaction_policy'] = { decoupled: generative };
  body['tessera'] = redact(tesseraSettings(entry, v, generative));
  return body;
}

function dims(spec: TensorSpec, maxBatchSize: number): number[] {
  return maxBatchSize > 0 ? spec.shape.slice(1) : [...spec.shape];
}

/** The backend's own keys of the model section, with the version's overrides (as the backend got them). */
function backendOptions(entry: ModelEntry, v: ModelVersion): Record<string, unknown> {
  return entry.backendOptions.get(v.version) ?? { ...entry.config.options, ...entry.config.versions[v.version]?.options };
}

/**
 * `KIND_CPU` for ONNX Runtime on CPU, `KIND_GPU` on a GPU execution provider (or TensorRT), `KIND_MODEL`
 * (the backend places it) otherwise. The provider in use is the instances' `settings.executionProvider`
 * when they report one (the first of the list: where the nodes go first), else the configured list's.
 */
function instanceKind(config: ModelConfig, options: Record<string, unknown>, v: ModelVersion): string {
  if (config.backend !== 'onnxruntime' && config.backend !== 'tensorrt') return 'KIND_MODEL';
  const inUse = v.instances[0]?.settings?.['executionProvider'];
  if (typeof inUse === 'string') return GPU_PROVIDERS.has(inUse.toLowerCase()) ? 'KIND_GPU' : 'KIND_CPU';
  if (config.backend === 'tensorrt') return 'KIND_GPU';
  const providers = (options['sessionOptions'] as { executionProviders?: unknown[] } | undefined)?.executionProviders ?? [];
  const names = providers.map((p) => (typeof p === 'string' ? p : (p as { name?: unknown } | null)?.name));
  return names.some((n) => typeof n === 'string' && GPU_PROVIDERS.has(n.toLowerCase())) ? 'KIND_GPU' : 'KIND_CPU';
}

/** Triton's `dynamic_batching` from the `dynamic` batcher's resolved options (`auto` delay: its cap). */
function dynamicBatching(config: ModelConfig): Record<string, unknown> {
  const o = resolveDynamicBatcherOptions(config.batching.options);
  const delayMs = o.maxQueueDelayMs === 'auto' ? o.adaptiveMaxDelayMs : o.maxQueueDelayMs;
  const levels = o.priorityLevels > 1;
  return {
    preferred_batch_size: o.preferredBatchSizes,
    max_queue_delay_microseconds: Math.round(delayMs * 1000),
    preserve_ordering: false,
    priority_levels: levels ? o.priorityLevels : 0,
    default_priority_level: levels ? o.defaultPriorityLevel : 0,
    default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: Math.round(o.timeoutMs * 1000), allow_timeout_override: true, max_queue_size: o.maxQueueSize },
    priority_queue_policy: {},
  };
}

/** Tessera's effective settings of the model, for `config.tessera`: what the Triton fields cannot say. */
function tesseraSettings(entry: ModelEntry, v: ModelVersion, generative: boolean): Record<string, unknown> {
  const config = entry.config;
  const md = v.metadata!;
  const batcherOptions = config.batching.batcher === 'dynamic' ? resolveDynamicBatcherOptions(config.batching.options) : config.batching.options;
  const processed = v.pre.length > 0 || v.post.length > 0;
  return {
    version: v.version,
    state: v.state,
    backend: config.backend,
    // as configured (`auto` or a number), and what was loaded with what the backend chose for each
    instances: config.instances,
    instancesLoaded: v.instances.length,
    ...(v.instances.some((i) => i.settings) ? { instanceSettings: v.instances.map((i) => i.settings ?? {}) } : {}),
    batching: generative ? null : { batcher: config.batching.batcher, maxBatchSize: md.maxBatchSize, ...batcherOptions },
    routing: { strategy: config.routing.strategy, ...config.routing.options },
    preprocess: config.preprocess.map(namedEntry),
    postprocess: config.postprocess.map(namedEntry),
    timeoutMs: config.timeoutMs,
    warmup: config.warmup,
    warmed: v.warmed,
    ...(generative ? { generation: config.generation } : {}),
    // what the backend itself takes and gives, when processors serve other tensors
    ...(processed ? { backendInputs: md.inputs, backendOutputs: md.outputs } : {}),
  };
}

/** A processor entry as the config writes it: `{processor: name, ...options}`. */
function namedEntry(e: NamedEntryConfig): Record<string, unknown> {
  return { processor: e.name, ...e.options };
}

/** A copy with secret-looking option values and URL credentials replaced by `[redacted]`. */
function redact(value: unknown, key = ''): unknown {
  if (key && SECRET_KEY.test(key) && value !== null && value !== undefined && typeof value !== 'boolean' && typeof value !== 'number') return '[redacted]';
  if (typeof value === 'string') return value.replace(URL_USERINFO, '$1[redacted]@');
  if (Array.isArray(value)) return value.map((item) => redact(item));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, item]) => [k, redact(item, k)]));
  return value;
}
