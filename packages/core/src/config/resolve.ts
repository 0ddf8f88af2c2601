import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../errors.js';
import { applyVersionPolicy } from '../repository/apply-policy.js';
import { mergeRepositoryModels } from '../repository/merge.js';
import { type RepositoryScan, scanRepository } from '../repository/scan.js';
import { type ValidAuth, resolveAuthConfig } from '../security/auth/options.js';
import { type EnvRecord, substituteEnvCollect } from './env.js';
import { type ConfigIssue, formatIssues, isRecord } from './path.js';
import type { DeclaredSignature, GenerationLimits, LimitsConfig, ModelConfig, ModelVersionConfig, NamedEntryConfig, RateLimitConfig, ServerConfig, TesseraConfig, TlsConfig, VersionPolicy } from './types.js';
import { parseDuration, parseSize } from './units.js';
import { validateConfigTree } from './validate.js';
import { resolveWorkers } from './workers.js';

/** Options of `resolveConfig`. */
export interface ResolveConfigOptions {
  /** The file the config came from: named in error messages, kept as `configFile` (resolved to absolute). */
  configFile?: string;
  /** Folder that relative paths resolve against (usually the config file's). */
  configDir: string;
  /** Environment for `${VAR}` references; default `process.env`. */
  env?: EnvRecord;
  /** The tree's `${VAR}` references were already replaced (config overlays replace them per file): not again, so `$${` stays literal. */
  substituted?: boolean;
  /** The file a problem at a config path came from, named at the start of its line (config overlays); default `configFile`. */
  fileOf?: (configPath: string) => string | undefined;
}

/**
 * Turns a parsed config (a file's content, or an object in tests and embedding code) into a
 * `TesseraConfig`: substitutes `${VAR}` references, converts strings where the schema wants
 * numbers, booleans or lists, validates against `configSchema` with its defaults, parses durations
 * and sizes, expands `path` into `versions`, makes paths absolute and splits each section into the
 * keys the core owns and the `options` for backends, batchers and routers. Does not change `raw`.
 * With `repository`, the folder is scanned here (synchronously: see `scanRepository`) and its
 * models join `models`, the `models:` keys overriding the folder's; version policies apply.
 *
 * Throws a TesseraError: `TESSERA_E_CONFIG_ENV` for unset variables, `TESSERA_E_CONFIG_INVALID`
 * for everything else, listing every problem, one per line (`file: path: message`).
 */
export function resolveConfig(raw: unknown, options: ResolveConfigOptions): TesseraConfig {
  const configFile = options.configFile ? path.resolve(options.configFile) : '';
  const configDir = path.resolve(options.configDir);
  const envIssues: ConfigIssue[] = [];
  const substituted = options.substituted ? (raw ?? {}) : substituteEnvCollect(raw ?? {}, options.env ?? process.env, '', envIssues);
  if (envIssues.length > 0) throw new TesseraError('TESSERA_E_CONFIG_ENV', formatIssues(envIssues, configFile || undefined));
  const repo = withRepository(substituted, configDir, configFile, options.env ?? process.env);
  const { value, issues } = validateConfigTree(repo?.tree ?? substituted);
  if (issues.length > 0) throw new TesseraError('TESSERA_E_CONFIG_INVALID', formatIssues(issues, options.fileOf ?? (configFile || undefined)));
  return normalise(value as ValidConfig, configFile, configDir, repo);
}

/** The repository folder's scan, and the config tree with its models merged in; undefined without `repository` (or one validation will refuse). */
function withRepository(tree: unknown, configDir: string, configFile: string, env: EnvRecord): RepositoryMerge | undefined {
  if (!isRecord(tree) || typeof tree['repository'] !== 'string' || tree['repository'] === '') return undefined;
  const scan = scanRepository(path.resolve(configDir, tree['repository']), { env, label: `${configFile ? `${configFile}: ` : ''}repository` });
  const { models, folderVersions } = mergeRepositoryModels(scan.models, tree['models']);
  return { scan, folderVersions, tree: { ...tree, models } };
}

interface RepositoryMerge {
  scan: RepositoryScan;
  folderVersions: ReadonlySet<string>;
  tree: Record<string, unknown>;
}

/** The shape of the config after validation and defaults. */
interface ValidConfig {
  $schema?: string;
  server: Omit<ServerConfig, 'bodyLimit' | 'shutdownGracePeriodMs' | 'rateLimit' | 'limits' | 'workers'> & {
    bodyLimit: number | string;
    workers: number | 'auto';
    shutdownGracePeriod: number | string;
    rateLimit?: Omit<RateLimitConfig, 'timeWindowMs'> & { timeWindow: number | string };
    limits: Omit<LimitsConfig, 'maxHeaderSize' | 'requestTimeoutMs'> & { maxHeaderSize: number | string; requestTimeout: number | string };
  };
  plugins: string[];
  models: Record<string, ValidModel>;
  repository?: string;
  exporters: NamedEntryInput[];
  hooks: NamedEntryInput[];
  auth?: ValidAuth;
  [section: string]: unknown;
}

type NamedEntryInput = string | Record<string, unknown>;

interface ValidModel {
  backend: string;
  path?: string;
  versions?: Record<string, { path?: string; [option: string]: unknown }>;
  batching: { batcher?: string; maxBatchSize?: number; [option: string]: unknown };
  preprocess: NamedEntryInput[];
  postprocess: NamedEntryInput[];
  instances: number | 'auto';
  routing: { strategy: string; [option: string]: unknown };
  warmup: boolean;
  timeout: number | string;
  generation: GenerationLimits;
  versionPolicy?: VersionPolicy;
  signature?: DeclaredSignature;
  [option: string]: unknown;
}

function normalise(config: ValidConfig, configFile: string, configDir: string, repo?: RepositoryMerge): TesseraConfig {
  const { server, plugins, models, repository: _repository, exporters, hooks, auth, $schema: _editorSchema, ...sections } = config;
  const { bodyLimit, shutdownGracePeriod, rateLimit, tls, ...serverRest } = server;
  const warnings: string[] = [...(repo?.scan.warnings ?? [])];
  const resolvedModels = Object.entries(models).flatMap(([name, model]) => {
    const source = repo?.scan.sources[name];
    // a folder model's relative paths (a labels file next to its config.yaml) resolve in its own folder, as Triton's do
    const normalised = normaliseModel(model, configDir);
    if (source) normalised.configDir = source.modelDir;
    const resolved = applyVersionPolicy(name, normalised, { ...(source ? { source } : {}), folderVersions: repo?.folderVersions.has(name) ?? false, warnings, file: configFile });
    return resolved ? [[name, resolved] as const] : [];
  });
  if (Object.keys(models).length === 0) warnings.push('models: no models are configured; the server will start and serve none');
  return {
    server: {
      ...serverRest,
      bodyLimit: parseSize(bodyLimit, 'server.bodyLimit'),
      shutdownGracePeriodMs: parseDuration(shutdownGracePeriod, 'server.shutdownGracePeriod'),
      workers: resolveWorkers(server.workers, undefined, { localRateLimit: rateLimit !== undefined && rateLimit.redis === undefined }),
      stateDir: path.resolve(configDir, serverRest.stateDir),
      limits: resolveLimits(server.limits),
      ...(tls ? { tls: resolveTls(tls, configDir) } : {}),
      ...(rateLimit ? { rateLimit: resolveRateLimit(rateLimit) } : {}),
    },
    plugins: plugins.map((spec) => (spec.startsWith('.') ? path.resolve(configDir, spec) : spec)),
    models: Object.fromEntries(resolvedModels),
    ...(repo ? { repository: repo.scan.dir } : {}),
    exporters: exporters.map((e) => namedEntry(e, 'exporter')),
    hooks: hooks.map((e) => namedEntry(e, 'hook')),
    ...(auth ? { auth: resolveAuthConfig(auth, configDir) } : {}),
    configFile,
    configDir,
    sections,
    warnings,
  };
}

function resolveLimits(raw: ValidConfig['server']['limits']): LimitsConfig {
  const { maxHeaderSize, requestTimeout, ...rest } = raw;
  return { ...rest, maxHeaderSize: parseSize(maxHeaderSize, 'server.limits.maxHeaderSize'), requestTimeoutMs: parseDuration(requestTimeout, 'server.limits.requestTimeout') };
}

function resolveTls(tls: TlsConfig, configDir: string): TlsConfig {
  return {
    ...tls,
    cert: path.resolve(configDir, tls.cert),
    key: path.resolve(configDir, tls.key),
    ...(tls.ca ? { ca: path.resolve(configDir, tls.ca) } : {}),
  };
}

function resolveRateLimit(raw: NonNullable<ValidConfig['server']['rateLimit']>): RateLimitConfig {
  const { timeWindow, ...rest } = raw;
  return { ...rest, timeWindowMs: parseDuration(timeWindow, 'server.rateLimit.timeWindow') };
}

function normaliseModel(model: ValidModel, configDir: string): ModelConfig {
  const { backend, path: single, versions, batching, instances, routing, warmup, preprocess, postprocess, timeout, generation, versionPolicy, signature, ...options } = model;
  const { batcher: named, maxBatchSize, ...batchingOptions } = batching;
  // batching keys alone (Triton's habit: `maxQueueDelayMs: 2`) choose the dynamic batcher
  const batcher = named ?? (Object.keys(batchingOptions).length > 0 ? 'dynamic' : 'passthrough');
  const { strategy, ...routingOptions } = routing;
  let resolved: Record<string, ModelVersionConfig>;
  if (single !== undefined) resolved = { '1': { path: resolveArtifact(single, configDir), options: {} } };
  else if (versions !== undefined) {
    resolved = Object.fromEntries(
      Object.entries(versions).map(([label, { path: file, ...versionOptions }]) => [
        label,
        file === undefined ? { options: versionOptions } : { path: resolveArtifact(file, configDir), options: versionOptions },
      ]),
    );
  } else resolved = { '1': { options: {} } };
  return {
    backend,
    versions: resolved,
    batching: maxBatchSize === undefined ? { batcher, options: batchingOptions } : { batcher, maxBatchSize, options: batchingOptions },
    instances,
    routing: { strategy, options: routingOptions },
    warmup,
    preprocess: preprocess.map((e) => namedEntry(e, 'processor')),
    postprocess: postprocess.map((e) => namedEntry(e, 'processor')),
    timeoutMs: parseDuration(timeout, 'timeout'),
    generation: { ...generation },
    options,
    configDir,
    ...(versionPolicy !== undefined ? { versionPolicy } : {}),
    ...(signature !== undefined ? { signature } : {}),
  };
}

/** `name` or `{[nameKey]: name, ...options}` (validated by the schema) as `{name, options}`. */
function namedEntry(entry: NamedEntryInput, nameKey: string): NamedEntryConfig {
  if (typeof entry === 'string') return { name: entry, options: {} };
  const { [nameKey]: name, ...options } = entry;
  return { name: name as string, options };
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** Relative paths resolve against the config's folder; URLs (`s3://`, `https://`) stay; `file:` URLs become paths. */
function resolveArtifact(file: string, configDir: string): string {
  if (!URL_SCHEME.test(file)) return path.resolve(configDir, file);
  if (!file.startsWith('file://')) return file;
  try {
    return fileURLToPath(file);
  } catch {
    return file; // a file URL with a host: the backend decides
  }
}
