/** The validated, resolved configuration (durations in ms, sizes in bytes, paths absolute). */
export interface TesseraConfig {
  server: ServerConfig;
  /** Plugin package names or paths (relative to the config file's folder). */
  plugins: string[];
  models: Record<string, ModelConfig>;
  /** Absolute path of the config file ('' when the config was given as an object). */
  configFile: string;
  /** Folder that relative paths resolve against. */
  configDir: string;
  /** Root sections owned by plugins (`configKey`), validated by each plugin's schema. */
  sections: Record<string, unknown>;
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
}

export interface ModelConfig {
  /** Backend name, as registered by a plugin. Default `onnxruntime`. */
  backend: string;
  /** Versions by label (positive integers as strings). A top-level `path` means version `1`. */
  versions: Record<string, ModelVersionConfig>;
  batching: BatchingConfig;
  /** Instances loaded per version. */
  instances: number;
  routing: RoutingConfig;
  warmup: boolean;
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
  /** Batcher name (`passthrough` is built in). */
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
