import type { JSONSchema } from '@tessera/core';
import { durationSchema, parseDuration } from '@tessera/core';
import type { LaunchConfig } from './launch/config.js';
import { LAUNCH_CONFIG_SCHEMA } from './launch/config.js';

/** A duration key (ms or `500ms`/`1s`), as the core's own keys declare them. */
const duration = durationSchema;

/** Routing strategies across a model's replicas. */
export const ROUTING_STRATEGIES = ['least-loaded', 'round-robin', 'prefix-affinity'] as const;
export type ReplicaRoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

/**
 * The keys a `backend: vllm` model section takes (besides the core's `backend`, `versions`,
 * `routing`, …). Validated by the core before `load`, with the config file's error messages.
 */
export const VLLM_MODEL_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  not: {
    description: "a vllm model needs `upstreams` (the replicas' URLs) or `launch` (replicas Tessera starts)",
    not: { anyOf: [{ required: ['upstreams'], properties: { upstreams: { minItems: 1 } } }, { required: ['launch'] }] },
  },
  properties: {
    upstreams: {
      type: 'array',
      items: { type: 'string', pattern: '^https?://[^\\s/]+', minLength: 8 },
      uniqueItems: true,
      description:
        'Base URLs of the vLLM replicas (`http://host:port`, no `/v1`). A list, or one comma-separated string (handy with `${VLLM_URLS}`). Optional when `launch` starts the replicas.',
      examples: [['http://10.0.0.1:8000', 'http://10.0.0.2:8000'], '${VLLM_URLS:-http://127.0.0.1:8001}'],
    },
    servedModelName: {
      type: 'string',
      minLength: 1,
      description:
        "The model id the replicas serve (vLLM's `--served-model-name`, or the model path): the gateway asks them for this name. Default: `launch.servedModelName` or `launch.model` for managed replicas, else the Tessera model's name.",
      examples: ['meta-llama/Llama-3.1-8B-Instruct'],
    },
    apiKey: {
      type: 'string',
      description: "Sent to the replicas as `Authorization: Bearer <apiKey>` (vLLM's `--api-key`). Use `${VLLM_API_KEY}`; it is never logged.",
    },
    balance: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How requests are spread over the replicas.',
      properties: {
        strategy: {
          enum: [...ROUTING_STRATEGIES],
          default: 'least-loaded',
          description:
            '`least-loaded`: fewest requests in flight from this gateway plus the queue scraped from the replica. `round-robin`: in turn. `prefix-affinity`: consistent hashing of the session header or the prompt prefix with bounded load, so a conversation stays on the replica that holds its KV cache unless that replica is much busier than the rest.',
        },
        sessionHeader: {
          type: 'string',
          minLength: 1,
          default: 'x-session-id',
          description: '`prefix-affinity`: a request carrying this header is placed by its value instead of its prompt prefix.',
        },
        prefixChars: {
          type: 'integer',
          minimum: 1,
          default: 256,
          description: '`prefix-affinity`: how many leading characters of the prompt (the chat messages as sent) form the placement key.',
        },
        loadFactor: {
          type: 'number',
          minimum: 1,
          default: 1.25,
          description: '`prefix-affinity`: a replica takes a key only while its in-flight requests stay within loadFactor × the mean; beyond that the key moves on along the ring.',
        },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Health checks (`GET /health`) and load scrapes (`GET /metrics`) of each replica.',
      properties: {
        interval: duration('Time between checks of each replica.', '2s', ['1s', 5000]),
        timeout: duration('A check that takes longer fails.', '1s', ['500ms']),
        ejectAfterFailures: { type: 'integer', minimum: 1, default: 3, description: 'Consecutive failures (checks or requests) after which a replica is taken out of rotation.' },
        readmitAfterSuccesses: { type: 'integer', minimum: 1, default: 1, description: 'Consecutive good checks that bring an ejected replica back.' },
        scrapeMetrics: { type: 'boolean', default: true, description: "Read each replica's queue (`vllm:num_requests_waiting`/`running`, KV cache usage) from its `/metrics` for `least-loaded`." },
      },
    },
    connectTimeout: duration('Connecting to a replica takes at most this long; then the next replica is tried.', '2s', ['500ms']),
    headersTimeout: duration(
      'A replica must answer with its response headers within this time. vLLM sends them at once for streams, but only after the whole generation for requests without `stream`, so this bounds a non-streamed generation.',
      '10m',
      ['2m'],
    ),
    idleTimeout: duration('The longest silence allowed between two pieces of a response body (streamed tokens) before the stream is declared broken.', '5m', ['60s']),
    maxAttempts: {
      type: 'integer',
      minimum: 1,
      default: 3,
      description: 'Replicas tried for one request when a replica fails before the first byte reached the client. After that the request is never retried: the stream ends with an error event.',
    },
    connections: { type: 'integer', minimum: 1, default: 1024, description: 'Keep-alive connections to open per replica at most (one per concurrent request: HTTP/1.1 without pipelining).' },
    launch: LAUNCH_CONFIG_SCHEMA,
  },
};

/** A `backend: vllm` model's keys after validation (defaults filled in, durations still raw). */
export interface VllmModelConfigInput {
  upstreams?: string[];
  servedModelName?: string;
  apiKey?: string;
  balance: { strategy: ReplicaRoutingStrategy; sessionHeader: string; prefixChars: number; loadFactor: number };
  health: { interval: number | string; timeout: number | string; ejectAfterFailures: number; readmitAfterSuccesses: number; scrapeMetrics: boolean };
  connectTimeout: number | string;
  headersTimeout: number | string;
  idleTimeout: number | string;
  maxAttempts: number;
  connections: number;
  launch?: LaunchConfig;
}

/** The same, with durations in milliseconds. */
export interface VllmModelConfig extends Omit<VllmModelConfigInput, 'health' | 'connectTimeout' | 'headersTimeout' | 'idleTimeout'> {
  health: { intervalMs: number; timeoutMs: number; ejectAfterFailures: number; readmitAfterSuccesses: number; scrapeMetrics: boolean };
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Converts the validated config section: durations to milliseconds, URLs without a trailing slash. */
export function resolveVllmConfig(input: VllmModelConfigInput): VllmModelConfig {
  const { health, connectTimeout, headersTimeout, idleTimeout, upstreams, ...rest } = input;
  return {
    ...rest,
    ...(upstreams ? { upstreams: upstreams.map((u) => u.replace(/\/+$/, '')) } : {}),
    health: {
      intervalMs: parseDuration(health.interval),
      timeoutMs: parseDuration(health.timeout),
      ejectAfterFailures: health.ejectAfterFailures,
      readmitAfterSuccesses: health.readmitAfterSuccesses,
      scrapeMetrics: health.scrapeMetrics,
    },
    connectTimeoutMs: parseDuration(connectTimeout),
    headersTimeoutMs: parseDuration(headersTimeout),
    idleTimeoutMs: parseDuration(idleTimeout),
  };
}
