/**
 * The `tracing:` config section and its resolution against the standard `OTEL_*` environment
 * variables. Precedence, key by key: the config section, then the trace-specific variable
 * (`OTEL_EXPORTER_OTLP_TRACES_*`), then the general one (`OTEL_EXPORTER_OTLP_*`), then the default.
 * Invalid environment values are reported as warnings and skipped (as the OpenTelemetry SDKs do);
 * invalid config values are errors (the plugin loader validates the section against
 * `TRACING_CONFIG_SCHEMA` before `register`).
 */
import { DURATION_FORMAT, TesseraError, parseDuration } from '@tessera/core';
import type { JSONSchema } from '@tessera/core';

/** OTLP encodings this plugin exports with (gRPC is not supported). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** Sampler names of `OTEL_TRACES_SAMPLER` that this plugin supports. */
export const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

export const DEFAULT_ENDPOINT = 'http://localhost:4318';
export const DEFAULT_SERVICE_NAME = 'tessera';
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
export const DEFAULT_BATCH = Object.freeze({ maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 5000 });
/** The OTLP/HTTP path of the traces signal, appended to base endpoints. */
export const TRACES_PATH = 'v1/traces';

/** The `tracing:` section of the config file, as written. Every key is optional. */
export interface TracingConfig {
  /** `false` turns tracing off without removing the plugin (default `true`). */
  enabled?: boolean;
  /** OTLP/HTTP base URL (`http://collector:4318`); `/v1/traces` is appended unless already there. */
  endpoint?: string;
  protocol?: OtlpProtocol;
  serviceName?: string;
  /** Fraction of new traces to sample (parent-based: a sampled parent is always followed). */
  sampleRatio?: number;
  /** Sent with every export (e.g. `authorization`); never logged. */
  headers?: Record<string, string>;
  resourceAttributes?: Record<string, string>;
  /** Milliseconds or a duration string (`10s`); bounds each export and the flush at shutdown. */
  exportTimeout?: number | string;
  batch?: {
    maxQueueSize?: number;
    maxExportBatchSize?: number;
    /** Milliseconds or a duration string: how long a span may wait before its batch is sent. */
    scheduledDelay?: number | string;
  };
}

export interface SamplerSpec {
  name: SamplerName;
  /** For the `*traceidratio` samplers. */
  ratio?: number;
}

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

export type Env = Readonly<Record<string, string | undefined>>;

const durationKey = (description: string, examples: unknown[]): JSONSchema => ({
  type: ['number', 'string'],
  minimum: 1,
  format: DURATION_FORMAT,
  description,
  examples,
});

const stringMap = (description: string, examples: unknown[]): JSONSchema => ({
  type: 'object',
  additionalProperties: { type: 'string' },
  description,
  examples,
});

/**
 * JSON Schema of the `tracing:` section. No defaults here on purpose: a key left out falls back to
 * its `OTEL_*` variable, which a schema default would hide.
 */
export const TRACING_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  description:
    'OpenTelemetry tracing (@tessera/tracing). Every key is optional; a key left out falls back to the standard OTEL_* environment variable, then to the default.',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', description: '`false` turns tracing off without removing the plugin. Default `true` (unless `OTEL_SDK_DISABLED=true`).' },
    endpoint: {
      type: 'string',
      minLength: 1,
      pattern: '^https?://',
      description:
        'OTLP/HTTP base URL of the collector; `/v1/traces` is appended unless the URL already ends with it. Env: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), OTEL_EXPORTER_OTLP_ENDPOINT (base). Default http://localhost:4318.',
      examples: ['http://otel-collector:4318', 'https://otlp.example.com/v1/traces'],
    },
    protocol: {
      enum: [...OTLP_PROTOCOLS],
      description: 'OTLP encoding. Env: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL. Default http/protobuf.',
    },
    serviceName: { type: 'string', minLength: 1, description: 'Resource attribute service.name. Env: OTEL_SERVICE_NAME. Default `tessera`.', examples: ['tessera-prod'] },
    sampleRatio: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description:
        'Fraction of new traces sampled (parent-based trace-id ratio: requests whose traceparent says sampled are always traced). Env: OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG. Default 1.',
      examples: [0.1],
    },
    headers: {
      ...stringMap('Headers sent with every export, e.g. authorization; merged over OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS. Never logged.', [
        { authorization: 'Bearer ${OTLP_TOKEN}' },
      ]),
      // an HTTP token (RFC 9110), so that a typo fails at start rather than on every export
      propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
    },
    resourceAttributes: stringMap('Resource attributes added to every span; merged over OTEL_RESOURCE_ATTRIBUTES.', [{ 'deployment.environment.name': 'prod' }]),
    exportTimeout: durationKey(
      'How long one export may take, and the longest shutdown waits for the last flush. Env: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT (ms). Default 10s.',
      ['5s'],
    ),
    batch: {
      type: 'object',
      description: 'The batch span processor.',
      additionalProperties: false,
      properties: {
        maxQueueSize: { type: 'integer', minimum: 1, description: 'Spans held while waiting for export; more are dropped. Env: OTEL_BSP_MAX_QUEUE_SIZE. Default 2048.' },
        maxExportBatchSize: {
          type: 'integer',
          minimum: 1,
          description: 'Spans per export request (at most maxQueueSize). Env: OTEL_BSP_MAX_EXPORT_BATCH_SIZE. Default 512.',
        },
        scheduledDelay: durationKey('Longest wait before queued spans are exported. Env: OTEL_BSP_SCHEDULE_DELAY (ms). Default 5s.', ['1s']),
      },
    },
  },
};

/** Reads an environment variable; empty or blank values count as unset (OpenTelemetry spec). */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The OTLP/HTTP traces URL for a base endpoint: `http://c:4318` → `http://c:4318/v1/traces`,
 * `http://c:4318/otlp/` → `http://c:4318/otlp/v1/traces`; a URL that already ends in `/v1/traces`
 * is kept as it is. Throws on a URL that does not parse or is not http(s).
 */
export function tracesUrl(endpoint: string): string {
  const url = parseHttpUrl(endpoint);
  if (/\/v1\/traces\/?$/.test(url.pathname)) return url.href;
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${TRACES_PATH}`;
  return url.href;
}

function parseHttpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`'${text}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`'${text}' is not an http(s) URL (OTLP/HTTP; gRPC is not supported)`);
  return url;
}

/** The URL without credentials or query string, for logs. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}

/**
 * Parses `key1=value1,key2=value2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS), values
 * percent-decoded. On a malformed entry the whole variable is discarded, as the spec asks; the
 * message names the variable but never its value (headers carry secrets).
 */
export function parseKeyValueList(text: string, variable: string, warnings: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    if (key === '') {
      warnings.push(`${variable} is not a list of key=value pairs separated by commas; it is ignored`);
      return {};
    }
    try {
      result[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      warnings.push(`${variable}: the value of '${key}' is not valid percent-encoding; the variable is ignored`);
      return {};
    }
  }
  return result;
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

function parseRatio(text: string | undefined, variable: string, warnings: string[]): number {
  if (text === undefined) return 1;
  const ratio = Number(text);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    warnings.push(`${variable}=${text} is not a number between 0 and 1; using 1`);
    return 1;
  }
  return ratio;
}

/**
 * The sampler from `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, or undefined when the variable
 * is unset. Unsupported samplers (jaeger_remote, xray, …) fall back to `parentbased_always_on`
 * with a warning.
 */
export function samplerFromEnv(env: Env, warnings: string[] = []): SamplerSpec | undefined {
  const raw = read(env, 'OTEL_TRACES_SAMPLER');
  if (raw === undefined) return undefined;
  const name = raw.toLowerCase();
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    warnings.push(`OTEL_TRACES_SAMPLER=${raw} is not supported (supported: ${SAMPLER_NAMES.join(', ')}); using parentbased_always_on`);
    return { name: 'parentbased_always_on' };
  }
  if (name === 'traceidratio' || name === 'parentbased_traceidratio') {
    return { name, ratio: parseRatio(read(env, 'OTEL_TRACES_SAMPLER_ARG'), 'OTEL_TRACES_SAMPLER_ARG', warnings) };
  }
  return { name: name as SamplerName };
}

/** A readable form of a sampler for logs: `parentbased_traceidratio(0.25)`. */
export function describeSampler(spec: SamplerSpec): string {
  return spec.ratio === undefined ? spec.name : `${spec.name}(${spec.ratio})`;
}

function positiveIntFromEnv(env: Env, variable: string, warnings: string[]): number | undefined {
  const raw = read(env, variable);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    warnings.push(`${variable}=${raw} is not a positive integer; it is ignored`);
    return undefined;
  }
  return Number(raw);
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

/**
 * Resolves the `tracing:` section against the environment. `config` must already match
 * `TRACING_CONFIG_SCHEMA` (the plugin loader checks it); values the schema cannot express (a URL
 * that does not parse, a zero duration) throw `TESSERA_E_PLUGIN_CONFIG`.
 */
export function resolveTracingConfig(config: TracingConfig = {}, env: Env = process.env): ResolvedTracingConfig {
  const warnings: string[] = [];

  // enabled
  let enabled = config.enabled ?? true;
  let disabledBy: string | undefined = config.enabled === false ? 'tracing.enabled' : undefined;
  const sdkDisabled = read(env, 'OTEL_SDK_DISABLED');
  if (config.enabled === undefined && sdkDisabled !== undefined) {
    if (sdkDisabled.toLowerCase() === 'true') {
      enabled = false;
      disabledBy = 'OTEL_SDK_DISABLED';
    } else if (sdkDisabled.toLowerCase() !== 'false') {
      warnings.push(`OTEL_SDK_DISABLED=${sdkDisabled} is neither true nor false; tracing stays on`);
    }
  }

  // endpoint
  let url: string | undefined;
  let urlSource = 'default';
  if (config.endpoint !== undefined) {
    try {
      url = tracesUrl(config.endpoint);
      urlSource = 'config';
    } catch (err) {
      throw configError('endpoint', (err as Error).message);
    }
  }
  if (url === undefined) {
    const specific = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    if (specific !== undefined) {
      try {
        url = parseHttpUrl(specific).href; // the signal-specific URL is used as it is
        urlSource = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
      } catch (err) {
        warnings.push(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ${(err as Error).message}; it is ignored`);
      }
    }
  }
  if (url === undefined) {
    const base = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    if (base !== undefined) {
      try {
        url = tracesUrl(base);
        urlSource = 'OTEL_EXPORTER_OTLP_ENDPOINT';
      } catch (err) {
        warnings.push(`OTEL_EXPORTER_OTLP_ENDPOINT: ${(err as Error).message}; it is ignored`);
      }
    }
  }
  url ??= tracesUrl(DEFAULT_ENDPOINT);

  // protocol
  let protocol: OtlpProtocol = 'http/protobuf';
  let protocolSource = 'default';
  if (config.protocol !== undefined) {
    protocol = config.protocol;
    protocolSource = 'config';
  } else {
    for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
      const raw = read(env, variable);
      if (raw === undefined) continue;
      if ((OTLP_PROTOCOLS as readonly string[]).includes(raw)) {
        protocol = raw as OtlpProtocol;
        protocolSource = variable;
        break;
      }
      warnings.push(
        raw === 'grpc'
          ? `${variable}=grpc is not supported by @tessera/tracing (OTLP/HTTP only); using http/protobuf: point the endpoint at the collector's HTTP port (4318)`
          : `${variable}=${raw} is not one of ${OTLP_PROTOCOLS.join(', ')}; it is ignored`,
      );
    }
  }

  // resource attributes and service name
  const envAttributesRaw = read(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const envAttributes = envAttributesRaw === undefined ? {} : parseKeyValueList(envAttributesRaw, 'OTEL_RESOURCE_ATTRIBUTES', warnings);
  const resourceAttributes: Record<string, string> = { ...envAttributes, ...config.resourceAttributes };
  const candidates: [string | undefined, string][] = [
    [config.serviceName, 'config'],
    [config.resourceAttributes?.['service.name'], 'config (resourceAttributes)'],
    [read(env, 'OTEL_SERVICE_NAME'), 'OTEL_SERVICE_NAME'],
    [envAttributes['service.name'], 'OTEL_RESOURCE_ATTRIBUTES'],
  ];
  const [serviceName, serviceNameSource] = candidates.find(([value]) => value !== undefined && value.trim() !== '') as [string, string] | undefined ?? [DEFAULT_SERVICE_NAME, 'default'];
  delete resourceAttributes['service.name'];

  // sampler
  let sampler: SamplerSpec;
  let samplerSource: string;
  if (config.sampleRatio !== undefined) {
    sampler = { name: 'parentbased_traceidratio', ratio: config.sampleRatio };
    samplerSource = 'config';
  } else {
    const fromEnv = samplerFromEnv(env, warnings);
    sampler = fromEnv ?? { name: 'parentbased_always_on' };
    samplerSource = fromEnv ? 'OTEL_TRACES_SAMPLER' : 'default';
  }

  // headers: general < trace-specific < config
  const envHeaders = (variable: string): Record<string, string> => {
    const raw = read(env, variable);
    return raw === undefined ? {} : parseKeyValueList(raw, variable, warnings);
  };
  const headers = mergeHeaders(envHeaders('OTEL_EXPORTER_OTLP_HEADERS'), envHeaders('OTEL_EXPORTER_OTLP_TRACES_HEADERS'), config.headers ?? {});

  // export timeout
  let exportTimeoutMs = DEFAULT_EXPORT_TIMEOUT_MS;
  let timeoutSource = 'default';
  if (config.exportTimeout !== undefined) {
    exportTimeoutMs = durationMs(config.exportTimeout, 'exportTimeout');
    timeoutSource = 'config';
  } else {
    for (const variable of ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']) {
      const ms = positiveIntFromEnv(env, variable, warnings);
      if (ms !== undefined) {
        exportTimeoutMs = ms;
        timeoutSource = variable;
        break;
      }
    }
  }

  // batch processor
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

  return {
    enabled,
    ...(disabledBy !== undefined ? { disabledBy } : {}),
    url,
    protocol,
    serviceName: serviceName.trim(),
    sampler,
    headers,
    resourceAttributes,
    exportTimeoutMs,
    batch: { maxQueueSize, maxExportBatchSize, scheduledDelayMs },
    sources: { url: urlSource, protocol: protocolSource, serviceName: serviceNameSource, sampler: samplerSource, exportTimeoutMs: timeoutSource },
    warnings,
  };
}
