/** The `tracing:` section as written, and its JSON Schema. */
import { DURATION_FORMAT } from '@tessera/core';
import type { JSONSchema } from '@tessera/core';

/** OTLP encodings this plugin exports with (gRPC is not supported). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

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
