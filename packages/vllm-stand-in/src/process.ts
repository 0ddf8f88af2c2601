import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { VllmStandInFaults, VllmStandInStats } from './server.js';

/**
 * Path of the `vllm-stand-in` executable (run it with `node`), e.g. as the `launch.command`'s
 * script of a managed replica. Needs the built package (`npm run build`).
 */
// dist/process.js and src/process.ts both sit one folder below the package root
export const VLLM_STAND_IN_BIN: string = fileURLToPath(new URL('../bin/vllm-stand-in.js', import.meta.url));

/** How long `startVllmStandInProcess` waits for the stand-in to listen. */
const LISTEN_TIMEOUT_MS = 15_000;

/** Options of {@link startVllmStandInProcess}. */
export interface VllmStandInProcessOptions {
  /** More `vllm serve` flags, after `MODEL --host 127.0.0.1 --port 0`. */
  args?: readonly string[];
  /** Added to this process's environment (e.g. `VLLM_API_KEY`, `VLLM_STAND_IN_TOKEN_DELAY_MS`); `undefined` unsets a variable. */
  env?: Record<string, string | undefined>;
}

/** A `vllm-stand-in serve …` child process. */
export interface VllmStandInProcess {
  /** `http://127.0.0.1:PORT` (no `/v1`), for `upstreams:`. */
  url: string;
  child: ChildProcess;
  /** Every output line so far (stdout and stderr). */
  output: string[];
  /** `GET /stand-in/stats`: the counters and recorded requests, as JSON (`lastRequest` absent when there is none). */
  stats(): Promise<VllmStandInStats>;
  /** `POST /stand-in/faults`: merges faults into the current ones. */
  setFaults(faults: Partial<VllmStandInFaults>): Promise<void>;
  /** `POST /stand-in/reset`. */
  reset(): Promise<void>;
  /** Sends SIGTERM (unless it already exited) and resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts the stand-in executable with this node on 127.0.0.1 (a free port) serving `model`, and
 * resolves once it listens. Rejects with its output when it exits first or does not listen
 * within 15 s (it is then killed).
 */
export function startVllmStandInProcess(model: string, options: VllmStandInProcessOptions = {}): Promise<VllmStandInProcess> {
  const child = spawn(process.execPath, [VLLM_STAND_IN_BIN, 'serve', model, '--host', '127.0.0.1', '--port', '0', ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr }).on('line', (l) => output.push(l));
  return new Promise<VllmStandInProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the vLLM stand-in did not listen within ${LISTEN_TIMEOUT_MS / 1000} s\n${output.join('\n')}`));
    }, LISTEN_TIMEOUT_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the vLLM stand-in exited with code ${code}\n${output.join('\n')}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      output.push(line);
      // uvicorn's line, as vLLM prints it: `INFO:     Uvicorn running on http://127.0.0.1:PORT (Press CTRL+C to quit)`
      const m = /Uvicorn running on (http:\/\/\S+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const url = m[1]!;
      const control = async (path: string, body?: unknown): Promise<unknown> => {
        const res = await fetch(`${url}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (!res.ok) throw new Error(`stand-in ${path}: HTTP ${res.status} ${await res.text()}`);
        return res.json();
      };
      resolve({
        url,
        child,
        output,
        stats: async () => (await control('/stand-in/stats')) as VllmStandInStats,
        setFaults: async (faults) => void (await control('/stand-in/faults', faults)),
        reset: async () => void (await control('/stand-in/reset', {})),
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}
