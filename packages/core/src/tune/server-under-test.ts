import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { TesseraError, errorMessage } from '../errors.js';
import { type TesseraProcess, startTessera } from '../testing/process.js';
import { PARENT_PID_ENV } from '../server/parent-watch.js';
import { type PromSample, parsePrometheusText, sumSamples } from './prometheus-text.js';

/** How many lines of the child's output are kept for error messages. */
const KEEP_LINES = 200;

export interface ServerUnderTestOptions {
  /** The CLI script (`tessera`'s own `cli.js`). */
  cli: string;
  /** The generated config file: written here, read by the server, rewritten for each reload. */
  configFile: string;
  /** How long loading may take, ms. */
  startTimeoutMs: number;
  env?: Record<string, string | undefined>;
  /** Ctrl-C: the server is killed, also while it starts. */
  signal?: AbortSignal;
}

/**
 * One `tessera serve` child process on a generated config, for the sweep: started with `--port 0`
 * (its URL read from the ready line), changed by rewriting the config and a SIGHUP, stopped with
 * SIGTERM and, if it lingers, SIGKILL. Every instance is also killed when this process exits, so a
 * sweep never leaves a server behind.
 */
export class ServerUnderTest {
  readonly #proc: TesseraProcess;
  readonly #options: ServerUnderTestOptions;
  /** How long the start took, ms. */
  readonly startMs: number;

  private constructor(proc: TesseraProcess, options: ServerUnderTestOptions, startMs: number) {
    this.#proc = proc;
    this.#options = options;
    this.startMs = startMs;
  }

  /** Writes `config` and starts a server on it; resolves once it is ready. Throws `TESSERA_E_TUNE_SERVER` with its last output when it is not. */
  static async start(config: Record<string, unknown>, options: ServerUnderTestOptions): Promise<ServerUnderTest> {
    await writeFile(options.configFile, stringify(config));
    const started = performance.now();
    let proc: TesseraProcess;
    try {
      proc = await startTessera({ args: ['serve', '-c', options.configFile, '--port', '0'], cli: options.cli, timeoutMs: options.startTimeoutMs, keepLines: KEEP_LINES, env: { ...options.env, [PARENT_PID_ENV]: String(process.pid) }, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      throw new TesseraError('TESSERA_E_TUNE_SERVER', `the server under test did not start: ${errorMessage(err).trim()}`, { cause: err });
    }
    const server = new ServerUnderTest(proc, options, performance.now() - started);
    track(proc);
    return server;
  }

  /** The server's base URL (`http://127.0.0.1:PORT`). */
  get url(): string {
    return this.#proc.url;
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<number | null> {
    return this.#proc.exited;
  }

  /** GET a path as JSON; throws `TESSERA_E_TUNE_SERVER` on a non-2xx answer. */
  async json<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok) throw new TesseraError('TESSERA_E_TUNE_SERVER', `GET ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  /** The server's metrics. */
  async metrics(): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new TesseraError('TESSERA_E_TUNE_SERVER', `GET /metrics answered ${res.status}`);
    return parsePrometheusText(await res.text());
  }

  /**
   * Rewrites the config and reloads it (SIGHUP); resolves with how long it took once the server
   * counts the reload as applied and is ready. A refused reload throws `TESSERA_E_TUNE_SERVER` with the server's reason.
   */
  async reload(config: Record<string, unknown>, timeoutMs = this.#options.startTimeoutMs): Promise<number> {
    const before = await this.metrics();
    const applied = sumSamples(before, 'tessera_config_reloads_total', (l) => l['result'] === 'applied');
    const refused = sumSamples(before, 'tessera_config_reloads_total', (l) => l['result'] === 'refused');
    await writeFile(this.#options.configFile, stringify(config));
    const started = performance.now();
    this.#proc.child.kill('SIGHUP');
    while (performance.now() - started < timeoutMs) {
      await sleep(50);
      if (this.#proc.child.exitCode !== null || this.#proc.child.signalCode !== null) throw this.#died('during a reload');
      const now = await this.metrics();
      if (sumSamples(now, 'tessera_config_reloads_total', (l) => l['result'] === 'refused') > refused) {
        const reason = this.#proc.stdout.filter((l) => l.includes('config reload refused')).at(-1);
        throw new TesseraError('TESSERA_E_TUNE_SERVER', `the server under test refused the reload: ${reason ? readMessage(reason) : 'see its log'}`);
      }
      if (sumSamples(now, 'tessera_config_reloads_total', (l) => l['result'] === 'applied') > applied) {
        const ready = await fetch(`${this.url}/v2/health/ready`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);
        if (ready) return performance.now() - started;
      }
    }
    throw new TesseraError('TESSERA_E_TUNE_SERVER', `the server under test did not apply a reload within ${Math.round(timeoutMs / 1000)} s`);
  }

  /** Throws `TESSERA_E_TUNE_SERVER` if the process has exited (with its last lines). */
  checkAlive(): void {
    if (this.#proc.child.exitCode !== null || this.#proc.child.signalCode !== null) throw this.#died('during the sweep');
  }

  /** Stops the server: SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.#proc.child;
    if (child.exitCode === null && child.signalCode === null) {
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.#proc.stop('SIGTERM');
      clearTimeout(kill);
    }
    untrack(this.#proc);
  }

  #died(when: string): TesseraError {
    const tail = [...this.#proc.stderr.slice(-10), ...this.#proc.stdout.slice(-10)].join('\n');
    return new TesseraError('TESSERA_E_TUNE_SERVER', `the server under test exited (${this.#proc.child.exitCode ?? this.#proc.child.signalCode}) ${when}:\n${tail}`);
  }
}

/** The `msg` of a pino JSON line, else the line. */
function readMessage(line: string): string {
  try {
    const { msg } = JSON.parse(line) as { msg?: unknown };
    return typeof msg === 'string' ? msg : line;
  } catch {
    return line;
  }
}

// every child still running when this process exits gets SIGKILL (an error, Ctrl-C, a crash)
const running = new Set<TesseraProcess>();
let exitHook = false;

function track(proc: TesseraProcess): void {
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of running) {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function untrack(proc: TesseraProcess): void {
  running.delete(proc);
}
