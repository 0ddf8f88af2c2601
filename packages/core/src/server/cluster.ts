/**
 * `tessera serve` with several HTTP workers (`server.workers` > 1, `--workers N`), on node:cluster.
 * The primary process forks N workers; each runs the CLI's `serve` as a whole `TesseraServer`
 * listening on the same port (node:cluster shares the listening socket and hands new connections
 * to the workers in turn). The primary serves nothing itself: it forwards signals (SIGTERM/SIGINT:
 * every worker drains; SIGHUP and `--watch`: every worker reloads, each outcome logged), replaces a
 * worker that dies with a growing delay, aggregates `/metrics` across workers, runs the management
 * requests a worker hands it (repository load/unload, routing actions) on every worker, one at a
 * time, and never outlives them nor leaves one behind. See docs/architecture.md, "Workers".
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:cluster';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { TesseraConfig } from '../config/types.js';
import { coreShares } from '../config/workers.js';
import { errorMessage } from '../errors.js';
import { availableCores, availableMemory } from '../internal/cores.js';
import { EXECUTE_TIMEOUT_MS, SECRET_ENV, aggregateOutcomes } from './cluster-broadcast.js';
import type { BroadcastResult, ManagementRequest, ToPrimary, ToWorker, WorkerOutcome } from './cluster-protocol.js';
import { WORKER_ENV, WORKERS_ENV, isTesseraMessage } from './cluster-protocol.js';
import type { ReloadOutcome } from './reload.js';
import type { WatchTargets } from './watch.js';
import { ConfigWatcher, watchTargets } from './watch.js';
import { PARENT_PID_ENV, watchParent } from './parent-watch.js';

/** How long the primary waits for one worker's series when aggregating `/metrics`; a worker that does not answer is left out. */
const COLLECT_TIMEOUT_MS = 3_000;
/** What a shutdown may take beyond `server.shutdownGracePeriod` before the primary kills the workers left (theirs is 10 s). */
const SHUTDOWN_MARGIN_MS = 15_000;
/** After a second SIGTERM/SIGINT, how long workers get to exit before they are killed. */
const FORCE_EXIT_MS = 2_000;

/** Delays before a worker that died is replaced. */
export interface RestartBackoff {
  /** Before the first replacement, ms; doubles after each one that died again soon. Default 1000. */
  initialMs?: number;
  /** Longest delay, ms. Default 30 000. */
  maxMs?: number;
  /** A worker that stayed up this long starts its slot's delay again from `initialMs`, ms. Default 60 000. */
  resetAfterMs?: number;
}

export interface ClusterPrimaryOptions {
  /** The config as the CLI resolved it; `server.workers` workers are forked. */
  config: TesseraConfig;
  /** `serve --watch`: the primary watches the config and the model files and tells every worker to reload. */
  watch?: boolean;
  /** Default: pino at `server.logLevel` on stdout. */
  logger?: Logger;
  restart?: RestartBackoff;
}

/** One worker of the cluster: its slot (1…N) outlives the processes that fill it. */
interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  /** The worker listens to the primary's messages. */
  listening: boolean;
  ready: boolean;
  /** Replacements since the slot last stayed up `resetAfterMs`. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** One worker's answer to a broadcast reload. */
export interface WorkerReload {
  worker: number;
  pid: number | undefined;
  outcome: ReloadOutcome | undefined;
  error?: string;
  targets?: WatchTargets;
}

interface Pending {
  resolve(message: ToPrimary): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The primary process of `tessera serve` with several workers. `run()` forks them and resolves
 * with the exit code once they have all exited (after `stop`, or when the first start failed).
 */
export class ClusterPrimary {
  readonly logger: Logger;
  readonly #config: TesseraConfig;
  readonly #slots: Slot[];
  readonly #backoff: Required<RestartBackoff>;
  readonly #watch: boolean;
  readonly #registry = new Registry();
  readonly #restarts: Counter;
  readonly #scraped: Gauge;
  readonly #pending = new Map<string, Pending>();
  /** Each slot's share of the cores (`TESSERA_CPUS` in its environment), by slot id - 1. */
  readonly #cores: number[];
  /** Each worker's share of the memory, bytes (`TESSERA_MEMORY`). */
  readonly #memory: number;
  /** Marks the management requests this primary asks a worker to run (the workers get it in their environment): a client cannot forge one. */
  readonly #secret = randomBytes(32).toString('base64url');
  /** The management requests, one at a time in the order they came: concurrent ones apply in the same order in every worker. */
  #managing: Promise<unknown> = Promise.resolve();
  /** Management requests some worker applied: a worker started later serves the config's models without them. */
  #managed = 0;
  #seq = 0;
  #watcher: ConfigWatcher | undefined;
  #stopping: string | undefined;
  #exitCode = 0;
  /** Every slot was ready once: from then on a worker that dies is replaced (before, the start failed). */
  #started = false;
  #deadline: NodeJS.Timeout | undefined;
  #done: ((code: number) => void) | undefined;

  constructor(options: ClusterPrimaryOptions) {
    this.#config = options.config;
    const { server } = options.config;
    this.logger = options.logger ?? pino({ level: server.logLevel }).child({ role: 'primary' });
    this.#watch = options.watch === true;
    this.#backoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000, ...options.restart };
    this.#cores = coreShares(availableCores(), server.workers);
    this.#memory = Math.floor(availableMemory() / server.workers);
    this.#slots = Array.from({ length: server.workers }, (_, i) => ({ id: i + 1, worker: undefined, startedAt: 0, listening: false, ready: false, failures: 0, restartTimer: undefined }));
    const registers = [this.#registry];
    const slots = this.#slots;
    new Gauge({
      name: 'tessera_cluster_workers',
      help: 'Worker processes of the server (server.workers) running now, by state: ready (serving every model) or starting.',
      labelNames: ['state'],
      registers,
      collect() {
        const live = slots.filter((s) => s.worker);
        const ready = live.filter((s) => s.ready).length;
        this.set({ state: 'ready' }, ready);
        this.set({ state: 'starting' }, live.length - ready);
      },
    });
    this.#scraped = new Gauge({ name: 'tessera_cluster_workers_scraped', help: 'Workers whose series this /metrics answer includes (a worker that did not answer in time is left out).', registers });
    this.#restarts = new Counter({ name: 'tessera_cluster_worker_restarts_total', help: 'Workers that died and were replaced.', registers });
  }

  /** Pids of the workers running now, by slot. */
  get pids(): (number | undefined)[] {
    return this.#slots.map((s) => s.worker?.process.pid);
  }

  /** Forks every worker; resolves with the process's exit code once all of them have exited. */
  run(): Promise<number> {
    const { server } = this.#config;
    if (server.rateLimit && !server.rateLimit.redis) {
      this.logger.warn(`server.rateLimit has no redis store: each of the ${server.workers} workers counts on its own, so a client may make up to ${server.workers} × max requests per window; set server.rateLimit.redis to share the counts`);
    }
    const cores = this.#cores.reduce((a, b) => a + b, 0);
    this.logger.info({ workers: server.workers, coresPerWorker: this.#cores, memoryPerWorker: this.#memory }, `starting ${server.workers} workers, each sized for its share of the ${cores} cores (${this.#cores.join(', ')})`);
    const done = new Promise<number>((resolve) => (this.#done = resolve));
    for (const slot of this.#slots) this.#fork(slot);
    return done;
  }

  /**
   * Drains every worker (SIGTERM/SIGINT, or a failed start with `code` 1). A second call makes the
   * workers exit at once, and kills those still there shortly after.
   */
  stop(signal: string, code = 0): void {
    if (this.#stopping) {
      this.logger.warn({ signal }, `${signal} during shutdown (after ${this.#stopping}): the workers exit now without finishing the drain`);
      this.#broadcast({ tessera: 'stop', signal, now: true });
      setTimeout(() => this.#killAll('SIGKILL'), FORCE_EXIT_MS).unref();
      return;
    }
    this.#stopping = signal;
    this.#exitCode = Math.max(this.#exitCode, code);
    this.#watcher?.close();
    for (const slot of this.#slots) clearTimeout(slot.restartTimer);
    const live = this.#live();
    this.logger.info({ signal, workers: live.length, gracePeriodMs: this.#config.server.shutdownGracePeriodMs }, `shutting down: ${live.length} workers drain`);
    if (live.length === 0) return this.#finish();
    for (const slot of live) {
      // a worker still loading its modules does not listen yet: a signal does the same
      if (slot.listening) this.#send(slot, { tessera: 'stop', signal });
      else slot.worker!.process.kill('SIGTERM');
    }
    this.#deadline = setTimeout(() => {
      this.logger.error({ pids: this.pids.filter(Boolean) }, 'workers did not exit within server.shutdownGracePeriod and its margin; killing them');
      this.#exitCode = 1;
      this.#killAll('SIGKILL');
    }, this.#config.server.shutdownGracePeriodMs + SHUTDOWN_MARGIN_MS);
  }

  /** Reloads the config in every worker (SIGHUP, `--watch`) and logs each worker's outcome. */
  async reload(trigger: string): Promise<WorkerReload[]> {
    if (this.#stopping) {
      this.logger.warn({ trigger }, `config reload (${trigger}) ignored: the server is shutting down`);
      return [];
    }
    const live = this.#live().filter((s) => s.listening);
    this.logger.info({ trigger, workers: live.length }, `config reload (${trigger}): telling ${live.length} workers`);
    const id = ++this.#seq;
    const results = await Promise.all(
      live.map(async (slot): Promise<WorkerReload> => {
        const pid = slot.worker?.process.pid;
        try {
          const reply = (await this.#ask(slot, { tessera: 'reload', id, trigger }, undefined)) as Extract<ToPrimary, { tessera: 'reloaded' }>;
          const o = reply.outcome;
          if (o.ok) this.logger.info({ worker: slot.id, pid, generation: o.generation, ms: Math.round(o.durationMs) }, `worker ${slot.id}: config reloaded, generation ${o.generation} serving`);
          else this.logger.error({ worker: slot.id, pid, generation: o.generation, code: o.code }, `worker ${slot.id}: config reload refused, generation ${o.generation} keeps serving: ${o.error}`);
          return { worker: slot.id, pid, outcome: o, ...(reply.targets ? { targets: reply.targets } : {}) };
        } catch (err) {
          this.logger.error({ worker: slot.id, pid }, `worker ${slot.id}: no reload outcome: ${errorMessage(err)}`);
          return { worker: slot.id, pid, outcome: undefined, error: errorMessage(err) };
        }
      }),
    );
    const applied = results.filter((r) => r.outcome?.ok).length;
    if (applied > 0 && applied < results.length) this.logger.warn({ trigger, applied, workers: results.length }, `config reload (${trigger}): applied by ${applied} of ${results.length} workers only: they serve different configs until the next reload that every worker applies`);
    const targets = results.find((r) => r.targets)?.targets;
    if (targets) this.#watcher?.update(targets);
    return results;
  }

  /**
   * The whole server's metrics in Prometheus text: every worker's series aggregated by
   * prom-client's rules (counters and histograms summed per label set, gauges as each declares:
   * sum by default), plus the primary's own `tessera_cluster_*` series.
   */
  async metrics(): Promise<string> {
    const id = ++this.#seq;
    const live = this.#live().filter((s) => s.listening);
    const answers = await Promise.all(
      live.map(async (slot) => {
        try {
          const reply = (await this.#ask(slot, { tessera: 'collect', id }, COLLECT_TIMEOUT_MS)) as Extract<ToPrimary, { tessera: 'collected' }>;
          if (reply.metrics === undefined) throw new Error(reply.error ?? 'no metrics');
          return reply.metrics as MetricObjectWithValues<MetricValue<string>>[];
        } catch (err) {
          this.logger.warn({ worker: slot.id, pid: slot.worker?.process.pid }, `/metrics: worker ${slot.id} left out: ${errorMessage(err)}`);
          return undefined;
        }
      }),
    );
    const got = answers.filter((a) => a !== undefined);
    this.#scraped.set(got.length);
    const own = await this.#registry.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([...got, own] as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
  }

  /** Queues a management request a worker received; the outcome goes back to that worker (not to a replacement, whose ids are its own). */
  #manage(slot: Slot, worker: Worker, id: number, request: ManagementRequest): void {
    const run = this.#managing.then(() => this.#execute(slot.id, request));
    this.#managing = run.catch(() => undefined);
    void run.then(
      (result) => slot.worker === worker && this.#send(slot, { tessera: 'managed', id, result }),
      (err: unknown) => slot.worker === worker && this.#send(slot, { tessera: 'managed', id, error: errorMessage(err) }),
    );
  }

  /**
   * Runs a management request on every worker (each through its own routes, `execute`) and
   * decides the client's answer (`aggregateOutcomes`): a worker not running or still starting, one
   * that fails, dies or takes longer than `EXECUTE_TIMEOUT_MS` counts as not applying it.
   */
  async #execute(origin: number, request: ManagementRequest): Promise<BroadcastResult> {
    const id = ++this.#seq;
    const what = `${request.method} ${request.url.split('?')[0]}`;
    const outcomes = await Promise.all(
      this.#slots.map(async (slot): Promise<WorkerOutcome> => {
        const pid = slot.worker?.process.pid;
        if (!slot.worker) return { worker: slot.id, error: 'not running (it is being replaced)' };
        if (!slot.listening || !slot.ready) return { worker: slot.id, pid, error: "still starting (it will serve the config's models)" };
        try {
          const reply = (await this.#ask(slot, { tessera: 'execute', id, request }, EXECUTE_TIMEOUT_MS)) as Extract<ToPrimary, { tessera: 'executed' }>;
          return reply.answer ? { worker: slot.id, pid, answer: reply.answer } : { worker: slot.id, pid, error: reply.error ?? 'no answer' };
        } catch (err) {
          return { worker: slot.id, pid, error: errorMessage(err) };
        }
      }),
    );
    if (outcomes.some((o) => o.answer && o.answer.status >= 200 && o.answer.status < 300)) this.#managed++;
    const result = aggregateOutcomes(what, outcomes, origin, process.pid);
    if (result.ok) this.logger.info({ request: what, status: result.answer.status, workers: result.workers, from: origin }, `${what}: every worker answered ${result.answer.status}`);
    else this.logger.error({ request: what, outcomes: result.outcomes, from: origin }, result.message);
    return result;
  }

  /** Starts `--watch` (once every worker is ready: the files are the config's). */
  #startWatching(): void {
    if (!this.#watch || this.#watcher || this.#stopping) return;
    const targets = watchTargets(this.#config);
    this.#watcher = new ConfigWatcher(targets, () => void this.reload('a watched file changed'), {
      onError: (err, target) => this.logger.warn({ err, target }, `--watch: cannot watch ${target}: ${errorMessage(err)}`),
    });
    this.logger.info({ files: targets.files, folders: targets.trees }, 'watching the config, the model files and the repository folder for changes');
  }

  #fork(slot: Slot): void {
    // each worker sizes itself (instances: auto, threads, libuv's pool) for its share, not the machine
    const share = { TESSERA_CPUS: String(this.#cores[slot.id - 1]), TESSERA_MEMORY: String(this.#memory) };
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.id), [WORKERS_ENV]: String(this.#slots.length), [SECRET_ENV]: this.#secret, ...share });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listening = false;
    slot.ready = false;
    worker.on('message', (message: unknown) => this.#onMessage(slot, worker, message));
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    // a failed send (the worker just died) surfaces here, not as an uncaught exception
    worker.on('error', (err) => this.logger.debug({ err, worker: slot.id }, `worker ${slot.id}: ${errorMessage(err)}`));
  }

  #onMessage(slot: Slot, worker: Worker, message: unknown): void {
    if (!isTesseraMessage(message) || slot.worker !== worker) return;
    const m = message as ToPrimary;
    switch (m.tessera) {
      case 'hello':
        slot.listening = true;
        // a stop that came while this worker was loading its modules went out as a signal already
        return;
      case 'ready':
        return this.#onReady(slot, m.url);
      case 'metrics-request':
        void this.metrics().then(
          (text) => this.#send(slot, { tessera: 'metrics', id: m.id, text }),
          (err: unknown) => this.#send(slot, { tessera: 'metrics', id: m.id, error: errorMessage(err) }),
        );
        return;
      case 'manage':
        return this.#manage(slot, worker, m.id, m.request);
      case 'collected':
      case 'reloaded':
      case 'executed': {
        const key = `${slot.id}:${m.id}`;
        const pending = this.#pending.get(key);
        if (!pending) return;
        this.#pending.delete(key);
        clearTimeout(pending.timer);
        pending.resolve(m);
        return;
      }
    }
  }

  #onReady(slot: Slot, url: string): void {
    slot.ready = true;
    const pid = slot.worker?.process.pid;
    if (this.#started) {
      this.logger.info({ worker: slot.id, pid, url }, `worker ${slot.id} (pid ${pid}) is back: ready at ${url}`);
      if (this.#managed > 0) {
        this.logger.warn(
          { worker: slot.id, pid, managementRequests: this.#managed },
          `worker ${slot.id} was replaced and serves the config's models: repeat the repository/routing changes made since start (${this.#managed} applied through the management API), or put them in the config`,
        );
      }
      return;
    }
    if (!this.#slots.every((s) => s.ready)) return;
    this.#started = true;
    this.logger.info({ url, workers: this.#slots.length, pids: this.pids }, `all ${this.#slots.length} workers ready at ${url}`);
    this.#startWatching();
  }

  #onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.listening = false;
    slot.ready = false;
    const pid = worker.process.pid;
    for (const [key, pending] of this.#pending) {
      if (!key.startsWith(`${slot.id}:`)) continue;
      this.#pending.delete(key);
      clearTimeout(pending.timer);
      pending.reject(new Error(`worker ${slot.id} (pid ${pid}) exited`));
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.#stopping) {
      if (code !== 0) this.#exitCode = 1;
      this.logger.info({ worker: slot.id, pid, code, signal }, `worker ${slot.id} (pid ${pid}) exited (${how})`);
      if (this.#live().length === 0) this.#finish();
      return;
    }
    if (!this.#started) {
      // the first start failed (the worker printed why): a config or model error would fail every time
      this.logger.error({ worker: slot.id, pid, code, signal }, `worker ${slot.id} (pid ${pid}) exited (${how}) before the server was ready; stopping`);
      this.stop('a worker failed to start', 1);
      return;
    }
    if (Date.now() - slot.startedAt >= this.#backoff.resetAfterMs) slot.failures = 0;
    const delay = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** slot.failures);
    slot.failures++;
    this.#restarts.inc();
    this.logger.error({ worker: slot.id, pid, code, signal, restartInMs: delay }, `worker ${slot.id} (pid ${pid}) exited unexpectedly (${how}); starting a new one in ${delay} ms`);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.#stopping) this.#fork(slot);
    }, delay);
  }

  #finish(): void {
    clearTimeout(this.#deadline);
    this.logger.info({ code: this.#exitCode }, 'every worker exited');
    this.#done?.(this.#exitCode);
  }

  #live(): Slot[] {
    return this.#slots.filter((s) => s.worker !== undefined);
  }

  /** Kills every worker still running (the primary is about to exit). Synchronous: safe in an 'exit' handler. */
  #killAll(signal: NodeJS.Signals): void {
    for (const s of this.#slots) {
      const p = s.worker?.process;
      if (p && p.exitCode === null && p.signalCode === null) p.kill(signal);
    }
  }

  /** Kills what is left when the primary exits (a fatal error in the primary, a forced exit). */
  killWorkers(): void {
    this.#killAll('SIGKILL');
  }

  #broadcast(message: ToWorker): void {
    for (const slot of this.#live()) if (slot.listening) this.#send(slot, message);
  }

  #send(slot: Slot, message: ToWorker): boolean {
    const w = slot.worker;
    if (!w?.isConnected()) return false;
    try {
      w.send(message, undefined, {}, () => {});
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a request to one worker and resolves with its answer (same `id`); rejects when it exits or after `timeoutMs`. */
  #ask(slot: Slot, message: Extract<ToWorker, { id: number }>, timeoutMs: number | undefined): Promise<ToPrimary> {
    const key = `${slot.id}:${message.id}`;
    return new Promise<ToPrimary>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.#pending.delete(key);
              reject(new Error(`no answer within ${timeoutMs} ms`));
            }, timeoutMs);
      this.#pending.set(key, { resolve, reject, timer });
      if (!this.#send(slot, message)) {
        this.#pending.delete(key);
        clearTimeout(timer);
        reject(new Error('the worker is not connected'));
      }
    });
  }
}

/**
 * `tessera serve` in the primary process: runs the cluster with the process's signals wired to
 * it (SIGTERM/SIGINT drain, SIGHUP reloads), then exits with its code. Never returns.
 */
export async function serveCluster(options: ClusterPrimaryOptions): Promise<never> {
  const primary = new ClusterPrimary(options);
  const log = primary.logger;
  process.on('SIGTERM', () => primary.stop('SIGTERM'));
  process.on('SIGINT', () => primary.stop('SIGINT'));
  process.on('SIGHUP', () => void primary.reload('SIGHUP'));
  process.on('unhandledRejection', (reason: unknown) => log.error({ err: reason }, `unhandled promise rejection in the primary (a bug; please report it): ${errorMessage(reason)}`));
  process.on('uncaughtException', (err: Error) => {
    log.fatal({ err }, `uncaught exception in the primary (a bug; please report it): ${err.message}; stopping the workers`);
    primary.stop('uncaughtException', 1);
  });
  // started by another process for its own use (tessera tune): stop when it is gone, even killed with SIGKILL
  watchParent((pid) => primary.stop(`${PARENT_PID_ENV} ${pid} exited`));
  // whatever ends the primary, no worker outlives it
  process.on('exit', () => primary.killWorkers());
  const code = await primary.run();
  process.exit(code);
}

/** Whether `tessera serve` should run the cluster's primary here: several workers, and this process is not one of them. */
export function isClusterPrimary(config: TesseraConfig): boolean {
  return config.server.workers > 1 && !cluster.isWorker;
}
