/**
 * The model-section keys of the Python backend (`backend: python`): the interpreter and its
 * environment, the declared inputs and outputs (a model.py declares none itself), the restart policy.
 */
import type { DataType, JSONSchema, RestartPolicy } from '@tessera/core';
import { DATA_TYPES, durationSchema, parseDuration, restartPolicyOf, restartPolicySchema } from '@tessera/core';

/** `python.startTimeout` when not set: interpreter start, `import numpy`, model.py's `initialize`. */
export const DEFAULT_START_TIMEOUT = '30s';

/** `maxBatchSize` of a model whose declared inputs all have a dynamic dim 0, when `batching.maxBatchSize` is not set. */
export const DEFAULT_MAX_BATCH_SIZE = 32;

/** A declared input or output: the whole shape (batch dim included, `-1` dynamic), as `signature` writes it. */
export interface DeclaredTensorConfig {
  name: string;
  datatype: DataType;
  shape: number[];
  /** BYTES only: `text` (UTF-8, the default) or `binary` (any bytes, one latin1 character per byte on the Node side). */
  content?: 'text' | 'binary';
}

/** The `python` section: how each instance's worker process is started. */
export interface PythonProcessConfig {
  /** The interpreter (a name on `PATH` or a path; a virtualenv's `bin/python` works). Default `python3`. */
  interpreter?: string;
  /** Folders put on the worker's `sys.path` (`PYTHONPATH`), after the model's version folder; relative to the model's folder. */
  path?: string[];
  /** Environment variables of the worker, over the server's own. */
  env?: Record<string, string>;
  /** How long the worker may take to start and run `initialize` (default `30s`). */
  startTimeout?: number | string;
}

/** The backend-specific keys of a model's config section. */
export interface PythonModelConfig {
  python?: PythonProcessConfig;
  inputs?: DeclaredTensorConfig[];
  outputs?: DeclaredTensorConfig[];
  restart?: Partial<RestartPolicy>;
}

/** `python` with the defaults filled in and `startTimeout` in ms. */
export interface ResolvedPythonProcessConfig {
  interpreter: string;
  path: string[];
  env: Record<string, string>;
  startTimeoutMs: number;
}

const declaredTensorSchema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string', minLength: 1 },
    datatype: { enum: [...DATA_TYPES], description: 'OIP v2 datatype (FP32, INT64, BYTES, …); Triton\'s TYPE_FP32 is FP32, TYPE_STRING is BYTES.' },
    shape: { type: 'array', items: { type: 'integer', minimum: -1 }, description: 'The whole shape, batch dim included (-1: dynamic), e.g. [-1, 4].' },
    content: { enum: ['text', 'binary'], description: 'BYTES only: UTF-8 text (default) or any bytes.' },
  },
};

/** JSON Schema of `PythonModelConfig`. */
export const PYTHON_MODEL_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  properties: {
    python: {
      type: 'object',
      additionalProperties: false,
      description: 'How the worker process of each instance is started.',
      properties: {
        interpreter: { type: 'string', minLength: 1, description: 'Python interpreter: a name on PATH or a path (a virtualenv\'s bin/python). Default python3.' },
        path: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Folders added to the worker\'s sys.path (PYTHONPATH), relative to the model\'s folder.' },
        env: { type: 'object', additionalProperties: { type: 'string' }, description: 'Environment variables of the worker, over the server\'s.' },
        startTimeout: durationSchema('How long a worker may take to start, import model.py and run initialize (default 30s).', DEFAULT_START_TIMEOUT, ['2m']),
      },
    },
    inputs: { type: 'array', minItems: 1, items: declaredTensorSchema, description: 'The model\'s inputs: `{name, datatype, shape}` each, shape with the batch dim.' },
    outputs: { type: 'array', minItems: 1, items: declaredTensorSchema, description: 'The model\'s outputs: `{name, datatype, shape}` each, shape with the batch dim.' },
    restart: restartPolicySchema('worker process'),
  },
  // the core strips its own keys before validating: anything else is a typo worth stopping for
  additionalProperties: false,
};

/** The `python` keys over the defaults. */
export function resolveProcessConfig(config: Readonly<Record<string, unknown>>): ResolvedPythonProcessConfig {
  const python = (config as PythonModelConfig).python ?? {};
  return {
    interpreter: python.interpreter ?? 'python3',
    path: [...(python.path ?? [])],
    env: { ...python.env },
    startTimeoutMs: parseDuration(python.startTimeout ?? DEFAULT_START_TIMEOUT, 'python.startTimeout'),
  };
}

/** The model's `restart` keys over the defaults. */
export function resolveRestartPolicy(config: Readonly<Record<string, unknown>>): RestartPolicy {
  return restartPolicyOf((config as PythonModelConfig).restart);
}
