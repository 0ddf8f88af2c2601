import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** A `tessera` CLI running as a child process (for integration tests). */
export interface TesseraProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Base URL of the `server.metricsPort` listener, when the config has one. */
  metricsUrl?: string;
  port: number;
  child: ChildProcess;
  /** Every stdout line so far (pino JSON lines). */
  stdout: string[];
  /** Every stderr line so far. */
  stderr: string[];
  /** Sends a signal (default SIGTERM) and resolves with the exit code. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

export interface RunTesseraOptions {
  /** CLI arguments after `tessera`, e.g. `['serve', '-c', file, '--port', '0']`. */
  args: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** How long to wait for readiness (or exit), ms. Default 30 s. */
  timeoutMs?: number;
  /** The CLI script to run; default `cliPath()` (`tessera tune` passes its own). */
  cli?: string;
  /** With `startTessera`: keep only the last this many lines of stdout and stderr (a server under load logs a line per request). Default: every line. */
  keepLines?: number;
  /** With `startTessera`: when aborted, the process is killed (SIGKILL) — while it starts (the promise rejects) or after. */
  signal?: AbortSignal;
}

/** Path of the built CLI (`@tessera/core/dist/cli.js`). */
export function cliPath(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@tessera/core/package.json')), 'dist', 'cli.js');
}

/** Runs the CLI to completion; resolves with its exit code and output (for `validate`, bad configs). */
export function runTesseraCli(options: RunTesseraOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(cliPath(), options.args, { ...options, label: `tessera ${options.args.join(' ')}`, timeoutMs: options.timeoutMs ?? 30_000 });
}

/**
 * Runs a Node script (an example's, a tool's) to completion with this process's Node, as a user
 * would from a shell; resolves with its exit code and output, rejects (killing it) past `timeoutMs`
 * (default 60 s).
 */
export function runNode(
  script: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; label?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.label ?? `node ${script}`} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts `tessera serve` and resolves once its log says the server is ready (it reads the URL from
 * the `server ready` line, so pass `--port 0` for a free port). Rejects with the output if the
 * process exits first.
 */
export function startTessera(options: RunTesseraOptions): Promise<TesseraProcess> {
  const child = spawn(process.execPath, [options.cli ?? cliPath(), ...options.args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const keep = options.keepLines ?? Number.POSITIVE_INFINITY;
  const push = (lines: string[], line: string): void => {
    lines.push(line);
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  };
  createInterface({ input: child.stderr }).on('line', (l) => push(stderr, l));
  return new Promise<TesseraProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tessera did not become ready within ${options.timeoutMs ?? 30_000} ms\n${stdout.join('\n')}\n${stderr.join('\n')}`));
    }, options.timeoutMs ?? 30_000);
    let stopping: Promise<number | null> | undefined;
    const stop = (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
      if (child.exitCode === null && child.signalCode === null && !stopping) child.kill(signal);
      stopping ??= exited;
      return stopping;
    };
    createInterface({ input: child.stdout }).on('line', (line) => {
      push(stdout, line);
      if (!line.includes('server ready')) return;
      try {
        const { url, metricsUrl } = JSON.parse(line) as { url: string; metricsUrl?: string };
        clearTimeout(timer);
        resolve({ url, ...(metricsUrl ? { metricsUrl } : {}), port: Number(new URL(url).port), child, stdout, stderr, stop, exited });
      } catch {
        // not the JSON ready line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tessera exited with code ${code} before it was ready\n${stderr.join('\n')}\n${stdout.slice(-20).join('\n')}`));
    });
    const abort = (): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error('stopped waiting for tessera to be ready: aborted'));
    };
    if (options.signal?.aborted) abort();
    else options.signal?.addEventListener('abort', abort, { once: true });
    void exited.then(() => options.signal?.removeEventListener('abort', abort));
  });
}

/**
 * Whether a process runs: it exists and is not a zombie (one that has exited and whose entry waits
 * for its parent, as a server re-parented after its parent died may stay for a while).
 */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // `/proc/PID/stat`: "pid (comm) STATE …"; a zombie (Z) has exited, only its entry is left
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return existsSync(`/proc/${pid}`);
  }
}
