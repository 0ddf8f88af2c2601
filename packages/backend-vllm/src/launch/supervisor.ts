/**
 * `ReplicaSupervisor`: starts the `vllm serve` replicas of a `launch:` section (one process per
 * GPU set, each in its own process group, no shell), waits for their `GET /health`, restarts the
 * ones that exit (exponential backoff), and stops them all (SIGTERM, then SIGKILL).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { TesseraError, errorMessage } from '@tessera/core';
import type { LaunchConfig, ResolvedLaunchConfig } from './config.js';
import { resolveLaunchConfig, vllmServeArgs } from './config.js';

/** Lines of a replica's output kept for error messages. */
const KEPT_LINES = 20;
/** Longest output line logged (longer ones are cut). */
const MAX_LINE = 4000;

/** Options of `ReplicaSupervisor`. */
export interface ReplicaSupervisorOptions {
  /** The Tessera model the replicas serve (for messages and logs). */
  modelName: string;
  /** The `launch:` section (validated or not; defaults and durations are resolved here). */
  config: LaunchConfig;
  /** Replica output goes here at debug level; starts, exits and restarts at info/warn. */
  logger: Logger;
  /** A replica that was down answers `/health` again (after a restart). Not called for the initial start. */
  onUp?: (url: string, index: number) => void;
  /** A replica went down (its process exited); `reason` says how. */
  onDown?: (url: string, index: number, reason: string) => void;
}

/** What `replicas()` reports about one replica. */
export interface ReplicaInfo {
  index: number;
  url: string;
  port: number;
  gpus: number[];
  /** `starting` (first start or restart), `up`, `down` (waiting for a restart), `stopped`. */
  state: 'starting' | 'up' | 'down' | 'stopped';
  /** Pid of the current process (its process group id too), if one runs. */
  pid: number | undefined;
  /** Restarts so far. */
  restarts: number;
}

interface Replica {
  index: number;
  gpus: number[];
  port: number;
  url: string;
  state: ReplicaInfo['state'];
  child: ChildProcess | undefined;
  /** Resolves when the current process has exited. */
  exited: Promise<void> | undefined;
  exitInfo: string | undefined;
  lines: string[];
  restarts: number;
  /** Restarts that failed in a row (drives the backoff). */
  failures: number;
  upSince: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** Supervisors with live processes, killed when this process exits without stopping them. */
const live = new Set<ReplicaSupervisor>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of live) s.killNow();
  });
}

/** Signals a process group, ignoring one that is gone. */
/** Flags whose value is a secret: their values are never logged. */
const SECRET_FLAGS = new Set(['--api-key', '--hf-token', '--token']);

/** `argv` for logs and messages: the values of secret flags replaced. */
export function redactArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    if (eq > 0 && SECRET_FLAGS.has(a.slice(0, eq))) out.push(`${a.slice(0, eq)}=[redacted]`);
    else if (SECRET_FLAGS.has(a) && i + 1 < argv.length) {
      out.push(a, '[redacted]');
      i++;
    } else out.push(a);
  }
  return out;
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone. EPERM: not ours any more.
  }
}

/** `http://host:port` for a replica's `--host` (wildcards become loopback). */
function replicaUrl(host: string, port: number): string {
  let h = host;
  if (h === '0.0.0.0' || h === '') h = '127.0.0.1';
  else if (h === '::') h = '::1';
  return h.includes(':') ? `http://[${h}]:${port}` : `http://${h}:${port}`;
}

/** A free TCP port on `host` (the OS picks it; another process could take it before the replica does). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code ?? 'unknown'}`;
}

/** Supervises the replicas of one model's `launch:` section. */
export class ReplicaSupervisor {
  readonly modelName: string;
  readonly config: ResolvedLaunchConfig;
  readonly #logger: Logger;
  readonly #onUp: ReplicaSupervisorOptions['onUp'];
  readonly #onDown: ReplicaSupervisorOptions['onDown'];
  readonly #replicas: Replica[];
  readonly #agent = new Agent({ keepAliveTimeout: 1000, connections: 2 });
  #started: Promise<string[]> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: ReplicaSupervisorOptions) {
    this.modelName = options.modelName;
    this.config = resolveLaunchConfig(options.config, `models.${options.modelName}.launch`);
    this.#logger = options.logger;
    this.#onUp = options.onUp;
    this.#onDown = options.onDown;
    this.#replicas = this.config.gpus.map((gpus, index) => ({
      index,
      gpus,
      port: 0,
      url: '',
      state: 'stopped',
      child: undefined,
      exited: undefined,
      exitInfo: undefined,
      lines: [],
      restarts: 0,
      failures: 0,
      upSince: 0,
      restartTimer: undefined,
    }));
  }

  /** The replicas' state. */
  replicas(): ReplicaInfo[] {
    return this.#replicas.map((r) => ({ index: r.index, url: r.url, port: r.port, gpus: [...r.gpus], state: r.state, pid: r.child?.pid, restarts: r.restarts }));
  }

  /** The replicas' URLs (`http://host:port`), known once `start()` has picked the ports. */
  urls(): string[] {
    return this.#replicas.map((r) => r.url);
  }

  /**
   * Starts every replica and resolves with their URLs once each answers `GET /health` with 200.
   * If one exits or misses `startupTimeout`, stops all of them and rejects with
   * `TESSERA_E_LAUNCH_FAILED` (exit code or signal, and the last lines it printed).
   */
  start(): Promise<string[]> {
    if (this.#stopping) return Promise.reject(new TesseraError('TESSERA_E_LAUNCH_FAILED', `models.${this.modelName}.launch: the supervisor was stopped; make a new one`));
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<string[]> {
    const c = this.config;
    for (const r of this.#replicas) {
      r.port = c.basePort === 0 ? await freePort(c.host) : c.basePort + r.index;
      r.url = replicaUrl(c.host, r.port);
    }
    live.add(this);
    installExitHook();
    try {
      await Promise.all(
        this.#replicas.map(async (r) => {
          this.#spawn(r);
          const failure = await this.#waitHealthy(r);
          if (failure !== undefined) throw new TesseraError('TESSERA_E_LAUNCH_FAILED', this.#failureMessage(r, failure));
          r.state = 'up';
          r.upSince = Date.now();
          this.#logger.info({ replica: r.index, url: r.url, replicaPid: r.child?.pid }, `${this.modelName}: vLLM replica ${r.index} is up at ${r.url}`);
        }),
      );
    } catch (err) {
      await this.stop();
      if (err instanceof TesseraError) throw err;
      throw new TesseraError('TESSERA_E_LAUNCH_FAILED', `models.${this.modelName}.launch: ${errorMessage(err)}`, { cause: err });
    }
    return this.urls();
  }

  #failureMessage(r: Replica, failure: string): string {
    const argv = [...this.config.args, ...vllmServeArgs(this.config, r.index, r.port)];
    const output = r.lines.length ? `; last output:\n${r.lines.map((l) => `  ${l}`).join('\n')}` : '; it printed nothing';
    return `models.${this.modelName}.launch: replica ${r.index} (CUDA_VISIBLE_DEVICES=${r.gpus.join(',')}, \`${[this.config.command, ...redactArgs(argv)].join(' ')}\`) ${failure}${output}`;
  }

  /** Starts the replica's process (its own process group; output piped to the logger). */
  #spawn(r: Replica): void {
    const c = this.config;
    const argv = [...c.args, ...vllmServeArgs(c, r.index, r.port)];
    r.lines = [];
    r.exitInfo = undefined;
    r.state = 'starting';
    let child: ChildProcess;
    try {
      child = spawn(c.command, argv, {
        env: { ...process.env, ...c.env, CUDA_VISIBLE_DEVICES: r.gpus.join(',') },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      r.child = undefined;
      r.exitInfo = `could not be started: ${errorMessage(err)}`;
      r.exited = Promise.resolve();
      return;
    }
    r.child = child;
    this.#logger.info({ replica: r.index, replicaPid: child.pid, command: c.command, args: redactArgs(argv), gpus: r.gpus }, `${this.modelName}: starting vLLM replica ${r.index} on port ${r.port}`);
    for (const [stream, name] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      if (!stream) continue;
      stream.setEncoding('utf8');
      let partial = '';
      stream.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.#line(r, child, name, line);
      });
      stream.on('end', () => {
        if (partial) this.#line(r, child, name, partial);
        partial = '';
      });
    }
    r.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (info: string): void => {
        if (done) return;
        done = true;
        if (r.child === child) r.exitInfo = info;
        resolve();
        this.#exited(r, child, info);
      };
      child.once('error', (err) => finish(`could not be started: ${err.message}`));
      child.once('exit', (code, signal) => finish(describeExit(code, signal)));
    });
  }

  #line(r: Replica, child: ChildProcess, stream: 'stdout' | 'stderr', raw: string): void {
    const line = (raw.endsWith('\r') ? raw.slice(0, -1) : raw).slice(0, MAX_LINE);
    if (r.child === child) {
      r.lines.push(line);
      if (r.lines.length > KEPT_LINES) r.lines.shift();
    }
    this.#logger.debug({ replica: r.index, replicaPid: child.pid, stream }, line);
  }

  /**
   * Polls `GET /health` until 200. Resolves `undefined` when healthy, or why it failed (the
   * process exited, the timeout passed, the supervisor is stopping).
   */
  async #waitHealthy(r: Replica): Promise<string | undefined> {
    const c = this.config;
    const deadline = Date.now() + c.startupTimeoutMs;
    const child = r.child;
    for (;;) {
      if (this.#stopping) return 'was stopped while starting';
      if (r.exitInfo !== undefined || !child) return `${r.exitInfo ?? 'could not be started'} before it became healthy`;
      if (await this.#healthy(r.url, Math.min(5000, Math.max(250, c.healthIntervalMs)))) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return `did not answer GET ${r.url}/health with 200 within ${c.startupTimeoutMs} ms`;
      // Wake up early when the process exits.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.min(c.healthIntervalMs, left));
        }),
        r.exited,
      ]);
      clearTimeout(timer);
    }
  }

  async #healthy(url: string, timeoutMs: number): Promise<boolean> {
    try {
      const res = await request(`${url}/health`, { dispatcher: this.#agent, method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** A process exited: after the start, report it and schedule a restart. */
  #exited(r: Replica, child: ChildProcess, info: string): void {
    // Stragglers of the group (vLLM's worker processes) must not keep the GPUs.
    signalGroup(child.pid, 'SIGKILL');
    if (r.child !== child) return;
    const level = this.#stopping ? 'info' : 'warn';
    this.#logger[level]({ replica: r.index, replicaPid: child.pid, lastOutput: r.lines.slice(-5) }, `${this.modelName}: vLLM replica ${r.index} ${info}`);
    if (this.#stopping) {
      r.state = 'stopped';
      return;
    }
    if (r.state !== 'up') return; // a (re)start in progress handles it
    r.state = 'down';
    if (Date.now() - r.upSince >= this.config.restartBackoff.resetAfterMs) r.failures = 0;
    this.#callDown(r, info);
    this.#scheduleRestart(r);
  }

  #callDown(r: Replica, reason: string): void {
    try {
      this.#onDown?.(r.url, r.index, reason);
    } catch (err) {
      this.#logger.error({ err, replica: r.index }, `${this.modelName}: onDown failed`);
    }
  }

  #scheduleRestart(r: Replica): void {
    const b = this.config.restartBackoff;
    const delay = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(r.failures, 30));
    r.failures++;
    this.#logger.info({ replica: r.index, delayMs: delay }, `${this.modelName}: restarting vLLM replica ${r.index} in ${delay} ms`);
    r.restartTimer = setTimeout(() => {
      r.restartTimer = undefined;
      this.#restart(r).catch((err: unknown) => this.#logger.error({ err, replica: r.index }, `${this.modelName}: restarting replica ${r.index} failed`));
    }, delay);
    // A pending restart alone does not keep the process alive (the server serving the model does).
    r.restartTimer.unref();
  }

  async #restart(r: Replica): Promise<void> {
    if (this.#stopping) return;
    r.restarts++;
    this.#spawn(r);
    const failure = await this.#waitHealthy(r);
    if (this.#stopping) return;
    if (failure === undefined) {
      r.state = 'up';
      r.upSince = Date.now();
      this.#logger.info({ replica: r.index, url: r.url, replicaPid: r.child?.pid, restarts: r.restarts }, `${this.modelName}: vLLM replica ${r.index} is up again at ${r.url}`);
      try {
        this.#onUp?.(r.url, r.index);
      } catch (err) {
        this.#logger.error({ err, replica: r.index }, `${this.modelName}: onUp failed`);
      }
      return;
    }
    this.#logger.warn({ replica: r.index, lastOutput: r.lines }, this.#failureMessage(r, failure));
    if (r.exitInfo === undefined) await this.#terminate(r); // timed out: kill it first
    if (this.#stopping) return;
    r.state = 'down';
    this.#scheduleRestart(r);
  }

  /** SIGTERM to the replica's process group, SIGKILL after `stopTimeout`; resolves when it exited. */
  async #terminate(r: Replica): Promise<void> {
    const child = r.child;
    if (!child || r.exitInfo !== undefined) return;
    signalGroup(child.pid, 'SIGTERM');
    const kill = setTimeout(() => {
      this.#logger.warn({ replica: r.index, replicaPid: child.pid }, `${this.modelName}: vLLM replica ${r.index} did not exit within ${this.config.stopTimeoutMs} ms of SIGTERM; sending SIGKILL`);
      signalGroup(child.pid, 'SIGKILL');
    }, this.config.stopTimeoutMs);
    await r.exited;
    clearTimeout(kill);
  }

  /** Stops every replica (SIGTERM, SIGKILL after `stopTimeout`) and never restarts them. Idempotent; resolves when all exited. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    for (const r of this.#replicas) {
      if (r.restartTimer) clearTimeout(r.restartTimer);
      r.restartTimer = undefined;
    }
    await Promise.all(this.#replicas.map((r) => this.#terminate(r)));
    for (const r of this.#replicas) r.state = 'stopped';
    live.delete(this);
    await this.#agent.destroy();
  }

  /** SIGKILLs every replica's process group at once (for process exit). */
  killNow(): void {
    for (const r of this.#replicas) if (r.exitInfo === undefined) signalGroup(r.child?.pid, 'SIGKILL');
  }
}
