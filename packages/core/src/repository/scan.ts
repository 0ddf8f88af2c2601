/**
 * The `repository` folder in Triton's layout: `<model>/<version>/model.onnx` (or `model.py`, for
 * @tessera/backend-python), with an optional `<model>/config.pbtxt` (Triton's) or
 * `<model>/config.yaml` (a Tessera model section). Reading it
 * is a pure function of the folder (and the environment, for `${VAR}` in config.yaml), synchronous
 * so that `resolveConfig` stays synchronous; the server calls it again to rescan.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { EnvRecord } from '../config/env.js';
import { substituteEnvCollect } from '../config/env.js';
import { loadYaml } from '../config/loaders.js';
import { type ConfigIssue, formatIssues, isRecord } from '../config/path.js';
import { MODEL_NAME_PATTERN, VERSION_LABEL_PATTERN, configSchema } from '../config/schema.js';
import type { ModelConfigInput, RepositoryModelSource } from '../config/types.js';
import { validateAgainstSchema } from '../config/validate.js';
import type { JSONSchema } from '../contracts/backend.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import { type FolderBackend, type FolderModelConfig, MODEL_FILENAMES, ONNX_MODEL_FILENAME, PYTHON_MODEL_FILENAME, readTritonConfig } from './triton-config.js';
import { DEFAULT_VERSION_POLICY, selectVersions } from './version-policy.js';

/** Options of `listRepository` and `scanRepository`. */
export interface RepositoryScanOptions {
  /** Environment for `${VAR}` references in `config.yaml` files; default `process.env`. */
  env?: EnvRecord;
  /** What names the folder in folder-level errors (e.g. `/srv/tessera.config.yaml: repository`); default `repository`. */
  label?: string;
}

/** One model folder, as `listRepository` found it. */
export interface RepositoryModel {
  /** The folder's name: the model's name. */
  name: string;
  /** Absolute path of the model folder. */
  modelDir: string;
  /** Absolute path of its config.pbtxt or config.yaml, when it has one. */
  configFile?: string;
  /** Version labels whose folder holds the model file, ascending. */
  versions: string[];
  /** Those the folder's own version policy serves (default `latest: 1`), before any override in `models:`. */
  served: string[];
  /**
   * The model section for the config: the config file's keys, `versions` (every version found,
   * absolute paths) and `versionPolicy`; undefined when the model cannot be served (`error`, or no
   * version).
   */
  model?: ModelConfigInput;
  /** Why the model cannot be served: its config file does not parse, or asks for what Tessera refuses. */
  error?: TesseraError;
}

/** Everything in the folder, servable or not. */
export interface RepositoryListing {
  /** Absolute path of the folder. */
  dir: string;
  /** Model folders, by name. */
  models: RepositoryModel[];
  /** What was skipped and why (Triton skips it too), and the config files' warnings. */
  warnings: string[];
}

/** What `scanRepository` gives the config. */
export interface RepositoryScan {
  /** Absolute path of the folder. */
  dir: string;
  /** The servable models, as `models.<name>` sections (each with `versions` and `versionPolicy`). */
  models: Record<string, ModelConfigInput>;
  /** Where each of `models` came from. */
  sources: Record<string, RepositoryModelSource>;
  warnings: string[];
}

/** Config file names of a model folder. */
export const MODEL_CONFIG_FILES = ['config.pbtxt', 'config.yaml', 'config.yml'] as const;

const MODEL_NAME = new RegExp(MODEL_NAME_PATTERN);
const VERSION_LABEL = new RegExp(VERSION_LABEL_PATTERN);
/** Files that tell which framework a version folder without model.onnx was made for. */
const OTHER_MODEL_FILES: Readonly<Record<string, string>> = {
  'model.plan': 'a TensorRT plan: not served (@tessera/backend-tensorrt runs the ONNX model through ONNX Runtime\'s TensorRT provider)',
  'model.py': 'a Python model: @tessera/backend-python serves those (config.pbtxt `backend: "python"`)',
  'model.pt': 'a TorchScript model: export it to ONNX',
  'model.savedmodel': 'a TensorFlow SavedModel: convert it to ONNX (tf2onnx)',
  'model.graphdef': 'a TensorFlow GraphDef: convert it to ONNX (tf2onnx)',
  'model.json': "a vLLM model.json: configure it under `models:` with `backend: vllm`",
};

/**
 * Reads the folder: every model folder with its versions and config, and what was skipped (a
 * model folder without versions, a version folder without the model file, a name that cannot be
 * a model's) as warnings. Throws only when the folder itself is missing or not a folder
 * (`TESSERA_E_CONFIG_INVALID`); a model whose config is wrong has `error` set.
 */
export function listRepository(dir: string, options: RepositoryScanOptions = {}): RepositoryListing {
  const root = path.resolve(dir);
  const label = options.label ?? 'repository';
  const info = statOf(root);
  if (!info) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${label}: the folder ${root} does not exist`);
  if (!info.isDirectory()) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${label}: ${root} is not a folder`);
  const warnings: string[] = [];
  const models: RepositoryModel[] = [];
  for (const name of readdirSync(root).sort()) {
    if (name.startsWith('.')) continue;
    const modelDir = path.join(root, name);
    if (!statOf(modelDir)?.isDirectory()) continue; // a README next to the models
    if (!MODEL_NAME.test(name)) {
      warnings.push(`${modelDir}: skipped: ${JSON.stringify(name)} cannot be a model name (a letter or digit, then letters, digits, "_", "." or "-")`);
      continue;
    }
    models.push(readModelFolder(name, modelDir, options.env ?? process.env, warnings));
  }
  return { dir: root, models, warnings };
}

/**
 * The servable models of the folder, as `models:` sections, for the config (see `resolveConfig`):
 * throws one TesseraError listing every model whose config is wrong (its code the first one's:
 * `TESSERA_E_CONFIG_PARSE` for a config.pbtxt or config.yaml that does not parse, else
 * `TESSERA_E_CONFIG_INVALID`), or `TESSERA_E_CONFIG_INVALID` when the folder is missing, has no
 * model folder or no model that can be served. Skipped models and versions are warnings.
 */
export function scanRepository(dir: string, options: RepositoryScanOptions = {}): RepositoryScan {
  const listing = listRepository(dir, options);
  const label = options.label ?? 'repository';
  if (listing.models.length === 0) {
    const skipped = listing.warnings.length > 0 ? ` (${listing.warnings.join('; ')})` : '';
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${label}: ${listing.dir} has no model folders${skipped}; expected Triton's layout, <model>/<version>/model.onnx (or model.py)`);
  }
  const errors = listing.models.flatMap((m) => (m.error ? [m.error] : []));
  if (errors.length > 0) throw new TesseraError(errors[0]!.code, errors.map((e) => e.message).join('\n'), { cause: errors[0] });
  const models: Record<string, ModelConfigInput> = {};
  const sources: Record<string, RepositoryModelSource> = {};
  for (const m of listing.models) {
    if (!m.model) continue;
    models[m.name] = m.model;
    sources[m.name] = { modelDir: m.modelDir, ...(m.configFile ? { configFile: m.configFile } : {}) };
  }
  if (Object.keys(models).length === 0) {
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${label}: no model in ${listing.dir} can be served: ${listing.warnings.join('; ')}`);
  }
  return { dir: listing.dir, models, sources, warnings: listing.warnings };
}

function readModelFolder(name: string, modelDir: string, env: EnvRecord, warnings: string[]): RepositoryModel {
  const present = MODEL_CONFIG_FILES.filter((f) => statOf(path.join(modelDir, f))?.isFile());
  const entry: RepositoryModel = { name, modelDir, versions: [], served: [] };
  if (present.length > 1) {
    const files = present.map((f) => path.join(modelDir, f));
    entry.error = new TesseraError('TESSERA_E_CONFIG_INVALID', `${modelDir}: the model has two config files, ${files.join(' and ')}; keep one (config.pbtxt for Triton's fields, config.yaml for Tessera's)`);
    return entry;
  }
  // what the version folders hold decides the backend when the config names none
  const detected = detectBackend(modelDir);
  let config: FolderModelConfig = { model: detected === 'python' ? { backend: 'python' } : {}, modelFilename: MODEL_FILENAMES[detected], warnings: [] };
  if (present[0]) {
    const file = path.join(modelDir, present[0]);
    entry.configFile = file;
    try {
      const text = readFileSync(file, 'utf8');
      config = present[0] === 'config.pbtxt' ? readTritonConfig(file, text, name, { detected }) : readYamlConfig(file, text, env, detected);
    } catch (err) {
      entry.error = isTesseraError(err) ? err : new TesseraError('TESSERA_E_CONFIG_PARSE', `${file}: cannot read it: ${errorMessage(err)}`, { cause: err });
      return entry;
    }
    warnings.push(...config.warnings);
  }
  const versions = findVersions(modelDir, config.modelFilename, warnings);
  entry.versions = Object.keys(versions).sort((a, b) => Number(a) - Number(b));
  if (entry.versions.length === 0) {
    warnings.push(`${modelDir}: skipped: no version folder holds ${config.modelFilename} (expected ${name}/<version>/${config.modelFilename}, versions being positive integers)${versionFolderHint(modelDir)}`);
    return entry;
  }
  const policy = config.model.versionPolicy ?? DEFAULT_VERSION_POLICY;
  entry.served = selectVersions(entry.versions, policy).selected;
  entry.model = { ...config.model, versions: Object.fromEntries(entry.versions.map((v) => [v, { path: versions[v]! }])), versionPolicy: policy };
  return entry;
}

/**
 * `python` when no version folder holds model.onnx and one holds model.py (Triton's Python
 * backend layout), else `onnxruntime`.
 */
function detectBackend(modelDir: string): FolderBackend {
  let python = false;
  for (const name of readdirSync(modelDir)) {
    const versionDir = path.join(modelDir, name);
    if (!VERSION_LABEL.test(name) || !statOf(versionDir)?.isDirectory()) continue;
    if (statOf(path.join(versionDir, ONNX_MODEL_FILENAME)) !== undefined) return 'onnxruntime';
    if (statOf(path.join(versionDir, PYTHON_MODEL_FILENAME))?.isFile()) python = true;
  }
  return python ? 'python' : 'onnxruntime';
}

/** Version folders (positive integers) that hold the model file: label → absolute path of the file. */
function findVersions(modelDir: string, filename: string, warnings: string[]): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of readdirSync(modelDir).sort()) {
    const versionDir = path.join(modelDir, name);
    if (name.startsWith('.') || !statOf(versionDir)?.isDirectory()) continue;
    if (!VERSION_LABEL.test(name)) {
      // Triton ignores other folders; one that looks like a version is worth a word
      if (/^(v|version)?\d+$/i.test(name)) warnings.push(`${versionDir}: ignored: version folders are positive integers without leading zeros (1, 2, 10)`);
      continue;
    }
    const file = path.join(versionDir, filename);
    const info = statOf(file);
    // Triton's ONNX layout also allows a folder model.onnx/ with model.onnx (and external data) inside
    const inner = path.join(file, ONNX_MODEL_FILENAME);
    if (info?.isFile()) found[name] = file;
    else if (info?.isDirectory() && filename !== PYTHON_MODEL_FILENAME && statOf(inner)?.isFile()) found[name] = inner;
    else {
      const other = Object.entries(OTHER_MODEL_FILES).find(([f]) => f !== filename && statOf(path.join(versionDir, f)) !== undefined);
      const hint = other ? `; it has ${other[0]}, ${other[1]}` : '';
      const folder = info?.isDirectory() ? (filename === PYTHON_MODEL_FILENAME ? ` (${filename} is a folder)` : ` (${filename} is a folder without ${ONNX_MODEL_FILENAME} inside)`) : '';
      warnings.push(`${versionDir}: skipped: no ${filename} in the version folder${folder}${hint}`);
    }
  }
  return found;
}

/** A "model" folder that is really a version folder: the repository names one level too deep. */
function versionFolderHint(modelDir: string): string {
  if (!VERSION_LABEL.test(path.basename(modelDir))) return '';
  if (![ONNX_MODEL_FILENAME, PYTHON_MODEL_FILENAME].some((f) => statOf(path.join(modelDir, f))?.isFile())) return '';
  return `; ${modelDir} looks like a version folder: \`repository\` should name the folder that holds the model folders (${path.dirname(path.dirname(modelDir))})`;
}

const MODEL_SCHEMA = (configSchema.properties as Record<string, JSONSchema>)['models']!['additionalProperties'] as JSONSchema;

/**
 * `config.yaml`: a `models.<name>` section without `path`/`versions`, `${VAR}` substituted, checked
 * against the model schema. Without `backend`, the model files decide (`detected`); `backend: python`
 * looks for model.py.
 */
function readYamlConfig(file: string, text: string, env: EnvRecord, detected: FolderBackend): FolderModelConfig {
  const raw = loadYaml(file, text) ?? {};
  if (!isRecord(raw)) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${file}: expected the keys of a model section (backend, batching, instances, versionPolicy, …), got ${Array.isArray(raw) ? 'a list' : typeof raw}`);
  const issues: ConfigIssue[] = [];
  const model = substituteEnvCollect(raw, env, '', issues) as ModelConfigInput;
  if (issues.length > 0) throw new TesseraError('TESSERA_E_CONFIG_ENV', formatIssues(issues, file));
  const folderKeys = ['path', 'versions'].filter((k) => k in model);
  if (folderKeys.length > 0) {
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${file}: ${folderKeys.join(', ')}: not allowed in a repository model's config.yaml: the versions are its version folders (<model>/<version>/model.onnx); choose which are served with versionPolicy`);
  }
  // validated on a copy: the schema's defaults must not hide which keys the file sets (models: overrides key by key)
  validateAgainstSchema(MODEL_SCHEMA, structuredClone(model), '', { file });
  if (isRecord(model.signature) && model.signature.declaredIn === undefined) model.signature = { ...model.signature, declaredIn: file };
  if (model.backend === undefined && detected === 'python') model.backend = 'python';
  return { model, modelFilename: model.backend === 'python' ? PYTHON_MODEL_FILENAME : ONNX_MODEL_FILENAME, warnings: [] };
}

function statOf(file: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}
