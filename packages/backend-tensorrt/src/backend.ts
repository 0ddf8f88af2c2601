import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Backend, BuildReport, JSONSchema, LoadContext, ModelInstance, ModelVersionSpec } from '@tessera/core';
import { TesseraError, errorMessage, isTesseraError } from '@tessera/core';
import { OnnxRuntimeBackend } from '@tessera/backend-onnxruntime';
import type { ResolvedTensorRtConfig, ShapeProfile, TensorRtModelConfig } from './config.js';
import { TENSORRT_MODEL_CONFIG_SCHEMA, resolveTensorRtConfig } from './config.js';
import { cacheFiles, compareCacheFiles } from './internal/cache-files.js';
import type { OnnxGraphInfo } from './onnx-graph.js';
import { readOnnxGraph } from './onnx-graph.js';
import { TensorRtModelInstance } from './instance.js';
import type { ProviderChoice, ProviderEnvironment } from './provider-chain.js';
import { LOCAL_PROVIDERS, chooseProvider, fallbackWarning, refusalMessage, skippedClause } from './provider-chain.js';
import type { TensorRtProviderOptions } from './provider-options.js';
import { profileShapes, tensorrtProviderOptions } from './provider-options.js';
import type { BatchPlan } from './profiles.js';
import { ProfileError, batchPlan, deriveProfiles, profileRuns } from './profiles.js';

function label(spec: Pick<ModelVersionSpec, 'model' | 'version'>): string {
  return `${spec.model} v${spec.version}`;
}

function loadError(spec: ModelVersionSpec, reason: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_E_MODEL_LOAD', `${label(spec)}: ${reason}`, cause === undefined ? {} : { cause });
}

/** What load and build work out before any session exists. */
interface Plan {
  trt: ResolvedTensorRtConfig;
  graph: OnnxGraphInfo;
  batch: BatchPlan;
  profiles: Record<string, ShapeProfile>;
  options: TensorRtProviderOptions;
}

/** The spec the ONNX Runtime backend gets: the model's keys without `tensorrt`, on `executionProviders`. */
function innerSpec(spec: ModelVersionSpec, executionProviders: ProviderChoice['executionProviders']): ModelVersionSpec {
  const { tensorrt: _tensorrt, ...rest } = spec.config as TensorRtModelConfig & Record<string, unknown>;
  return { ...spec, config: { ...rest, sessionOptions: { ...rest.sessionOptions, executionProviders } } };
}

/**
 * The TensorRT backend: ONNX models on ONNX Runtime's TensorRT execution provider, through the ONNX
 * Runtime backend (its sessions, worker threads, batching and restarts), with the TensorRT options
 * mapped from the model's `tensorrt` section, shape profiles derived from its batching, a probe that
 * refuses or falls back (CUDA, CPU) when TensorRT cannot run, and `build` for `tessera build-engine`.
 */
export class TensorRtBackend implements Backend {
  readonly modelConfigSchema: JSONSchema = TENSORRT_MODEL_CONFIG_SCHEMA;
  readonly requiresPath = true;
  readonly #inner = new OnnxRuntimeBackend();
  readonly #providers: ProviderEnvironment;

  /** `providers`: how providers are probed (default: this machine's libraries and binding). */
  constructor(options: { providers?: ProviderEnvironment } = {}) {
    this.#providers = options.providers ?? LOCAL_PROVIDERS;
  }

  /**
   * `instances: auto`: 1 when the model would run on a GPU (TensorRT or CUDA: one session keeps a
   * GPU busy), else the ONNX Runtime backend's rule for the CPU. Decided without reading the model,
   * so the profiles do not count here (they do at load).
   */
  autoInstances(spec: Pick<ModelVersionSpec, 'model' | 'version' | 'config' | 'path'>, cores: number): number {
    const trt = resolveTensorRtConfig(spec.config, spec.path ?? '.');
    const choice = chooseProvider(trt.fallback, tensorrtProviderOptions(trt, [], { maxBatchSize: 0, preferredBatchSizes: [] }), this.#providers);
    if (choice.provider === 'tensorrt' || choice.provider === 'cuda') return 1;
    return this.#inner.autoInstances(spec, cores);
  }

  /**
   * Reads the model's inputs, maps the `tensorrt` section onto the provider options, picks the
   * first provider of the fallback chain that can run here and loads the model through the ONNX
   * Runtime backend on it. Rejects with TESSERA_E_MODEL_LOAD and one message when none can (with
   * `fallback: error`, whenever TensorRT cannot); with a fallback, logs one warning naming the
   * provider in use and why.
   */
  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<ModelInstance> {
    const plan = await this.#plan(spec, ctx);
    const { trt } = plan;
    const choice = chooseProvider(trt.fallback, plan.options, this.#providers);
    if (!choice.provider) throw loadError(spec, refusalMessage('serve', trt.fallback, choice.skipped));
    if (choice.provider === 'tensorrt') await prepareCacheFolders(spec, trt);
    const inner = await this.#inner.load(innerSpec(spec, choice.executionProviders), ctx);
    if (choice.skipped.length > 0) ctx.logger.warn({ executionProvider: choice.provider, fallback: trt.fallback }, `${label(spec)}: ${fallbackWarning(trt.fallback, choice)}`);
    const settings: Record<string, unknown> = {
      executionProvider: choice.provider,
      ...inner.settings,
      tensorrt: {
        applied: choice.provider === 'tensorrt',
        ...(choice.skipped.length > 0 ? { notAppliedBecause: skippedClause(choice.skipped) } : {}),
        providerOptions: plan.options,
      },
    };
    return new TensorRtModelInstance(inner, label(spec), settings, profileRuns(plan.graph.inputs, plan.profiles, plan.batch));
  }

  /**
   * Builds the TensorRT engines of every profile shape into the engine cache (`tessera
   * build-engine`): loads the model on TensorRT with the cache on, runs the warm-up (each profile
   * shape), unloads, and reports the cache files, `built` when new or changed, else `reused`. ORT
   * keys engines by model, precision and profile, so a second build reuses them. Rejects with the
   * load's message when TensorRT cannot run here, whatever the fallback (building for CUDA or the
   * CPU means nothing).
   *
   * Past the refusal this path needs TensorRT, which neither machine of this project has: it is kept
   * to what the load already does plus listing files, and is untested (README, What was verified).
   */
  async build(spec: ModelVersionSpec, ctx: LoadContext): Promise<BuildReport> {
    const plan = await this.#plan(spec, ctx);
    const { trt } = plan;
    const choice = chooseProvider('error', plan.options, this.#providers);
    if (choice.provider !== 'tensorrt') throw loadError(spec, refusalMessage('build', trt.fallback, choice.skipped));
    const folders = [...new Set([trt.engineCacheDir, trt.timingCacheDir].filter((d): d is string => d !== undefined))];
    if (trt.engineCacheDir === undefined) throw loadError(spec, 'tensorrt.engineCacheDir is false, so a build would keep nothing: give the model an engine cache folder to build into');
    await prepareCacheFolders(spec, trt);
    const before = await cacheFiles(folders);
    const instance = await this.load(spec, ctx);
    try {
      await instance.warmup?.();
    } finally {
      await instance.unload();
    }
    const files = compareCacheFiles(before, await cacheFiles(folders));
    const notes = [`precision ${trt.precision}, builder optimization level ${trt.builderOptimizationLevel}, device ${trt.deviceId}`];
    if (Object.keys(plan.profiles).length > 0) notes.push(...(['min', 'opt', 'max'] as const).map((k) => `profile ${k}: ${profileShapes(plan.profiles, k)}`));
    return { files, notes };
  }

  /** The model's inputs, the resolved section, the profiles and the provider options; refuses what cannot work on any machine. */
  async #plan(spec: ModelVersionSpec, ctx: LoadContext): Promise<Plan> {
    const config = spec.config as TensorRtModelConfig;
    if (config.sessionOptions?.executionProviders !== undefined) {
      throw loadError(spec, 'sessionOptions.executionProviders is set, but the tensorrt backend chooses the providers itself (TensorRT, then what tensorrt.fallback allows): remove it');
    }
    const graph = await this.#graph(spec, ctx);
    const trt = resolveTensorRtConfig(spec.config, spec.path!);
    await checkInt8(spec, trt, graph);
    const batch = batchPlan(spec.config, graph.inputs);
    const sources = { ...batch, ...(config.warmupShapes ? { warmupShapes: config.warmupShapes } : {}) };
    try {
      return { trt, graph, batch, profiles: deriveProfiles(graph.inputs, { ...sources, explicit: trt.profiles }), options: tensorrtProviderOptions(trt, graph.inputs, sources) };
    } catch (err) {
      if (err instanceof ProfileError) throw loadError(spec, err.message, err);
      throw err;
    }
  }

  /** The model's declared inputs, read from the file. */
  async #graph(spec: ModelVersionSpec, ctx: LoadContext): Promise<OnnxGraphInfo> {
    try {
      if (!spec.path) throw new Error('no path');
      return await readOnnxGraph(spec.path);
    } catch (err) {
      // the ONNX Runtime backend words file problems best (no path, not found, a Git LFS pointer,
      // not a model): let it refuse the file; a file it can load but this reader cannot is ours to report
      const probe = await this.#inner.load(innerSpec(spec, ['cpu']), ctx);
      await probe.unload();
      throw loadError(spec, `cannot read the inputs of ${spec.path} to derive its TensorRT profiles: ${errorMessage(err)}`, err);
    }
  }
}

/**
 * `precision: int8` needs INT8 scales: from Q/DQ nodes in the model, or from a calibration table
 * for a model without them. Without either, TensorRT has no scale for any tensor and builds its
 * layers in fp16 instead — an engine that is not int8 at all — so the load refuses (on every
 * machine, so that a config that loads on a CPU box does not fail on the GPU one). A table with a
 * Q/DQ model is refused too: TensorRT does not load one for such a model.
 */
async function checkInt8(spec: ModelVersionSpec, trt: ResolvedTensorRtConfig, graph: OnnxGraphInfo): Promise<void> {
  if (trt.precision !== 'int8') return;
  const table = trt.int8CalibrationTable;
  if (!table && !graph.quantized) {
    throw loadError(
      spec,
      'tensorrt.precision is int8, but the model has no Q/DQ nodes and tensorrt.int8CalibrationTable is not set: TensorRT would have no INT8 scales and build its layers in fp16, not int8. ' +
        "Give a calibration table (ONNX Runtime's format), quantize the model to Q/DQ, or set precision: fp16",
    );
  }
  if (table && graph.quantized) throw loadError(spec, 'tensorrt.int8CalibrationTable is set, but the model has Q/DQ nodes, which carry its INT8 scales (TensorRT loads no table for such a model): remove int8CalibrationTable');
  if (table) {
    const found = await stat(table).then((s) => s.isFile(), () => false);
    if (!found) throw loadError(spec, `tensorrt.int8CalibrationTable: ${table} is not a file (a relative path resolves against the model file's folder)`);
  }
}

/** Creates the cache folders and puts the calibration table in the engine cache folder, where ORT reads it. */
async function prepareCacheFolders(spec: ModelVersionSpec, trt: ResolvedTensorRtConfig): Promise<void> {
  try {
    for (const dir of [trt.engineCacheDir, trt.timingCacheDir]) if (dir) await mkdir(dir, { recursive: true });
    const table = trt.int8CalibrationTable;
    if (trt.precision === 'int8' && table && trt.engineCacheDir && path.dirname(table) !== trt.engineCacheDir) await copyFile(table, path.join(trt.engineCacheDir, path.basename(table)));
  } catch (err) {
    if (isTesseraError(err)) throw err;
    throw loadError(spec, `cannot prepare the TensorRT cache folder: ${errorMessage(err)}`, err);
  }
}
