/**
 * Keeps one instance's worker process serving across deaths: when it dies (a crash, `os._exit`, a
 * kill), the batch it held fails with TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After`), as do
 * batches arriving before a new worker serves; a new worker is started (model.py imported and
 * initialized again) after `restart.initialDelayMs`, doubling per failure in a row up to
 * `maxDelayMs`. Every attempt is counted and logged, so a crash loop is a line per attempt with
 * growing gaps, not a spin. `release` cancels what is pending and ends what runs.
 */
import type { CounterMetric, LoadContext, RestartPolicy } from '@tessera/core';
import { TesseraError, errorMessage, restartDelay } from '@tessera/core';
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

export type SupervisorState = 'up' | 'restarting' | 'released';

/** See the file's comment. */
export class WorkerSupervisor {
  readonly #opts: SupervisorOptions;
  #worker: PythonWorker | undefined;
  #state: SupervisorState = 'up';
  #reason = '';
  #failures = 0;
  #upSince = performance.now();
  #nextAttemptAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #attempting: Promise<void> | undefined;
  #released: Promise<void> | undefined;

  private constructor(opts: SupervisorOptions, worker: PythonWorker) {
    this.#opts = opts;
    this.#adopt(worker);
  }

  /** Starts the first worker; a load that fails is not retried (it rejects as `PythonWorker.start`). */
  static async start(opts: SupervisorOptions): Promise<WorkerSupervisor> {
    return new WorkerSupervisor(opts, await (opts.firstStart ?? opts.start)());
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** `restarting: …` while no worker serves; undefined when one does. */
  get failure(): string | undefined {
    if (this.#state === 'up') return undefined;
    if (this.#state === 'released') return 'unloaded';
    const wait = this.#attempting ? 'a new worker is starting' : `next attempt in ${Math.max(0, Math.round(this.#nextAttemptAt - performance.now()))} ms`;
    return `restarting: ${this.#reason} (${this.#failures} ${this.#failures === 1 ? 'failure' : 'failures'} in a row, ${wait})`;
  }

  /** The worker serving now; throws TESSERA_E_INSTANCE_RESTARTING (or MODEL_NOT_READY once released) when none does. */
  current(): PythonWorker {
    if (this.#state === 'released') throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${this.#opts.label} is unloaded`);
    if (!this.#worker) throw this.restartingError();
    return this.#worker;
  }

  /** The error of a batch that meets no worker, or whose worker died under it (`cause`). */
  restartingError(cause?: Error): TesseraError {
    const waitMs = this.#attempting ? 0 : Math.max(0, this.#nextAttemptAt - performance.now());
    // a new worker imports model.py and runs initialize: never less than a second
    const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
    const why = cause
      ? `its Python worker died while running the batch (${cause.message.replace(`${this.#opts.label}: `, '')}); it is being restarted`
      : `its Python worker is ${this.failure ?? 'restarting'}`;
    return new TesseraError('TESSERA_E_INSTANCE_RESTARTING', `${this.#opts.label}: ${why}; retry after ${retryAfter} s`, { headers: { 'retry-after': retryAfter }, ...(cause ? { cause } : {}) });
  }

  /** Ends the worker (model.py's `finalize()` first) and cancels any restart; idempotent. */
  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#state = 'released';
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#attempting;
      const worker = this.#worker;
      this.#worker = undefined;
      await worker?.release(this.#opts.logger);
    })();
    return this.#released;
  }

  #adopt(worker: PythonWorker): void {
    this.#worker = worker;
    this.#state = 'up';
    this.#upSince = performance.now();
    worker.onDeath((reason) => this.#died(worker, reason));
  }

  #died(worker: PythonWorker, reason: string): void {
    if (worker !== this.#worker || this.#state !== 'up') return;
    this.#worker = undefined;
    this.#state = 'restarting';
    // the dead worker's shared file goes with it
    void worker.release();
    if (performance.now() - this.#upSince >= this.#opts.policy.resetAfterMs) this.#failures = 0;
    this.#failures++;
    this.#reason = `the worker ${reason}`;
    const delay = this.#schedule();
    this.#opts.logger.error(
      { instance: this.#opts.instance, reason, failuresInARow: this.#failures, retryInMs: delay },
      `${this.#opts.label} (${this.#opts.instance}): the Python worker ${reason}; its requests get 503 TESSERA_E_INSTANCE_RESTARTING, and a new worker starts in ${delay} ms`,
    );
  }

  #schedule(): number {
    const delay = restartDelay(this.#opts.policy, this.#failures);
    this.#nextAttemptAt = performance.now() + delay;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#attempting = this.#attempt().finally(() => {
        this.#attempting = undefined;
      });
    }, delay);
    // a pending restart does not keep the process alive by itself
    this.#timer.unref();
    return delay;
  }

  /** One attempt; never rejects. */
  async #attempt(): Promise<void> {
    if (this.#state !== 'restarting') return;
    const { label, instance, logger } = this.#opts;
    this.#opts.restarts?.inc(this.#opts.labels);
    logger.info({ instance, attempt: this.#failures }, `${label} (${instance}): starting a new Python worker (attempt ${this.#failures} in a row)`);
    let worker: PythonWorker;
    try {
      worker = await this.#opts.start();
    } catch (err) {
      if (this.#state !== 'restarting') return;
      this.#failures++;
      this.#reason = `the restart failed: ${errorMessage(err)}`;
      const delay = this.#schedule();
      logger.error({ instance, err, failuresInARow: this.#failures, retryInMs: delay }, `${label} (${instance}): ${this.#reason}; next attempt in ${delay} ms`);
      return;
    }
    if (this.#state !== 'restarting') {
      await worker.release(logger);
      return;
    }
    this.#adopt(worker);
    logger.info({ instance, pid: worker.pid }, `${label} (${instance}): the new Python worker serves again`);
  }
}
