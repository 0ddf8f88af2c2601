/**
 * The model-section keys of the Python backend (`backend: python`): the interpreter and its
 * environment, the declared inputs and outputs (a model.py declares none itself), the restart policy.
 */
import type { DataType, JSONSchema } from '@tessera/core';
import { DATA_TYPES, durationSchema, parseDuration } from '@tessera/core';

/** When a dead worker process is replaced. */
export interface RestartPolicy {
  /** Wait before the first attempt after a death, ms; each failure in a row doubles it. */
  initialDelayMs: number;
  /** The longest wait between attempts, ms. */
  maxDelayMs: number;
  /** A worker up this long (ms) before dying starts the doubling again from `initialDelayMs`. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = { initialDelayMs: 100, maxDelayMs: 30_000, resetAfterMs: 60_000 };

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
    restart: {
      type: 'object',
      additionalProperties: false,
      description: 'How a dead worker process is replaced: backoff from initialDelayMs, doubling per failure in a row up to maxDelayMs; reset after resetAfterMs up.',
      properties: {
        initialDelayMs: { type: 'integer', minimum: 1, description: `Wait before the first restart after a death, ms (default ${DEFAULT_RESTART_POLICY.initialDelayMs}).` },
        maxDelayMs: { type: 'integer', minimum: 1, description: `Longest wait between restart attempts, ms (default ${DEFAULT_RESTART_POLICY.maxDelayMs}).` },
        resetAfterMs: { type: 'integer', minimum: 0, description: `A worker up this long before it dies restarts after initialDelayMs again, ms (default ${DEFAULT_RESTART_POLICY.resetAfterMs}).` },
      },
    },
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
  return { ...DEFAULT_RESTART_POLICY, ...(config as PythonModelConfig).restart };
}

/** The wait before attempt `n` (1-based) of a run of failures: `initial × 2^(n-1)`, at most `max`. */
export function restartDelay(policy: RestartPolicy, n: number): number {
  const max = Math.max(policy.initialDelayMs, policy.maxDelayMs);
  return Math.min(max, policy.initialDelayMs * 2 ** Math.min(Math.max(0, n - 1), 40));
}
