import type { ReloadOutcome } from './reload.js';
import type { WatchTargets } from './watch.js';

/** The environment variable that makes a process a worker of `tessera serve`'s cluster: its slot, `1`…`N`. */
export const WORKER_ENV = 'TESSERA_WORKER';
/** The number of workers, for the workers' own messages. */
export const WORKERS_ENV = 'TESSERA_WORKERS';

/**
 * Messages from the primary to a worker. All carry `tessera` (their kind), so they never collide
 * with node:cluster's internal messages or prom-client's own cluster messages (`type`).
 */
export type ToWorker =
  /** Drain and exit (`now`: exit at once, the operator does not want to wait). */
  | { tessera: 'stop'; signal: string; now?: boolean }
  /** Reload the config; answered with `reloaded`. */
  | { tessera: 'reload'; id: number; trigger: string }
  /** Send this worker's metrics (prom-client's `getMetricsAsJSON`); answered with `collected`. */
  | { tessera: 'collect'; id: number }
  /** The answer to a worker's `metrics-request`: the whole server's metrics, or why not. */
  | { tessera: 'metrics'; id: number; text?: string; error?: string };

/** Messages from a worker to the primary. */
export type ToPrimary =
  /** The worker listens to the primary's messages (sent once, before it starts its server). */
  | { tessera: 'hello' }
  /** The worker's server is ready (every model loaded) and listening at `url`. */
  | { tessera: 'ready'; url: string }
  /** `GET /metrics` reached this worker: the whole server's metrics, please. */
  | { tessera: 'metrics-request'; id: number }
  | { tessera: 'collected'; id: number; metrics?: unknown[]; error?: string }
  /** How a `reload` ended, with the files `--watch` should watch from now on. */
  | { tessera: 'reloaded'; id: number; outcome: ReloadOutcome; targets?: WatchTargets };

/** Whether an IPC message is one of Tessera's (of any kind). */
export function isTesseraMessage(message: unknown): message is { tessera: string; id?: number } {
  return typeof message === 'object' && message !== null && typeof (message as { tessera?: unknown }).tessera === 'string';
}
