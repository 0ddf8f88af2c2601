/**
 * `@tessera/tracing`: OpenTelemetry tracing for Tessera. The core creates its spans through
 * `@opentelemetry/api` only, which is a no-op until an SDK is registered; listing this plugin in
 * `plugins:` registers one (batched OTLP/HTTP export, W3C TraceContext + Baggage propagation,
 * AsyncLocalStorage context) and shuts it down, flushing, when the server closes.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { resolveTracingConfig } from './config/resolve.js';
import type { TracingConfig } from './config/schema.js';
import { TRACING_CONFIG_SCHEMA } from './config/schema.js';
import { TracingAlreadyRegisteredError, describeTracing, startResolvedTracing } from './start.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export type { OtlpProtocol, TracingConfig } from './config/schema.js';
export { OTLP_PROTOCOLS, TRACING_CONFIG_SCHEMA } from './config/schema.js';
export { DEFAULT_BATCH, DEFAULT_ENDPOINT, DEFAULT_EXPORT_TIMEOUT_MS, DEFAULT_SERVICE_NAME } from './config/defaults.js';
export type { Env } from './config/env.js';
export { parseKeyValueList } from './config/env.js';
export type { SamplerName, SamplerSpec } from './config/sampler.js';
export { SAMPLER_NAMES, describeSampler, samplerFromEnv } from './config/sampler.js';
export { redactUrl, tracesUrl } from './config/endpoint.js';
export type { ResolvedTracingConfig } from './config/resolve.js';
export { resolveTracingConfig } from './config/resolve.js';
export type { StartTracingOptions, TracingHandle, TracingLogger } from './start.js';
export {
  ReportingSpanExporter,
  TracingAlreadyRegisteredError,
  createOtlpExporter,
  createResource,
  createSampler,
  describeTracing,
  startResolvedTracing,
  startTracing,
} from './start.js';

/** The plugin: reads the `tracing:` section, starts the SDK, and shuts it down at server close. */
const plugin = definePlugin<TracingConfig>({
  name: '@tessera/tracing',
  version,
  core: '^0.1.0',
  configKey: 'tracing',
  configSchema: TRACING_CONFIG_SCHEMA,
  register(ctx) {
    const resolved = resolveTracingConfig(ctx.config ?? {}, process.env);
    for (const warning of resolved.warnings) ctx.logger.warn(`tracing: ${warning}`);
    if (!resolved.enabled) {
      ctx.logger.info({ disabledBy: resolved.disabledBy }, 'tracing: off');
      return;
    }
    let handle;
    try {
      handle = startResolvedTracing(resolved, { logger: ctx.logger });
    } catch (err) {
      if (!(err instanceof TracingAlreadyRegisteredError)) throw err;
      // Someone else's SDK (e.g. `node --import @opentelemetry/auto-instrumentations-node/register`)
      // already receives the core's spans: leave it in place rather than fail the server.
      ctx.logger.warn(`tracing: ${err.message}; @tessera/tracing leaves it in place and exports nothing itself`);
      return;
    }
    ctx.onClose(() => handle.shutdown());
    ctx.logger.info(describeTracing(resolved), 'tracing: exporting spans over OTLP');
  },
});

export default plugin;
