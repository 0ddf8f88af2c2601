import type { Backend, GenerateChunk, GenerateRequest, InferenceBatch, InferenceRequest, LoadContext, ModelInstance, ModelMetadata, ModelVersionSpec, RequestResult } from '../contracts/backend.js';
import type { Tensor } from '../contracts/tensor.js';
import { allocateTensorData, shapeSize } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';

/** How a `FakeBackend`'s instances behave; every field is optional. */
export interface FakeModelOptions {
  /** Default: input `x` FP32 [-1, 4] → output `y` FP32 [-1, 4] (y = 2x), maxBatchSize 8. */
  metadata?: ModelMetadata;
  /**
   * One request's result: its outputs, or an Error that fails it alone. Default: with the default
   * metadata y = 2x; otherwise zeros of each output's shape (dynamic dims: dim 0 of the first input, else 1).
   */
  compute?: (request: InferenceRequest, spec: ModelVersionSpec) => Tensor[] | Error;
  /** How long each `execute` takes (real time), ms. Default 0. */
  delayMs?: number;
  /** Give the instance a `warmup()` (counted in `warmups`). Default false: the core warms it with zeros. */
  warmup?: boolean;
  /** A generation (makes the instance generative). */
  generate?: (request: GenerateRequest, signal: AbortSignal) => AsyncIterable<GenerateChunk>;
  /** Headers the instance declares (`ModelInstance.requestHeaders`). */
  requestHeaders?: string[];
  /** `load` rejects with this (a TesseraError `TESSERA_E_MODEL_LOAD` is what backends throw). */
  loadError?: Error;
  /** `ready()` answers this (default: true until unloaded). */
  ready?: () => boolean;
}

/** The default fake model: `x` FP32 [-1, 4] → `y` = 2x. */
export const FAKE_MODEL_METADATA: ModelMetadata = {
  platform: 'fake',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }],
  maxBatchSize: 8,
};

/**
 * A backend for tests of routers, processors, hooks, exporters and the core itself: no model file,
 * behaviour chosen per model version (`options` may be a function of the spec, e.g. to make
 * version 2 fail), and every loaded instance kept in `instances` with what it executed.
 */
export class FakeBackend implements Backend {
  readonly requiresPath = false;
  /** Every instance loaded, in load order. */
  readonly instances: FakeModelInstance[] = [];
  readonly #options: FakeModelOptions | ((spec: ModelVersionSpec) => FakeModelOptions);

  constructor(options: FakeModelOptions | ((spec: ModelVersionSpec) => FakeModelOptions) = {}) {
    this.#options = options;
  }

  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<FakeModelInstance> {
    const options = typeof this.#options === 'function' ? this.#options(spec) : this.#options;
    if (options.loadError) throw options.loadError;
    if (ctx.signal.aborted) throw new TesseraError('TESSERA_E_MODEL_LOAD', `${spec.model} v${spec.version}: the load was aborted`);
    const instance = new FakeModelInstance(spec, options);
    this.instances.push(instance);
    return instance;
  }

  /** The instances of one model version. */
  instancesOf(model: string, version = '1'): FakeModelInstance[] {
    return this.instances.filter((i) => i.spec.model === model && i.spec.version === version);
  }
}

/** One instance of a `FakeBackend`. */
export class FakeModelInstance implements ModelInstance {
  readonly metadata: ModelMetadata;
  readonly spec: ModelVersionSpec;
  readonly requestHeaders: readonly string[] | undefined;
  /** Every batch `execute` received, in order. */
  readonly batches: InferenceBatch[] = [];
  /** Generation requests received, in order. */
  readonly generations: GenerateRequest[] = [];
  warmups = 0;
  unloaded = false;
  readonly #options: FakeModelOptions;
  readonly generate?: (request: GenerateRequest, signal: AbortSignal) => AsyncIterable<GenerateChunk>;
  readonly warmup?: () => Promise<void>;

  constructor(spec: ModelVersionSpec, options: FakeModelOptions) {
    this.spec = spec;
    this.#options = options;
    this.metadata = options.metadata ?? FAKE_MODEL_METADATA;
    this.requestHeaders = options.requestHeaders;
    if (options.generate) {
      const generate = options.generate;
      this.generate = (request, signal) => {
        this.generations.push(request);
        return generate(request, signal);
      };
    }
    if (options.warmup) {
      this.warmup = async () => {
        this.warmups++;
      };
    }
  }

  async execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    if (this.unloaded) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${this.spec.model} v${this.spec.version} is unloaded`);
    this.batches.push(batch);
    if (this.#options.delayMs) await new Promise((resolve) => setTimeout(resolve, this.#options.delayMs));
    if (signal.aborted) throw new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the batch was cancelled');
    const compute = this.#options.compute ?? ((request: InferenceRequest) => defaultCompute(request, this.metadata));
    return batch.requests.map((request) => compute(request, this.spec));
  }

  async ready(): Promise<boolean> {
    return !this.unloaded && (this.#options.ready?.() ?? true);
  }

  async unload(): Promise<void> {
    this.unloaded = true;
  }

  /** Requests executed so far, over all batches. */
  get requests(): InferenceRequest[] {
    return this.batches.flatMap((b) => b.requests);
  }
}

function defaultCompute(request: InferenceRequest, md: ModelMetadata): Tensor[] {
  const first = request.inputs[0];
  if (md === FAKE_MODEL_METADATA && first) {
    const x = first.data as Float32Array;
    return [{ name: 'y', datatype: 'FP32', shape: [...first.shape], data: x.map((v) => v * 2) }];
  }
  const rows = first?.shape[0] ?? 1;
  return md.outputs.map((o) => {
    const shape = o.shape.map((d, i) => (d >= 0 ? d : i === 0 && md.maxBatchSize > 0 ? rows : 1));
    return { name: o.name, datatype: o.datatype, shape, data: allocateTensorData(o.datatype, shapeSize(shape)) };
  });
}
