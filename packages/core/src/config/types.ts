import type { DataType } from '../contracts/tensor.js';

/** The validated, resolved configuration (durations in ms, sizes in bytes, paths absolute). */
export interface TesseraConfig {
  server: ServerConfig;
  /**
   * Plugin package names, or paths to plugin modules. Paths the file gives relative (starting with
   * `.`) are resolved against `configDir`, so every path here is absolute (or a `file:` URL).
   */
  plugins: string[];
  models: Record<string, ModelConfig>;
  /**
   * Absolute path of the `repository` folder (Triton's layout), when the config names one. Its
   * models are already in `models` (marked with `repository`), merged with the `models:` section.
   */
  repository?: string;
  /** Exporters to run, in order (default `prometheus` alone). */
  exporters: NamedEntryConfig[];
  /** Request hooks, in the order they run. */
  hooks: NamedEntryConfig[];
  /** Built-in authentication (`auth`); undefined: every endpoint is open. */
  auth?: AuthConfig;
  /** Absolute path of the config file ('' when the config was given as an object); with overlays, the first file. */
  configFile: string;
  /**
   * Every config file read, in merge order, when several were given (`-c base -c overlay`): later
   * ones deep-merged over earlier ones. Absent for a single file. Reloads read them all again.
   */
  configFiles?: string[];
  /** Folder that relative paths resolve against (with overlays, the first file's; each file's own paths were resolved against its folder). */
  configDir: string;
  /** Root sections owned by plugins (`configKey`), validated by each plugin's schema. */
  sections: Record<string, unknown>;
  /**
   * Findings that do not stop the server (no models configured, several config files in one
   * folder). The config is loaded before the logger exists: the runtime logs these once it does.
   */
  warnings?: string[];
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
  /** Bounds on one request (`server.limits`), resolved. */
  limits: LimitsConfig;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long shutdown waits for in-flight requests before closing connections, ms. */
  shutdownGracePeriodMs: number;
  /** HTTP worker processes of `tessera serve` (`server.workers`, `auto` resolved); 1: no cluster. */
  workers: number;
  /** Whether a model that fails to load stops the server (true) or is reported as failed (false). */
  exitOnModelError: boolean;
  /** A second port that serves only `/metrics` and `/health`. */
  metricsPort?: number;
  /** Absolute folder of the state store (`server.stateDir`). */
  stateDir: string;
  /** Whether `GET /openapi.json` and the `/docs` page are served (`server.openapi`, default true). */
  openapi: boolean;
  /** Fastify's `trustProxy`: whether (and which) `X-Forwarded-For` to believe. */
  trustProxy: boolean | string | number;
  /** HTTPS (and mutual TLS with `ca`); absolute paths. */
  tls?: TlsConfig;
  /** Per-client request limits. */
  rateLimit?: RateLimitConfig;
}

/** `server.limits`, resolved (sizes in bytes, durations in ms). */
export interface LimitsConfig {
  /** Most elements of one input tensor. */
  maxTensorElements: number;
  /** Most elements of all input tensors of one request together. */
  maxRequestElements: number;
  /** Deepest nesting of a JSON body. */
  maxJsonDepth: number;
  /** Largest request head, bytes (Node's `maxHeaderSize`). */
  maxHeaderSize: number;
  /** How long a client may take to send a whole request, ms (0: no limit). */
  requestTimeoutMs: number;
  /** Most `messages` of an OpenAI chat request. */
  maxMessages: number;
  /** Largest OpenAI `n` / `best_of`. */
  maxChoices: number;
}

/** `server.tls`: PEM files (absolute paths). */
export interface TlsConfig {
  cert: string;
  key: string;
  passphrase?: string;
  /** When set, clients must present a certificate signed by it. */
  ca?: string;
}

/** `server.rateLimit`, resolved. */
export interface RateLimitConfig {
  max: number;
  timeWindowMs: number;
  by: 'auto' | 'ip';
  redis?: string;
  redisNamespace: string;
  onStoreError: 'allow' | 'deny';
}

/** `auth`, resolved (durations in ms, paths absolute). */
export interface AuthConfig {
  apiKeys: ApiKeyConfig[];
  /** Absolute path of the keys file, re-read when it changes. */
  apiKeysFile?: string;
  jwt?: JwtConfig;
  /** `protected`: `/metrics` needs the `metrics` scope. */
  metrics: 'open' | 'protected';
}

/** One API key of `auth.apiKeys` (or of the keys file), resolved. */
export interface ApiKeyConfig {
  name?: string;
  /** The secret. */
  key: string;
  scopes: ('infer' | 'admin' | 'metrics')[];
  /** The models it may use; undefined: every model. */
  models?: string[];
  rateLimit?: { max: number; timeWindowMs: number };
}

/** `auth.jwt`, resolved. */
export interface JwtConfig {
  /** A JWKS URL (`http(s)://`), or the absolute path of a JWKS file. */
  jwks: string;
  issuer?: string | string[];
  audience?: string | string[];
  algorithms: string[];
  clockToleranceMs: number;
  requireExpiry: boolean;
  scopesClaim: string;
  modelsClaim: string;
  /** JWKS URL: least time between fetches, ms. */
  cooldownMs: number;
  /** JWKS URL: how long fetched keys are trusted, ms. */
  cacheMaxAgeMs: number;
  /** JWKS URL: fetch timeout, ms. */
  timeoutMs: number;
}

/** A configured plugin object of a list (`preprocess`, `exporters`, `hooks`): its name and options. */
export interface NamedEntryConfig {
  name: string;
  options: Record<string, unknown>;
}

export interface ModelConfig {
  /** Backend name, as registered by a plugin. Default `onnxruntime`. */
  backend: string;
  /**
   * Versions by label (positive integers as strings); never empty. A top-level `path` means
   * version `1`; a model with neither `path` nor `versions` (a backend without artifacts, like
   * vLLM) gets version `1` without a path.
   */
  versions: Record<string, ModelVersionConfig>;
  batching: BatchingConfig;
  /** Instances loaded per version; `auto` (the default): the backend's `autoInstances`, else 1. */
  instances: number | 'auto';
  routing: RoutingConfig;
  warmup: boolean;
  /** Processors run on each request before it is queued, in order. */
  preprocess: NamedEntryConfig[];
  /** Processors run on each request's outputs, in order. */
  postprocess: NamedEntryConfig[];
  /** Deadline of every request to the model from its arrival, ms (`timeout`); 0 = none. */
  timeoutMs: number;
  /** Admission of generations per version (`generation`). */
  generation: GenerationLimits;
  /** Every other key of the model section, for the backend (validated by its `modelConfigSchema`). */
  options: Record<string, unknown>;
  /** The version policy (`versionPolicy`), already applied to `versions`; undefined: every version listed. */
  versionPolicy?: VersionPolicy;
  /** Inputs and outputs the model must have once loaded (`signature`, or config.pbtxt's `input`/`output`); see `checkDeclaredSignature`. */
  signature?: DeclaredSignature;
  /** Where the model came from, when the `repository` folder provided it. */
  repository?: RepositoryModelSource;
  /**
   * The config's folder — for a model of the `repository` folder, its own folder (`<repository>/<model>`):
   * relative paths in processor options resolve against it (`ProcessorContext.configDir`).
   */
  configDir: string;
}

/** `versionPolicy` (Triton's version policy): `all`, the `latest` N version numbers, or `specific` ones. */
export type VersionPolicy = 'all' | { latest: number } | { specific: number[] };

/** `signature`: the inputs and outputs a model declares; each loaded version must match them. */
export interface DeclaredSignature {
  inputs?: DeclaredTensor[];
  outputs?: DeclaredTensor[];
  /** Where it was declared, named in errors (the repository scan sets the config.pbtxt file). Default `models.<name>.signature`. */
  declaredIn?: string;
}

/** One declared input or output; what is left out is not checked. */
export interface DeclaredTensor {
  name: string;
  datatype?: DataType;
  /** The whole shape, batch dim included; -1 matches any size. */
  shape?: number[];
  /** The declaring field as errors name it (the repository scan sets e.g. `input[0] "x" (line 7, …)`). */
  field?: string;
  /**
   * An output's class labels in index order (a config.pbtxt `label_filename`): Triton's
   * classification extension appends them to the classes it answers.
   */
  labels?: string[];
}

/** A model of the `repository` folder: its folder and its config file, if it has one. */
export interface RepositoryModelSource {
  /** Absolute path of `<repository>/<model>`. */
  modelDir: string;
  /** Absolute path of its `config.pbtxt` or `config.yaml`. */
  configFile?: string;
}

/** `models.<name>.generation`: how many generations a version runs and queues. */
export interface GenerationLimits {
  /** Generations in progress at once. Default 1024. */
  maxConcurrent: number;
  /** Generations waiting for a slot; more get 503 TESSERA_E_QUEUE_FULL. Default 64. */
  maxQueued: number;
}

export interface ModelVersionConfig {
  /** Absolute path of the artifact. */
  path?: string;
  /** Backend-specific overrides for this version. */
  options: Record<string, unknown>;
}

export interface BatchingConfig {
  /** Batcher name (`dynamic` and `passthrough` are built in); resolved when the config left it out. */
  batcher: string;
  /** Largest batch (dim 0) accepted per execution; 0 when the model does not batch. Default: the model's. */
  maxBatchSize?: number;
  /** The rest of the section, for the batcher. */
  options: Record<string, unknown>;
}

export interface RoutingConfig {
  /** Router strategy name (`latest` is built in). */
  strategy: string;
  options: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// The config as written (before defaults, env substitution and normalisation), for typed
// `tessera.config.ts` files: `export default defineConfig({ ... })`.

/** Milliseconds, or a string with a unit: `500ms`, `1.5s`, `5m`, `1h`. */
export type DurationInput = number | string;
/** Bytes, or a string with a unit: `64MiB`, `512KiB`, `10MB`. */
export type SizeInput = number | string;

/** The `server` section as written. */
export interface ServerConfigInput {
  host?: string;
  port?: number | string;
  bodyLimit?: SizeInput;
  limits?: {
    maxTensorElements?: number | string;
    maxRequestElements?: number | string;
    maxJsonDepth?: number | string;
    maxHeaderSize?: SizeInput;
    requestTimeout?: DurationInput;
    maxMessages?: number | string;
    maxChoices?: number | string;
  };
  logLevel?: ServerConfig['logLevel'];
  shutdownGracePeriod?: DurationInput;
  /** An integer, `auto`, or a string of either (`${WORKERS}`). */
  workers?: number | string;
  exitOnModelError?: boolean | string;
  metricsPort?: number | string;
  stateDir?: string;
  openapi?: boolean | string;
  trustProxy?: boolean | string | number;
  tls?: { cert: string; key: string; passphrase?: string; ca?: string };
  rateLimit?: { max: number | string; timeWindow?: DurationInput; by?: 'auto' | 'ip'; redis?: string; redisNamespace?: string; onStoreError?: 'allow' | 'deny' };
}

/** One entry of a model's `versions` as written: a path and backend-specific overrides. */
export interface ModelVersionConfigInput {
  path?: string;
  [option: string]: unknown;
}

/** A model section as written. Keys not listed are for the backend. */
export interface ModelConfigInput {
  backend?: string;
  path?: string;
  versions?: Record<string, ModelVersionConfigInput>;
  batching?: { batcher?: string; maxBatchSize?: number | string; [option: string]: unknown };
  instances?: number | string;
  routing?: { strategy?: string; [option: string]: unknown };
  warmup?: boolean | string;
  preprocess?: (string | { processor: string; [option: string]: unknown })[];
  postprocess?: (string | { processor: string; [option: string]: unknown })[];
  timeout?: DurationInput;
  generation?: { maxConcurrent?: number | string; maxQueued?: number | string };
  versionPolicy?: VersionPolicy;
  signature?: { inputs?: DeclaredTensor[]; outputs?: DeclaredTensor[]; declaredIn?: string };
  [option: string]: unknown;
}

/** One API key as written (`auth.apiKeys[]`, or an entry of the keys file). */
export interface ApiKeyConfigInput {
  name?: string;
  key: string;
  scopes?: ('infer' | 'admin' | 'metrics')[] | string;
  models?: string[] | string;
  rateLimit?: { max: number | string; timeWindow?: DurationInput };
}

/** The `auth` section as written. */
export interface AuthConfigInput {
  apiKeys?: ApiKeyConfigInput[];
  apiKeysFile?: string;
  jwt?: {
    jwks: string;
    issuer?: string | string[];
    audience?: string | string[];
    algorithms?: string[] | string;
    clockTolerance?: DurationInput;
    requireExpiry?: boolean | string;
    scopesClaim?: string;
    modelsClaim?: string;
    cooldown?: DurationInput;
    cacheMaxAge?: DurationInput;
    timeout?: DurationInput;
  };
  metrics?: 'open' | 'protected';
}

/** A config file's content. Root keys not listed are plugin sections. */
export interface TesseraConfigInput {
  $schema?: string;
  server?: ServerConfigInput;
  plugins?: string[] | string;
  models?: Record<string, ModelConfigInput>;
  /** A folder of models in Triton's layout (`<model>/<version>/model.onnx`, or `model.py` for `@tessera/backend-python`), relative to the config file. */
  repository?: string;
  exporters?: (string | { exporter: string; [option: string]: unknown })[];
  hooks?: (string | { hook: string; [option: string]: unknown })[];
  auth?: AuthConfigInput;
  [section: string]: unknown;
}

/** What a JS/TS config's default-exported function receives. */
export interface ConfigFunctionContext {
  /** The environment the config is resolved with. */
  env: Readonly<Record<string, string | undefined>>;
  /** Absolute path of the config file. */
  configFile: string;
  /** Its folder. */
  configDir: string;
}

/** A JS/TS config may default-export a (possibly async) function that returns the config. */
export type ConfigFunction = (context: ConfigFunctionContext) => TesseraConfigInput | Promise<TesseraConfigInput>;
