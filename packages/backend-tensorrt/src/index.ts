/**
 * `@tessera/backend-tensorrt`: ONNX models on ONNX Runtime's TensorRT execution provider, built on
 * `@tessera/backend-onnxruntime`. Registers the backend `tensorrt`.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { TensorRtBackend } from './backend.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export type { ResolvedTensorRtConfig, ShapeProfile, TensorRtFallback, TensorRtModelConfig, TensorRtPrecision, TensorRtSection } from './config.js';
export { DEFAULT_BUILDER_OPTIMIZATION_LEVEL, DEFAULT_CACHE_FOLDER, TENSORRT_MODEL_CONFIG_SCHEMA, TENSORRT_SECTION_SCHEMA, resolveTensorRtConfig } from './config.js';
export type { BatchPlan, ProfileSources } from './profiles.js';
export { ProfileError, batchPlan, deriveProfiles, profileRuns } from './profiles.js';
export type { TensorRtProviderOptions } from './provider-options.js';
export { ORT_TENSORRT_DEFAULTS, bindingName, nonDefaultOptions, profileShapes, tensorrtProviderOptions, uncarriedSettings } from './provider-options.js';
export type { ProviderChoice, ProviderEnvironment, ServingProvider } from './provider-chain.js';
export { LOCAL_PROVIDERS, chooseProvider, fallbackWarning, providerChain, providerProblems, refusalMessage } from './provider-chain.js';
export type { GraphInput, OnnxGraphInfo } from './onnx-graph.js';
export { parseOnnxGraph, readOnnxGraph } from './onnx-graph.js';
export { TensorRtBackend } from './backend.js';
export { TensorRtModelInstance } from './instance.js';

/** The plugin: registers `TensorRtBackend` under the name `tensorrt`. */
const plugin = definePlugin({
  name: '@tessera/backend-tensorrt',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('tensorrt', new TensorRtBackend());
  },
});

export default plugin;
