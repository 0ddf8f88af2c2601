import { statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type {
  Backend,
  CounterMetric,
  GaugeMetric,
  InferenceBatch,
  JSONSchema,
  LoadContext,
  MetricRegistrar,
  ModelInstance,
  ModelMetadata,
  ModelVersionSpec,
  RestartPolicy,
  Tensor,
  TensorSpec,
} from '@tessera/core';
import { TesseraError, allocateTensorData, availableCores, availableMemory, errorMessage, isTesseraError, restartPolicyOf, restartPolicySchema } from '@tessera/core';
import { autoInstanceCount, autoIntraOpThreads, defaultWorkerSpinMs } from './internal/cpu-plan.js';
import type { WireTensor } from './internal/protocol.js';
import type { SessionHost, SessionMetadata } from './internal/session-host.js';
import { InlineSessionHost, SessionCreateError, WorkerSessionHost } from './internal/session-host.js';
import { SupervisedSessionHost } from './internal/supervised-host.js';
import type { DeviceQueue } from './internal/device-queue.js';
import { deviceQueueFor } from './internal/device-queue.js';
import { concatBatch, datatypeOfOrt, fromOrtTensor, sliceRows, specShape, toWire } from './internal/tensors.js';
import type { ExecutionProviderEntry } from './providers.js';
import { describeProviderFailure, probeProvider, providerName, unsupportedProviderOptions } from './providers.js';

/** `platform` in the metadata of every model this backend loads (Triton's name for ONNX Runtime models). */
export const ONNXRUNTIME_PLATFORM = 'onnxruntime_onnx';

/** `maxBatchSize` of a model whose inputs all have a dynamic dim 0, when `batching.maxBatchSize` is not set. */
export const DEFAULT_MAX_BATCH_SIZE = 32;

/**
 * Size given to a dynamic dim other than dim 0 when warming up without `warmupShapes`: small enough
 * to be quick, large enough for the usual conv stacks (five stride-2 stages still leave 1) and
 * sequence models. Dim 0 gets 1.
 */
export const DEFAULT_WARMUP_DIM = 32;

/** The `sessionOptions` a model's config may set (a subset of ONNX Runtime's SessionOptions). */
export interface OnnxRuntimeSessionOptions {
  /**
   * Threads inside one operator, per instance. Default: the cores Tessera may use, less a quarter
   * left to the server (from 3 cores on), divided among the instances (packages/backend-onnxruntime/README.md (Sizing)). `0`:
   * ONNX Runtime's own default (one per physical core, whatever else runs).
   */
  intraOpNumThreads?: number;
  /** Threads running independent operators when `executionMode` is `parallel`. */
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode?: 'sequential' | 'parallel';
  /**
   * Default `['cpu']`. Names or `{ name, ...options }`, in priority order: ONNX Runtime gives each
   * node to the first provider that runs it (the CPU takes what none does); it is not a fallback
   * list, so every provider named must load. onnxruntime-node bundles `cpu` and `webgpu`; `cuda` and
   * `tensorrt` need libraries installed (`probeProvider`, README "Execution providers (GPU)"), and
   * get `deviceId` alone from the 1.30 binding (`bindingProviderOptionKeys`).
   */
  executionProviders?: ExecutionProviderEntry[];
  enableCpuMemArena?: boolean;
  /** 0 verbose … 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Whether ONNX Runtime's intra-op and inter-op threads spin a while before they sleep when they
   * run out of work (`session.intra_op.allow_spinning` / `session.inter_op.allow_spinning`).
   * Default `true`, ORT's: spinning saves the wake-up between the operators of one run; `false`
   * gives the cores back at once, for machines shared with other work.
   */
  allowSpinning?: boolean;
}

/** The backend-specific keys of a model's config section. */
export interface OnnxRuntimeModelConfig {
  sessionOptions?: OnnxRuntimeSessionOptions;
  /** Shape of each input for the warm-up run, by input name (default: dim 0 → 1, other dynamic dims → 32). */
  warmupShapes?: Record<string, number[]>;
  /**
   * Run the session in a worker thread of its own (default `true`), so that inference never blocks
   * the event loop and instances run in parallel. `false` runs it on the main thread, as a
   * synchronous native call that stops everything else while it runs: for debugging, and as the
   * baseline that measures the cost of the thread hop.
   */
  runInWorker?: boolean;
  /**
   * When the worker thread of an instance dies, a new one is started and the session reloaded
   * after `initialDelayMs` (default 100), doubling with each failure in a row up to `maxDelayMs`
   * (default 30000); a worker that stayed up `resetAfterMs` (default 60000) starts over from
   * `initialDelayMs`. Ignored with `runInWorker: false`.
   */
  restart?: Partial<RestartPolicy>;
  /**
   * After a run, how long the instance's worker thread keeps polling for the next one before it
   * sleeps, ms (default: 1 from 4 cores on, else 0; see `defaultWorkerSpinMs`). At low concurrency
   * the next request arrives a network round trip after the answer: a polling worker takes it at
   * once instead of being woken, which costs an idle core a few hundred microseconds. The batchers
   * give work to the instance that finished last, so at low load one worker polls, the others
   * sleep. Ignored with `runInWorker: false`.
   */
  workerSpinMs?: number;
  /**
   * Whether the dynamic batcher may hand the instance's worker its next batch while one runs
   * (`ModelInstance.acceptsNextBatch`): it waits in the worker's queue and starts the moment the
   * running one ends, instead of one round trip through the event loop later. Default `false`: on 2
   * cores it changed no throughput and raised p99 at 8 connections (10 → 15 ms,
   * `bench/next-batch-ab.sh`); where cores sit idle while the sessions wait for the event loop (16
   * cores, the batches took twice the raw time) it is the candidate, not yet measured there
   * (`bench/device-16c.sh`). Ignored with `runInWorker: false` and on WebGPU.
   */
  nextBatchInWorker?: boolean;
}

/** `workerSpinMs` of a model that does not set it, on this machine. */
export function resolveWorkerSpinMs(config: Readonly<Record<string, unknown>>, cores: number = availableCores()): number {
  return (config as OnnxRuntimeModelConfig).workerSpinMs ?? defaultWorkerSpinMs(cores);
}

/** JSON Schema of `OnnxRuntimeModelConfig` (the model section keys this backend reads). */
export const ONNXRUNTIME_MODEL_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  properties: {
    sessionOptions: {
      type: 'object',
      additionalProperties: false,
      properties: {
        intraOpNumThreads: { type: 'integer', minimum: 0, description: 'Threads inside one operator; 0 = ONNX Runtime default.' },
        interOpNumThreads: { type: 'integer', minimum: 0, description: 'Threads across operators (executionMode: parallel); 0 = default.' },
        graphOptimizationLevel: { enum: ['disabled', 'basic', 'extended', 'all'] },
        executionMode: { enum: ['sequential', 'parallel'] },
        executionProviders: {
          type: 'array',
          minItems: 1,
          items: {
            anyOf: [
              { type: 'string', minLength: 1 },
              { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
            ],
          },
        },
        enableCpuMemArena: { type: 'boolean' },
        logSeverityLevel: { enum: [0, 1, 2, 3, 4] },
        allowSpinning: { type: 'boolean', description: "Whether ORT's threads spin before sleeping when out of work (default true, ORT's)." },
      },
    },
    warmupShapes: {
      type: 'object',
      description: 'Input shapes for the warm-up run, by input name.',
      additionalProperties: { type: 'array', items: { type: 'integer', minimum: 0 } },
    },
    runInWorker: {
      type: 'boolean',
      description:
        'Run the session in a worker thread of its own (default true), so that inference never blocks the event loop. ' +
        'false runs it on the main thread (blocking it while a model runs): for debugging, and as a benchmark baseline.',
    },
    workerSpinMs: {
      type: 'number',
      minimum: 0,
      maximum: 100,
      description: 'After a run, how long the worker thread polls for the next one before it sleeps, ms (default: 1 from 4 cores on, else 0; 0: never).',
    },
    nextBatchInWorker: {
      type: 'boolean',
      description: 'Hand the worker its next batch while one runs, so the session starts it without a round trip through the event loop (default false: one batch at a time per instance).',
    },
    restart: restartPolicySchema('worker thread'),
  },
  // the core strips its own keys (path, versions, batching, …) before validating, so anything left
  // that is not listed above is a typo worth stopping for
  additionalProperties: false,
};

/**
 * The ONNX Runtime session options for one model instance: the model's `sessionOptions`, with
 * `executionProviders` defaulting to `['cpu']` and, when `intraOpNumThreads` is unset, the cores
 * the model may use divided among its instances (`autoIntraOpThreads`: the cores less a quarter
 * for the rest of the server, at least 1 each) — left to ORT's default, every instance would
 * start one spinning thread per core, competing with each other and with the event loop.
 */
export function resolveSessionOptions(spec: Pick<ModelVersionSpec, 'model' | 'version' | 'config' | 'instanceIndex' | 'instanceCount'>, cores: number = availableCores()): ort.InferenceSession.SessionOptions {
  const configured: OnnxRuntimeSessionOptions = (spec.config as OnnxRuntimeModelConfig).sessionOptions ?? {};
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: configured.executionProviders ?? ['cpu'],
    logId: `${spec.model}:${spec.version}:${spec.instanceIndex}`,
  };
  const intra = configured.intraOpNumThreads ?? autoIntraOpThreads(cores, spec.instanceCount);
  options.intraOpNumThreads = intra;
  if (configured.allowSpinning !== undefined) {
    const flag = configured.allowSpinning ? '1' : '0';
    options.extra = { session: { intra_op: { allow_spinning: flag }, inter_op: { allow_spinning: flag } } };
  }
  if (configured.interOpNumThreads !== undefined) options.interOpNumThreads = configured.interOpNumThreads;
  if (configured.graphOptimizationLevel !== undefined) options.graphOptimizationLevel = configured.graphOptimizationLevel;
  if (configured.executionMode !== undefined) options.executionMode = configured.executionMode;
  if (configured.enableCpuMemArena !== undefined) options.enableCpuMemArena = configured.enableCpuMemArena;
  if (configured.logSeverityLevel !== undefined) options.logSeverityLevel = configured.logSeverityLevel;
  return options;
}

function label(spec: Pick<ModelVersionSpec, 'model' | 'version'>): string {
  return `${spec.model} v${spec.version}`;
}

/** The model's `restart` keys over the defaults. */
export function resolveRestartPolicy(config: Readonly<Record<string, unknown>>): RestartPolicy {
  return restartPolicyOf((config as OnnxRuntimeModelConfig).restart);
}

/** The counter of worker restarts, shared by every model (registering it again returns the same one). */
export const RESTARTS_METRIC = {
  name: 'tessera_backend_restarts_total',
  help: 'Attempts to replace the dead worker thread of an ONNX Runtime model instance (a failed attempt, retried later, counts again).',
  labelNames: ['model', 'version'],
} as const;

/**
 * 1 for the execution provider each loaded model version runs on first (`settings.executionProvider`),
 * while any instance of it is loaded; the series goes with the last one. Across `server.workers`, the
 * highest (1 while any worker has it).
 */
export const EXECUTION_PROVIDER_METRIC = {
  name: 'tessera_backend_execution_provider',
  help: 'The ONNX Runtime execution provider a loaded model version runs on first (its sessionOptions.executionProviders[0]): 1 while it is loaded.',
  labelNames: ['model', 'version', 'provider'],
  aggregator: 'max',
} as const;

function loadError(spec: ModelVersionSpec, reason: string, cause?: unknown): TesseraError {
  return new TesseraError('TESSERA_E_MODEL_LOAD', `${label(spec)}: cannot load ${spec.path ?? '(no path)'}: ${reason}`, { cause });
}

/** `reason` as a sentence: ORT's messages sometimes end with a period already ("Protobuf parsing failed."). */
function sentence(reason: string): string {
  const trimmed = reason.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** A hint for a file ORT could not parse: Git LFS pointers and empty files are the usual suspects. */
async function parseHint(path: string): Promise<string> {
  try {
    const handle = await open(path, 'r');
    try {
      const head = Buffer.alloc(64);
      const { bytesRead } = await handle.read(head, 0, 64, 0);
      if (bytesRead === 0) return ' The file is empty.';
      if (head.subarray(0, bytesRead).toString('latin1').startsWith('version https://git-lfs')) {
        return ' The file is a Git LFS pointer, not the model: run `git lfs pull`.';
      }
    } finally {
      await handle.close();
    }
  } catch {
    // the hint is optional
  }
  return ` Check that the file is a complete ONNX model whose opset onnxruntime-node ${ort.env.versions.common ?? ''} supports.`;
}

/** `fn` in the process's queue of the sessions' device when it has one (`deviceQueueFor`: WebGPU), else at once. */
function inDeviceQueue<T>(options: ort.InferenceSession.SessionOptions, fn: () => Promise<T>): Promise<T> {
  const queue = deviceQueueFor(providerNames(options));
  return queue ? queue.run(fn) : fn();
}

/** The provider names of session options, in order (`cpu` when none are given). */
function providerNames(options: ort.InferenceSession.SessionOptions): string[] {
  return (options.executionProviders ?? ['cpu']).map((p) => providerName(p as ExecutionProviderEntry));
}

/**
 * Refuses, before ONNX Runtime tries, what it would fail with a raw message (and its loader's errors
 * on stderr) or accept and ignore: options the binding does not pass to their provider, then
 * providers other than the CPU whose libraries are not installed (`probeProvider`).
 */
function checkProviders(spec: ModelVersionSpec, options: ort.InferenceSession.SessionOptions): void {
  const dropped = unsupportedProviderOptions((options.executionProviders ?? []) as ExecutionProviderEntry[]);
  if (dropped.length > 0) throw loadError(spec, dropped.join(' '));
  const unavailable = [...new Set(providerNames(options))]
    .filter((name) => name !== 'cpu')
    .map((name) => probeProvider(name))
    // a refusal is checked again: the libraries may have been installed since the answer was cached
    .map((probe) => (probe.available ? probe : probeProvider(probe.provider, { refresh: true })))
    .filter((probe) => !probe.available);
  if (unavailable.length > 0) throw loadError(spec, unavailable.map((p) => p.message).join(' '));
}

function readMaxBatchSize(spec: ModelVersionSpec): number | undefined {
  const batching = spec.config.batching as { maxBatchSize?: unknown } | undefined;
  return typeof batching?.maxBatchSize === 'number' ? batching.maxBatchSize : undefined;
}

function tensorSpecs(spec: ModelVersionSpec, kind: 'input' | 'output', meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return meta.map((m) => {
    if (!m.isTensor) throw loadError(spec, `${kind} '${m.name}' is not a tensor (sequence, map and optional values are not supported)`);
    const datatype = datatypeOfOrt(m.type);
    if (!datatype) throw loadError(spec, `${kind} '${m.name}' has type ${m.type}, which Tessera cannot represent`);
    return { name: m.name, datatype, shape: specShape(m.shape) };
  });
}

/**
 * Metadata, and why the model does not batch when it does not. Batchable means every input has a
 * dynamic dim 0. An output with a fixed dim 0 in such a model is ambiguous: it may be independent of
 * the batch (safe to hand whole to each request) or a reduction over the batch (wrong to). Without a
 * `batching.maxBatchSize` saying otherwise, such a model is not batched, so no answer is ever wrong.
 */
function buildMetadata(spec: ModelVersionSpec, session: SessionMetadata): { metadata: ModelMetadata; notBatchedBecause?: string } {
  const inputs = tensorSpecs(spec, 'input', session.inputMetadata);
  const outputs = tensorSpecs(spec, 'output', session.outputMetadata);
  const configured = readMaxBatchSize(spec);
  const fixedInput = inputs.find((i) => i.shape.length === 0 || i.shape[0] !== -1);
  const metadata: ModelMetadata = { platform: ONNXRUNTIME_PLATFORM, inputs, outputs, maxBatchSize: 0 };
  if (inputs.length === 0 || fixedInput) {
    const why = fixedInput ? `input '${fixedInput.name}' has shape [${fixedInput.shape.join(', ')}], no dynamic dim 0` : 'the model has no inputs';
    if (configured !== undefined && configured > 0) {
      throw loadError(spec, `batching.maxBatchSize is ${configured} but ${why}. Set batching.maxBatchSize: 0, or export the model with a dynamic batch dim`);
    }
    return { metadata, notBatchedBecause: why };
  }
  if (configured === undefined) {
    const fixedOutput = outputs.find((o) => o.shape.length > 0 && o.shape[0] !== -1);
    if (fixedOutput) {
      return {
        metadata,
        notBatchedBecause:
          `output '${fixedOutput.name}' has a fixed dim 0 (shape [${fixedOutput.shape.join(', ')}]), so it cannot be split per request; ` +
          'if it does not depend on the batch, set batching.maxBatchSize to batch anyway (each request then gets all of it)',
      };
    }
  }
  metadata.maxBatchSize = configured ?? DEFAULT_MAX_BATCH_SIZE;
  return { metadata };
}

/**
 * The ONNX Runtime backend: one `InferenceSession` per model instance, each in a worker thread of its
 * own (`runInWorker`, default true), with ONNX Runtime's native threads under it.
 */
export class OnnxRuntimeBackend implements Backend {
  readonly modelConfigSchema: JSONSchema = ONNXRUNTIME_MODEL_CONFIG_SCHEMA;
  readonly requiresPath = true;

  /**
   * `instances: auto`: the cores left after the server's share, in instances of 1–4 threads by
   * the model file's size (of `intraOpNumThreads` when set), within a quarter of the memory
   * (`autoInstanceCount`; packages/backend-onnxruntime/README.md (Sizing)); 1 when the model runs
   * on a GPU provider (any of `executionProviders` other than `cpu`).
   */
  autoInstances(spec: Pick<ModelVersionSpec, 'config' | 'path'>, cores: number): number {
    const sessionOptions = (spec.config as OnnxRuntimeModelConfig).sessionOptions;
    // one session per version on a GPU: the device runs one thing at a time, and each more
    // session takes its own device memory (WebGPU's even crashed run concurrently: DeviceQueue)
    if ((sessionOptions?.executionProviders ?? []).some((p) => providerName(p) !== 'cpu')) return 1;
    const threads = sessionOptions?.intraOpNumThreads;
    let modelBytes = 0;
    try {
      if (spec.path) modelBytes = statSync(spec.path).size;
    } catch {
      // the load reports a missing file, with its hint
    }
    return autoInstanceCount({ cores, memoryBytes: availableMemory(), modelBytes }, threads);
  }
  /**
   * The loaded instances of each model version (by model, version, path and instance count): an
   * instance whose worker is restarting hands its batches to a sibling that serves.
   */
  readonly #groups = new Map<string, { siblings: Set<OnnxRuntimeModelInstance>; running: { count: number } }>();
  /** Loaded instances per (model, version, provider), per metric registry: the provider gauge's series goes with the last. */
  readonly #providerCounts = new WeakMap<MetricRegistrar, Map<string, number>>();

  /**
   * Creates a session from `spec.path` with the model's `sessionOptions`, in a new worker thread
   * unless `runInWorker: false`, and reads its metadata. Rejects with TESSERA_E_MODEL_LOAD, saying
   * why and what to do: before any session, when an execution provider cannot run here or is given
   * options the binding does not pass (`checkProviders`).
   */
  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<OnnxRuntimeModelInstance> {
    const path = spec.path;
    if (!path) throw loadError(spec, 'the model has no `path`; set one in the model config (or under versions.<n>.path)');
    try {
      const st = await stat(path);
      if (!st.isFile()) throw loadError(spec, 'not a file; `path` must name the .onnx file itself');
    } catch (err) {
      if (isTesseraError(err)) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw loadError(spec, 'file not found. Relative paths in the config resolve against the config file’s folder; check `path` and that the file was copied there', err);
      }
      throw loadError(spec, errorMessage(err), err);
    }
    const options = resolveSessionOptions(spec);
    checkProviders(spec, options);
    const runInWorker = (spec.config as OnnxRuntimeModelConfig).runInWorker ?? true;
    let started: { host: SessionHost; metadata: SessionMetadata };
    try {
      started = runInWorker ? await this.#startSupervised(spec, path, options, ctx) : await inDeviceQueue(options, () => InlineSessionHost.create(path, options));
    } catch (err) {
      if (err instanceof SessionCreateError) {
        // what the probe cannot see (no WebGPU adapter, a driver error), with the provider named
        const failure = describeProviderFailure(err.message, providerNames(options));
        if (failure) throw loadError(spec, failure.message, err);
        // the binding's own checks of the options are not about the file
        const hint = /^Invalid argument:/.test(err.message.trim()) ? '' : await parseHint(path);
        throw loadError(spec, `${sentence(err.message)}${hint}`, err);
      }
      throw loadError(spec, `the worker thread for its session failed: ${errorMessage(err)}`, err);
    }
    const { host } = started;
    try {
      if (ctx.signal.aborted) throw loadError(spec, 'the load was aborted (the server is shutting down)', ctx.signal.reason);
      const { metadata, notBatchedBecause } = buildMetadata(spec, started.metadata);
      const key = [spec.model, spec.version, path, spec.instanceCount].join('\0');
      let group = this.#groups.get(key);
      if (!group) this.#groups.set(key, (group = { siblings: new Set(), running: { count: 0 } }));
      const { siblings, running } = group;
      let hideProvider = (): void => undefined;
      const instance = new OnnxRuntimeModelInstance(spec, host, metadata, options, {
        siblings,
        running,
        onUnload: (i) => {
          siblings.delete(i);
          if (siblings.size === 0 && this.#groups.get(key)?.siblings === siblings) this.#groups.delete(key);
          hideProvider();
        },
      });
      hideProvider = this.#showProvider(spec, instance.settings['executionProvider'] as string, ctx);
      if (notBatchedBecause) ctx.logger.info(`${label(spec)} does not batch (maxBatchSize 0): ${notBatchedBecause}`);
      ctx.logger.debug(
        { inputs: metadata.inputs, outputs: metadata.outputs, maxBatchSize: metadata.maxBatchSize, intraOpNumThreads: options.intraOpNumThreads, runInWorker },
        'onnxruntime session created',
      );
      return instance;
    } catch (err) {
      await host.release().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Sets `tessera_backend_execution_provider` to 1 for the instance's version and provider; the
   * function returned drops the series when no other instance of them is loaded (a new instance of
   * the version may load before the old one goes, on a reload).
   */
  #showProvider(spec: ModelVersionSpec, provider: string, ctx: LoadContext): () => void {
    const registrar = ctx.metrics;
    let gauge: GaugeMetric | undefined;
    try {
      gauge = registrar?.gauge(EXECUTION_PROVIDER_METRIC);
    } catch (err) {
      ctx.logger.warn({ err }, `${EXECUTION_PROVIDER_METRIC.name} could not be registered; the provider shows in the model's settings only`);
    }
    if (!registrar || !gauge) return () => undefined;
    let counts = this.#providerCounts.get(registrar);
    if (!counts) this.#providerCounts.set(registrar, (counts = new Map()));
    const labels = { model: spec.model, version: spec.version, provider };
    const key = [spec.model, spec.version, provider].join('\0');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    gauge.set(labels, 1);
    let shown = true;
    return () => {
      if (!shown) return;
      shown = false;
      const left = (counts.get(key) ?? 1) - 1;
      if (left > 0) counts.set(key, left);
      else {
        counts.delete(key);
        gauge.remove(labels);
      }
    };
  }

  /** The first worker of an instance, under a supervisor that replaces it when it dies. */
  #startSupervised(spec: ModelVersionSpec, path: string, options: ort.InferenceSession.SessionOptions, ctx: LoadContext): Promise<{ host: SupervisedSessionHost; metadata: SessionMetadata }> {
    let restarts: CounterMetric | undefined;
    try {
      restarts = ctx.metrics?.counter(RESTARTS_METRIC);
    } catch (err) {
      ctx.logger.warn({ err }, `${RESTARTS_METRIC.name} could not be registered; worker restarts are logged only`);
    }
    return SupervisedSessionHost.start({
      label: label(spec),
      instance: `instance ${spec.instanceIndex + 1} of ${spec.instanceCount}`,
      policy: resolveRestartPolicy(spec.config),
      // the first session and every replacement: one at a time on a device that must not overlap
      start: () => inDeviceQueue(options, () => WorkerSessionHost.start(path, options, label(spec), { spinMs: resolveWorkerSpinMs(spec.config) })),
      logger: ctx.logger,
      restarts,
      labels: { model: spec.model, version: spec.version },
    });
  }
}

/** What an instance shares with the other instances of its model version. */
export interface InstanceGroup {
  /** Every loaded instance of the version, this one included. */
  siblings: ReadonlySet<OnnxRuntimeModelInstance>;
  /** Runs in flight across the group's instances (each instance adds its own while it runs). */
  running: { count: number };
  /** Called once on unload. */
  onUnload(instance: OnnxRuntimeModelInstance): void;
}

/**
 * One ONNX Runtime session serving one model version (one instance of it), in a worker thread of its
 * own or on the main thread (`runInWorker`). The batchers give an instance one `execute` at a time
 * (with `nextBatchInWorker`, the dynamic batcher at most two, the second queued in the worker:
 * `acceptsNextBatch`); `instances: N` loads N of them, which run in parallel.
 */
export class OnnxRuntimeModelInstance implements ModelInstance {
  readonly metadata: ModelMetadata;
  /** The options the session was created with (after defaults and thread division). */
  readonly sessionOptions: Readonly<ort.InferenceSession.SessionOptions>;
  /** Whether the session runs in a worker thread (`runInWorker`). */
  readonly runsInWorker: boolean;
  /**
   * With `nextBatchInWorker`, in a worker thread: the next batch waits in the worker's queue while
   * one runs, so the session starts it without waiting for the event loop
   * (`ModelInstance.acceptsNextBatch`). Never inline (the run holds the event loop anyway), nor on a
   * device whose runs the process serializes (WebGPU).
   */
  readonly acceptsNextBatch: boolean;
  /** What the defaults turned into (threads, spinning, providers), for the logs and `GET /v2/models/{m}/config`. */
  readonly settings: Readonly<Record<string, unknown>>;
  #host: SessionHost | undefined;
  #unloading: Promise<void> | undefined;
  readonly #spec: ModelVersionSpec;
  readonly #group: InstanceGroup | undefined;
  /** The host when it is a supervised worker (kept after unload, for `workerStateForTests`). */
  readonly #supervisor: SupervisedSessionHost | undefined;
  /** Whether `warmup` ran: a restarted worker is then warmed too before it serves. */
  #warm = false;
  /** Runs of this instance in flight (its worker's, whichever host runs them). */
  #running = 0;
  /**
   * Outputs whose declared dim 0 is fixed, in a model that batches anyway (the config said so):
   * taken as independent of the batch, so every request of a batch gets all of it.
   */
  readonly #wholeOutputs: ReadonlySet<string>;
  /** The process's queue of the device the session runs on, when its runs must not overlap another session's (WebGPU). */
  readonly #deviceQueue: DeviceQueue | undefined;

  /** Use `OnnxRuntimeBackend.load`. */
  constructor(spec: ModelVersionSpec, host: SessionHost, metadata: ModelMetadata, sessionOptions: ort.InferenceSession.SessionOptions, group?: InstanceGroup) {
    this.#spec = spec;
    this.#host = host;
    this.#group = group;
    this.#supervisor = host instanceof SupervisedSessionHost ? host : undefined;
    this.runsInWorker = host instanceof WorkerSessionHost || host instanceof SupervisedSessionHost;
    this.metadata = metadata;
    this.sessionOptions = sessionOptions;
    const config = spec.config as OnnxRuntimeModelConfig;
    this.#deviceQueue = deviceQueueFor(providerNames(sessionOptions));
    this.acceptsNextBatch = this.runsInWorker && this.#deviceQueue === undefined && config.nextBatchInWorker === true;
    this.settings = {
      intraOpNumThreads: sessionOptions.intraOpNumThreads ?? 0,
      allowSpinning: config.sessionOptions?.allowSpinning ?? true,
      // where the model's nodes go first: ONNX Runtime tries the providers in order, node by node
      executionProvider: providerNames(sessionOptions)[0] ?? 'cpu',
      executionProviders: providerNames(sessionOptions),
      runInWorker: this.runsInWorker,
      ...(this.runsInWorker ? { workerSpinMs: resolveWorkerSpinMs(spec.config), nextBatchInWorker: this.acceptsNextBatch } : {}),
    };
    this.#wholeOutputs = new Set(metadata.outputs.filter((o) => o.shape.length > 0 && o.shape[0] !== -1).map((o) => o.name));
    const warmupShapes = (spec.config as OnnxRuntimeModelConfig).warmupShapes ?? {};
    const inputNames = new Set(metadata.inputs.map((i) => i.name));
    for (const name of Object.keys(warmupShapes)) {
      if (!inputNames.has(name)) {
        throw loadError(spec, `warmupShapes names input '${name}', which the model does not have (inputs: ${metadata.inputs.map((i) => i.name).join(', ')})`);
      }
    }
    if (host instanceof SupervisedSessionHost) {
      host.prepare = async (fresh) => {
        if (!this.#warm) return;
        await this.#run(fresh, this.#warmupInputs().map(toWire), this.metadata.outputs.map((o) => o.name), false, new AbortController().signal);
      };
    }
    (group?.siblings as Set<OnnxRuntimeModelInstance> | undefined)?.add(this);
  }

  /**
   * Runs a batch. One request runs as is: inline, its typed arrays are handed to ORT without a copy;
   * in a worker, they are copied to it (they view request memory, which must not be detached).
   * Several requests of a batchable model are concatenated along dim 0 (each request's bytes copied
   * once, into a buffer that is then moved to the worker, not copied), run once, and every output
   * is split back with `subarray` views. A model that does not batch runs its requests one after
   * the other.
   *
   * Requests arrive validated, their inputs in `metadata.inputs` order (see `InferenceRequest`):
   * nothing about them is checked again. Every request gets the outputs that were fetched — those
   * the batch (or any of its requests) asked for, all when none did — in the model's output order;
   * the core selects and orders what each request asked for.
   *
   * `signal`: checked before each run is handed to ORT (TESSERA_E_REQUEST_CANCELLED). A run that
   * started cannot be interrupted: it finishes, and if the signal fired meanwhile its result is
   * dropped and the batch rejects with TESSERA_E_REQUEST_CANCELLED.
   */
  async execute(batch: InferenceBatch, signal: AbortSignal): Promise<Tensor[][]> {
    const own = this.#host;
    if (!own || this.#unloading) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${label(this.#spec)} is unloaded`);
    // while this instance's worker restarts, a sibling that serves takes the batch (it queues in
    // that worker behind its own); with none, the host answers TESSERA_E_INSTANCE_RESTARTING
    const host = own.failure === undefined ? own : (this.#servingSibling() ?? own);
    if (signal.aborted) throw this.#cancelled(signal, 'before it ran');
    const { requests } = batch;
    if (requests.length === 0) return [];
    const fetches = this.#fetchNames(batch);

    if (requests.length === 1 || this.metadata.maxBatchSize === 0) {
      const results: Tensor[][] = [];
      for (const request of requests) results.push(await this.#run(host, request.inputs.map(toWire), fetches, false, signal));
      return results;
    }

    // dim 0 is shared by a request's inputs, so the first one's is the request's row count
    const rows = requests.map((r) => r.inputs[0]?.shape[0] ?? 0);
    const feeds = this.metadata.inputs.map((spec, k) => concatBatch(spec.name, requests.map((r) => r.inputs[k]!)));
    const outputs = await this.#run(host, feeds, fetches, true, signal);
    const total = rows.reduce((a, b) => a + b, 0);
    for (const t of outputs) {
      if (!this.#wholeOutputs.has(t.name) && t.shape[0] !== total) {
        throw new TesseraError(
          'TESSERA_E_INFERENCE_FAILED',
          `${label(this.#spec)}: output '${t.name}' has shape [${t.shape.join(', ')}] for a batch of ${total} rows, so it cannot be split per request ` +
            '(the model mixes rows of the batch). Set batching.maxBatchSize: 0 for this model.',
        );
      }
    }
    let start = 0;
    return rows.map((n) => {
      const end = start + n;
      const mine = outputs.map((t) => (this.#wholeOutputs.has(t.name) ? { ...t, shape: [...t.shape] } : sliceRows(t, start, end)));
      start = end;
      return mine;
    });
  }

  /** Runs once with zeros (in the worker, when the session runs in one): shapes from `warmupShapes`, else dim 0 → 1 and other dynamic dims → 32. */
  async warmup(): Promise<void> {
    this.#warm = true;
    const inputs = this.#warmupInputs();
    try {
      await this.execute({ requests: [{ inputs }] }, new AbortController().signal);
    } catch (err) {
      const shown = inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ');
      throw new TesseraError('TESSERA_E_MODEL_WARMUP', `${label(this.#spec)}: warm-up with zeros (${shown}) failed: ${errorMessage(err).trim()}. Set warmupShapes in the model config to shapes the model accepts.`, {
        cause: err,
      });
    }
  }

  /**
   * False once unloaded, and while the worker running the session is restarting (its batches then
   * go to a sibling instance that serves, else get TESSERA_E_INSTANCE_RESTARTING).
   */
  async ready(): Promise<boolean> {
    return this.#host !== undefined && !this.#unloading && this.#host.failure === undefined;
  }

  /** Why `ready()` is false: `restarting: <why the worker died> (…, next attempt in …)`, or `unloaded`. */
  get notReadyReason(): string | undefined {
    if (!this.#host || this.#unloading) return 'unloaded';
    return this.#host.failure;
  }

  /**
   * Releases the session; in a worker, asks it to release and waits for the thread to exit (after
   * any run in flight, which cannot be interrupted; an idle worker that has not exited within 10 s
   * is terminated). Later calls (and concurrent ones) wait for the same release.
   */
  unload(): Promise<void> {
    this.#unloading ??= (async () => {
      this.#group?.onUnload(this);
      const host = this.#host;
      this.#host = undefined;
      await host?.release();
    })();
    return this.#unloading;
  }

  /**
   * For tests: the worker thread running the session (`undefined` inline). A test crashes it with
   * `postMessage({ op: 'exit', code })`; never `terminate()` it during a run (onnxruntime-node then
   * aborts the whole process, see `WorkerSessionHost`).
   */
  get workerForTests(): Worker | undefined {
    const host = this.#host;
    if (host instanceof SupervisedSessionHost) return host.currentForTests?.workerForTests;
    return host instanceof WorkerSessionHost ? host.workerForTests : undefined;
  }

  /** `up`, `restarting` or `released` (`undefined` inline): where the worker supervisor stands, for tests. */
  get workerStateForTests(): 'up' | 'restarting' | 'released' | undefined {
    return this.#supervisor?.state;
  }

  /** Zeros shaped from `warmupShapes`, else dim 0 → 1 and other dynamic dims → 32. */
  #warmupInputs(): Tensor[] {
    const shapes = (this.#spec.config as OnnxRuntimeModelConfig).warmupShapes ?? {};
    return this.metadata.inputs.map((spec) => {
      const shape = shapes[spec.name] ?? spec.shape.map((d, i) => (d >= 0 ? d : i === 0 ? 1 : DEFAULT_WARMUP_DIM));
      const size = shape.reduce((a, b) => a * b, 1);
      return { name: spec.name, datatype: spec.datatype, shape, data: allocateTensorData(spec.datatype, size) };
    });
  }

  /** Whether another instance of this version has a run in flight: the group's count less this instance's own. */
  #siblingBusy(): boolean {
    return this.#group !== undefined && this.#group.running.count > this.#running;
  }

  /** The host of another instance of this version that serves now, if any. */
  #servingSibling(): SessionHost | undefined {
    for (const other of this.#group?.siblings ?? []) {
      if (other === this) continue;
      const host = other.#host;
      if (host && !other.#unloading && host.failure === undefined) return host;
    }
    return undefined;
  }

  /** The outputs to fetch, in the model's order: every one, or those the batch and its requests named. */
  #fetchNames(batch: InferenceBatch): string[] {
    const all = this.metadata.outputs.map((o) => o.name);
    if (!batch.outputs) return all;
    // include what single requests named too, so that a request never misses an output it asked for
    const wanted = new Set([...batch.outputs, ...batch.requests.flatMap((r) => r.outputs ?? [])]);
    return all.filter((n) => wanted.has(n));
  }

  /** One run of the session. `owned`: the feeds' buffers were allocated for this run and may be moved to the worker. */
  async #run(host: SessionHost, feeds: WireTensor[], fetches: string[], owned: boolean, signal: AbortSignal): Promise<Tensor[]> {
    if (signal.aborted) throw this.#cancelled(signal, 'before it ran');
    let out: WireTensor[];
    // the worker polls for the next run afterwards only when no other instance of the model is
    // busy: at low load one instance takes every request (the batchers reuse the last one freed)
    const alone = !this.#siblingBusy();
    this.#running++;
    if (this.#group) this.#group.running.count++;
    try {
      out = this.#deviceQueue ? await this.#deviceQueue.run(() => (signal.aborted ? Promise.reject(this.#cancelled(signal, 'before it ran')) : host.run(feeds, fetches, owned, alone))) : await host.run(feeds, fetches, owned, alone);
    } catch (err) {
      if (isTesseraError(err)) throw err;
      throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `${label(this.#spec)}: inference failed: ${errorMessage(err).trim()}`, { cause: err });
    } finally {
      this.#running--;
      if (this.#group) this.#group.running.count--;
    }
    if (signal.aborted) throw this.#cancelled(signal, 'while it ran (ONNX Runtime cannot stop a run); its result was dropped');
    return out.map((t) => fromOrtTensor(t.name, t));
  }

  #cancelled(signal: AbortSignal, when: string): TesseraError {
    return new TesseraError('TESSERA_E_REQUEST_CANCELLED', `${label(this.#spec)}: the batch was cancelled ${when}`, { cause: signal.reason });
  }
}
