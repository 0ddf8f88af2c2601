/**
 * Keeps one instance's worker process serving across deaths (a crash, `os._exit`, a kill): core's
 * `RestartSupervisor` with the Python worker's start and messages. The batch a dead worker held
 * fails with TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After`), as do batches arriving before a new
 * worker (model.py imported and initialized again) serves; `restart` in the model's config sets
 * the backoff.
 */
import type { CounterMetric, LoadContext, RestartPolicy, SupervisorState } from '@tessera/core';
import { RestartSupervisor, TesseraError } from '@tessera/core';
import type { PythonWorker } from './worker-process.js';

export interface SupervisorOptions {
  /** `model vN`, in messages. */
  label: string;
  /** `instance i of n`, in log lines. */
  instance: string;
  policy: RestartPolicy;
  /** Starts a replacement worker. */
  start: () => Promise<PythonWorker>;
  /** Starts the first one (default `start`): the load's, which the server's shutdown aborts. */
  firstStart?: () => Promise<PythonWorker>;
  logger: LoadContext['logger'];
  /** Counts every attempt to replace a dead worker (`tessera_backend_restarts_total`). */
  restarts?: CounterMetric | undefined;
  labels?: Readonly<Record<string, string>>;
}

/** A `PythonWorker` as core's supervisor sees it: its death said as a clause, its release logging `finalize()` errors. */
class SupervisedPythonWorker {
  constructor(
    readonly worker: PythonWorker,
    readonly logger: LoadContext['logger'],
  ) {}

  onDeath(listener: (reason: string) => void): void {
    this.worker.onDeath((reason) => listener(`the Python worker ${reason}`));
  }

  release(): Promise<void> {
    return this.worker.release(this.logger);
  }
}

/** See the file's comment. */
export class WorkerSupervisor {
  readonly #label: string;
  readonly #supervisor: RestartSupervisor<SupervisedPythonWorker>;

  private constructor(opts: SupervisorOptions, first: PythonWorker) {
    this.#label = opts.label;
    const { start, firstStart: _first, ...rest } = opts;
    this.#supervisor = new RestartSupervisor<SupervisedPythonWorker>(
      { ...rest, noun: 'Python worker', unit: 'batch', start: async () => new SupervisedPythonWorker(await start(), opts.logger) },
      new SupervisedPythonWorker(first, opts.logger),
    );
  }

  /** Starts the first worker; a load that fails is not retried (it rejects as `PythonWorker.start`). */
  static async start(opts: SupervisorOptions): Promise<WorkerSupervisor> {
    return new WorkerSupervisor(opts, await (opts.firstStart ?? opts.start)());
  }

  get state(): SupervisorState {
    return this.#supervisor.state;
  }

  /** `restarting: …` while no worker serves; undefined when one does. */
  get failure(): string | undefined {
    return this.#supervisor.state === 'released' ? 'unloaded' : this.#supervisor.failure;
  }

  /** The worker serving now; throws TESSERA_E_INSTANCE_RESTARTING (or MODEL_NOT_READY once released) when none does. */
  current(): PythonWorker {
    if (this.#supervisor.state === 'released') throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${this.#label} is unloaded`);
    const current = this.#supervisor.current;
    if (!current) throw this.#supervisor.restartingError();
    return current.worker;
  }

  /** The error of a batch that meets no worker, or whose worker died under it (`cause`). */
  restartingError(cause?: Error): TesseraError {
    return this.#supervisor.restartingError(cause);
  }

  /** Ends the worker (model.py's `finalize()` first) and cancels any restart; idempotent. */
  release(): Promise<void> {
    return this.#supervisor.release();
  }
}
