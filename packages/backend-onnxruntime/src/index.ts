/**
 * `@tessera/backend-onnxruntime`: runs ONNX models in ONNX Runtime (onnxruntime-node, CPU), the
 * backend a model gets when it names none. Registers the backend `onnxruntime`.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { OnnxRuntimeBackend } from './backend.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export type { OnnxRuntimeModelConfig, OnnxRuntimeSessionOptions } from './backend.js';
export {
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_WARMUP_DIM,
  EXECUTION_PROVIDER_METRIC,
  ONNXRUNTIME_MODEL_CONFIG_SCHEMA,
  ONNXRUNTIME_PLATFORM,
  OnnxRuntimeBackend,
  OnnxRuntimeModelInstance,
  resolveSessionOptions,
} from './backend.js';
export type { ExecutionProviderEntry, ProviderProbe } from './providers.js';
export {
  GPU_INSTALL_HINT,
  PROVIDER_LIBRARIES,
  bindingProviderOptionKeys,
  describeProviderFailure,
  findSharedLibrary,
  ortBindingFolder,
  probeProvider,
  providerName,
  unsupportedProviderOptions,
  vulkanDriverFiles,
} from './providers.js';

/** The plugin: registers `OnnxRuntimeBackend` under the name `onnxruntime`. */
const plugin = definePlugin({
  name: '@tessera/backend-onnxruntime',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('onnxruntime', new OnnxRuntimeBackend());
  },
});

export default plugin;
