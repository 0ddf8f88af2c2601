import path from 'node:path';
import type { JSONSchema } from '@tessera/core';
import { SIZE_FORMAT, parseSize } from '@tessera/core';
import type { OnnxRuntimeModelConfig } from '@tessera/backend-onnxruntime';
import { ONNXRUNTIME_MODEL_CONFIG_SCHEMA } from '@tessera/backend-onnxruntime';

/** Where TensorRT's kernels run in: `int8` also allows fp16 for the layers that have no int8 kernel. */
export type TensorRtPrecision = 'fp32' | 'fp16' | 'int8';

/** Which provider serves when TensorRT cannot: none (`error`), CUDA, or CUDA and then the CPU. */
export type TensorRtFallback = 'error' | 'cuda' | 'cpu';

/** The min/opt/max shapes of one input in the TensorRT optimization profile. */
export interface ShapeProfile {
  min: number[];
  opt: number[];
  max: number[];
}

/** The `tensorrt` section of a model's config, as written. */
export interface TensorRtSection {
  /** Default `fp16`. */
  precision?: TensorRtPrecision;
  /** ONNX Runtime's INT8 calibration table for a model without Q/DQ nodes (`precision: int8`). */
  int8CalibrationTable?: string;
  /** TensorRT's builder workspace limit (bytes or `4GiB`); default ONNX Runtime's. */
  maxWorkspaceBytes?: number | string;
  /** Engine cache folder, `false` for none; default `<model folder>/.tensorrt-cache`. */
  engineCacheDir?: string | false;
  /** Timing cache folder, `false` for none; default the engine cache folder. */
  timingCacheDir?: string | false;
  /** 0–5, default 3 (ONNX Runtime's). */
  builderOptimizationLevel?: number;
  /** CUDA device, default 0. */
  deviceId?: number;
  /** By input name; inputs left out are derived (packages/backend-tensorrt/README.md, Profiles). */
  profiles?: Record<string, ShapeProfile>;
  /** Default `error`. */
  fallback?: TensorRtFallback;
}

/** The model section keys this backend reads: the ONNX Runtime backend's and `tensorrt`. */
export interface TensorRtModelConfig extends OnnxRuntimeModelConfig {
  tensorrt?: TensorRtSection;
}

/** The `tensorrt` section with its defaults applied and its folders made absolute. */
export interface ResolvedTensorRtConfig {
  precision: TensorRtPrecision;
  int8CalibrationTable: string | undefined;
  maxWorkspaceBytes: number | undefined;
  /** Absolute; undefined: no engine cache. */
  engineCacheDir: string | undefined;
  /** Absolute; undefined: no timing cache. */
  timingCacheDir: string | undefined;
  builderOptimizationLevel: number;
  deviceId: number;
  profiles: Readonly<Record<string, ShapeProfile>>;
  fallback: TensorRtFallback;
}

/** The default engine cache folder's name, next to the model file. */
export const DEFAULT_CACHE_FOLDER = '.tensorrt-cache';

/** ONNX Runtime's default `trt_builder_optimization_level`. */
export const DEFAULT_BUILDER_OPTIMIZATION_LEVEL = 3;

const dims = { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1 } };
const folder = (what: string): JSONSchema => ({
  anyOf: [{ type: 'string', minLength: 1 }, { const: false }],
  description: `${what}; a relative path resolves against the model file's folder; false: none.`,
});

/** JSON Schema of the `tensorrt` section. */
export const TENSORRT_SECTION_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  description: "TensorRT through ONNX Runtime's TensorRT execution provider (packages/backend-tensorrt/README.md).",
  properties: {
    precision: { enum: ['fp32', 'fp16', 'int8'], default: 'fp16', description: 'Kernel precision TensorRT may use (int8 also allows fp16).' },
    int8CalibrationTable: {
      type: 'string',
      minLength: 1,
      description: "ONNX Runtime's INT8 calibration table for a model without Q/DQ nodes (precision int8); relative to the model file's folder.",
    },
    maxWorkspaceBytes: { type: ['integer', 'string'], minimum: 0, format: SIZE_FORMAT, description: "TensorRT's builder workspace limit (default: ONNX Runtime's)." },
    engineCacheDir: folder('Where built engines are cached (default <model folder>/.tensorrt-cache)'),
    timingCacheDir: folder('Where the timing cache is kept (default: the engine cache folder)'),
    builderOptimizationLevel: { type: 'integer', minimum: 0, maximum: 5, default: DEFAULT_BUILDER_OPTIMIZATION_LEVEL, description: 'TensorRT builder optimization level, 0–5.' },
    deviceId: { type: 'integer', minimum: 0, default: 0, description: 'CUDA device.' },
    profiles: {
      type: 'object',
      description: 'Optimization profile shapes by input name (default: derived from batching and warmupShapes).',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['min', 'opt', 'max'],
        properties: { min: dims, opt: dims, max: dims },
      },
    },
    fallback: { enum: ['error', 'cuda', 'cpu'], default: 'error', description: 'What serves when TensorRT cannot run: nothing (error), CUDA, or CUDA then the CPU.' },
  },
};

/**
 * JSON Schema of the model section: the ONNX Runtime backend's keys and `tensorrt`, less
 * `sessionOptions.executionProviders` (the backend sets them from `tensorrt.fallback`).
 */
export const TENSORRT_MODEL_CONFIG_SCHEMA: JSONSchema = (() => {
  const schema = structuredClone(ONNXRUNTIME_MODEL_CONFIG_SCHEMA) as { properties: Record<string, { properties?: Record<string, unknown> }> };
  delete schema.properties['sessionOptions']?.properties?.['executionProviders'];
  schema.properties['tensorrt'] = TENSORRT_SECTION_SCHEMA;
  return schema;
})();

/**
 * The `tensorrt` section of a model whose file is `modelPath`, defaults applied: folders resolve
 * against the model file's folder (where a model's companions usually live).
 */
export function resolveTensorRtConfig(config: Readonly<Record<string, unknown>>, modelPath: string): ResolvedTensorRtConfig {
  const section = (config as TensorRtModelConfig).tensorrt ?? {};
  const base = path.dirname(modelPath);
  const at = (dir: string): string => path.resolve(base, dir);
  const engineCacheDir = section.engineCacheDir === false ? undefined : at(section.engineCacheDir ?? DEFAULT_CACHE_FOLDER);
  const timingCacheDir = section.timingCacheDir === false ? undefined : section.timingCacheDir !== undefined ? at(section.timingCacheDir) : engineCacheDir;
  return {
    precision: section.precision ?? 'fp16',
    int8CalibrationTable: section.int8CalibrationTable === undefined ? undefined : at(section.int8CalibrationTable),
    maxWorkspaceBytes: section.maxWorkspaceBytes === undefined ? undefined : parseSize(section.maxWorkspaceBytes, 'tensorrt.maxWorkspaceBytes'),
    engineCacheDir,
    timingCacheDir,
    builderOptimizationLevel: section.builderOptimizationLevel ?? DEFAULT_BUILDER_OPTIMIZATION_LEVEL,
    deviceId: section.deviceId ?? 0,
    profiles: section.profiles ?? {},
    fallback: section.fallback ?? 'error',
  };
}
