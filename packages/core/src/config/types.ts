/** The validated, resolved configuration (durations in ms, sizes in bytes, paths absolute). */
export interface TesseraConfig {
  server: ServerConfig;
  /**
   * Plugin package names, or paths to plugin modules. Paths the file gives relative (starting with
   * `.`) are resolved against `configDir`, so every path here is absolute (or a `file:` URL).
   */
  plugins: string[];
  models: Record<string, ModelConfig>;
  /** Exporters to run, in order (default `prometheus` alone). */
  exporters: NamedEntryConfig[];
  /** Request hooks, in the order they run. */
  hooks: NamedEntryConfig[];
  /** Absolute path of the config file ('' when the config was given as an object). */
  configFile: string;
  /** Folder that relative paths resolve against. */
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
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long shutdown waits for in-flight requests before closing connections, ms. */
  shutdownGracePeriodMs: number;
  /** Whether a model that fails to load stops the server (true) or is reported as failed (false). */
  exitOnModelError: boolean;
  /** A second port that serves only `/metrics` and `/health`. */
  metricsPort?: number;
  /** Absolute folder of the state store (`server.stateDir`). */
  stateDir: string;
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
  /** Instances loaded per version. */
  instances: number;
  routing: RoutingConfig;
  warmup: boolean;
  /** Processors run on each request before it is queued, in order. */
  preprocess: NamedEntryConfig[];
  /** Processors run on each request's outputs, in order. */
  postprocess: NamedEntryConfig[];
  /** Every other key of the model section, for the backend (validated by its `modelConfigSchema`). */
  options: Record<string, unknown>;
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
  logLevel?: ServerConfig['logLevel'];
  shutdownGracePeriod?: DurationInput;
  exitOnModelError?: boolean | string;
  metricsPort?: number | string;
  stateDir?: string;
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
  [option: string]: unknown;
}

/** A config file's content. Root keys not listed are plugin sections. */
export interface TesseraConfigInput {
  $schema?: string;
  server?: ServerConfigInput;
  plugins?: string[] | string;
  models?: Record<string, ModelConfigInput>;
  exporters?: (string | { exporter: string; [option: string]: unknown })[];
  hooks?: (string | { hook: string; [option: string]: unknown })[];
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
