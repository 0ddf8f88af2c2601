export { loadConfig, CONFIG_SEARCH_PLACES } from './load.js';
export type { LoadConfigOptions } from './load.js';
export { resolveConfig } from './resolve.js';
export type { ResolveConfigOptions } from './resolve.js';
export { validateAgainstSchema, coerceToSchema } from './validate.js';
export type { ValidateOptions } from './validate.js';
export { configSchema, durationSchema, DURATION_FORMAT, SIZE_FORMAT } from './schema.js';
export { parseDuration, parseSize } from './units.js';
export { substituteEnv } from './env.js';
export type { EnvRecord } from './env.js';
export { defineConfig } from './define-config.js';
export type {
  BatchingConfig,
  ConfigFunction,
  ConfigFunctionContext,
  DurationInput,
  LimitsConfig,
  ModelConfig,
  ModelConfigInput,
  ModelVersionConfig,
  ModelVersionConfigInput,
  NamedEntryConfig,
  RoutingConfig,
  ServerConfig,
  ServerConfigInput,
  SizeInput,
  TesseraConfig,
  TesseraConfigInput,
} from './types.js';
