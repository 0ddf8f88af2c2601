import type { InferenceBatch, ModelInstance, ModelMetadata, ModelVersionSpec, RequestResult, Tensor, TensorSpec } from '@tessera/core';
import { TesseraError, errorMessage, isTesseraError } from '@tessera/core';
import { label } from './internal/layout.js';
import type { TensorDescriptor, WireResult } from './internal/protocol.js';
import type { WorkerSupervisor } from './internal/supervisor.js';
import { WorkerExitedError } from './internal/worker-process.js';

/**
 * One instance of a model.py: one Python worker process (restarted when it dies). `execute` hands
 * the whole batch to the model's `execute(requests)` as a list, each request with its own tensors
 * (nothing is concatenated, as in Triton), and maps its responses back one per request.
 */
export class PythonModelInstance implements ModelInstance {
  readonly metadata: ModelMetadata;
  /** The interpreter, and the Python and numpy versions the worker reported. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly #spec: ModelVersionSpec;
  readonly #supervisor: WorkerSupervisor;
  readonly #inputs: ReadonlyMap<string, TensorSpec>;
  readonly #outputs: ReadonlyMap<string, TensorSpec>;
  /** Batches run one after the other: the shared file holds one batch at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #unloading: Promise<void> | undefined;

  /** Use `PythonBackend.load`. */
  constructor(spec: ModelVersionSpec, supervisor: WorkerSupervisor, metadata: ModelMetadata, settings: Record<string, unknown>) {
    this.#spec = spec;
    this.#supervisor = supervisor;
    this.metadata = metadata;
    this.settings = settings;
    this.#inputs = new Map(metadata.inputs.map((t) => [t.name, t]));
    this.#outputs = new Map(metadata.outputs.map((t) => [t.name, t]));
  }

  /**
   * Runs a batch through model.py's `execute`. A response with `error=TritonError(...)` fails its
   * request alone (`TritonError.INVALID_ARG`: 400 TESSERA_E_INPUT_DATA, else 500
   * TESSERA_E_INFERENCE_FAILED); an exception raised by `execute` fails the batch (500, the
   * exception's last line); a worker that dies meanwhile fails it with 503
   * TESSERA_E_INSTANCE_RESTARTING while a new one starts.
   */
  execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    const run = this.#queue.then(() => this.#execute(batch, signal));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A round trip to the worker. model.py's `execute` is not called with made-up data (Triton does
   * not either; `initialize` is the model's own warm-up), and the core's zeros are not sent.
   */
  async warmup(): Promise<void> {
    await this.#supervisor.current().ping();
  }

  async ready(): Promise<boolean> {
    return !this.#unloading && this.#supervisor.failure === undefined;
  }

  /** `restarting: …` while the worker is replaced, `unloaded` after `unload`. */
  get notReadyReason(): string | undefined {
    return this.#unloading ? 'unloaded' : this.#supervisor.failure;
  }

  /** The worker process id now (undefined while restarting), for tests and logs. */
  get pid(): number | undefined {
    return this.#supervisor.state === 'up' ? this.#supervisor.current().pid : undefined;
  }

  /** The shared-memory file of the worker now, for tests. */
  get sharedFileForTests(): string | undefined {
    return this.#supervisor.state === 'up' ? this.#supervisor.current().shared.path : undefined;
  }

  /** Calls model.py's `finalize()`, ends the worker process and removes its shared file; idempotent. */
  unload(): Promise<void> {
    this.#unloading ??= this.#queue.then(() => this.#supervisor.release());
    return this.#unloading;
  }

  async #execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    if (this.#unloading) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${label(this.#spec)} is unloaded`);
    if (signal.aborted) throw this.#cancelled(signal, 'before it ran');
    const { requests } = batch;
    if (requests.length === 0) return [];
    const worker = this.#supervisor.current();
    const { wire, end } = worker.shared.writeRequests(requests, this.#inputs);
    let answer;
    try {
      answer = await worker.execute(this.#spec.model, wire, end);
    } catch (err) {
      if (err instanceof WorkerExitedError) throw this.#supervisor.restartingError(err);
      if (isTesseraError(err)) throw err;
      throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `${label(this.#spec)}: ${errorMessage(err)}`, { cause: err });
    }
    if (signal.aborted) throw this.#cancelled(signal, 'while it ran (model.py cannot be interrupted); its result was dropped');
    if (answer.error !== undefined) {
      throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `${label(this.#spec)}: model.py execute() failed: ${answer.error}`);
    }
    const results = answer.results ?? [];
    return requests.map((request, i) => this.#result(results[i], request.outputs, worker.shared));
  }

  #result(result: WireResult | undefined, wanted: readonly string[] | undefined, shared: { readTensor(d: TensorDescriptor, s: TensorSpec): Tensor }): RequestResult {
    const where = label(this.#spec);
    if (!result) return new TesseraError('TESSERA_E_INFERENCE_FAILED', `${where}: model.py gave no response for this request`);
    if ('error' in result) {
      return result.status === 400
        ? new TesseraError('TESSERA_E_INPUT_DATA', `${where}: ${result.error}`)
        : new TesseraError('TESSERA_E_INFERENCE_FAILED', `${where}: model.py: ${result.error}`);
    }
    const tensors: Tensor[] = [];
    try {
      for (const d of result.outputs) {
        const spec = this.#outputs.get(d.name);
        if (!spec) continue; // an undeclared output: nobody can ask for it
        if (d.datatype !== spec.datatype) {
          return new TesseraError('TESSERA_E_INFERENCE_FAILED', `${where}: model.py returned output '${d.name}' as ${d.datatype}, but it is declared ${spec.datatype}; convert it (e.g. .astype(numpy.float32)) or fix the declaration`);
        }
        tensors.push(shared.readTensor(d, spec));
      }
    } catch (err) {
      return new TesseraError('TESSERA_E_INFERENCE_FAILED', `${where}: ${errorMessage(err)}`, { cause: err });
    }
    const names = new Set(tensors.map((t) => t.name));
    const lacking = (wanted ?? [...this.#outputs.keys()]).filter((n) => !names.has(n));
    if (lacking.length > 0) {
      return new TesseraError('TESSERA_E_INFERENCE_FAILED', `${where}: model.py's response lacks ${lacking.map((n) => `'${n}'`).join(', ')} (it returned ${[...names].map((n) => `'${n}'`).join(', ') || 'no declared output'})`);
    }
    return tensors;
  }

  #cancelled(signal: AbortSignal, when: string): TesseraError {
    return new TesseraError('TESSERA_E_REQUEST_CANCELLED', `${label(this.#spec)}: the batch was cancelled ${when}`, { cause: signal.reason });
  }
}
