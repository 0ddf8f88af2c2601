import type { ReloadOutcome } from './reload.js';
import type { WatchTargets } from './watch.js';

/** The environment variable that makes a process a worker of `tessera serve`'s cluster: its slot, `1`…`N`. */
export const WORKER_ENV = 'TESSERA_WORKER';
/** The number of workers, for the workers' own messages. */
export const WORKERS_ENV = 'TESSERA_WORKERS';

/** A management request a worker received, for the primary to run on every worker. */
export interface ManagementRequest {
  method: string;
  /** With its query string. */
  url: string;
  /** The client's headers but the connection's own (hop-by-hop, `content-length`) and the internal one. */
  headers: Record<string, string | string[]>;
  /** The raw body as it arrived, base64; absent when it had none. */
  body?: string;
  /** The client's address (what `request.ip` is made of, with `x-forwarded-for` and `server.trustProxy`). */
  remoteAddress?: string;
}

/** How one worker answered a management request it ran. */
export interface ManagementAnswer {
  status: number;
  /** Those of its headers the client needs (`content-type`, `retry-after`, `tessera-config-generation`). */
  headers: Record<string, string>;
  body: string;
}

/** One worker's part of a broadcast management request: its answer, or why there is none. */
export interface WorkerOutcome {
  /** Its slot, 1…N. */
  worker: number;
  pid?: number;
  answer?: ManagementAnswer;
  error?: string;
}

/** What the client of a broadcast management request gets, decided by the primary. */
export type BroadcastResult =
  /** Every worker answered with the same status: the receiving worker's answer. */
  | { ok: true; answer: ManagementAnswer; answered: number; workers: number }
  /** Workers answered differently or not at all: what each did, in words. */
  | { ok: false; answered: number; workers: number; message: string; outcomes: { worker: number; pid?: number; status?: number; code?: string; error?: string }[] };

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
  | { tessera: 'metrics'; id: number; text?: string; error?: string }
  /** Run this management request here (through the server's own routes); answered with `executed`. */
  | { tessera: 'execute'; id: number; request: ManagementRequest }
  /** The answer to a worker's `manage`: the outcome across every worker, or why there is none. */
  | { tessera: 'managed'; id: number; result?: BroadcastResult; error?: string };

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
  | { tessera: 'reloaded'; id: number; outcome: ReloadOutcome; targets?: WatchTargets }
  /** A management request reached this worker: run it on every worker, please (answered with `managed`). */
  | { tessera: 'manage'; id: number; request: ManagementRequest }
  /** How an `execute` ended here. */
  | { tessera: 'executed'; id: number; answer?: ManagementAnswer; error?: string };

/** Whether an IPC message is one of Tessera's (of any kind). */
export function isTesseraMessage(message: unknown): message is { tessera: string; id?: number } {
  return typeof message === 'object' && message !== null && typeof (message as { tessera?: unknown }).tessera === 'string';
}
