import cluster from 'node:cluster';
import type { RouteOptions } from 'fastify';
import { TesseraError, errorMessage } from '../errors.js';
import type { TesseraServer, TesseraServerOptions } from '../server.js';
import type { ToPrimary, ToWorker } from './cluster-protocol.js';
import { WORKER_ENV, WORKERS_ENV, isTesseraMessage } from './cluster-protocol.js';
import { watchTargets } from './watch.js';

/** How long `GET /metrics` on a worker waits for the primary's aggregated answer. */
const METRICS_TIMEOUT_MS = 10_000;

/**
 * Management routes whose effect would stay inside the one worker that served them (the
 * repository's load and unload, routing actions): refused with several workers.
 */
const ONE_WORKER_ONLY: ReadonlyMap<string, string> = new Map([
  ['/v2/repository/models/:model/load', 'loading a model through the repository API'],
  ['/v2/repository/models/:model/unload', 'unloading a model through the repository API'],
  ['/v1/routing/:model/:action', 'a routing action'],
]);

/**
 * The worker's half of `tessera serve` with several workers (`server.workers` > 1): it answers
 * the primary's messages (stop, reload, collect metrics), asks the primary for the whole server's
 * metrics when `GET /metrics` reaches it, and refuses the management operations that would change
 * only this worker. Made by the CLI when this process is a cluster worker; `attach` it to the
 * server before `start()`.
 */
export class ClusterWorker {
  /** This worker's slot, 1…N (kept by its replacement). */
  readonly id: number;
  /** How many workers the server runs. */
  readonly workers: number;
  #server: TesseraServer | undefined;
  #stop: ((signal: string) => void) | undefined;
  #seq = 0;
  readonly #pending = new Map<number, { resolve(text: string): void; reject(err: Error): void; timer: NodeJS.Timeout }>();

  /** The worker of this process, or undefined when it is not a worker of `tessera serve`'s cluster. */
  static current(): ClusterWorker | undefined {
    const id = Number(process.env[WORKER_ENV]);
    return cluster.isWorker && Number.isInteger(id) && id > 0 ? new ClusterWorker(id, Number(process.env[WORKERS_ENV]) || 0) : undefined;
  }

  private constructor(id: number, workers: number) {
    this.id = id;
    this.workers = workers;
  }

  /** The server options a worker needs: `/metrics` answered from the primary's aggregate. */
  serverOptions(): Pick<TesseraServerOptions, 'metricsText'> {
    return { metricsText: () => this.#clusterMetrics() };
  }

  /**
   * Hooks the worker up to its server (before `start()`): management refusals on the routes the
   * server is about to register, and the primary's messages. `stop` is the CLI's shutdown.
   */
  attach(server: TesseraServer, stop: (signal: string) => void): void {
    this.#server = server;
    this.#stop = stop;
    server.app.addHook('onRoute', (route) => this.#guard(route));
    process.on('message', (message: unknown) => this.#onMessage(message));
    this.#send({ tessera: 'hello' });
  }

  /** The server is ready: the primary counts it in. */
  ready(url: string): void {
    this.#send({ tessera: 'ready', url });
  }

  /** A signal sent to this worker rather than to the primary: only the primary reloads, so that every worker serves the same config. */
  ignoredSignal(signal: string): void {
    this.#server?.logger.warn({ signal, worker: this.id }, `${signal} to worker ${this.id} (pid ${process.pid}) ignored: send it to the primary process (pid ${process.ppid}), which reloads every worker`);
  }

  #guard(route: RouteOptions): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const what = ONE_WORKER_ONLY.get(route.url);
    if (!what || !methods.includes('POST')) return;
    const refuse = async (): Promise<void> => {
      throw new TesseraError(
        'TESSERA_E_SERVER_CLUSTERED',
        `${what} would change worker ${this.id} of ${this.workers} only (server.workers): change the config and send SIGHUP to the primary process (pid ${process.ppid}), or run \`tessera serve --watch\`, so that every worker reloads`,
      );
    };
    // after the onRequest hooks (authentication answers first), before the handler
    const existing = route.preHandler;
    route.preHandler = existing === undefined ? refuse : [refuse, ...(Array.isArray(existing) ? existing : [existing])];
  }

  #onMessage(message: unknown): void {
    if (!isTesseraMessage(message)) return;
    const m = message as ToWorker;
    switch (m.tessera) {
      case 'stop':
        return this.#onStop(m.signal, m.now === true);
      case 'reload':
        return void this.#onReload(m.id, m.trigger);
      case 'collect':
        return void this.#onCollect(m.id);
      case 'metrics': {
        const pending = this.#pending.get(m.id);
        if (!pending) return;
        this.#pending.delete(m.id);
        clearTimeout(pending.timer);
        if (m.text !== undefined) pending.resolve(m.text);
        else pending.reject(new Error(m.error ?? 'no metrics'));
        return;
      }
    }
  }

  #onStop(signal: string, now: boolean): void {
    const server = this.#server;
    if (now) {
      server?.logger.warn({ signal, worker: this.id, inflight: server.inflight }, `${signal} again (from the primary): exiting now without finishing the drain`);
      process.exit(1);
    }
    // a signal from the terminal reaches every process of the group: the drain may have begun already
    if (!server || server.state === 'draining' || server.state === 'closed') return;
    this.#stop?.(signal);
  }

  async #onReload(id: number, trigger: string): Promise<void> {
    const server = this.#server!;
    const outcome = await server.reload(trigger);
    this.#send({ tessera: 'reloaded', id, outcome, ...(outcome.ok ? { targets: watchTargets(server.config) } : {}) });
  }

  async #onCollect(id: number): Promise<void> {
    try {
      const metrics = await this.#server!.metricsRegistry.getMetricsAsJSON();
      this.#send({ tessera: 'collected', id, metrics });
    } catch (err) {
      this.#send({ tessera: 'collected', id, error: errorMessage(err) });
    }
  }

  /** `GET /metrics`: the primary collects every worker's series and aggregates them. */
  #clusterMetrics(): Promise<string> {
    const id = ++this.#seq;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the primary process did not answer within ${METRICS_TIMEOUT_MS} ms`));
      }, METRICS_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      if (!this.#send({ tessera: 'metrics-request', id })) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new Error('the primary process is gone'));
      }
    }).catch((err: unknown) => {
      throw new TesseraError('TESSERA_E_SERVER_INTERNAL', `/metrics of worker ${this.id}: the whole server's metrics are not available: ${errorMessage(err)}`, { cause: err });
    });
  }

  /** Sends to the primary; false when the channel is closed (the primary is gone: node:cluster then ends this process). */
  #send(message: ToPrimary): boolean {
    if (!process.connected || !process.send) return false;
    try {
      process.send(message, undefined, {}, () => {});
      return true;
    } catch {
      return false;
    }
  }
}
