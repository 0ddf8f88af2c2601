import path from 'node:path';
import { TesseraError } from '../errors.js';
import { type EnvRecord, substituteEnvCollect } from './env.js';
import { type ConfigIssue, defineKey, formatIssues, isRecord, joinPath } from './path.js';
import { resolveConfig } from './resolve.js';
import type { TesseraConfig } from './types.js';

/** One config file as read: its absolute path and its parsed content. */
export interface ConfigLayer {
  file: string;
  tree: unknown;
}

/** A merged config tree and which file each of its keys came from. */
export interface MergedLayers {
  /** Every layer's tree, `${VAR}`s replaced and the core's relative paths made absolute, merged in order. */
  tree: Record<string, unknown>;
  origins: ConfigOrigins;
}

/** A path with a scheme (`s3://`, `https://`, `file://`): not a file relative to the config. */
const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** The last segment of a config path as `joinPath` writes it: `.key`, `[0]` or `["odd key"]`. */
const LAST_SEGMENT = /(?:\.[A-Za-z0-9_$-]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$/;

/**
 * Which files set each key of a merged config: a scalar or array, the file whose value is there
 * (the last one that set it); an object, every file that contributed keys to it, in order. Config
 * errors name these files instead of the first file alone.
 */
export class ConfigOrigins {
  readonly #files = new Map<string, string[]>();
  readonly #order: string[];

  /** `files`: every layer's file, in merge order. */
  constructor(files: readonly string[]) {
    this.#order = [...files];
  }

  /** The files a problem at `configPath` came from, for the start of its line (`a.yaml + b.yaml`); the nearest recorded ancestor's when the path is not in the tree. */
  fileOf(configPath: string): string | undefined {
    let at = configPath;
    for (;;) {
      const files = this.#files.get(at);
      if (files) return files.join(' + ');
      if (at === '') return this.#order[0];
      const cut = LAST_SEGMENT.exec(at);
      at = cut ? at.slice(0, cut.index) : '';
    }
  }

  /** The files recorded for exactly `configPath` (empty when none set it). */
  filesAt(configPath: string): readonly string[] {
    return this.#files.get(configPath) ?? [];
  }

  /**
   * The folder a model's processor options resolve against: the folder of the last file that set
   * its `preprocess` or `postprocess` (those lists are replaced whole), else of the first file that names the model.
   */
  modelDir(name: string): string | undefined {
    const base = joinPath('models', name);
    const setters = [...this.filesAt(joinPath(base, 'preprocess')), ...this.filesAt(joinPath(base, 'postprocess'))];
    const latest = setters.sort((a, b) => this.#order.indexOf(a) - this.#order.indexOf(b)).at(-1) ?? this.filesAt(base)[0];
    return latest === undefined ? undefined : path.dirname(latest);
  }

  /** Records `file` as setting `configPath` and everything under `value` (replacing what was recorded there). */
  set(configPath: string, value: unknown, file: string): void {
    this.drop(configPath);
    this.#files.set(configPath, [file]);
    if (isRecord(value)) for (const key of Object.keys(value)) this.set(joinPath(configPath, key), value[key], file);
  }

  /** Records `file` as contributing keys to the object at `configPath`. */
  contribute(configPath: string, file: string): void {
    const files = this.#files.get(configPath);
    if (!files) this.#files.set(configPath, [file]);
    else if (!files.includes(file)) files.push(file);
  }

  /** Forgets `configPath` and everything under it. */
  drop(configPath: string): void {
    for (const key of [...this.#files.keys()]) {
      if (key === configPath || (key.startsWith(configPath) && (key[configPath.length] === '.' || key[configPath.length] === '['))) this.#files.delete(key);
    }
  }
}

/**
 * Merges config files in order, later over earlier, as `tessera serve -c base -c overlay` does:
 * objects are merged key by key, arrays and scalars are replaced, and `null` in a later file removes
 * the key. Before merging, each file's `${VAR}` references are replaced (an unset variable names that
 * file) and the core's relative paths are made absolute against that file's own folder, so a path
 * means what it means in its file whatever file sets the keys around it.
 *
 * Throws `TESSERA_E_CONFIG_ENV` for unset variables.
 */
export function mergeConfigLayers(layers: readonly ConfigLayer[], env: EnvRecord): MergedLayers {
  const origins = new ConfigOrigins(layers.map((l) => l.file));
  const tree: Record<string, unknown> = {};
  layers.forEach(({ file, tree: raw }, index) => {
    const issues: ConfigIssue[] = [];
    const substituted = substituteEnvCollect(raw ?? {}, env, '', issues);
    if (issues.length > 0) throw new TesseraError('TESSERA_E_CONFIG_ENV', formatIssues(issues, file));
    if (!isRecord(substituted)) {
      // the schema reports a root that is not an object; keep the first file's as it is, ignore none silently
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', formatIssues([{ path: '', message: `must be an object (a config file's keys), got ${Array.isArray(substituted) ? 'an array' : typeof substituted}` }], file));
    }
    absolutizePaths(substituted, path.dirname(file));
    origins.contribute('', file);
    mergeInto(tree, substituted, '', file, origins, index === 0);
  });
  return { tree, origins };
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>, base: string, file: string, origins: ConfigOrigins, first: boolean): void {
  for (const key of Object.keys(source)) {
    const at = joinPath(base, key);
    const value = source[key];
    // the base file's nulls stay, so the schema reports them as it does for a single file
    if (value === null && !first) {
      delete target[key];
      origins.drop(at);
      continue;
    }
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (isRecord(value) && isRecord(current)) {
      origins.contribute(at, file);
      mergeInto(current, value, at, file, origins, first);
    } else if (isRecord(value) && !first) {
      // a new object: merged into an empty one, so that its nulls remove (do not add) keys too
      const fresh: Record<string, unknown> = {};
      defineKey(target, key, fresh);
      origins.set(at, fresh, file);
      mergeInto(fresh, value, at, file, origins, first);
    } else {
      defineKey(target, key, copyTree(value));
      origins.set(at, value, file);
    }
  }
}

/** A copy of plain objects and arrays (other values, such as class instances from a JS config, are shared). */
function copyTree(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyTree);
  if (!isRecord(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) defineKey(copy, key, copyTree(value[key]));
  return copy;
}

/**
 * Makes the relative paths the core reads absolute against `dir`, in place: model artifacts, the
 * `repository` folder, plugins given as paths, `server.stateDir`, `server.tls` files, the API keys
 * file and a JWKS file. Values of the wrong type are left for the schema to report.
 */
export function absolutizePaths(tree: Record<string, unknown>, dir: string): void {
  const file = (holder: unknown, key: string, keepUrls = true): void => {
    if (!isRecord(holder)) return;
    const value = holder[key];
    if (typeof value !== 'string' || value === '' || (keepUrls && URL_SCHEME.test(value))) return;
    holder[key] = path.resolve(dir, value);
  };
  const { server, models, auth, plugins } = tree;
  if (isRecord(server)) {
    file(server, 'stateDir');
    for (const key of ['cert', 'key', 'ca']) file(server['tls'], key);
  }
  file(tree, 'repository');
  if (Array.isArray(plugins)) {
    tree['plugins'] = plugins.map((spec: unknown) => (typeof spec === 'string' && spec.startsWith('.') ? path.resolve(dir, spec) : spec));
  }
  if (isRecord(auth)) {
    file(auth, 'apiKeysFile');
    if (isRecord(auth['jwt']) && typeof auth['jwt']['jwks'] === 'string' && !/^https?:\/\//i.test(auth['jwt']['jwks'])) file(auth['jwt'], 'jwks', false);
  }
  if (isRecord(models)) {
    for (const model of Object.values(models)) {
      if (!isRecord(model)) continue;
      file(model, 'path');
      if (isRecord(model['versions'])) for (const version of Object.values(model['versions'])) file(version, 'path');
    }
  }
}

/**
 * Resolves several config files as one config (see `mergeConfigLayers`): `configFile` and
 * `configDir` are the first file's, `configFiles` lists them all, errors of the schema name the file
 * each bad key came from, and each model's processor options resolve against the folder of the file
 * that set its processors (`ConfigOrigins.modelDir`).
 */
export function resolveConfigLayers(layers: readonly ConfigLayer[], env: EnvRecord): TesseraConfig {
  const [first] = layers;
  if (first === undefined) throw new TesseraError('TESSERA_E_CONFIG_NOT_FOUND', 'no config file given');
  const { tree, origins } = mergeConfigLayers(layers, env);
  const config = resolveConfig(tree, { configFile: first.file, configDir: path.dirname(first.file), env, substituted: true, fileOf: (p) => origins.fileOf(p) });
  config.configFiles = layers.map((l) => l.file);
  for (const [name, model] of Object.entries(config.models)) {
    if (model.repository) continue;
    const dir = origins.modelDir(name);
    if (dir !== undefined) model.configDir = dir;
  }
  return config;
}
