// the `endpoint` key of a route's config (fastify's FastifyContextConfig, augmented there), for the routes plugins add
export type {} from './http/route-config.js';
export type { DataType, NumericDataType, Tensor, TensorData, TensorDataMap, TensorSpec, TypedArray } from './contracts/tensor.js';
export { DATA_TYPES, allocateTensorData, elementSize, halfToNumber, isDataType, numberToHalf, shapeSize, typedArrayConstructor } from './contracts/tensor.js';
export type {
  Backend,
  BuildFile,
  BuildReport,
  GenerateChunk,
  GenerateRequest,
  InferenceBatch,
  InferenceRequest,
  JSONSchema,
  LoadContext,
  ModelInstance,
  ModelMetadata,
  ModelVersionSpec,
  RequestResult,
} from './contracts/backend.js';
export { BACKEND } from './contracts/backend.js';
export type { Batcher, BatcherContext, BatcherFactory, BatcherStats } from './contracts/batcher.js';
export { BATCHER_FACTORY } from './contracts/batcher.js';
export type { OutputComparison, RouteCandidate, RouteOutcome, RouteRequest, RouteTarget, Router, RouterContext, RouterFactory, RoutingActionInput, RoutingStatus, ShadowComparison } from './contracts/router.js';
export { ROUTER_FACTORY } from './contracts/router.js';
export type { ProcessContext, Processor, ProcessorContext, ProcessorFactory, ProcessorStage } from './contracts/processor.js';
export { PROCESSOR_FACTORY } from './contracts/processor.js';
export type { EndpointKind, HookRequest, HookResponse, InferHookContext, RequestHook, RequestHookContext, RequestHookFactory } from './contracts/hook.js';
export { REQUEST_HOOK_FACTORY } from './contracts/hook.js';
export type { Exporter, ExporterContext, ExporterFactory } from './contracts/exporter.js';
export { EXPORTER } from './contracts/exporter.js';
export type { Clock, ClockTimer } from './contracts/clock.js';
export { systemClock } from './contracts/clock.js';
export type { CounterMetric, GaugeMetric, HistogramMetric, MetricAggregator, MetricLabels, MetricOptions, MetricRegistrar } from './contracts/metrics.js';
export type { StateStore } from './contracts/state-store.js';
export type { GenerationEvent, ModelState, RequestEvent, ServingEventMap, TensorTimings, UpstreamEvent } from './contracts/events.js';
export { ServingEvents } from './contracts/events.js';
export type { AnyErrorCode, DeclaredErrorCodes, ErrorCode, ErrorCodeInfo, ErrorFactory, OpenAIErrorFields } from './errors.js';
export { ERROR_CODES, ERROR_CODE_PATTERN, TesseraError, defineErrorCodes, errorCodeInfo, errorMessage, isTesseraError } from './errors.js';
export type { DecodedInferRequest, DecodedInput, GenerateCall, Signature, TensorCall, TensorResult } from './pipeline/types.js';
export type { ServingPipeline } from './pipeline/serving-pipeline.js';
export type { ServingRequest } from './pipeline/serving-request.js';
export type { Generation } from './pipeline/generation.js';
export type { PluginContext, PluginDefinition, TesseraPlugin } from './plugins/define-plugin.js';
export { PLUGIN_BRAND, definePlugin, isTesseraPlugin } from './plugins/define-plugin.js';
export type {
  BatchingConfig,
  ConfigFunction,
  ConfigFunctionContext,
  DurationInput,
  EnvRecord,
  LimitsConfig,
  LoadConfigOptions,
  ModelConfig,
  ModelConfigInput,
  ModelVersionConfig,
  ModelVersionConfigInput,
  NamedEntryConfig,
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
export { KNOWN_BACKEND_PACKAGES } from './registry/model-registry.js';
export { PassthroughBatcher, passthroughBatcherFactory } from './batching/passthrough-batcher.js';
export { LatestRouter, compareVersions, latestRouterFactory } from './routing/latest-router.js';
export type { LoadedPlugin, PluginRegistrations } from './plugins/loader.js';
export { importPlugin, registerPlugins, resolvePluginUrl } from './plugins/loader.js';
export { decodeJsonData, encodeJsonData } from './http/json-codec.js';
export type { BinaryRequestInput, BinaryRequestOutput, DecodedInferResponse, DecodedOutput, EncodeBinaryInferRequestOptions, EncodedBinaryInferRequest } from './http/binary-client.js';
export { decodeBinaryInferResponse, encodeBinaryInferRequest } from './http/binary-client.js';
export { CORE_VERSION } from './internal/core-version.js';
export { availableCores, availableMemory } from './internal/cores.js';
export type { RestartPolicy } from './internal/restart-policy.js';
export { DEFAULT_RESTART_POLICY, restartDelay, restartPolicyOf, restartPolicySchema } from './internal/restart-policy.js';
export type { RestartSupervisorOptions, SupervisedWorker, SupervisorState } from './internal/restart-supervisor.js';
export { RestartSupervisor } from './internal/restart-supervisor.js';
export type { ServingSnapshot } from './telemetry/prometheus-exporter.js';
export { BATCH_SIZE_BUCKETS, LATENCY_BUCKETS, PrometheusExporter, TOKEN_LATENCY_BUCKETS } from './telemetry/prometheus-exporter.js';
export type { DynamicBatcherOptions, ResolvedDynamicBatcherOptions } from './batching/dynamic-batcher.js';
export { DYNAMIC_BATCHER_DEFAULTS, DYNAMIC_BATCHER_OPTIONS_SCHEMA, DynamicBatcher, dynamicBatcherFactory, resolveDynamicBatcherOptions } from './batching/dynamic-batcher.js';
export type { LoadWeights, ParsePrometheusTextOptions, PickOptions, PickStrategy, PoolLogger, ProbeResult, PrometheusSample, Replica, ReplicaLoad, ReplicaPoolOptions, ReplicaProbe, ReplicaSnapshot, ReplicaState } from './upstream/index.js';
export { ReplicaPool, parsePrometheusText, sampleValue } from './upstream/index.js';
export type { BatchSpans, TracedEntry } from './telemetry/tracing.js';
export { ATTR as TRACE_ATTRIBUTES, coreTracer, recordError, spanTime, startBatchSpans, startClientSpan, tracingEnabled, withContext } from './telemetry/tracing.js';
export type { Principal, Scope } from './security/principal.js';
export { PRINCIPAL, SCOPES, principalOf } from './security/principal.js';
