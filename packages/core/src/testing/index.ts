/**
 * `@tessera/core/testing`: the kit Tessera's own tests use, public so that plugin authors test
 * against the same things — an ONNX model writer, a catalogue of tiny models with reference
 * outputs, tensor comparison, test doubles (a fake backend, an in-memory exporter, a fake clock,
 * in-memory metrics and state), the error-code docs check, and conformance suites for backends,
 * routers and processors (these need vitest).
 */
export type { OnnxAttributeValue, OnnxInitializer, OnnxModelSpec, OnnxNodeSpec, OnnxValueSpec } from './onnx-builder.js';
export { DEFAULT_IR_VERSION, DEFAULT_OPSET, ONNX_ELEM_TYPES, buildOnnxModel, onnxElemType } from './onnx-builder.js';
export type { TestModel, TestModelCatalog } from './test-models.js';
export { writeTestModels } from './test-models.js';
export { mulberry32 } from './random.js';
export { diffTensorLists, diffTensors } from './tensor-compare.js';
export type { BackendConformanceOptions, ConformanceBrokenModel, ConformanceModel } from './conformance.js';
export { describeBackendConformance, makeTempDir, testLoadContext, testModelSpec } from './conformance.js';
export type { RunTesseraOptions, TesseraProcess } from './process.js';
export { cliPath, processAlive, runNode, runTesseraCli, startTessera } from './process.js';
export type { BinaryRequestInput, BinaryRequestOutput, DecodedInferResponse, DecodedOutput, EncodeBinaryInferRequestOptions, EncodedBinaryInferRequest } from '../http/binary-client.js';
export { decodeBinaryInferResponse, encodeBinaryInferRequest } from '../http/binary-client.js';
export type { FakeModelOptions } from './fake-backend.js';
export { FAKE_MODEL_METADATA, FakeBackend, FakeModelInstance } from './fake-backend.js';
export { FakeClock } from './fake-clock.js';
export { InMemoryExporter } from './in-memory-exporter.js';
export type { RecordedSeries } from './in-memory-metrics.js';
export { InMemoryMetrics } from './in-memory-metrics.js';
export { MemoryStateStore } from './memory-state-store.js';
export type { LogRecord } from './silent-logger.js';
export { recordingLogger, silentLogger } from './silent-logger.js';
export { testHookRequest, testHookResponse, testInferHookContext } from './hook-support.js';
export type { RouterConformanceOptions, TestRouterContext } from './router-conformance.js';
export { describeRouterConformance, testRouteOutcome, testRouteRequest, testRouterContext } from './router-conformance.js';
export type { ProcessorConformanceOptions } from './processor-conformance.js';
export { describeProcessorConformance, testProcessContext } from './processor-conformance.js';
export { checkErrorCodeDocs } from './error-docs.js';
export type { PluginPackageJson } from './plugin-manifest.js';
export { checkPluginManifest } from './plugin-manifest.js';
export type { TestRegistrations } from './register-plugins.js';
export { registerTestPlugins } from './register-plugins.js';
export { resultOrClientError, thrownCode, within } from './throws.js';
export { pngClaiming } from './images.js';
