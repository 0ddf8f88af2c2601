import type { JSONSchema } from '../contracts/backend.js';

/** JSON Schema `format` for durations (`500ms`, `1.5s`, `5m`); numbers are milliseconds. Usable in plugin schemas. */
export const DURATION_FORMAT = 'tessera-duration';
/** JSON Schema `format` for sizes (`64MiB`, `10MB`); numbers are bytes. Usable in plugin schemas. */
export const SIZE_FORMAT = 'tessera-size';

/** Model names appear in URLs (`/v2/models/{name}`). */
export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';
/** Version labels are positive integers, as in Triton and KServe. */
export const VERSION_LABEL_PATTERN = '^[1-9][0-9]*$';

/** Keys of a model section that the core owns; every other key is for the backend. */
export const MODEL_CORE_KEYS = ['backend', 'path', 'versions', 'batching', 'instances', 'routing', 'warmup', 'preprocess', 'postprocess'] as const;

/** Root keys the core owns; every other root key is a plugin's section. */
export const ROOT_CORE_KEYS = ['$schema', 'server', 'plugins', 'models', 'exporters', 'hooks'] as const;

/**
 * One entry of a list of configured plugin objects (`preprocess`, `postprocess`, `exporters`,
 * `hooks`): the registered name, or an object with the name under `nameKey` and the object's
 * options beside it.
 */
const namedEntrySchema = (nameKey: string, what: string): JSONSchema => ({
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'object', required: [nameKey], properties: { [nameKey]: { type: 'string', minLength: 1 } }, additionalProperties: true },
  ],
  description: `A ${what} name, or \`{${nameKey}: name, ...options}\`.`,
});

/** A duration key (ms as a number, or a string such as `500ms`, `1s`), for the core's and plugins' schemas. */
export const durationSchema = (description: string, defaultValue: number | string, examples: unknown[]): JSONSchema => ({
  type: ['number', 'string'],
  minimum: 0,
  format: DURATION_FORMAT,
  default: defaultValue,
  description,
  examples,
});

const serverSchema: JSONSchema = {
  type: 'object',
  description: 'The HTTP server.',
  default: {},
  additionalProperties: false,
  properties: {
    host: {
      type: 'string',
      minLength: 1,
      default: '0.0.0.0',
      description: 'Address to listen on: `0.0.0.0` for every IPv4 interface, `::` for every interface (IPv6 and usually IPv4), `127.0.0.1` for this machine only.',
      examples: ['127.0.0.1'],
    },
    port: {
      type: 'integer',
      minimum: 0,
      maximum: 65535,
      default: 8000,
      description: 'TCP port. `0` picks a free port (useful in tests).',
      examples: ['${PORT:-8000}'],
    },
    bodyLimit: {
      type: ['integer', 'string'],
      minimum: 0,
      format: SIZE_FORMAT,
      default: '64MiB',
      description: 'Largest accepted request body; larger requests get 413. Resolved to bytes.',
      examples: ['256MiB'],
    },
    logLevel: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      description: 'Least severe log level written (pino levels); `silent` writes nothing.',
      examples: ['debug'],
    },
    shutdownGracePeriod: durationSchema(
      'On SIGTERM/SIGINT, how long in-flight and queued requests may take to finish before connections are closed. Resolved to milliseconds as `server.shutdownGracePeriodMs`.',
      '30s',
      ['10s'],
    ),
    metricsPort: {
      type: 'integer',
      minimum: 0,
      maximum: 65535,
      description:
        'Also serve `GET /metrics` (and `GET /health`) on this port, on the same `host`, e.g. to keep scrapes off the public port or expose them only to the cluster. `/metrics` stays on the main port too. `0` picks a free port.',
      examples: [9464],
    },
    stateDir: {
      type: 'string',
      minLength: 1,
      default: '.tessera/state',
      description:
        'Folder where plugins keep state that survives restarts (a router\'s rollout stage), one file per key, written atomically. Relative paths resolve against the config file\'s folder. On Kubernetes, mount a volume here.',
      examples: ['/var/lib/tessera'],
    },
    exitOnModelError: {
      type: 'boolean',
      default: true,
      description: 'Whether a model that fails to load or warm up stops the server (`true`), or is reported as failed while the other models serve (`false`).',
      examples: [false],
    },
  },
};

const versionSchema: JSONSchema = {
  type: 'object',
  description: 'One version of the model. Keys other than `path` override the model\'s backend-specific keys for this version.',
  additionalProperties: true,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      description: 'Model artifact of this version (file or folder, as the backend expects). Relative paths resolve against the config file\'s folder.',
      examples: ['./models/cls-v2.onnx'],
    },
  },
};

const batchingSchema: JSONSchema = {
  type: 'object',
  description: 'How requests are grouped into executions. Keys other than those listed go to the batcher, which validates them.',
  default: {},
  additionalProperties: true,
  properties: {
    batcher: {
      type: 'string',
      minLength: 1,
      description:
        'Batcher name: `dynamic` (built in: Triton\'s dynamic batcher), `passthrough` (built in: each request runs alone) or one a plugin registered. When absent: `dynamic` if the section sets any other key besides `maxBatchSize` (e.g. `maxQueueDelayMs`), else `passthrough`.',
      examples: ['dynamic'],
    },
    maxBatchSize: {
      type: 'integer',
      minimum: 0,
      description: 'Largest batch (dim 0) per execution; `0` when the model does not batch. When absent, the value the model declares.',
      examples: [32],
    },
  },
};

const routingSchema: JSONSchema = {
  type: 'object',
  description: 'Which version serves a request that names none. Keys other than `strategy` go to the router, which validates them.',
  default: {},
  additionalProperties: true,
  properties: {
    strategy: {
      type: 'string',
      minLength: 1,
      default: 'latest',
      description: 'Router name: `latest` (built in: the highest ready version) or one registered by a plugin (e.g. `canary` from @tessera/router-canary).',
      examples: ['canary'],
    },
  },
};

const modelSchema: JSONSchema = {
  type: 'object',
  description: 'One model. Keys other than those listed are backend-specific (e.g. `sessionOptions`, `upstreams`); the backend validates them when it loads.',
  additionalProperties: true,
  not: {
    // `type` keeps a non-object from matching (`required` ignores non-objects); the type error reports it.
    type: 'object',
    required: ['path', 'versions'],
    description: 'must not set both path and versions (path is shorthand for versions: {"1": {path: …}})',
  },
  properties: {
    backend: {
      type: 'string',
      minLength: 1,
      default: 'onnxruntime',
      description: 'Backend that loads the model, by the name a plugin registered (`onnxruntime`, `tensorrt`, `vllm`, …).',
      examples: ['vllm'],
    },
    path: {
      type: 'string',
      minLength: 1,
      description: 'Model artifact, for a model with one version: shorthand for `versions: {"1": {path}}`. Relative paths resolve against the config file\'s folder. Not together with `versions`.',
      examples: ['./models/cls.onnx'],
    },
    versions: {
      type: 'object',
      description: 'Versions by label (a positive integer). Requests without a version go where `routing` sends them. Not together with `path`.',
      minProperties: 1,
      propertyNames: {
        pattern: VERSION_LABEL_PATTERN,
        description: 'version labels are positive integers without leading zeros: 1, 2, 10',
      },
      additionalProperties: versionSchema,
      examples: [{ '1': { path: './models/cls.onnx' }, '2': { path: './models/cls-v2.onnx' } }],
    },
    batching: batchingSchema,
    instances: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description: 'Instances loaded per version; each runs one execution at a time.',
      examples: [2],
    },
    routing: routingSchema,
    warmup: {
      type: 'boolean',
      default: true,
      description:
        "Whether each instance runs a warm-up before the model reports ready: the backend's own `warmup()`, or else one inference of zeros shaped from the model's metadata (dynamic dims as 1). Generative models without `warmup()` are not warmed.",
      examples: [false],
    },
    preprocess: {
      type: 'array',
      default: [],
      items: namedEntrySchema('processor', 'processor'),
      description:
        'Steps run on each request before it is queued, in order (processors a plugin registered): e.g. decode an image into the input tensor. The model is served with the inputs the first step accepts.',
      examples: [[{ processor: 'scale', factor: 0.5 }]],
    },
    postprocess: {
      type: 'array',
      default: [],
      items: namedEntrySchema('processor', 'processor'),
      description: 'Steps run on each request\'s outputs after inference, in order: e.g. turn scores into labels. The model is served with the outputs the last step produces.',
      examples: [['top-label']],
    },
  },
};

/**
 * The JSON Schema (draft-07) of a Tessera config file. Every property has a `description` (the
 * configuration reference in docs/configuration.md is generated from them) and, where it has one,
 * a `default`. Root keys other than those listed are plugin sections (validated by the plugins).
 */
export const configSchema: JSONSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Tessera configuration',
  type: 'object',
  additionalProperties: true,
  properties: {
    server: serverSchema,
    plugins: {
      type: 'array',
      default: [],
      uniqueItems: true,
      items: { type: 'string', minLength: 1 },
      description: 'Plugins to load, in order: package names, or paths to modules (relative paths resolve against the config file\'s folder). A string is split at commas.',
      examples: [['@tessera/router-canary', './plugins/auth.js']],
    },
    exporters: {
      type: 'array',
      default: ['prometheus'],
      items: namedEntrySchema('exporter', 'exporter'),
      description:
        'Exporters that observe the serving events, in order: `prometheus` (built in: `GET /metrics`) and those plugins registered. Listing exporters replaces the default: keep `prometheus` in the list to keep `/metrics`.',
      examples: [['prometheus', { exporter: 'audit-log', file: './audit.jsonl' }]],
    },
    hooks: {
      type: 'array',
      default: [],
      items: namedEntrySchema('hook', 'request hook'),
      description: 'Request hooks (authentication, rate limits, audit) that plugins registered, in the order they run, for every endpoint and protocol alike.',
      examples: [[{ hook: 'static-token', tokens: ['${API_TOKEN}'] }]],
    },
    models: {
      type: 'object',
      default: {},
      description: 'Models to serve, by name. The name appears in URLs (`/v2/models/{name}`).',
      propertyNames: {
        pattern: MODEL_NAME_PATTERN,
        description: 'model names appear in URLs: a letter or digit, then letters, digits, "_", "." or "-"',
      },
      additionalProperties: modelSchema,
    },
    $schema: {
      type: 'string',
      description: 'Ignored by Tessera; lets editors find a JSON Schema of the config (e.g. one written from `configSchema`) for completion.',
      examples: ['./tessera.schema.json'],
    },
  },
};
