import type { JSONSchema } from '@tessera/core';
import { durationSchema, parseDuration } from '@tessera/core';

/** How requests are spread over the upstreams. */
export const REMOTE_STRATEGIES = ['least-loaded', 'round-robin'] as const;
export type RemoteStrategy = (typeof REMOTE_STRATEGIES)[number];

/** Which readiness endpoint of each upstream the health probe reads. */
export const HEALTH_CHECKS = ['model', 'server'] as const;
export type HealthCheck = (typeof HEALTH_CHECKS)[number];

/**
 * The keys a `backend: remote` model section takes (besides the core's `backend`, `versions`,
 * `routing`, …). Validated by the core before `load`; `${ENV}` values are expanded by the core
 * when it reads the config file.
 */
export const REMOTE_MODEL_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['upstreams'],
  properties: {
    upstreams: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', pattern: '^https?://[^\\s/]+', minLength: 8 },
      description: 'Base URLs of the OIP v2 servers that serve the model (`http://host:port`, no `/v2`): other Tessera servers, Triton, KServe.',
      examples: [['http://10.0.0.1:8000', 'http://10.0.0.2:8000']],
    },
    remoteModel: { type: 'string', minLength: 1, description: "The model's name on the upstreams. Default: this model's name." },
    remoteVersion: {
      type: 'string',
      minLength: 1,
      description: 'The version to ask the upstreams for (`/v2/models/{m}/versions/{v}`). Default: none, the upstream picks (its own routing).',
    },
    binary: {
      type: 'boolean',
      default: true,
      description: "Send inputs and ask for outputs with the binary tensor data extension (`Inference-Header-Content-Length`); false sends plain JSON (for an upstream without the extension).",
    },
    strategy: {
      enum: [...REMOTE_STRATEGIES],
      default: 'least-loaded',
      description: '`least-loaded`: the upstream with the fewest requests in flight from this server. `round-robin`: in turn.',
    },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description: 'Headers sent with every request and probe to the upstreams, e.g. `authorization: Bearer ${UPSTREAM_TOKEN}` (never logged).',
    },
    timeout: durationSchema('An upstream must answer a request (the whole response) within this time; then it counts as failed and, before any byte reached the client, the next upstream is tried.', '30s', ['5s']),
    maxAttempts: {
      type: 'integer',
      minimum: 1,
      default: 3,
      description: 'Upstreams tried for one request when an upstream fails (connection refused or reset, timeout, 5xx). A 4xx answer is the request\'s fault and is never retried.',
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Health probes of each upstream.',
      properties: {
        check: {
          enum: [...HEALTH_CHECKS],
          default: 'model',
          description: '`model`: `GET /v2/models/{m}[/versions/{v}]/ready` (this model on that upstream). `server`: `GET /v2/health/ready` (the whole upstream server).',
        },
        interval: durationSchema('Time between probes of each upstream.', '2s', ['1s']),
        timeout: durationSchema('A probe that takes longer fails.', '1s', ['500ms']),
        ejectAfterFailures: { type: 'integer', minimum: 1, default: 3, description: 'Consecutive failures (probes or requests) after which an upstream is taken out of rotation.' },
        readmitAfterSuccesses: { type: 'integer', minimum: 1, default: 1, description: 'Consecutive good probes that bring an ejected upstream back.' },
      },
    },
  },
};

/** A `backend: remote` model's keys after validation (defaults filled in, durations still raw). */
export interface RemoteModelConfigInput {
  upstreams: string[];
  remoteModel?: string;
  remoteVersion?: string;
  binary: boolean;
  strategy: RemoteStrategy;
  headers: Record<string, string>;
  timeout: number | string;
  maxAttempts: number;
  health: { check: HealthCheck; interval: number | string; timeout: number | string; ejectAfterFailures: number; readmitAfterSuccesses: number };
}

/** The same, resolved: durations in milliseconds, URLs without a trailing slash, the remote name filled in. */
export interface RemoteModelConfig extends Omit<RemoteModelConfigInput, 'health' | 'timeout' | 'remoteModel'> {
  remoteModel: string;
  timeoutMs: number;
  health: { check: HealthCheck; intervalMs: number; timeoutMs: number; ejectAfterFailures: number; readmitAfterSuccesses: number };
}

/** Converts the validated config section of model `model`. */
export function resolveRemoteConfig(model: string, input: RemoteModelConfigInput): RemoteModelConfig {
  const { health, timeout, upstreams, remoteModel, ...rest } = input;
  return {
    ...rest,
    upstreams: upstreams.map((u) => u.replace(/\/+$/, '')),
    remoteModel: remoteModel ?? model,
    timeoutMs: parseDuration(timeout),
    health: {
      check: health.check,
      intervalMs: parseDuration(health.interval),
      timeoutMs: parseDuration(health.timeout),
      ejectAfterFailures: health.ejectAfterFailures,
      readmitAfterSuccesses: health.readmitAfterSuccesses,
    },
  };
}

/** The path prefix of the model on the upstreams: `/v2/models/{m}` or `/v2/models/{m}/versions/{v}`. */
export function modelPath(config: Pick<RemoteModelConfig, 'remoteModel' | 'remoteVersion'>): string {
  const base = `/v2/models/${encodeURIComponent(config.remoteModel)}`;
  return config.remoteVersion === undefined ? base : `${base}/versions/${encodeURIComponent(config.remoteVersion)}`;
}
