/**
 * `@tessera/core/testing`: the kit Tessera's own tests use, public so that plugin authors test
 * against the same things — an ONNX model writer, a catalogue of tiny models with reference
 * outputs, tensor comparison, and the backend conformance suite (needs vitest).
 */
export type { OnnxAttributeValue, OnnxInitializer, OnnxModelSpec, OnnxNodeSpec, OnnxValueSpec } from './onnx-builder.js';
export { DEFAULT_IR_VERSION, DEFAULT_OPSET, ONNX_ELEM_TYPES, buildOnnxModel, onnxElemType } from './onnx-builder.js';
export type { TestModel, TestModelCatalog } from './test-models.js';
export { writeTestModels } from './test-models.js';
export { diffTensorLists, diffTensors } from './tensor-compare.js';
export type { BackendConformanceOptions, ConformanceBrokenModel, ConformanceModel } from './conformance.js';
export { describeBackendConformance, makeTempDir, testLoadContext, testModelSpec } from './conformance.js';
export type { RunTesseraOptions, TesseraProcess } from './process.js';
export { cliPath, runTesseraCli, startTessera } from './process.js';
export type { BinaryRequestInput, BinaryRequestOutput, DecodedInferResponse, DecodedOutput, EncodeBinaryInferRequestOptions, EncodedBinaryInferRequest } from './binary-client.js';
export { decodeBinaryInferResponse, encodeBinaryInferRequest } from './binary-client.js';
