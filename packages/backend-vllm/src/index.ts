/**
 * `@tessera/backend-vllm`: Tessera as the gateway in front of vLLM replicas. Registers the backend
 * `vllm`: OpenAI-compatible requests (`/v1/chat/completions`, `/v1/completions`) are routed over a
 * pool of replicas with health checks, ejection, load-aware or prefix-affine placement, retries
 * before the first byte, streaming without re-encoding and cancellation that reaches the engine.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { VllmBackend } from './backend.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export { VllmBackend } from './backend.js';
export type { ReplicaRoutingStrategy, VllmModelConfig, VllmModelConfigInput } from './config.js';
export { ROUTING_STRATEGIES, VLLM_MODEL_CONFIG_SCHEMA, resolveVllmConfig } from './config.js';
export { VLLM_METRICS, VLLM_PLATFORM, VllmModelInstance } from './instance.js';
export type { LaunchConfig } from './launch/config.js';
export { LAUNCH_CONFIG_SCHEMA, vllmServeArgs } from './launch/config.js';
export { ReplicaSupervisor } from './launch/supervisor.js';
export { SseDecoder, readSseData } from './sse.js';

/** The plugin: registers `VllmBackend` under the name `vllm`. */
const plugin = definePlugin({
  name: '@tessera/backend-vllm',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('vllm', new VllmBackend());
  },
});

export default plugin;
