import type { InferenceBatch, ModelInstance, ModelMetadata, RequestResult, Tensor } from '@tessera/core';
import { TesseraError, allocateTensorData, errorMessage } from '@tessera/core';

/**
 * A model version served by the TensorRT backend: the ONNX Runtime backend's instance (whatever
 * provider it runs on), with the TensorRT settings added and a warm-up that also runs every shape
 * of the profiles, so that TensorRT builds or loads its engines before the first request.
 */
export class TensorRtModelInstance implements ModelInstance {
  readonly metadata: ModelMetadata;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly #inner: ModelInstance;
  readonly #label: string;
  /** The extra warm-up runs: each a shape per input name. */
  readonly #runs: readonly Readonly<Record<string, number[]>>[];

  /** Use `TensorRtBackend.load`. */
  constructor(inner: ModelInstance, label: string, settings: Readonly<Record<string, unknown>>, runs: readonly Readonly<Record<string, number[]>>[]) {
    this.#inner = inner;
    this.#label = label;
    this.metadata = inner.metadata;
    this.settings = settings;
    this.#runs = runs;
  }

  /** The ONNX Runtime instance underneath, for tests. */
  get innerForTests(): ModelInstance {
    return this.#inner;
  }

  /** The shapes `warmup` runs after the inner warm-up, one map of input name → shape per run. */
  get warmupShapes(): readonly Readonly<Record<string, number[]>>[] {
    return this.#runs;
  }

  execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    return this.#inner.execute!(batch, signal);
  }

  /**
   * The ONNX Runtime backend's warm-up (one run shaped by `warmupShapes`), then a run of zeros at
   * each profile shape: min, opt, max and every preferred batch size. TensorRT builds an engine for
   * a profile the first time a shape of it runs (or loads it from the engine cache): done here, no
   * request waits for a build. On CUDA and the CPU the same runs size their memory pools.
   */
  async warmup(): Promise<void> {
    await this.#inner.warmup?.();
    for (const run of this.#runs) {
      const inputs: Tensor[] = this.metadata.inputs.map((spec) => {
        const shape = run[spec.name] ?? spec.shape.map((d) => Math.max(d, 1));
        return { name: spec.name, datatype: spec.datatype, shape, data: allocateTensorData(spec.datatype, shape.reduce((a, b) => a * b, 1)) };
      });
      try {
        const [result] = await this.#inner.execute!({ requests: [{ inputs }] }, new AbortController().signal);
        if (result instanceof Error) throw result;
      } catch (err) {
        const shown = inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ');
        throw new TesseraError('TESSERA_E_MODEL_WARMUP', `${this.#label}: warm-up of the TensorRT profile shape ${shown} failed: ${errorMessage(err).trim()}`, { cause: err });
      }
    }
  }

  ready(): Promise<boolean> {
    return this.#inner.ready?.() ?? Promise.resolve(true);
  }

  get notReadyReason(): string | undefined {
    return this.#inner.notReadyReason;
  }

  unload(): Promise<void> {
    return this.#inner.unload();
  }
}
