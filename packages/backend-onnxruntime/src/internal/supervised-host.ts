/**
 * Keeps one model instance's session serving across worker deaths: when the worker thread dies, the
 * runs it held are answered TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After`), and a new worker is
 * started and the session reloaded, with exponential backoff, until one stays up.
 */
import type { CounterMetric, LoadContext, RestartPolicy } from '@tessera/core';
import { TesseraError, errorMessage, restartDelay } from '@tessera/core';
import type { WireTensor } from './protocol.js';
import type { SessionHost, SessionMetadata, WorkerSessionHost } from './session-host.js';
import { SessionRunError, WorkerExitedError } from './session-host.js';

/** When a dead worker is replaced (`restart` in a model's config). */
export interface SupervisorOptions {
  /** `model vN`, in messages. */
  label: string;
  /** `instance i of n`, in log lines. */
  instance: string;
  policy: RestartPolicy;
  /** Starts a worker and loads the session in it (`WorkerSessionHost.start`). */
  start: () => Promise<{ host: WorkerSessionHost; metadata: SessionMetadata }>;
  /** Bound to the model and version. */
  logger: LoadContext['logger'];
  /** Counts every attempt to replace a dead worker (`tessera_backend_restarts_total`). */
  restarts?: CounterMetric | undefined;
  /** Labels of `restarts`. */
  labels?: Readonly<Record<string, string>>;
}

type State = 'up' | 'restarting' | 'released';

/**
 * A `SessionHost` over a succession of `WorkerSessionHost`s. Up, it is the current worker. When
 * that worker dies:
 *
 * - the runs it held reject with TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After` = the time to the
 *   next attempt), as do runs asked for until a new worker serves; `failure` says `restarting: …`;
 * - once the dead thread has exited (never `terminate()` one inside a native run), a new worker is
 *   started after `initialDelayMs`, doubling with each failure in a row up to `maxDelayMs`. An
 *   attempt fails when the worker cannot start, the session cannot load (the file is gone), the
 *   reloaded model's inputs or outputs differ from those the server is serving (the file was
 *   replaced: reload the model for that), or the warm-up fails. Each attempt is counted and logged,
 *   each failure with its reason, so a crash loop (a worker that dies every time) is a log line per
 *   attempt with growing gaps, not a spin;
 * - a worker that stayed up `resetAfterMs` starts the doubling again.
 *
 * `release` during a restart cancels the next attempt, waits for one in progress and releases what
 * it started: nothing is left running, nothing hangs.
 */
export class SupervisedSessionHost implements SessionHost {
  readonly #opts: SupervisorOptions;
  /** The inputs and outputs the server serves: a reloaded session must declare the same. */
  readonly #metadata: string;
  #host: WorkerSessionHost | undefined;
  /** A dead worker not yet released (its thread may still be exiting). */
  #dead: WorkerSessionHost | undefined;
  #state: State = 'up';
  /** Why the instance is restarting: the death, or the last failed attempt. */
  #reason = '';
  /** Deaths and failed attempts in a row (since a worker last stayed up `resetAfterMs`). */
  #failures = 0;
  #upSince = performance.now();
  #nextAttemptAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #attempting: Promise<void> | undefined;
  #released: Promise<void> | undefined;
  /** Runs on a new worker before it serves (the warm-up); set by the instance. */
  prepare: ((host: SessionHost) => Promise<void>) | undefined;

  /** Use `SupervisedSessionHost.start`. */
  private constructor(opts: SupervisorOptions, host: WorkerSessionHost, metadata: SessionMetadata) {
    this.#opts = opts;
    this.#metadata = describe(metadata);
    this.#adopt(host);
  }

  /** Starts the first worker; rejects as `WorkerSessionHost.start` does (no restart for a load that fails). */
  static async start(opts: SupervisorOptions): Promise<{ host: SupervisedSessionHost; metadata: SessionMetadata }> {
    const { host, metadata } = await opts.start();
    return { host: new SupervisedSessionHost(opts, host, metadata), metadata };
  }

  get failure(): string | undefined {
    if (this.#state === 'up') return undefined;
    if (this.#state === 'released') return 'the session was released';
    return `restarting: ${this.#reason} (${this.#progress()})`;
  }

  /** `up`, `restarting` or `released`. */
  get state(): State {
    return this.#state;
  }

  /** The worker thread now (`undefined` while restarting), for tests. */
  get currentForTests(): WorkerSessionHost | undefined {
    return this.#host;
  }

  async run(feeds: WireTensor[], fetches: string[], owned: boolean, spin?: boolean): Promise<WireTensor[]> {
    const host = this.#host;
    if (this.#state === 'released') throw new SessionRunError(`${this.#opts.label}: the session was released`);
    if (!host) throw this.#restarting();
    try {
      return await host.run(feeds, fetches, owned, spin);
    } catch (err) {
      if (err instanceof WorkerExitedError) throw this.#restarting(err);
      throw err;
    }
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#state = 'released';
      clearTimeout(this.#timer);
      this.#timer = undefined;
      // an attempt in progress sees the state and releases what it started
      await this.#attempting;
      const hosts = [this.#host, this.#dead].filter((h): h is WorkerSessionHost => h !== undefined);
      this.#host = undefined;
      this.#dead = undefined;
      await Promise.all(hosts.map((h) => h.release()));
    })();
    return this.#released;
  }

  /** Makes `host` the one serving, watching for its death. */
  #adopt(host: WorkerSessionHost): void {
    this.#host = host;
    this.#state = 'up';
    this.#upSince = performance.now();
    host.onDeath((reason) => this.#died(host, reason));
  }

  #died(host: WorkerSessionHost, reason: string): void {
    if (host !== this.#host || this.#state !== 'up') return;
    this.#host = undefined;
    this.#dead = host;
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

  /** One attempt: the dead thread gone, a new worker, the same model, warmed; else the next attempt is scheduled. Never rejects. */
  async #attempt(): Promise<void> {
    if (this.#state !== 'restarting') return;
    const { label, instance, logger } = this.#opts;
    this.#opts.restarts?.inc(this.#opts.labels);
    logger.info({ instance, attempt: this.#failures }, `${label} (${instance}): starting a new worker thread (attempt ${this.#failures} in a row)`);
    let started: WorkerSessionHost | undefined;
    try {
      const dead = this.#dead;
      this.#dead = undefined;
      await dead?.release();
      if (this.#state !== 'restarting') return;
      const { host, metadata } = await this.#opts.start();
      started = host;
      if (this.#state !== 'restarting') return;
      const now = describe(metadata);
      if (now !== this.#metadata) {
        throw new Error(`the model file now declares other inputs or outputs (${now}) than those served (${this.#metadata}); reload the model to serve the new file`);
      }
      await this.prepare?.(host);
      if (this.#state !== 'restarting') return;
      if (host.failure !== undefined) throw new Error(host.failure);
      started = undefined;
      this.#adopt(host);
      logger.info({ instance }, `${label} (${instance}): the new worker thread serves again`);
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

  /** `attempt n, next in …` for messages. */
  #progress(): string {
    const wait = this.#attempting ? 'a new worker is starting' : `next attempt in ${formatMs(Math.max(0, this.#nextAttemptAt - performance.now()))}`;
    return `${this.#failures} ${this.#failures === 1 ? 'failure' : 'failures'} in a row, ${wait}`;
  }

  #restarting(cause?: Error): TesseraError {
    const waitMs = this.#attempting ? 0 : Math.max(0, this.#nextAttemptAt - performance.now());
    // the load itself takes a moment too: never less than a second
    const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
    const why = cause ? `its worker thread died while running the request (${cause.message.replace(`${this.#opts.label}: `, '')})` : `the worker thread is ${this.failure ?? 'restarting'}`;
    return new TesseraError('TESSERA_E_INSTANCE_RESTARTING', `${this.#opts.label}: ${why}; retry after ${retryAfter} s`, { headers: { 'retry-after': retryAfter }, ...(cause ? { cause } : {}) });
  }
}

/** The inputs and outputs a session declares, compared across restarts. */
function describe(metadata: SessionMetadata): string {
  const one = (m: SessionMetadata['inputMetadata'][number]): string => {
    const v = m as { name: string; isTensor: boolean; type?: string; shape?: readonly unknown[] };
    return `${v.name}:${v.isTensor ? `${v.type}[${(v.shape ?? []).join(',')}]` : 'non-tensor'}`;
  };
  return `inputs ${metadata.inputMetadata.map(one).join(' ')}; outputs ${metadata.outputMetadata.map(one).join(' ')}`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
