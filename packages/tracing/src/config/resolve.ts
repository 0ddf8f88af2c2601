/**
 * Resolves the `tracing:` section against the standard `OTEL_*` variables. Precedence, key by key:
 * the config, then the trace-specific variable (`OTEL_EXPORTER_OTLP_TRACES_*`), then the general one
 * (`OTEL_EXPORTER_OTLP_*`), then the default. Invalid environment values are warnings and skipped,
 * as the OpenTelemetry SDKs do; invalid config values are errors.
 */
import { TesseraError, parseDuration } from '@tessera/core';
import { DEFAULT_BATCH, DEFAULT_ENDPOINT, DEFAULT_EXPORT_TIMEOUT_MS, DEFAULT_SERVICE_NAME } from './defaults.js';
import { endpointFromEnv, tracesUrl } from './endpoint.js';
import type { Env } from './env.js';
import { parseKeyValueList, positiveIntFromEnv, readEnv } from './env.js';
import type { SamplerSpec } from './sampler.js';
import { resolveSampler } from './sampler.js';
import type { OtlpProtocol, TracingConfig } from './schema.js';
import { OTLP_PROTOCOLS } from './schema.js';

/** Where a resolved value came from: `config`, the name of an environment variable, or `default`. */
export type ValueSource = string;

/** Everything `startTracing` needs, with each value's source resolved. */
export interface ResolvedTracingConfig {
  enabled: boolean;
  /** Why tracing is off (`tracing.enabled` or `OTEL_SDK_DISABLED`), when it is. */
  disabledBy?: string;
  /** The full traces URL the exporter posts to (`…/v1/traces`). */
  url: string;
  protocol: OtlpProtocol;
  serviceName: string;
  sampler: SamplerSpec;
  headers: Record<string, string>;
  /** Resource attributes other than `service.name`. */
  resourceAttributes: Record<string, string>;
  exportTimeoutMs: number;
  batch: { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMs: number };
  sources: { url: ValueSource; protocol: ValueSource; serviceName: ValueSource; sampler: ValueSource; exportTimeoutMs: ValueSource };
  /** Problems with environment values that were skipped; the plugin logs each once. */
  warnings: string[];
}

function configError(path: string, message: string): TesseraError {
  return new TesseraError('TESSERA_E_PLUGIN_CONFIG', `tracing.${path}: ${message}`);
}

function durationMs(value: number | string, path: string): number {
  let ms: number;
  try {
    ms = parseDuration(value, `tracing.${path}`);
  } catch (err) {
    throw configError(path, err instanceof Error ? err.message : String(err));
  }
  if (ms <= 0) throw configError(path, `must be longer than 0, got ${JSON.stringify(value)}`);
  return ms;
}

/** `tracing.enabled` wins; without it, `OTEL_SDK_DISABLED=true` turns tracing off. */
function resolveEnabled(config: TracingConfig, env: Env, warnings: string[]): { enabled: boolean; disabledBy: string | undefined } {
  let enabled = config.enabled ?? true;
  let disabledBy: string | undefined = config.enabled === false ? 'tracing.enabled' : undefined;
  const sdkDisabled = readEnv(env, 'OTEL_SDK_DISABLED');
  if (config.enabled === undefined && sdkDisabled !== undefined) {
    if (sdkDisabled.toLowerCase() === 'true') {
      enabled = false;
      disabledBy = 'OTEL_SDK_DISABLED';
    } else if (sdkDisabled.toLowerCase() !== 'false') {
      warnings.push(`OTEL_SDK_DISABLED=${sdkDisabled} is neither true nor false; tracing stays on`);
    }
  }
  return { enabled, disabledBy };
}

function resolveUrl(config: TracingConfig, env: Env, warnings: string[]): { url: string; source: ValueSource } {
  if (config.endpoint !== undefined) {
    try {
      return { url: tracesUrl(config.endpoint), source: 'config' };
    } catch (err) {
      throw configError('endpoint', (err as Error).message);
    }
  }
  return endpointFromEnv(env, warnings) ?? { url: tracesUrl(DEFAULT_ENDPOINT), source: 'default' };
}

function resolveProtocol(config: TracingConfig, env: Env, warnings: string[]): { protocol: OtlpProtocol; source: ValueSource } {
  if (config.protocol !== undefined) return { protocol: config.protocol, source: 'config' };
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const raw = readEnv(env, variable);
    if (raw === undefined) continue;
    if ((OTLP_PROTOCOLS as readonly string[]).includes(raw)) return { protocol: raw as OtlpProtocol, source: variable };
    warnings.push(
      raw === 'grpc'
        ? `${variable}=grpc is not supported by @tessera/tracing (OTLP/HTTP only); using http/protobuf: point the endpoint at the collector's HTTP port (4318)`
        : `${variable}=${raw} is not one of ${OTLP_PROTOCOLS.join(', ')}; it is ignored`,
    );
  }
  return { protocol: 'http/protobuf', source: 'default' };
}

/** Resource attributes (config over `OTEL_RESOURCE_ATTRIBUTES`) and `service.name`, kept apart. */
function resolveResource(config: TracingConfig, env: Env, warnings: string[]): { serviceName: string; source: ValueSource; resourceAttributes: Record<string, string> } {
  const envAttributesRaw = readEnv(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const envAttributes = envAttributesRaw === undefined ? {} : parseKeyValueList(envAttributesRaw, 'OTEL_RESOURCE_ATTRIBUTES', warnings);
  const resourceAttributes: Record<string, string> = { ...envAttributes, ...config.resourceAttributes };
  const candidates: [string | undefined, string][] = [
    [config.serviceName, 'config'],
    [config.resourceAttributes?.['service.name'], 'config (resourceAttributes)'],
    [readEnv(env, 'OTEL_SERVICE_NAME'), 'OTEL_SERVICE_NAME'],
    [envAttributes['service.name'], 'OTEL_RESOURCE_ATTRIBUTES'],
  ];
  const [serviceName, source] = (candidates.find(([value]) => value !== undefined && value.trim() !== '') as [string, string] | undefined) ?? [DEFAULT_SERVICE_NAME, 'default'];
  delete resourceAttributes['service.name'];
  return { serviceName: serviceName.trim(), source, resourceAttributes };
}

/** Merges header maps left to right; later maps win, names compared without case. */
function mergeHeaders(...maps: Record<string, string>[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const map of maps) {
    for (const [name, value] of Object.entries(map)) {
      for (const existing of Object.keys(result)) if (existing.toLowerCase() === name.toLowerCase()) delete result[existing];
      result[name] = value;
    }
  }
  return result;
}

/** Export headers: general variable < trace-specific variable < config. */
function resolveHeaders(config: TracingConfig, env: Env, warnings: string[]): Record<string, string> {
  const envHeaders = (variable: string): Record<string, string> => {
    const raw = readEnv(env, variable);
    return raw === undefined ? {} : parseKeyValueList(raw, variable, warnings);
  };
  return mergeHeaders(envHeaders('OTEL_EXPORTER_OTLP_HEADERS'), envHeaders('OTEL_EXPORTER_OTLP_TRACES_HEADERS'), config.headers ?? {});
}

function resolveExportTimeout(config: TracingConfig, env: Env, warnings: string[]): { exportTimeoutMs: number; source: ValueSource } {
  if (config.exportTimeout !== undefined) return { exportTimeoutMs: durationMs(config.exportTimeout, 'exportTimeout'), source: 'config' };
  for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
    const ms = positiveIntFromEnv(env, variable, warnings);
    if (ms !== undefined) return { exportTimeoutMs: ms, source: variable };
  }
  return { exportTimeoutMs: DEFAULT_EXPORT_TIMEOUT_MS, source: 'default' };
}

/**
 * The batch span processor. An export batch larger than the queue is an error when both come from
 * the config, and is capped with a warning when either comes from the environment or a default.
 */
function resolveBatch(config: TracingConfig, env: Env, warnings: string[]): ResolvedTracingConfig['batch'] {
  const maxQueueSize = config.batch?.maxQueueSize ?? positiveIntFromEnv(env, 'OTEL_BSP_MAX_QUEUE_SIZE', warnings) ?? DEFAULT_BATCH.maxQueueSize;
  let maxExportBatchSize = config.batch?.maxExportBatchSize ?? positiveIntFromEnv(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', warnings) ?? DEFAULT_BATCH.maxExportBatchSize;
  if (maxExportBatchSize > maxQueueSize) {
    if (config.batch?.maxExportBatchSize !== undefined && config.batch.maxQueueSize !== undefined) {
      throw configError('batch.maxExportBatchSize', `must not exceed batch.maxQueueSize (${maxQueueSize}), got ${maxExportBatchSize}`);
    }
    warnings.push(`the export batch size ${maxExportBatchSize} exceeds the queue size ${maxQueueSize}; using ${maxQueueSize}`);
    maxExportBatchSize = maxQueueSize;
  }
  const scheduledDelayMs =
    config.batch?.scheduledDelay !== undefined
      ? durationMs(config.batch.scheduledDelay, 'batch.scheduledDelay')
      : (positiveIntFromEnv(env, 'OTEL_BSP_SCHEDULE_DELAY', warnings) ?? DEFAULT_BATCH.scheduledDelayMs);
  return { maxQueueSize, maxExportBatchSize, scheduledDelayMs };
}

/**
 * Resolves the `tracing:` section against the environment. `config` must already match
 * `TRACING_CONFIG_SCHEMA` (the plugin loader checks it); values the schema cannot express (a URL
 * that does not parse, a zero duration) throw `TESSERA_E_PLUGIN_CONFIG`.
 */
export function resolveTracingConfig(config: TracingConfig = {}, env: Env = process.env): ResolvedTracingConfig {
  const warnings: string[] = [];
  // in this order, so that the warnings come in the order of the keys
  const { enabled, disabledBy } = resolveEnabled(config, env, warnings);
  const url = resolveUrl(config, env, warnings);
  const protocol = resolveProtocol(config, env, warnings);
  const resource = resolveResource(config, env, warnings);
  const sampler = resolveSampler(config.sampleRatio, env, warnings);
  const headers = resolveHeaders(config, env, warnings);
  const timeout = resolveExportTimeout(config, env, warnings);
  const batch = resolveBatch(config, env, warnings);
  return {
    enabled,
    ...(disabledBy !== undefined ? { disabledBy } : {}),
    url: url.url,
    protocol: protocol.protocol,
    serviceName: resource.serviceName,
    sampler: sampler.sampler,
    headers,
    resourceAttributes: resource.resourceAttributes,
    exportTimeoutMs: timeout.exportTimeoutMs,
    batch,
    sources: { url: url.source, protocol: protocol.source, serviceName: resource.source, sampler: sampler.source, exportTimeoutMs: timeout.source },
    warnings,
  };
}
