import path from 'node:path';
import type { ResolvedTensorRtConfig, ShapeProfile } from './config.js';
import type { GraphInput } from './onnx-graph.js';
import type { BatchPlan } from './profiles.js';
import { ProfileError, deriveProfiles } from './profiles.js';

/**
 * ONNX Runtime's TensorRT provider options, by their documented names
 * (https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html), as the strings
 * ORT's `ProviderOptions` map carries (`UpdateTensorRTProviderOptions` takes string keys and values;
 * booleans parse from `true`/`false`).
 */
export type TensorRtProviderOptions = Record<string, string>;

/**
 * The values ONNX Runtime uses for the options this backend sets when they are not given
 * (TensorrtExecutionProviderInfo; trt_max_workspace_size is left out when not configured). An option
 * whose value differs from these has to reach TensorRT to take effect.
 */
export const ORT_TENSORRT_DEFAULTS: Readonly<TensorRtProviderOptions> = {
  device_id: '0',
  trt_fp16_enable: 'false',
  trt_int8_enable: 'false',
  trt_int8_calibration_table_name: '',
  trt_max_workspace_size: '0',
  trt_engine_cache_enable: 'false',
  trt_engine_cache_path: '',
  trt_timing_cache_enable: 'false',
  trt_timing_cache_path: '',
  trt_builder_optimization_level: '3',
  trt_profile_min_shapes: '',
  trt_profile_opt_shapes: '',
  trt_profile_max_shapes: '',
};

/** The profiles as ORT writes them: `name:1x3x48x192,other:1x8` (trtexec's --minShapes format). */
export function profileShapes(profiles: Readonly<Record<string, ShapeProfile>>, key: keyof ShapeProfile): string {
  return Object.entries(profiles)
    .map(([name, p]) => `${name}:${p[key].join('x')}`)
    .join(',');
}

/**
 * The TensorRT provider options of a model: precision, workspace, the engine and timing caches,
 * the builder optimization level, the device and the shape profiles — given in `tensorrt.profiles`
 * or derived from `inputs` (the model's declared inputs, -1 for dynamic dims) and `plan` (see
 * `deriveProfiles`). Throws `ProfileError` when a dynamic dim has no range. An `int8` table is
 * named by its file name when there is an engine cache folder: ORT reads it from there.
 */
export function tensorrtProviderOptions(
  config: ResolvedTensorRtConfig,
  inputs: readonly GraphInput[],
  plan: BatchPlan & { warmupShapes?: Readonly<Record<string, readonly number[]>> },
): TensorRtProviderOptions {
  const profiles = deriveProfiles(inputs, { ...plan, explicit: config.profiles });
  for (const name of Object.keys(profiles)) {
    // the option's own separators: ORT splits on ',' and then on the last ':'
    if (/[,:]/.test(name)) throw new ProfileError(`input '${name}' has a ',' or ':' in its name, which ONNX Runtime's profile option cannot carry`);
  }
  const flag = (on: boolean): string => (on ? 'true' : 'false');
  const options: TensorRtProviderOptions = {
    device_id: String(config.deviceId),
    trt_fp16_enable: flag(config.precision !== 'fp32'),
    trt_int8_enable: flag(config.precision === 'int8'),
  };
  if (config.precision === 'int8' && config.int8CalibrationTable) {
    // ORT reads the table from the engine cache folder when there is one (the backend copies it there), else from the path as given
    options['trt_int8_calibration_table_name'] = config.engineCacheDir ? path.basename(config.int8CalibrationTable) : config.int8CalibrationTable;
  }
  if (config.maxWorkspaceBytes !== undefined) options['trt_max_workspace_size'] = String(config.maxWorkspaceBytes);
  options['trt_engine_cache_enable'] = flag(config.engineCacheDir !== undefined);
  if (config.engineCacheDir) options['trt_engine_cache_path'] = config.engineCacheDir;
  options['trt_timing_cache_enable'] = flag(config.timingCacheDir !== undefined);
  if (config.timingCacheDir) options['trt_timing_cache_path'] = config.timingCacheDir;
  options['trt_builder_optimization_level'] = String(config.builderOptimizationLevel);
  if (Object.keys(profiles).length > 0) {
    options['trt_profile_min_shapes'] = profileShapes(profiles, 'min');
    options['trt_profile_opt_shapes'] = profileShapes(profiles, 'opt');
    options['trt_profile_max_shapes'] = profileShapes(profiles, 'max');
  }
  return options;
}

/** The options of `options` whose value is not ORT's default: those that must reach TensorRT. */
export function nonDefaultOptions(options: Readonly<TensorRtProviderOptions>): string[] {
  return Object.keys(options).filter((k) => options[k] !== (ORT_TENSORRT_DEFAULTS[k] ?? ''));
}

/** An ORT option name in onnxruntime-node's spelling (`device_id` → `deviceId`). */
export function bindingName(option: string): string {
  return option.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** What an option is, in the words of the config, for messages. */
function describe(option: string, options: Readonly<TensorRtProviderOptions>): string {
  if (option === 'trt_fp16_enable' || option === 'trt_int8_enable' || option === 'trt_int8_calibration_table_name') {
    return `precision ${options['trt_int8_enable'] === 'true' ? 'int8' : 'fp16'}`;
  }
  if (option.startsWith('trt_engine_cache')) return 'the engine cache';
  if (option.startsWith('trt_timing_cache')) return 'the timing cache';
  if (option.startsWith('trt_profile_')) return 'the shape profiles';
  if (option === 'trt_max_workspace_size') return 'maxWorkspaceBytes';
  if (option === 'trt_builder_optimization_level') return `builderOptimizationLevel ${options[option]}`;
  if (option === 'device_id') return `deviceId ${options[option]}`;
  return option;
}

/**
 * The settings that cannot reach TensorRT through a binding that carries only `carried` (option
 * names in ORT's or onnxruntime-node's spelling), in the config's words, each once; empty when
 * every non-default option can.
 */
export function uncarriedSettings(options: Readonly<TensorRtProviderOptions>, carried: ReadonlySet<string>): string[] {
  const missing = nonDefaultOptions(options).filter((k) => !carried.has(k) && !carried.has(bindingName(k)));
  return [...new Set(missing.map((k) => describe(k, options)))];
}
