import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type CosmiconfigResult, cosmiconfig } from 'cosmiconfig';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import type { EnvRecord } from './env.js';
import { CONFIG_EXTENSIONS, createLoaders } from './loaders.js';
import { type ConfigLayer, resolveConfigLayers } from './overlay.js';
import { resolveConfig } from './resolve.js';
import type { TesseraConfig } from './types.js';

/**
 * Where `loadConfig` looks for a config, in this order, in the starting folder only (cosmiconfig's
 * default: a server's config should not be picked up from a parent folder by accident).
 */
export const CONFIG_SEARCH_PLACES: readonly string[] = [
  'package.json',
  '.tesserarc',
  '.tesserarc.json',
  '.tesserarc.yaml',
  '.tesserarc.yml',
  '.tesserarc.js',
  '.tesserarc.mjs',
  '.tesserarc.cjs',
  '.tesserarc.ts',
  'tessera.config.ts',
  'tessera.config.js',
  'tessera.config.mjs',
  'tessera.config.cjs',
  'tessera.config.yaml',
  'tessera.config.yml',
  'tessera.config.json',
];

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** Config file (`-c`), relative to `cwd`; a folder is searched like `cwd`. Absent: search `cwd`. */
  file?: string;
  /**
   * Several config files (`-c base -c overlay`), each like `file`: later ones are deep-merged over
   * earlier ones (see `mergeConfigLayers`). Takes the place of `file`; one entry is the same as `file`.
   */
  files?: readonly string[];
  /** Folder to search, and the base of a relative `file`; default `process.cwd()`. */
  cwd?: string;
  /** Environment for `${VAR}` references and config functions; default `process.env`. */
  env?: EnvRecord;
}

/**
 * Finds, reads and resolves the config: the file given (or the files, merged: `files`), or the first of `CONFIG_SEARCH_PLACES`
 * in `cwd` (`package.json` counts only with a `tessera` key). YAML, JSON, JS (ESM or CommonJS) and
 * TypeScript (compiled with the `typescript` package, which must be installed) are read by
 * cosmiconfig; a JS/TS module's default export may be a (possibly async) function of
 * `{ env, configFile, configDir }`. See `resolveConfig` for what happens next.
 *
 * Throws a TesseraError: `TESSERA_E_CONFIG_NOT_FOUND` (naming the file, or the folder and the
 * places searched), `TESSERA_E_CONFIG_PARSE` (with file, line and column for YAML/JSON), or the
 * errors of `resolveConfig`.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<TesseraConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const files = options.files ?? (options.file !== undefined ? [options.file] : []);
  if (files.length > 1) {
    const layers: ConfigLayer[] = [];
    const warnings: string[] = [];
    for (const file of files) {
      const read = await readConfigFile(file, cwd, env);
      layers.push({ file: read.result.filepath, tree: read.result.config });
      warnings.push(...read.warnings);
    }
    const config = resolveConfigLayers(layers, env);
    if (warnings.length > 0) (config.warnings ??= []).push(...warnings);
    return config;
  }
  const read = await readConfigFile(files[0], cwd, env);
  const config = resolveConfig(read.result.config ?? {}, { configFile: read.result.filepath, configDir: path.dirname(read.result.filepath), env });
  if (read.warnings.length > 0) (config.warnings ??= []).push(...read.warnings);
  return config;
}

/** One config file found and parsed (`file`, or the search of `cwd` when undefined), and the warnings of a search. */
async function readConfigFile(given: string | undefined, cwd: string, env: EnvRecord): Promise<{ result: NonNullable<CosmiconfigResult>; warnings: string[] }> {
  const explorer = cosmiconfig('tessera', {
    searchPlaces: [...CONFIG_SEARCH_PLACES],
    loaders: createLoaders(env),
    searchStrategy: 'none',
    // An empty tessera.config.yaml is a config (with no models), not a reason to keep looking.
    ignoreEmptySearchPlaces: false,
    cache: false,
  });

  let result: CosmiconfigResult;
  let searched = false;
  if (given === undefined) {
    result = await explore(() => explorer.search(cwd));
    searched = true;
    if (result === null) throw notFoundIn(cwd);
  } else {
    const file = path.resolve(cwd, given);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined) {
      const relative = given === file ? '' : ` (${JSON.stringify(given)} relative to ${cwd})`;
      throw new TesseraError('TESSERA_E_CONFIG_NOT_FOUND', `config file ${file} does not exist${relative}`);
    }
    if (info.isDirectory()) {
      result = await explore(() => explorer.search(file));
      searched = true;
      if (result === null) throw notFoundIn(file);
    } else {
      const ext = path.extname(file);
      if (ext !== '' && !(CONFIG_EXTENSIONS as readonly string[]).includes(ext)) {
        throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${file}: cannot read ${ext} config files; use ${CONFIG_EXTENSIONS.join(', ')} (or no extension for YAML)`);
      }
      result = await explore(() => explorer.load(file));
      if (result === null) throw new TesseraError('TESSERA_E_CONFIG_NOT_FOUND', `${file} has no "tessera" key`);
    }
  }

  const warnings: string[] = [];
  if (searched) {
    const ignored = otherConfigFiles(result.filepath);
    if (ignored.length > 0) warnings.push(`several config files in ${path.dirname(result.filepath)}: using ${path.basename(result.filepath)}, ignoring ${ignored.join(', ')}`);
  }
  return { result, warnings };
}

async function explore(run: () => Promise<CosmiconfigResult>): Promise<CosmiconfigResult> {
  try {
    return await run();
  } catch (err) {
    if (isTesseraError(err)) throw err;
    const e = err as NodeJS.ErrnoException & { filepath?: string };
    // A file named by `$import` that does not exist.
    if (e.code === 'ENOENT') throw new TesseraError('TESSERA_E_CONFIG_NOT_FOUND', `config file ${e.path ?? '?'} does not exist${e.filepath ? ` (imported by ${e.filepath})` : ''}`, { cause: err });
    const file = e.filepath ?? 'config';
    // cosmiconfig's TypeScript loader prefixes the file; it is already at the start of ours.
    const message = errorMessage(err).replace(/^TypeScript Error in [^\n]*:\n/, '');
    throw new TesseraError('TESSERA_E_CONFIG_PARSE', `${file}: cannot load the config: ${message}`, { cause: err });
  }
}

function notFoundIn(dir: string): TesseraError {
  const places = CONFIG_SEARCH_PLACES.map((place) => (place === 'package.json' ? 'package.json ("tessera" key)' : place));
  return new TesseraError(
    'TESSERA_E_CONFIG_NOT_FOUND',
    `no Tessera config in ${dir} (looked for ${places.join(', ')}); create tessera.config.yaml there, or name a file with -c`,
  );
}

/** The other search places that exist next to the config that was used. */
function otherConfigFiles(used: string): string[] {
  const dir = path.dirname(used);
  return CONFIG_SEARCH_PLACES.filter((place) => {
    const file = path.join(dir, place);
    if (file === used || !existsSync(file)) return false;
    if (place !== 'package.json') return true;
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)['tessera'] !== undefined;
    } catch {
      return false;
    }
  });
}
