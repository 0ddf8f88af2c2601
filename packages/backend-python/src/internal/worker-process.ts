/**
 * One Python worker process running one model.py instance: spawned with the model's interpreter
 * and environment, driven over framed JSON on its stdin/stdout, tensors in its shared file. It runs
 * one `execute` at a time (as a Triton instance does); messages sent meanwhile wait their turn.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { LoadContext } from '@tessera/core';
import { errorMessage } from '@tessera/core';
import { trackChild, untrackChild } from './exit-cleanup.js';
import type { WireRequest, WireResult, WorkerMessage } from './protocol.js';
import { FrameDecoder, encodeFrame } from './protocol.js';
import { SharedTensorFile } from './shared-file.js';

/** How to start a worker. */
export interface WorkerStartOptions {
  /** `model vN`, in messages. */
  label: string;
  interpreter: string;
  /** The worker script (python/tessera_python_worker.py). */
  script: string;
  /** model.py itself. */
  modelFile: string;
  /** The worker's working folder (the model's version folder). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Triton's `initialize(args)`, every value a string. */
  args: Readonly<Record<string, string>>;
  startTimeoutMs: number;
  logger: LoadContext['logger'];
  signal?: AbortSignal;
}

/** The worker could not start, or model.py failed to load; `message` says why, `traceback` is Python's. */
export class WorkerStartError extends Error {
  readonly traceback: string | undefined;
  constructor(message: string, traceback?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WorkerStartError';
    this.traceback = traceback;
  }
}

/** The worker process ended while a message was outstanding. */
export class WorkerExitedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerExitedError';
  }
}

/** What `execute` gives back: per-request results, or an error that fails the whole batch (execute raised). */
export interface WorkerBatchResult {
  results?: WireResult[];
  error?: string;
}

/** How long `release` waits for `finalize()` and the exit before it kills the process. */
export const FINALIZE_TIMEOUT_MS = 10_000;
/** Lines of the worker's stderr kept for error messages (a start that fails before its first frame). */
const STDERR_TAIL = 12;

type Waiter = { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void };

/** See the file's comment. */
export class PythonWorker {
  readonly shared: SharedTensorFile;
  /** From the worker's `ready`: pid, Python and numpy versions. */
  info: { pid: number; python: string; numpy: string } = { pid: 0, python: '', numpy: '' };
  readonly #child: ChildProcess;
  readonly #label: string;
  readonly #decoder = new FrameDecoder();
  /** Answers expected, in the order the worker sends them (it answers each message in turn). */
  readonly #waiters: Waiter[] = [];
  readonly #stderr: string[] = [];
  readonly #deathListeners: ((reason: string) => void)[] = [];
  #exit: string | undefined;
  #exited: Promise<void>;
  #nextId = 1;
  #released: Promise<void> | undefined;

  private constructor(child: ChildProcess, shared: SharedTensorFile, opts: WorkerStartOptions) {
    this.#child = child;
    this.shared = shared;
    this.#label = opts.label;
    const log = opts.logger;
    child.stdout!.on('data', (chunk: Buffer) => {
      let messages: WorkerMessage[];
      try {
        messages = this.#decoder.push(chunk);
      } catch (err) {
        this.#fail(`its control channel carried a malformed frame (${errorMessage(err)})`);
        child.kill('SIGKILL');
        return;
      }
      for (const m of messages) this.#waiters.shift()?.resolve(m);
    });
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#stderr.push(line);
        if (this.#stderr.length > STDERR_TAIL) this.#stderr.shift();
        log.info({ pid: child.pid }, `${opts.label} model.py: ${line}`);
      }
    });
    // a write to a worker that just died fails with EPIPE: the exit handler reports it
    child.stdin!.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, sig) => {
        untrackChild(child);
        this.#fail(sig ? `its process (pid ${child.pid}) was killed by ${sig}` : `its process (pid ${child.pid}) exited with code ${code}`);
        resolve();
      });
    });
    trackChild(child);
  }

  /**
   * Spawns the interpreter, creates the shared file, imports model.py and runs `initialize(args)`.
   * Rejects with `WorkerStartError` (interpreter missing, numpy missing, model.py raising: the
   * last line of Python's traceback) and leaves nothing running.
   */
  static async start(opts: WorkerStartOptions): Promise<PythonWorker> {
    const shared = SharedTensorFile.create('tessera-python');
    let child: ChildProcess;
    try {
      child = spawn(opts.interpreter, ['-u', opts.script], { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      shared.remove();
      throw new WorkerStartError(`cannot start the interpreter '${opts.interpreter}': ${errorMessage(err)}`, undefined, { cause: err });
    }
    // `once` rejects on 'error': a spawn that fails (ENOENT) resolves to its error here
    const spawned = await once(child, 'spawn').then(() => undefined, (err: unknown) => err as Error);
    if (spawned) {
      shared.remove();
      const code = (spawned as NodeJS.ErrnoException).code;
      const hint = code === 'ENOENT' ? ` (not found: install Python 3 with numpy, or set python.interpreter to the interpreter's path)` : '';
      throw new WorkerStartError(`cannot start the interpreter '${opts.interpreter}': ${spawned.message}${hint}`, undefined, { cause: spawned });
    }
    const worker = new PythonWorker(child, shared, opts);
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = worker.#request({ op: 'init', model_file: opts.modelFile, shm: shared.path, shm_size: shared.size, args: opts.args });
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WorkerStartError(`model.py did not finish loading within ${opts.startTimeoutMs} ms (python.startTimeout)`)), opts.startTimeoutMs);
      });
      const aborted = new Promise<never>((_, reject) => {
        if (opts.signal?.aborted) reject(new WorkerStartError('the load was aborted (the server is shutting down)'));
        opts.signal?.addEventListener('abort', () => reject(new WorkerStartError('the load was aborted (the server is shutting down)')), { once: true });
      });
      const m = await Promise.race([answer, timeout, aborted]);
      if (m.op === 'error') throw new WorkerStartError(m.message, m.traceback);
      if (m.op !== 'ready') throw new WorkerStartError(`the worker answered '${m.op}' to init`);
      worker.info = { pid: m.pid, python: m.python, numpy: m.numpy };
      return worker;
    } catch (err) {
      await worker.kill();
      if (err instanceof WorkerExitedError) {
        // it died before answering: its stderr says why (numpy missing, a syntax error in the worker's path)
        const tail = worker.#stderr.filter((l) => l.trim() !== '').slice(-3).join(' | ');
        throw new WorkerStartError(`the worker ${err.message.replace(`${opts.label}: `, '')}${tail ? `: ${tail}` : ''}`, worker.#stderr.join('\n'), { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Why the worker is gone, once it is. */
  get failure(): string | undefined {
    return this.#exit;
  }

  /** The process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Called once when the process ends without `release` (a crash, `os._exit`, a kill). */
  onDeath(listener: (reason: string) => void): void {
    this.#deathListeners.push(listener);
  }

  /** Runs one batch (written into the shared file by the caller). Rejects with `WorkerExitedError` when the process dies meanwhile. */
  async execute(model: string, requests: WireRequest[], outOffset: number): Promise<WorkerBatchResult> {
    const m = await this.#request({ op: 'execute', id: this.#nextId++, model, requests, out_offset: outOffset, shm_size: this.shared.size });
    if (m.op !== 'result') throw new Error(`${this.#label}: the worker answered '${m.op}' to execute`);
    if (m.shm_size !== undefined) this.shared.grownTo(m.shm_size);
    return { ...(m.results ? { results: m.results } : {}), ...(m.error !== undefined ? { error: m.error } : {}) };
  }

  /** A round trip: the worker is alive and its loop answers. */
  async ping(): Promise<void> {
    await this.#request({ op: 'ping' });
  }

  /**
   * Calls the model's `finalize()`, waits for the process to exit (killing it after
   * `FINALIZE_TIMEOUT_MS`) and removes the shared file. Idempotent; resolves also when the worker
   * already died.
   */
  release(logger?: LoadContext['logger']): Promise<void> {
    this.#released ??= (async () => {
      this.#deathListeners.length = 0;
      if (this.#exit === undefined) {
        const finalized = this.#request({ op: 'finalize' }).then(
          (m) => {
            if (m.op === 'finalized' && m.error) logger?.warn(`${this.#label}: finalize() raised: ${m.error}`);
          },
          () => undefined,
        );
        const timer = setTimeout(() => this.#child.kill('SIGKILL'), FINALIZE_TIMEOUT_MS);
        await Promise.race([finalized.then(() => this.#exited), this.#exited]);
        clearTimeout(timer);
      }
      this.#child.stdin?.destroy();
      this.shared.remove();
    })();
    return this.#released;
  }

  /** Kills the process at once and removes the shared file (a failed start). */
  async kill(): Promise<void> {
    this.#deathListeners.length = 0;
    if (this.#exit === undefined) this.#child.kill('SIGKILL');
    await this.#exited;
    this.shared.remove();
  }

  #request(message: Record<string, unknown>): Promise<WorkerMessage> {
    if (this.#exit !== undefined) return Promise.reject(new WorkerExitedError(`${this.#label}: ${this.#exit}`));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#child.stdin!.write(encodeFrame(message));
    });
  }

  #fail(reason: string): void {
    if (this.#exit !== undefined) return;
    this.#exit = reason;
    const err = new WorkerExitedError(`${this.#label}: ${reason}`);
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const listener of this.#deathListeners.splice(0)) listener(reason);
  }
}
