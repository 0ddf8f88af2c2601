import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CACHE_FOLDER, TENSORRT_MODEL_CONFIG_SCHEMA, resolveTensorRtConfig } from './config.js';
import type { GraphInput } from './onnx-graph.js';
import { ProfileError } from './profiles.js';
import { ORT_TENSORRT_DEFAULTS, bindingName, nonDefaultOptions, tensorrtProviderOptions, uncarriedSettings } from './provider-options.js';
import { validateAgainstSchema } from '@tessera/core';

const MODEL = '/models/cls/model.onnx';
const CLS: GraphInput[] = [{ name: 'x', shape: [-1, 3, 48, 192] }];
const PLAN = { maxBatchSize: 32, preferredBatchSizes: [8] };

function options(section: Record<string, unknown>, inputs = CLS, plan = PLAN): Record<string, string> {
  return tensorrtProviderOptions(resolveTensorRtConfig({ tensorrt: section }, MODEL), inputs, plan);
}

describe('resolveTensorRtConfig', () => {
  it('should default to fp16, level 3, device 0, fallback error and both caches in <model folder>/.tensorrt-cache', () => {
    expect(resolveTensorRtConfig({}, MODEL)).toEqual({
      precision: 'fp16',
      int8CalibrationTable: undefined,
      maxWorkspaceBytes: undefined,
      engineCacheDir: path.join('/models/cls', DEFAULT_CACHE_FOLDER),
      timingCacheDir: path.join('/models/cls', DEFAULT_CACHE_FOLDER),
      builderOptimizationLevel: 3,
      deviceId: 0,
      profiles: {},
      fallback: 'error',
    });
  });

  it("should resolve folders and the table against the model file's folder, parse sizes, and take false as no cache", () => {
    const r = resolveTensorRtConfig({ tensorrt: { engineCacheDir: 'engines', timingCacheDir: false, int8CalibrationTable: '../cal.flatbuffers', maxWorkspaceBytes: '2GiB' } }, MODEL);
    expect(r.engineCacheDir).toBe('/models/cls/engines');
    expect(r.timingCacheDir).toBeUndefined();
    expect(r.int8CalibrationTable).toBe('/models/cal.flatbuffers');
    expect(r.maxWorkspaceBytes).toBe(2 * 2 ** 30);
    expect(resolveTensorRtConfig({ tensorrt: { engineCacheDir: false } }, MODEL)).toMatchObject({ engineCacheDir: undefined, timingCacheDir: undefined });
  });
});

describe('TENSORRT_MODEL_CONFIG_SCHEMA', () => {
  it("should take the ONNX Runtime backend's keys and the tensorrt section", () => {
    const config = { sessionOptions: { intraOpNumThreads: 2 }, warmupShapes: { x: [1, 3, 48, 192] }, tensorrt: { precision: 'int8', profiles: { x: { min: [1], opt: [2], max: [4] } }, fallback: 'cpu', engineCacheDir: false } };
    expect(() => validateAgainstSchema(TENSORRT_MODEL_CONFIG_SCHEMA, structuredClone(config), 'models.m')).not.toThrow();
  });

  it('should refuse an unknown tensorrt key, a level out of 0–5, an unknown fallback and sessionOptions.executionProviders', () => {
    for (const bad of [{ tensorrt: { precison: 'fp16' } }, { tensorrt: { builderOptimizationLevel: 6 } }, { tensorrt: { fallback: 'gpu' } }, { sessionOptions: { executionProviders: ['cpu'] } }, { tensorrt: { maxWorkspaceBytes: 'lots' } }]) {
      expect(() => validateAgainstSchema(TENSORRT_MODEL_CONFIG_SCHEMA, bad, 'models.m'), JSON.stringify(bad)).toThrow();
    }
  });
});

describe('tensorrtProviderOptions', () => {
  it("should map the defaults onto ORT's option names and string values", () => {
    const cache = path.join('/models/cls', DEFAULT_CACHE_FOLDER);
    expect(options({})).toEqual({
      device_id: '0',
      trt_fp16_enable: 'true',
      trt_int8_enable: 'false',
      trt_engine_cache_enable: 'true',
      trt_engine_cache_path: cache,
      trt_timing_cache_enable: 'true',
      trt_timing_cache_path: cache,
      trt_builder_optimization_level: '3',
      trt_profile_min_shapes: 'x:1x3x48x192',
      trt_profile_opt_shapes: 'x:8x3x48x192',
      trt_profile_max_shapes: 'x:32x3x48x192',
    });
  });

  it('should map every key of the section', () => {
    const o = options({ precision: 'int8', int8CalibrationTable: 'cal.flatbuffers', maxWorkspaceBytes: '1GiB', engineCacheDir: '/cache/e', timingCacheDir: '/cache/t', builderOptimizationLevel: 5, deviceId: 1 });
    expect(o).toMatchObject({
      device_id: '1',
      trt_fp16_enable: 'true',
      trt_int8_enable: 'true',
      trt_int8_calibration_table_name: 'cal.flatbuffers',
      trt_max_workspace_size: String(2 ** 30),
      trt_engine_cache_enable: 'true',
      trt_engine_cache_path: '/cache/e',
      trt_timing_cache_enable: 'true',
      trt_timing_cache_path: '/cache/t',
      trt_builder_optimization_level: '5',
    });
  });

  it('should turn fp16 off for fp32, and the caches off (no paths) for false', () => {
    const o = options({ precision: 'fp32', engineCacheDir: false });
    expect(o).toMatchObject({ trt_fp16_enable: 'false', trt_int8_enable: 'false', trt_engine_cache_enable: 'false', trt_timing_cache_enable: 'false' });
    expect(Object.keys(o)).not.toContain('trt_engine_cache_path');
    expect(Object.keys(o)).not.toContain('trt_timing_cache_path');
    expect(Object.keys(o)).not.toContain('trt_max_workspace_size');
  });

  it('without an engine cache folder, should name the int8 table by its whole path (ORT then reads it as given)', () => {
    expect(options({ precision: 'int8', int8CalibrationTable: 'cal.flatbuffers', engineCacheDir: false })['trt_int8_calibration_table_name']).toBe('/models/cls/cal.flatbuffers');
    expect(Object.keys(options({ precision: 'fp16', int8CalibrationTable: 'cal.flatbuffers' }))).not.toContain('trt_int8_calibration_table_name');
  });

  it("should write several inputs' profiles as name:AxBxC joined by commas, in input order", () => {
    const inputs: GraphInput[] = [
      { name: 'a', shape: [-1, 4] },
      { name: 'b', shape: [-1, 2, -1] },
      { name: 'c', shape: [7] },
    ];
    const o = options({ profiles: { b: { min: [1, 2, 3], opt: [2, 2, 5], max: [4, 2, 9] } } }, inputs, { maxBatchSize: 4, preferredBatchSizes: [] });
    expect(o['trt_profile_min_shapes']).toBe('a:1x4,b:1x2x3');
    expect(o['trt_profile_opt_shapes']).toBe('a:4x4,b:2x2x5');
    expect(o['trt_profile_max_shapes']).toBe('a:4x4,b:4x2x9');
  });

  it('having no dynamic input, should set no profile options', () => {
    expect(Object.keys(options({}, [{ name: 'x', shape: [2, 3] }], { maxBatchSize: 0, preferredBatchSizes: [] })).filter((k) => k.startsWith('trt_profile'))).toEqual([]);
  });

  it("should refuse an input name the profile format cannot carry (',' or ':')", () => {
    expect(() => options({}, [{ name: 'x:0', shape: [-1, 3] }])).toThrow(ProfileError);
  });
});

describe('nonDefaultOptions and uncarriedSettings', () => {
  it("should list the options that differ from ORT's defaults", () => {
    expect(nonDefaultOptions({ ...ORT_TENSORRT_DEFAULTS })).toEqual([]);
    expect(nonDefaultOptions(options({ precision: 'fp32', engineCacheDir: false }, [{ name: 'x', shape: [2] }]))).toEqual([]);
    expect(nonDefaultOptions(options({}))).toEqual(expect.arrayContaining(['trt_fp16_enable', 'trt_engine_cache_enable', 'trt_engine_cache_path', 'trt_profile_min_shapes']));
  });

  it('should name, in the config\'s words, what a binding that carries only deviceId loses', () => {
    expect(uncarriedSettings(options({}), new Set(['deviceId']))).toEqual(['precision fp16', 'the engine cache', 'the timing cache', 'the shape profiles']);
    expect(uncarriedSettings(options({ deviceId: 3, precision: 'fp32', engineCacheDir: false }, [{ name: 'x', shape: [2] }]), new Set(['deviceId']))).toEqual([]);
  });

  it("should count an option as carried in ORT's spelling or onnxruntime-node's", () => {
    const all = options({ precision: 'int8', int8CalibrationTable: 'c', maxWorkspaceBytes: 1, builderOptimizationLevel: 1 });
    expect(uncarriedSettings(all, new Set(Object.keys(all)))).toEqual([]);
    expect(uncarriedSettings(all, new Set(Object.keys(all).map(bindingName)))).toEqual([]);
    expect(bindingName('trt_fp16_enable')).toBe('trtFp16Enable');
    expect(uncarriedSettings(all, new Set())).toEqual(['precision int8', 'maxWorkspaceBytes', 'the engine cache', 'the timing cache', 'builderOptimizationLevel 1', 'the shape profiles']);
  });
});
