/**
 * Where a model.py is (Triton's layout, `<model>/<version>/model.py`), what it declares, and the
 * `args` Triton gives `initialize`: the model config as a JSON string, the instance's name and kind.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataType, ModelMetadata, ModelVersionSpec, TensorSpec } from '@tessera/core';
import { TesseraError, isTesseraError } from '@tessera/core';
import type { DeclaredTensorConfig, PythonModelConfig } from '../config.js';
import { DEFAULT_MAX_BATCH_SIZE } from '../config.js';
import { MODEL_FILENAME, PYTHON_PLATFORM } from '../platform.js';


/** This package's `python/` folder (triton_python_backend_utils and the worker): src/internal and dist/internal both sit two levels below the package. */
export const PYTHON_DIR = fileURLToPath(new URL('../../python/', import.meta.url));
export const WORKER_SCRIPT = path.join(PYTHON_DIR, 'tessera_python_worker.py');

export function label(spec: Pick<ModelVersionSpec, 'model' | 'version'>): string {
  return `${spec.model} v${spec.version}`;
}

export function loadError(spec: ModelVersionSpec, reason: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_E_MODEL_LOAD', `${label(spec)}: cannot load ${spec.path ?? '(no path)'}: ${reason}`, cause === undefined ? {} : { cause });
}

/** Where a version's files are. */
export interface ModelLocation {
  modelFile: string;
  /** The version folder (model.py's folder): the worker's working folder, first on `sys.path`. */
  versionDir: string;
  /** The model's folder (Triton's `model_repository` arg). */
  modelDir: string;
  /** Triton's `model_version` arg: the version folder's name when it is a version number, else the spec's version. */
  version: string;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * `path` as model.py itself, a version folder holding it, or a model folder holding
 * `<version>/model.py`. Rejects with TESSERA_E_MODEL_LOAD naming what was looked for.
 */
export async function locateModel(spec: ModelVersionSpec): Promise<ModelLocation> {
  const given = spec.path;
  if (!given) throw loadError(spec, 'the model has no `path`; set it to the model\'s folder (<model>/<version>/model.py) or to model.py');
  let info;
  try {
    info = await stat(given);
  } catch (err) {
    if (isTesseraError(err)) throw err;
    throw loadError(spec, 'not found. Relative paths resolve against the config file\'s folder; `path` names the model\'s folder (<model>/<version>/model.py), a version folder or model.py', err);
  }
  let versionDir: string;
  let modelFile: string;
  if (info.isFile()) {
    modelFile = given;
    versionDir = path.dirname(given);
  } else if (await isFile(path.join(given, MODEL_FILENAME))) {
    versionDir = given;
    modelFile = path.join(given, MODEL_FILENAME);
  } else if (await isFile(path.join(given, spec.version, MODEL_FILENAME))) {
    versionDir = path.join(given, spec.version);
    modelFile = path.join(versionDir, MODEL_FILENAME);
  } else {
    throw loadError(spec, `no ${MODEL_FILENAME} in the folder nor in ${path.join(given, spec.version)}; Triton's layout is <model>/<version>/${MODEL_FILENAME}`, new Error(`${MODEL_FILENAME} not found under ${given}`));
  }
  const folder = path.basename(versionDir);
  return { modelFile, versionDir, modelDir: path.dirname(versionDir), version: /^[1-9]\d*$/.test(folder) ? folder : spec.version };
}

const EXAMPLE = 'inputs: [{ name: INPUT0, datatype: FP32, shape: [-1, 4] }], outputs: [{ name: OUTPUT0, datatype: FP32, shape: [-1, 4] }]';

function specOf(t: DeclaredTensorConfig): TensorSpec {
  return { name: t.name, datatype: t.datatype, shape: [...t.shape], ...(t.datatype === 'BYTES' && t.content ? { content: t.content } : {}) };
}

/**
 * The metadata from the declared inputs and outputs (a model.py declares none itself). `maxBatchSize`:
 * `batching.maxBatchSize`, else 32 when every input has a dynamic dim 0, else 0 (Triton's
 * `max_batch_size`; with it, dim 0 of every input is the batch dim).
 */
export function declaredMetadata(spec: ModelVersionSpec): ModelMetadata {
  const config = spec.config as PythonModelConfig;
  const missing = (['inputs', 'outputs'] as const).filter((k) => !config[k] || config[k].length === 0);
  if (missing.length > 0) {
    throw loadError(spec, `a model.py declares no tensors itself: declare its ${missing.join(' and ')} in the model's config, e.g. ${EXAMPLE} (shapes with the batch dim)`, new Error(`no ${missing.join('/')} declared`));
  }
  const inputs = config.inputs!.map(specOf);
  const outputs = config.outputs!.map(specOf);
  for (const list of [inputs, outputs]) {
    const seen = new Set<string>();
    for (const t of list) {
      if (seen.has(t.name)) throw loadError(spec, `'${t.name}' is declared twice`);
      seen.add(t.name);
    }
  }
  const batching = spec.config.batching as { maxBatchSize?: unknown } | undefined;
  const configured = typeof batching?.maxBatchSize === 'number' ? batching.maxBatchSize : undefined;
  const fixed = inputs.find((i) => i.shape.length === 0 || i.shape[0] !== -1);
  if (configured !== undefined && configured > 0 && fixed) {
    throw loadError(spec, `batching.maxBatchSize is ${configured} but input '${fixed.name}' has shape [${fixed.shape.join(', ')}], no dynamic dim 0; declare it as [-1, ...] or set batching.maxBatchSize: 0`);
  }
  const maxBatchSize = configured ?? (fixed ? 0 : DEFAULT_MAX_BATCH_SIZE);
  return { platform: PYTHON_PLATFORM, inputs, outputs, maxBatchSize };
}

function tritonType(datatype: DataType): string {
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

/** Triton's model configuration (its JSON form), as `args['model_config']` gives it to `initialize`. */
export function tritonModelConfig(spec: ModelVersionSpec, metadata: ModelMetadata): Record<string, unknown> {
  const batched = metadata.maxBatchSize > 0;
  const entry = (t: TensorSpec): Record<string, unknown> => ({ name: t.name, data_type: tritonType(t.datatype), dims: batched ? t.shape.slice(1) : [...t.shape] });
  const batching = spec.config.batching as { batcher?: string } | undefined;
  return {
    name: spec.model,
    backend: 'python',
    max_batch_size: metadata.maxBatchSize,
    input: metadata.inputs.map(entry),
    output: metadata.outputs.map(entry),
    instance_group: [{ name: spec.model, kind: 'KIND_CPU', count: spec.instanceCount }],
    ...(batching?.batcher === 'dynamic' ? { dynamic_batching: {} } : {}),
    parameters: {},
  };
}

/** Triton's `initialize(args)`: every value a string. */
export function initializeArgs(spec: ModelVersionSpec, location: ModelLocation, metadata: ModelMetadata): Record<string, string> {
  return {
    model_config: JSON.stringify(tritonModelConfig(spec, metadata)),
    model_instance_kind: 'CPU',
    model_instance_name: `${spec.model}_0_${spec.instanceIndex}`,
    model_instance_device_id: '0',
    model_repository: location.modelDir,
    model_version: location.version,
    model_name: spec.model,
  };
}
