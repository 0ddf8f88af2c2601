/**
 * `@tessera/backend-remote`: one Tessera server in front of a fleet of OIP v2 servers (other
 * Tessera servers, Triton, KServe). Registers the backend `remote`: inference requests are
 * forwarded (binary tensor data extension or JSON) over a pool of upstreams with health probes,
 * ejection, least-loaded picking and retries on another upstream before any byte is answered.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { RemoteBackend } from './backend.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export { RemoteBackend } from './backend.js';
export type { HealthCheck, RemoteModelConfig, RemoteModelConfigInput, RemoteStrategy } from './config.js';
export { HEALTH_CHECKS, REMOTE_MODEL_CONFIG_SCHEMA, REMOTE_STRATEGIES, modelPath, resolveRemoteConfig } from './config.js';
export { RemoteModelInstance } from './instance.js';
export type { UpstreamMetadata } from './metadata.js';
export { agreedMetadata, metadataDifference, parseMetadata } from './metadata.js';

/** The plugin: registers `RemoteBackend` under the name `remote`. */
const plugin = definePlugin({
  name: '@tessera/backend-remote',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('remote', new RemoteBackend());
  },
});

export default plugin;
