import type { JSONSchema } from '../contracts/backend.js';
import { DATA_TYPES } from '../contracts/tensor.js';
import { VERSION_POLICY_SCHEMA } from '../repository/version-policy.js';

/** JSON Schema `format` for durations (`500ms`, `1.5s`, `5m`); numbers are milliseconds. Usable in plugin schemas. */
export const DURATION_FORMAT = 'tessera-duration';
/** JSON Schema `format` for sizes (`64MiB`, `10MB`); numbers are bytes. Usable in plugin schemas. */
export const SIZE_FORMAT = 'tessera-size';

/** Model names appear in URLs (`/v2/models/{name}`). */
export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';
/** Version labels are positive integers, as in Triton and KServe. */
export const VERSION_LABEL_PATTERN = '^[1-9][0-9]*$';

/** Keys of a model section that the core owns; every other key is for the backend. */
export const MODEL_CORE_KEYS = ['backend', 'path', 'versions', 'batching', 'instances', 'routing', 'warmup', 'preprocess', 'postprocess', 'timeout', 'generation', 'versionPolicy', 'signature'] as const;

/** Root keys the core owns; every other root key is a plugin's section. */
export const ROOT_CORE_KEYS = ['$schema', 'server', 'plugins', 'models', 'repository', 'exporters', 'hooks', 'auth'] as const;

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
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'Bounds on what one request may ask of the server, checked before anything is allocated for it; each refusal is a 4xx whose message names the limit and its key (see docs/security.md, "Input limits"). The defaults never refuse a request `bodyLimit` lets through for PP-OCR or a batch of 64.',
      properties: {
        maxTensorElements: {
          type: 'integer',
          minimum: 1,
          default: 134217728,
          description:
            'Most elements (product of the shape) one input tensor may have, on every protocol; larger gets 413 `TESSERA_E_INPUT_TOO_LARGE` before any tensor memory is allocated. Every single dim is bounded by it too, so `[1e15, 0]` is refused as well. Default 2^27.',
          examples: [16777216],
        },
        maxRequestElements: {
          type: 'integer',
          minimum: 1,
          default: 268435456,
          description: 'Most elements all input tensors of one request may have together; larger gets 413 `TESSERA_E_INPUT_TOO_LARGE`. Default 2^28.',
          examples: [33554432],
        },
        maxJsonDepth: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          default: 64,
          description:
            'Deepest nesting of arrays and objects in a JSON body (and in the JSON header of a binary inference request), checked before the body is parsed; deeper gets 400 `TESSERA_E_REQUEST_TOO_DEEP`. A tensor nested as arrays needs its rank plus one.',
          examples: [32],
        },
        maxHeaderSize: {
          type: ['integer', 'string'],
          minimum: 1024,
          format: SIZE_FORMAT,
          default: '16KiB',
          description:
            "Largest request head (request line, URL and headers together; Node's `maxHeaderSize`); larger gets 431 `TESSERA_E_REQUEST_HEADERS_TOO_LARGE` and the connection is closed. Resolved to bytes. With `tls`, pass it to the HTTPS server as well.",
          examples: ['32KiB'],
        },
        requestTimeout: durationSchema(
          "How long a client may take to send a whole request (head and body; Node's `requestTimeout`): a client that stops mid-body gets 408 `TESSERA_E_REQUEST_TIMEOUT` and the connection is closed. `0` disables it. Checked about every quarter of the timeout (at most every 30s). Resolved to milliseconds as `server.limits.requestTimeoutMs`.",
          '5m',
          ['60s'],
        ),
        maxMessages: {
          type: 'integer',
          minimum: 1,
          default: 4096,
          description: 'Most `messages` one OpenAI chat completion request may carry; more gets 400 `TESSERA_E_REQUEST_INVALID` naming the field.',
          examples: [1024],
        },
        maxChoices: {
          type: 'integer',
          minimum: 1,
          default: 128,
          description: 'Largest `n` (choices per prompt) and `best_of` of an OpenAI request; larger gets 400 `TESSERA_E_REQUEST_INVALID`.',
          examples: [8],
        },
      },
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
    workers: {
      anyOf: [{ type: 'integer', minimum: 1 }, { const: 'auto' }],
      default: 'auto',
      description:
        "HTTP worker processes of `tessera serve` (node:cluster): with more than 1, a primary process forks them, they share `port` (and `metricsPort`), and each one loads every model and serves every protocol, so a server that outgrows one event loop uses more cores; each worker sizes itself (ONNX Runtime instances and threads) for its share of the cores. `auto`: a worker per 4 cores the process may use, 1 below 8 cores, at most 8, and 1 when `server.rateLimit` counts in memory (no `redis`). The primary forwards SIGTERM/SIGINT and SIGHUP to every worker and replaces one that dies; `/metrics` on any worker answers the whole server's. Repository load/unload and routing actions are applied on every worker (one at a time; `x-tessera-workers` says how many answered; 500 `TESSERA_E_SERVER_CLUSTER_PARTIAL` when they did not all end alike); a worker started later serves the config's models, without them. In-process models (ONNX Runtime) are loaded once per worker. Resolved to the number of workers. `tessera serve --workers N` overrides it.",
      examples: [4, 'auto'],
    },
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
    openapi: {
      type: 'boolean',
      default: true,
      description:
        'Whether to serve the OpenAPI 3.1 document of every HTTP route at `GET /openapi.json` (generated from the route schemas, with the served models\' tensors as examples; protected by `auth` like model metadata) and the interactive API page at `/docs` (its static assets are open; the page asks for a key). `false` turns both off.',
      examples: [false],
    },
    trustProxy: {
      type: ['boolean', 'string', 'integer'],
      default: false,
      description:
        "Whether to take the client's address from `X-Forwarded-For` (rate limits per address, the access log): `false` (the socket's peer), `true` (trust every proxy), a hop count, or a comma-separated list of proxy addresses/CIDRs (fastify's `trustProxy`). Behind a Kubernetes Service or an ingress, set the ingress's address range.",
      examples: ['10.0.0.0/8'],
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key'],
      description:
        'Serve HTTPS on `port` instead of HTTP. With `ca`, every client must present a certificate signed by it (mutual TLS). PEM files; relative paths resolve against the config file\'s folder. The `metricsPort` listener stays plain HTTP.',
      properties: {
        cert: { type: 'string', minLength: 1, description: 'Server certificate chain (PEM).', examples: ['/etc/tessera/tls/tls.crt'] },
        key: { type: 'string', minLength: 1, description: 'Private key of the certificate (PEM).', examples: ['/etc/tessera/tls/tls.key'] },
        passphrase: { type: 'string', description: 'Passphrase of an encrypted `key` (usually `${ENV}`).', examples: ['${TLS_KEY_PASSPHRASE}'] },
        ca: { type: 'string', minLength: 1, description: 'CA bundle (PEM) that client certificates must chain to; setting it requires a client certificate on every connection.', examples: ['/etc/tessera/tls/ca.crt'] },
      },
    },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['max'],
      description:
        'Requests each client may send per `timeWindow` (@fastify/rate-limit), on every endpoint but health probes and metric scrapes; beyond it 429 `TESSERA_E_RATE_LIMITED` with `Retry-After`. A client is its API key or token (`auth`) when it sent one, else its address. A key\'s own `rateLimit` (`auth.apiKeys[].rateLimit`) overrides `max` and `timeWindow`.',
      properties: {
        max: { type: 'integer', minimum: 1, description: 'Requests per window and client.', examples: [600] },
        timeWindow: durationSchema('The window the count runs over; it starts with the first request of a client.', '1m', ['10s']),
        by: {
          type: 'string',
          enum: ['auto', 'ip'],
          default: 'auto',
          description: '`auto`: per credential when the request carried one (the principal of `auth`), else per client address; `ip`: per client address always.',
          examples: ['ip'],
        },
        redis: {
          type: 'string',
          minLength: 1,
          description:
            'Share the counts between replicas through Redis (`redis://[:password@]host:port[/db]`, `rediss://` for TLS): every replica behind a Service then enforces one limit together. Without it each replica counts on its own.',
          examples: ['redis://redis:6379', '${REDIS_URL}'],
        },
        redisNamespace: { type: 'string', minLength: 1, default: 'tessera-rate-limit-', description: 'Prefix of the Redis keys (servers sharing one prefix share counts).', examples: ['prod-tessera-'] },
        onStoreError: {
          type: 'string',
          enum: ['allow', 'deny'],
          default: 'allow',
          description:
            'When Redis cannot be reached: `allow` lets requests through uncounted (the limit fails open), `deny` answers 503 `TESSERA_E_RATE_LIMIT_UNAVAILABLE`. Either way the failure is logged (once per outage) and counted in `tessera_rate_limit_store_errors_total`.',
          examples: ['deny'],
        },
      },
    },
  },
};

/** The scopes a credential can carry (`Scope` of security/principal.ts). */
const AUTH_SCOPES = ['infer', 'admin', 'metrics'];

/** JWT signature algorithms accepted (asymmetric only: a JWKS publishes public keys). */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** One API key: `auth.apiKeys[]`, and each entry of `auth.apiKeysFile`. */
export const apiKeySchema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  description: 'One API key.',
  properties: {
    name: {
      type: 'string',
      minLength: 1,
      description: 'Who the key belongs to: the principal id in logs and the rate-limit key (default `key:` and the first 12 hex digits of the key\'s SHA-256). Unique.',
      examples: ['app'],
    },
    key: { type: 'string', minLength: 1, description: 'The secret (at least 16 characters), usually `${ENV}`. Never logged, nor shown in config errors.', examples: ['${APP_KEY}'] },
    scopes: {
      type: 'array',
      items: { type: 'string', enum: AUTH_SCOPES },
      uniqueItems: true,
      default: ['infer'],
      description: 'What the key may do: `infer` (inference, generation, metadata), `admin` (repository, routing, plugin routes; also metadata), `metrics` (`/metrics` when `auth.metrics` is `protected`).',
      examples: [['infer', 'admin']],
    },
    models: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, description: 'The models the key may use (default: every model); others answer 403.', examples: [['cls']] },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['max'],
      description: "This key's own limit, instead of `server.rateLimit`'s `max` and `timeWindow` (needs `server.rateLimit`).",
      properties: {
        max: { type: 'integer', minimum: 1, description: 'Requests per window.', examples: [100] },
        timeWindow: durationSchema('The window the count runs over.', '1m', ['10s']),
      },
    },
  },
};

const authSchema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Authentication, built into the core (docs/security.md): every request but health probes (and scrapes, unless `metrics` is `protected`) needs a credential, sent as `Authorization: Bearer <key or JWT>` or `x-api-key: <key>`; without one 401, without the scope or the model 403. Runs before every hook `hooks:` lists.',
  properties: {
    apiKeys: {
      type: 'array',
      default: [],
      items: apiKeySchema,
      description:
        'API keys, each `{name, key, scopes, models?, rateLimit?}`: `key` the secret (16+ characters, usually `${ENV}`), `scopes` a list of `infer`, `admin`, `metrics` (default `[infer]`), `models` the models it may use (default all), `rateLimit: {max, timeWindow}` its own limit under `server.rateLimit`. Compared in constant time.',
      examples: [[{ name: 'app', key: '${APP_KEY}', scopes: ['infer'], models: ['cls'] }, { name: 'ops', key: '${OPS_KEY}', scopes: ['infer', 'admin', 'metrics'] }]],
    },
    apiKeysFile: {
      type: 'string',
      minLength: 1,
      description:
        'A YAML or JSON file with more keys (a list like `apiKeys`, or `{apiKeys: [...]}`; `${VAR}` substituted), re-read when it changes, without a restart. A file that does not parse or validate keeps the previous keys (and is logged with its path); at start it stops the server. Relative to the config file\'s folder.',
      examples: ['./keys.yaml', '/etc/tessera/keys/keys.yaml'],
    },
    jwt: {
      type: 'object',
      additionalProperties: false,
      required: ['jwks'],
      description: 'Accept bearer JWTs (three base64url parts), verified with jose against a JWKS: signature, `exp`/`nbf`, `iss`, `aud`, algorithm.',
      properties: {
        jwks: {
          type: 'string',
          minLength: 1,
          description:
            'The signing keys: a JWKS URL (`https://issuer/.well-known/jwks.json`: cached, refetched when a token names an unknown `kid`, i.e. on key rotation) or a JWKS file (re-read when it changes; relative to the config file\'s folder).',
          examples: ['https://login.example.com/.well-known/jwks.json', './jwks.json'],
        },
        issuer: { type: ['string', 'array'], items: { type: 'string' }, description: 'Required `iss` (one, or a list of accepted issuers).', examples: ['https://login.example.com/'] },
        audience: { type: ['string', 'array'], items: { type: 'string' }, description: 'Required `aud` (one of these).', examples: ['tessera'] },
        algorithms: {
          type: 'array',
          items: { type: 'string', enum: JWT_ALGORITHMS },
          minItems: 1,
          uniqueItems: true,
          default: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          description: 'Accepted signature algorithms (`alg`); `none` and HMAC never are.',
          examples: [['RS256']],
        },
        clockTolerance: durationSchema('Leeway for `exp` and `nbf` (clock skew between the issuer and this server).', '30s', ['5s']),
        requireExpiry: { type: 'boolean', default: true, description: 'Whether a token without `exp` is refused (a token that never expires cannot be revoked by waiting).', examples: [false] },
        scopesClaim: { type: 'string', minLength: 1, default: 'scope', description: 'Claim with the scopes: a space-separated string (OAuth 2) or a list; values `infer`, `admin`, `metrics` (others ignored).', examples: ['scp'] },
        modelsClaim: { type: 'string', minLength: 1, default: 'models', description: 'Claim with the models the token may use (a list, or a space-separated string); absent: every model.', examples: ['tessera_models'] },
        cooldown: durationSchema('JWKS URL: least time between two fetches (a flood of unknown `kid`s does not hammer the issuer).', '30s', ['5s']),
        cacheMaxAge: durationSchema('JWKS URL: how long fetched keys are trusted before they are fetched again.', '10m', ['1h']),
        timeout: durationSchema('JWKS URL: how long one fetch may take; a token that needs a fetch that fails answers 503 `TESSERA_E_AUTH_UNAVAILABLE`.', '5s', ['2s']),
      },
    },
    metrics: {
      type: 'string',
      enum: ['open', 'protected'],
      default: 'open',
      description: '`open`: `/metrics` needs no credential (scrapers inside the cluster); `protected`: it needs one with the `metrics` scope, on `port` and on `server.metricsPort`.',
      examples: ['protected'],
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

/** One declared tensor of `signature.inputs`/`signature.outputs`. */
const declaredTensorSchema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1 },
    datatype: { type: 'string', enum: [...DATA_TYPES] },
    shape: { type: 'array', items: { type: 'integer', minimum: -1 } },
    field: { type: 'string' },
    labels: { type: 'array', items: { type: 'string' }, description: "An output's class labels, in index order (a config.pbtxt `label_filename`): answers of Triton's classification extension (`outputs[].parameters.classification`) carry them." },
  },
};

const signatureSchema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    "Inputs and outputs the model must have, checked when each version loads: a declared tensor the model lacks, another datatype or a shape that differs (-1 matches any size; the shape includes the batch dim) fails the version with `TESSERA_E_MODEL_LOAD`, and so does a model input left undeclared when `inputs` is given. Each entry is `{name, datatype?, shape?}`; what is left out is not checked. A repository model's config.pbtxt `input`/`output` set it (docs/model-repository.md).",
  properties: {
    inputs: { type: 'array', items: declaredTensorSchema, description: 'Declared inputs: `{name, datatype?, shape?}` each.', examples: [[{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }]] },
    outputs: { type: 'array', items: declaredTensorSchema, description: 'Declared outputs (a subset of the model\'s is fine).', examples: [[{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }]] },
    declaredIn: { type: 'string', minLength: 1, description: 'Where the signature was declared, named in its errors (the repository scan sets the config.pbtxt or config.yaml file). Default `models.<name>.signature`.', examples: ['./models/cls/config.pbtxt'] },
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
      anyOf: [{ type: 'integer', minimum: 1 }, { const: 'auto' }],
      default: 'auto',
      description:
        "Instances loaded per version; each runs one execution at a time. `auto`: as many as the backend's sizing rule picks for the cores Tessera may use (the ONNX Runtime backend: see packages/backend-onnxruntime/README.md (Sizing)); 1 for a backend without one.",
      examples: [2, 'auto'],
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
        'Steps run on each request before it is queued, in order (the built-in `image`, or processors a plugin registered): e.g. decode an image into the input tensor. The model is served with the inputs the first step accepts. See docs/processors.md.',
      examples: [[{ processor: 'image', size: [48, 192], resize: 'pad' }]],
    },
    postprocess: {
      type: 'array',
      default: [],
      items: namedEntrySchema('processor', 'processor'),
      description: 'Steps run on each request\'s outputs after inference, in order (the built-in `classification`, or processors a plugin registered): e.g. turn scores into labels. The model is served with the outputs the last step produces.',
      examples: [[{ processor: 'classification', labels: ['0', '180'] }]],
    },
    timeout: durationSchema(
      "Deadline of every request to this model, from its arrival to its answer; `0` = none. A request may lower it, never raise it, with `X-Request-Timeout`, `grpc-timeout` or `parameters.timeout`. Past it a request still queued gets 503 `TESSERA_E_QUEUE_TIMEOUT`; one whose work started gets 504 `TESSERA_E_REQUEST_DEADLINE_EXCEEDED` at the deadline (an execution already running is not interrupted, its result is dropped), a stream an error event (see docs/security.md, \"Overload and deadlines\").",
      0,
      ['30s', 2000],
    ),
    generation: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'Admission of generations (OpenAI-compatible requests) per model version: at most `maxConcurrent` run at once, `maxQueued` more wait for a slot (first come, first served, until their deadline), the rest get 503 `TESSERA_E_QUEUE_FULL` with `Retry-After`. Tensor models ignore it.',
      properties: {
        maxConcurrent: {
          type: 'integer',
          minimum: 1,
          default: 1024,
          description: 'Generations in progress at once (from admission until the stream or response ended). Size it to what the engines behind the model run concurrently (vLLM: `--max-num-seqs` × replicas), plus their own waiting room.',
          examples: [256],
        },
        maxQueued: {
          type: 'integer',
          minimum: 0,
          default: 64,
          description: 'Generations waiting for a slot when `maxConcurrent` run; `0`: refuse at once. A waiting request leaves at its deadline (503 `TESSERA_E_QUEUE_TIMEOUT`) or when its client goes away.',
          examples: [0, 128],
        },
      },
    },
    versionPolicy: VERSION_POLICY_SCHEMA,
    signature: signatureSchema,
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
    auth: authSchema,
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
    repository: {
      type: 'string',
      minLength: 1,
      description:
        "A folder of models in Triton's layout, each served like a `models:` entry: `<model>/<version>/model.onnx` (or `model.py`, served by @tessera/backend-python; versions are positive integers), with an optional `<model>/config.pbtxt` (Triton's fields that map: batching, instances, version policy, declared inputs/outputs) or `<model>/config.yaml` (a model section without `path`/`versions`). A model also under `models:` takes the keys given there over the folder's. Read when the config loads (and on every rescan); relative to the config file's folder. See docs/model-repository.md.",
      examples: ['./models'],
    },
    $schema: {
      type: 'string',
      description: 'Ignored by Tessera; lets editors find a JSON Schema of the config (e.g. one written from `configSchema`) for completion.',
      examples: ['./tessera.schema.json'],
    },
  },
};
