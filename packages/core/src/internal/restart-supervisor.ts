/**
 * Keeps one model instance serving across the deaths of its worker (a thread, a process): when it
 * dies, the work it held and the work asked for until a new one serves fail with
 * TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After`), and a new worker is started under the
 * model's `restart` policy. Shared by the backends that run instances in workers of their own (the
 * ONNX Runtime backend's worker threads, the Python backend's processes), so that a crash loop
 * looks and behaves the same in both.
 */
import type { LoadContext } from '../contracts/backend.js';
import type { CounterMetric } from '../contracts/metrics.js';
import { TesseraError, errorMessage } from '../errors.js';
import type { RestartPolicy } from './restart-policy.js';
import { restartDelay } from './restart-policy.js';

/** What the supervisor needs of a worker. */
export interface SupervisedWorker {
  /** Calls `listener` once when the worker dies on its own (not on `release`), with why, as a clause ("exited (code 70)"). */
  onDeath(listener: (reason: string) => void): void;
  /** Ends the worker, or waits for a dead one to be gone; never rejects. */
  release(): Promise<void>;
}

export interface RestartSupervisorOptions<W extends SupervisedWorker> {
  /** `model vN`, in messages. */
  label: string;
  /** `instance i of n`, in log lines. */
  instance: string;
  policy: RestartPolicy;
  /** The worker in messages: `worker thread`, `Python worker`. */
  noun: string;
  /** What one unit of work is in messages: `request`, `batch`. */
  unit: string;
  /** Starts a replacement worker. */
  start: () => Promise<W>;
  /**
   * Runs on a replacement before it serves (the same model is loaded, the warm-up); throwing fails
   * the attempt with that reason, and the next one is scheduled.
   */
  ready?: (worker: W) => Promise<void>;
  /** Bound to the model and version. */
  logger: LoadContext['logger'];
  /** Counts every attempt to replace a dead worker (`tessera_backend_restarts_total`). */
  restarts?: CounterMetric | undefined;
  /** Labels of `restarts`. */
  labels?: Readonly<Record<string, string>>;
}

export type SupervisorState = 'up' | 'restarting' | 'released';

/**
 * A succession of workers, one serving at a time. When the serving one dies:
 *
 * - `current` is undefined and `failure` says `restarting: …`; `restartingError()` is the 503 to
 *   answer with (its `Retry-After` the time to the next attempt, at least a second);
 * - once the dead worker is released (a thread that died inside a native call is waited for, never
 *   terminated), a new one is started after `initialDelayMs`, doubling with each failure in a row up
 *   to `maxDelayMs`. An attempt fails when the worker cannot start or `ready` throws. Each attempt
 *   is counted and logged, each failure with its reason, so a crash loop is a log line per attempt
 *   with growing gaps, not a spin;
 * - a worker that stayed up `resetAfterMs` starts the doubling again.
 *
 * `release` cancels the next attempt, waits for one in progress and releases what it started:
 * nothing is left running, nothing hangs.
 */
export class RestartSupervisor<W extends SupervisedWorker> {
  readonly #opts: RestartSupervisorOptions<W>;
  #current: W | undefined;
  /** A dead worker not yet released (a thread may still be exiting). */
  #dead: W | undefined;
  #state: SupervisorState = 'up';
  /** Why the instance is restarting: the death, or the last failed attempt. */
  #reason = '';
  /** Deaths and failed attempts in a row (since a worker last stayed up `resetAfterMs`). */
  #failures = 0;
  #upSince = performance.now();
  #nextAttemptAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #attempting: Promise<void> | undefined;
  #released: Promise<void> | undefined;

  /** Supervises `first`, a worker the caller started (a first start that fails is the load's failure, not restarted). */
  constructor(opts: RestartSupervisorOptions<W>, first: W) {
    this.#opts = opts;
    this.#adopt(first);
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** The worker serving now; undefined while restarting and once released. */
  get current(): W | undefined {
    return this.#current;
  }

  /** `restarting: <why> (n failures in a row, next attempt in …)` while no worker serves; undefined when one does. */
  get failure(): string | undefined {
    if (this.#state === 'up') return undefined;
    if (this.#state === 'released') return 'released';
    const wait = this.#attempting ? `a new worker is starting` : `next attempt in ${formatMs(Math.max(0, this.#nextAttemptAt - performance.now()))}`;
    return `restarting: ${this.#reason} (${this.#failures} ${this.#failures === 1 ? 'failure' : 'failures'} in a row, ${wait})`;
  }

  /**
   * The 503 for work that meets no serving worker, or (`cause`) whose worker died under it:
   * TESSERA_E_INSTANCE_RESTARTING with `Retry-After`.
   */
  restartingError(cause?: Error): TesseraError {
    const { label, noun, unit } = this.#opts;
    const waitMs = this.#attempting ? 0 : Math.max(0, this.#nextAttemptAt - performance.now());
    // starting a worker and loading the model takes a moment too: never less than a second
    const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
    const why = cause ? `its ${noun} died while running the ${unit} (${cause.message.replace(`${label}: `, '')})` : `the ${noun} is ${this.failure ?? 'restarting'}`;
    return new TesseraError('TESSERA_E_INSTANCE_RESTARTING', `${label}: ${why}; retry after ${retryAfter} s`, { headers: { 'retry-after': retryAfter }, ...(cause ? { cause } : {}) });
  }

  /** Releases the serving worker (and a dead one) and cancels any restart; idempotent. */
  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#state = 'released';
      clearTimeout(this.#timer);
      this.#timer = undefined;
      // an attempt in progress sees the state and releases what it started
      await this.#attempting;
      const workers = [this.#current, this.#dead].filter((w): w is W => w !== undefined);
      this.#current = undefined;
      this.#dead = undefined;
      await Promise.all(workers.map((w) => w.release()));
    })();
    return this.#released;
  }

  /** Makes `worker` the one serving, watching for its death. */
  #adopt(worker: W): void {
    this.#current = worker;
    this.#state = 'up';
    this.#upSince = performance.now();
    worker.onDeath((reason) => this.#died(worker, reason));
  }

  #died(worker: W, reason: string): void {
    if (worker !== this.#current || this.#state !== 'up') return;
    this.#current = undefined;
    this.#dead = worker;
    this.#state = 'restarting';
    if (performance.now() - this.#upSince >= this.#opts.policy.resetAfterMs) this.#failures = 0;
    this.#failures++;
    this.#reason = reason;
    const delay = this.#schedule();
    this.#opts.logger.error(
      { instance: this.#opts.instance, reason, failuresInARow: this.#failures, retryInMs: delay },
      `${this.#opts.label} (${this.#opts.instance}): ${reason}; its requests get 503 TESSERA_E_INSTANCE_RESTARTING, and a new worker starts in ${delay} ms`,
    );
  }

  /** Sets the timer of the next attempt; returns its delay. */
  #schedule(): number {
    const delay = restartDelay(this.#opts.policy, this.#failures);
    this.#nextAttemptAt = performance.now() + delay;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // #attempt catches everything itself; the catch is a guard, never a silent rejection
      this.#attempting = this.#attempt()
        .catch((err: unknown) => this.#opts.logger.error({ err }, `${this.#opts.label}: a restart attempt failed unexpectedly`))
        .finally(() => {
          this.#attempting = undefined;
        });
    }, delay);
    // a pending restart does not keep the process alive by itself (the server's listener does)
    this.#timer.unref();
    return delay;
  }

  /** One attempt: the dead worker gone, a new one, ready; else the next attempt is scheduled. Never rejects. */
  async #attempt(): Promise<void> {
    if (this.#state !== 'restarting') return;
    const { label, instance, logger, noun } = this.#opts;
    this.#opts.restarts?.inc(this.#opts.labels);
    logger.info({ instance, attempt: this.#failures }, `${label} (${instance}): starting a new ${noun} (attempt ${this.#failures} in a row)`);
    let started: W | undefined;
    try {
      const dead = this.#dead;
      this.#dead = undefined;
      await dead?.release();
      if (this.#state !== 'restarting') return;
      started = await this.#opts.start();
      if (this.#state !== 'restarting') return;
      await this.#opts.ready?.(started);
      if (this.#state !== 'restarting') return;
      const worker = started;
      started = undefined;
      this.#adopt(worker);
      logger.info({ instance }, `${label} (${instance}): the new ${noun} serves again`);
    } catch (err) {
      if (this.#state !== 'restarting') return;
      this.#failures++;
      this.#reason = `the restart failed: ${errorMessage(err)}`;
      const delay = this.#schedule();
      logger.error({ instance, err, failuresInARow: this.#failures, retryInMs: delay }, `${label} (${instance}): ${this.#reason}; next attempt in ${delay} ms`);
    } finally {
      // a worker started by an attempt that did not adopt it (failed, or released meanwhile)
      if (started) await started.release().catch(() => undefined);
    }
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
