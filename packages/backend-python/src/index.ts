/**
 * `@tessera/backend-python`: Triton's Python-backend contract. Registers the backend `python`: a
 * Triton user's `model.py` (`TritonPythonModel` with `initialize`, `execute(requests)`,
 * `finalize`) runs unchanged, one Python process per instance, with `triton_python_backend_utils`
 * on its path and tensors passed through shared memory.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { PythonBackend } from './backend.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export { PythonBackend, RESTARTS_METRIC } from './backend.js';
export type { DeclaredTensorConfig, PythonModelConfig, PythonProcessConfig } from './config.js';
export { DEFAULT_MAX_BATCH_SIZE, DEFAULT_START_TIMEOUT, PYTHON_MODEL_CONFIG_SCHEMA } from './config.js';
// the `restart` key is the core's, shared with the ONNX Runtime backend
export type { RestartPolicy } from '@tessera/core';
export { DEFAULT_RESTART_POLICY } from '@tessera/core';
export { PythonModelInstance } from './instance.js';
export { MODEL_FILENAME, PYTHON_PLATFORM } from './platform.js';

/** The plugin: registers `PythonBackend` under the name `python`. */
const plugin = definePlugin({
  name: '@tessera/backend-python',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('python', new PythonBackend());
  },
});

export default plugin;
