import cluster from 'node:cluster';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest, InjectOptions, RouteOptions, preHandlerAsyncHookHandler, preParsingHookHandler } from 'fastify';
import { TesseraError, errorMessage } from '../errors.js';
import type { TesseraServer, TesseraServerOptions } from '../server.js';
import { EXECUTE_HEADER, SECRET_ENV, WORKERS_HEADER, answerError, managementAnswer, managementRequest } from './cluster-broadcast.js';
import type { BroadcastResult, ManagementAnswer, ManagementRequest, ToPrimary, ToWorker } from './cluster-protocol.js';
import { WORKER_ENV, WORKERS_ENV, isTesseraMessage } from './cluster-protocol.js';
import { watchTargets } from './watch.js';

/** How long `GET /metrics` on a worker waits for the primary's aggregated answer. */
const METRICS_TIMEOUT_MS = 10_000;

/**
 * Management routes whose effect would otherwise stay inside the one worker that served them (the
 * repository's load and unload, routing actions): their POSTs run on every worker.
 */
const EVERY_WORKER: ReadonlySet<string> = new Set(['/v2/repository/models/:model/load', '/v2/repository/models/:model/unload', '/v1/routing/:model/:action']);

/**
 * The worker's half of `tessera serve` with several workers (`server.workers` > 1): it answers
 * the primary's messages (stop, reload, collect metrics, run a management request), asks the
 * primary for the whole server's metrics when `GET /metrics` reaches it, and hands the management
 * requests that change a worker's state to the primary, which runs them on every worker. Made by
 * the CLI when this process is a cluster worker; `attach` it to the server before `start()`.
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
  /** Management requests handed to the primary, by id: settled by its `managed` answer. */
  readonly #managing = new Map<number, { resolve(result: BroadcastResult): void; reject(err: Error): void }>();
  /** The raw body of each management request, as it arrived (what the route parsed is this worker's only). */
  readonly #bodies = new WeakMap<FastifyRequest, Buffer[]>();
  /** The cluster's secret (the primary's `execute` header carries it), hashed: compared in constant time. */
  readonly #secret: Buffer | undefined;
  readonly #secretText: string | undefined;

  /** The worker of this process, or undefined when it is not a worker of `tessera serve`'s cluster. */
  static current(): ClusterWorker | undefined {
    const id = Number(process.env[WORKER_ENV]);
    if (!cluster.isWorker || !Number.isInteger(id) || id <= 0) return undefined;
    const secret = process.env[SECRET_ENV];
    // nothing this process starts (a Python backend's workers, a launched engine) inherits it
    delete process.env[SECRET_ENV];
    return new ClusterWorker(id, Number(process.env[WORKERS_ENV]) || 0, secret);
  }

  private constructor(id: number, workers: number, secret: string | undefined) {
    this.id = id;
    this.workers = workers;
    this.#secretText = secret || undefined;
    this.#secret = this.#secretText === undefined ? undefined : digest(this.#secretText);
  }

  /** The server options a worker needs: `/metrics` answered from the primary's aggregate. */
  serverOptions(): Pick<TesseraServerOptions, 'metricsText'> {
    return { metricsText: () => this.#clusterMetrics() };
  }

  /**
   * Hooks the worker up to its server (before `start()`): the hand-off of management requests on
   * the routes the server is about to register, and the primary's messages. `stop` is the CLI's shutdown.
   */
  attach(server: TesseraServer, stop: (signal: string) => void): void {
    this.#server = server;
    this.#stop = stop;
    server.app.addHook('onRoute', (route) => this.#guard(route));
    process.on('message', (message: unknown) => this.#onMessage(message));
    process.once('disconnect', () => {
      for (const [id, pending] of this.#managing) {
        this.#managing.delete(id);
        pending.reject(new Error('the primary process is gone'));
      }
    });
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
    if (!EVERY_WORKER.has(route.url) || !methods.includes('POST')) return;
    const bodies = this.#bodies;
    // keeps the body's bytes as they stream to the parser (which still enforces server.bodyLimit)
    const capture: preParsingHookHandler = (request, _reply, payload, done) => {
      const chunks: Buffer[] = [];
      bodies.set(request, chunks);
      const tee = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          callback(null, chunk);
        },
      });
      payload.once('error', (err) => tee.destroy(err));
      done(null, payload.pipe(tee));
    };
    // after the onRequest hooks (authentication answers first) and the body's validation, before the handler
    const forward: preHandlerAsyncHookHandler = async (request, reply) => {
      if (request.method !== 'POST' || this.#fromPrimary(request)) return;
      return this.#everyWorker(request, reply);
    };
    route.preParsing = [capture, ...hooks(route.preParsing)];
    route.preHandler = [forward, ...hooks(route.preHandler)];
  }

  /**
   * Whether the primary sent this request to be run here: its internal header carries the cluster's
   * secret. The header is removed either way (no hook or handler after this sees it, no log has it);
   * one without the secret (a client's) is a request like any other, run on every worker.
   */
  #fromPrimary(request: FastifyRequest): boolean {
    const value = request.headers[EXECUTE_HEADER];
    if (value === undefined) return false;
    delete request.headers[EXECUTE_HEADER];
    return typeof value === 'string' && this.#secret !== undefined && timingSafeEqual(digest(value), this.#secret);
  }

  /** Hands a management request to the primary, which runs it on every worker (this one too), and answers with the outcome. */
  async #everyWorker(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const chunks = this.#bodies.get(request);
    const forwarded = managementRequest({ method: request.method, url: request.url, id: String(request.id), headers: request.headers, remoteAddress: request.socket.remoteAddress }, chunks ? Buffer.concat(chunks) : undefined);
    const result = await this.#manage(forwarded);
    const workers = `${result.answered}/${result.workers}`;
    if (!result.ok) throw new TesseraError('TESSERA_E_SERVER_CLUSTER_PARTIAL', result.message, { headers: { [WORKERS_HEADER]: workers } });
    const { answer } = result;
    const req = request.tessera;
    if (req) {
      // the access log and the request counters as if the route had answered here
      if (answer.status < 300) req.model = (request.params as { model?: string }).model;
      const { code } = answer.status >= 400 ? answerError(answer) : {};
      if (code) req.code = code;
    }
    return reply.code(answer.status).headers({ ...answer.headers, [WORKERS_HEADER]: workers }).send(answer.body);
  }

  /** Sends a management request to the primary and waits for the outcome on every worker (the primary bounds each worker's part). */
  #manage(request: ManagementRequest): Promise<BroadcastResult> {
    const id = ++this.#seq;
    return new Promise<BroadcastResult>((resolve, reject) => {
      this.#managing.set(id, { resolve, reject });
      if (!this.#send({ tessera: 'manage', id, request })) {
        this.#managing.delete(id);
        reject(new Error('the primary process is gone'));
      }
    }).catch((err: unknown) => {
      throw new TesseraError('TESSERA_E_SERVER_INTERNAL', `worker ${this.id}: ${request.method} ${request.url.split('?')[0]} could not be run on every worker: ${errorMessage(err)}`, { cause: err });
    });
  }

  /** Runs a management request the primary sent (another worker received it, or this one) through this server's own routes. */
  async #onExecute(id: number, request: ManagementRequest): Promise<void> {
    const server = this.#server;
    let answer: ManagementAnswer | undefined;
    let error: string | undefined;
    if (!server || (server.state !== 'ready' && server.state !== 'draining')) error = `worker ${this.id} is ${server?.state ?? 'not attached'}`;
    else if (this.#secretText === undefined) error = `worker ${this.id} has no cluster secret (${SECRET_ENV}) in its environment`;
    else {
      try {
        const res = await server.app.inject({
          method: request.method as InjectOptions['method'],
          url: request.url,
          headers: { ...request.headers, [EXECUTE_HEADER]: this.#secretText },
          ...(request.body !== undefined ? { payload: Buffer.from(request.body, 'base64') } : {}),
          ...(request.remoteAddress ? { remoteAddress: request.remoteAddress } : {}),
        });
        answer = managementAnswer(res.statusCode, res.headers, res.body);
      } catch (err) {
        error = errorMessage(err);
      }
    }
    this.#send({ tessera: 'executed', id, ...(answer ? { answer } : { error: error ?? 'no answer' }) });
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
      case 'execute':
        return void this.#onExecute(m.id, m.request);
      case 'managed': {
        const pending = this.#managing.get(m.id);
        if (!pending) return;
        this.#managing.delete(m.id);
        if (m.result) pending.resolve(m.result);
        else pending.reject(new Error(m.error ?? 'no outcome'));
        return;
      }
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

/** A route's hooks of one kind as a list. */
function hooks<T>(existing: T | T[] | undefined): T[] {
  return existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
