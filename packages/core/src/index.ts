export type { DataType, NumericDataType, Tensor, TensorData, TensorDataMap, TensorSpec, TypedArray } from './contracts/tensor.js';
export { DATA_TYPES, allocateTensorData, elementSize, halfToNumber, isDataType, numberToHalf, shapeSize, typedArrayConstructor } from './contracts/tensor.js';
export type {
  Backend,
  GenerateChunk,
  GenerateRequest,
  InferenceBatch,
  InferenceRequest,
  JSONSchema,
  LoadContext,
  ModelInstance,
  ModelMetadata,
  ModelVersionSpec,
} from './contracts/backend.js';
export { BACKEND } from './contracts/backend.js';
export type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from './contracts/batcher.js';
export { BATCHER_FACTORY } from './contracts/batcher.js';
export type { RouteCandidate, RouteOutcome, RouteRequest, RouteTarget, Router, RouterContext, RouterFactory } from './contracts/router.js';
export { ROUTER_FACTORY } from './contracts/router.js';
export type { Exporter } from './contracts/exporter.js';
export { EXPORTER } from './contracts/exporter.js';
export type { GenerationEvent, ModelState, ServingEventMap, UpstreamEvent } from './contracts/events.js';
export { ServingEvents } from './contracts/events.js';
export type { ErrorCode, ErrorCodeInfo, OpenAIErrorFields } from './errors.js';
export { ERROR_CODES, TesseraError, errorMessage, isTesseraError } from './errors.js';
export type { PluginContext, PluginDefinition, TesseraPlugin } from './plugins/define-plugin.js';
export { PLUGIN_BRAND, definePlugin, isTesseraPlugin } from './plugins/define-plugin.js';
export type {
  BatchingConfig,
  ConfigFunction,
  ConfigFunctionContext,
  DurationInput,
  EnvRecord,
  LoadConfigOptions,
  ModelConfig,
  ModelConfigInput,
  ModelVersionConfig,
  ModelVersionConfigInput,
  ResolveConfigOptions,
  RoutingConfig,
  ServerConfig,
  ServerConfigInput,
  SizeInput,
  TesseraConfig,
  TesseraConfigInput,
  ValidateOptions,
} from './config/index.js';
export {
  CONFIG_SEARCH_PLACES,
  DURATION_FORMAT,
  SIZE_FORMAT,
  coerceToSchema,
  configSchema,
  durationSchema,
  defineConfig,
  loadConfig,
  parseDuration,
  parseSize,
  resolveConfig,
  substituteEnv,
  validateAgainstSchema,
} from './config/index.js';
export type { ServerState, TesseraServerOptions } from './server.js';
export { TesseraServer, createServer } from './server.js';
export type { ModelRegistryOptions } from './registry/model-registry.js';
export { KNOWN_BACKEND_PACKAGES, ModelEntry, ModelRegistry, ModelVersion } from './registry/model-registry.js';
export { PassthroughBatcher, passthroughBatcherFactory } from './batching/passthrough-batcher.js';
export { LatestRouter, compareVersions, latestRouterFactory } from './routing/latest-router.js';
export type { LoadedPlugin, PluginRegistrations } from './plugins/loader.js';
export { importPlugin, registerPlugins, resolvePluginUrl } from './plugins/loader.js';
export { decodeJsonData, encodeJsonData } from './http/json-codec.js';
export { CORE_VERSION } from './internal/core-version.js';
export type { ServingSnapshot } from './telemetry/prometheus-exporter.js';
export { BATCH_SIZE_BUCKETS, LATENCY_BUCKETS, PrometheusExporter, TOKEN_LATENCY_BUCKETS } from './telemetry/prometheus-exporter.js';
export type { DynamicBatcherOptions, ResolvedDynamicBatcherOptions } from './batching/dynamic-batcher.js';
export { DYNAMIC_BATCHER_DEFAULTS, DYNAMIC_BATCHER_OPTIONS_SCHEMA, DynamicBatcher, dynamicBatcherFactory, resolveDynamicBatcherOptions } from './batching/dynamic-batcher.js';
export type { LoadWeights, ParsePrometheusTextOptions, PickOptions, PickStrategy, PoolLogger, ProbeResult, PrometheusSample, Replica, ReplicaLoad, ReplicaPoolOptions, ReplicaProbe, ReplicaSnapshot, ReplicaState } from './upstream/index.js';
export { ReplicaPool, parsePrometheusText, sampleValue } from './upstream/index.js';
export type { BatchSpans, TracedEntry } from './telemetry/tracing.js';
export { ATTR as TRACE_ATTRIBUTES, coreTracer, recordError, spanTime, startBatchSpans, startClientSpan, tracingEnabled, withContext } from './telemetry/tracing.js';
