/**
 * Keeps one model instance's session serving across worker deaths: when the worker thread dies, the
 * runs it held are answered TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After`), and a new worker is
 * started and the session reloaded, with exponential backoff, until one stays up.
 */
import type { CounterMetric, LoadContext, RestartPolicy, SupervisorState } from '@tessera/core';
import { RestartSupervisor } from '@tessera/core';
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

/**
 * A `SessionHost` over a succession of `WorkerSessionHost`s, kept by core's `RestartSupervisor`.
 * Up, it is the current worker. When that worker dies:
 *
 * - the runs it held reject with TESSERA_E_INSTANCE_RESTARTING (503, `Retry-After` = the time to the
 *   next attempt), as do runs asked for until a new worker serves; `failure` says `restarting: …`;
 * - once the dead thread has exited (never `terminate()` one inside a native run), a new worker is
 *   started after `initialDelayMs`, doubling with each failure in a row up to `maxDelayMs`. An
 *   attempt fails when the worker cannot start, the session cannot load (the file is gone), the
 *   reloaded model's inputs or outputs differ from those the server is serving (the file was
 *   replaced: reload the model for that), or the warm-up fails; each attempt is counted and logged;
 * - a worker that stayed up `resetAfterMs` starts the doubling again.
 *
 * `release` during a restart cancels the next attempt, waits for one in progress and releases what
 * it started: nothing is left running, nothing hangs.
 */
export class SupervisedSessionHost implements SessionHost {
  readonly #label: string;
  readonly #supervisor: RestartSupervisor<WorkerSessionHost>;
  /** Runs on a new worker before it serves (the warm-up); set by the instance. */
  prepare: ((host: SessionHost) => Promise<void>) | undefined;

  /** Use `SupervisedSessionHost.start`. */
  private constructor(opts: SupervisorOptions, host: WorkerSessionHost, metadata: SessionMetadata) {
    this.#label = opts.label;
    // the inputs and outputs the server serves: a reloaded session must declare the same
    const served = describe(metadata);
    const { start, ...rest } = opts;
    this.#supervisor = new RestartSupervisor<WorkerSessionHost>(
      {
        ...rest,
        noun: 'worker thread',
        unit: 'request',
        start: async () => {
          const { host: fresh, metadata: now } = await start();
          if (describe(now) !== served) {
            await fresh.release();
            throw new Error(`the model file now declares other inputs or outputs (${describe(now)}) than those served (${served}); reload the model to serve the new file`);
          }
          return fresh;
        },
        ready: async (fresh) => {
          await this.prepare?.(fresh);
          if (fresh.failure !== undefined) throw new Error(fresh.failure);
        },
      },
      host,
    );
  }

  /** Starts the first worker; rejects as `WorkerSessionHost.start` does (no restart for a load that fails). */
  static async start(opts: SupervisorOptions): Promise<{ host: SupervisedSessionHost; metadata: SessionMetadata }> {
    const { host, metadata } = await opts.start();
    return { host: new SupervisedSessionHost(opts, host, metadata), metadata };
  }

  get failure(): string | undefined {
    return this.#supervisor.state === 'released' ? 'the session was released' : this.#supervisor.failure;
  }

  /** `up`, `restarting` or `released`. */
  get state(): SupervisorState {
    return this.#supervisor.state;
  }

  /** The worker thread now (`undefined` while restarting), for tests. */
  get currentForTests(): WorkerSessionHost | undefined {
    return this.#supervisor.current;
  }

  async run(feeds: WireTensor[], fetches: string[], owned: boolean, spin?: boolean): Promise<WireTensor[]> {
    if (this.#supervisor.state === 'released') throw new SessionRunError(`${this.#label}: the session was released`);
    const host = this.#supervisor.current;
    if (!host) throw this.#supervisor.restartingError();
    try {
      return await host.run(feeds, fetches, owned, spin);
    } catch (err) {
      if (err instanceof WorkerExitedError) throw this.#supervisor.restartingError(err);
      throw err;
    }
  }

  release(): Promise<void> {
    return this.#supervisor.release();
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
