/**
 * Where a model instance's ONNX Runtime session lives: in a worker thread of its own
 * (`WorkerSessionHost`, the default) or on the main thread (`InlineSessionHost`, `runInWorker:
 * false`). Both take and give wire tensors (`protocol.ts`), so the instance's batching code is the
 * same for either.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { TesseraError } from '@tessera/core';
import type { FromWorker, ToWorker, WireTensor } from './protocol.js';
import { toOrtTensor } from './tensors.js';

/** A session's declared inputs and outputs, as ONNX Runtime reports them (plain data). */
export interface SessionMetadata {
  inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
}

/** ONNX Runtime could not create the session (missing operator, corrupt file, unknown provider, …): `message` is its reason. */
export class SessionCreateError extends Error {
  override readonly name = 'SessionCreateError';
}

/** ONNX Runtime failed a run: `message` is its reason. */
export class SessionRunError extends Error {
  override readonly name = 'SessionRunError';
}

/**
 * The worker thread running the session died (an uncaught error, out of memory in its isolate,
 * `process.exit`) before answering: `message` says how. What a pending or later `run` of a dead
 * `WorkerSessionHost` rejects with; `SupervisedSessionHost` answers it as a restart (503).
 */
export class WorkerExitedError extends Error {
  override readonly name = 'WorkerExitedError';
}

export interface SessionHost {
  /**
   * Runs the session once; resolves with the outputs in `fetches` order. `owned` says that every
   * feed's buffer was allocated for this call and nothing else views it, so a worker host may move
   * it to the worker instead of copying it (it is detached here). Rejects with `SessionRunError`
   * when ORT fails the run; when the host itself cannot run (its worker died, or is restarting),
   * with `WorkerExitedError` or a TesseraError (TESSERA_E_INSTANCE_RESTARTING, 503). `spin`: a
   * worker may poll for the next run after this one (its `spinMs`); false when other instances are
   * busy too, so that idle workers under load leave the cores to the ones that work.
   */
  run(feeds: WireTensor[], fetches: string[], owned: boolean, spin?: boolean): Promise<WireTensor[]>;
  /** Why the host cannot run anything now (its worker died, or is restarting), or `undefined` while it can. */
  readonly failure: string | undefined;
  /** Releases the session (and ends the worker). Idempotent. */
  release(): Promise<void>;
}

/** The session on the calling (main) thread: today's behaviour, and the baseline for the thread hop. */
export class InlineSessionHost implements SessionHost {
  readonly failure: string | undefined = undefined;
  #session: ort.InferenceSession | undefined;
  #released: Promise<void> | undefined;

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
  }

  static async create(path: string, sessionOptions: ort.InferenceSession.SessionOptions): Promise<{ host: InlineSessionHost; metadata: SessionMetadata }> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, sessionOptions);
    } catch (err) {
      throw new SessionCreateError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    return { host: new InlineSessionHost(session), metadata: { inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata } };
  }

  async run(feeds: WireTensor[], fetches: string[]): Promise<WireTensor[]> {
    const session = this.#session;
    if (!session) throw new SessionRunError('the session was released');
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const f of feeds) ortFeeds[f.name] = toOrtTensor(f);
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await session.run(ortFeeds, fetches);
    } catch (err) {
      throw new SessionRunError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    return fetches.map((name) => {
      const t = out[name] as ort.Tensor;
      return { name, type: t.type, dims: t.dims, data: t.data };
    });
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      const session = this.#session;
      this.#session = undefined;
      await session?.release();
    })();
    return this.#released;
  }
}

/**
 * The compiled worker script. From the sources (vitest runs `src/*.ts`, and Node 20 cannot start a
 * worker from TypeScript) it is the built copy in `dist/`: run `npm run build` before the tests, as
 * `npm test` does.
 */
export const SESSION_WORKER_URL: URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/internal/session-worker.js', import.meta.url)
  : new URL('./session-worker.js', import.meta.url);

/**
 * How long `release` waits for an idle worker to release the session and exit before it terminates
 * the thread. A worker still inside a run is never terminated (see `WorkerSessionHost`).
 */
export const RELEASE_TIMEOUT_MS = 10_000;

interface Pending {
  resolve(outputs: WireTensor[]): void;
  reject(err: Error): void;
}

/**
 * The session in a worker thread of its own (`session-worker.ts`): `run` posts one message and
 * resolves when the worker answers, so the event loop stays free while ORT computes, and N instances
 * run N sessions in parallel.
 *
 * A worker that dies (an uncaught error or out-of-memory in its isolate, `process.exit` in it) fails every
 * pending run and every later one with `WorkerExitedError`, `failure` says why, and `onDeath` is
 * called once. One host is one worker's life: it is never restarted itself. `SupervisedSessionHost`
 * replaces a dead one with a new worker, with backoff, since whatever killed it may kill the next one
 * too (the same input, a leak). A fault in ONNX Runtime's native code is another matter: it takes the
 * whole process down, threads or not (see docs/security.md, "Fault isolation").
 *
 * The worker keeps the process alive only while something is pending on it (`ref` while busy,
 * `unref` while idle), as an inline session does.
 *
 * Never `terminate()` the worker (nor exit the process) while it is inside a run: onnxruntime-node
 * 1.30 then throws a C++ exception out of its native code as the thread is torn down, and the whole
 * process aborts ("terminate called after throwing an instance of 'Napi::Error'", exit 134). A run
 * cannot be interrupted anyway, so `release` waits for the runs ahead of it; unloading before the
 * process exits (as the server's `close()` does) keeps shutdown clean.
 */
export class WorkerSessionHost implements SessionHost {
  readonly #worker: Worker;
  readonly #label: string;
  readonly #pending = new Map<number, Pending>();
  readonly #exited: Promise<void>;
  /**
   * Runs posted to the worker and not answered yet, pending or not: after a failure the promises
   * are rejected, but a worker still alive (a `messageerror`) may still be inside one of them, and
   * must not be terminated then.
   */
  #inWorker = 0;
  #onDeath: ((reason: string, cause: Error | undefined) => void) | undefined;
  #nextId = 0;
  #failure: string | undefined;
  #lastError: Error | undefined;
  #releasing: Promise<void> | undefined;
  #onLoad: { resolve(m: SessionMetadata): void; reject(err: Error): void } | undefined;

  private constructor(label: string) {
    this.#label = label;
    if (SESSION_WORKER_URL.protocol === 'file:' && !existsSync(SESSION_WORKER_URL)) {
      throw new Error(`the worker script ${SESSION_WORKER_URL.pathname} is missing; build @tessera/backend-onnxruntime (npm run build)`);
    }
    const worker = new Worker(SESSION_WORKER_URL, { name: `onnxruntime ${label}` });
    this.#worker = worker;
    worker.on('message', (m: FromWorker) => this.#onMessage(m));
    worker.on('error', (err: Error) => {
      this.#lastError = err;
      this.#fail(`the worker thread running its ONNX Runtime session failed: ${err.message}`);
    });
    worker.on('messageerror', (err: Error) => {
      this.#fail(`a message from the worker thread could not be read (${err.message})`);
      // not terminate(): the worker may be inside a run (see above); it exits after the runs ahead
      this.release().catch(() => undefined);
    });
    this.#exited = new Promise((resolve) => {
      worker.once('exit', (code: number) => {
        const why = this.#lastError ? `: ${this.#lastError.message}` : '';
        this.#fail(this.#releasing ? 'the session was released' : `the worker thread running its ONNX Runtime session exited (code ${code})${why}`);
        resolve();
      });
    });
  }

  /**
   * Starts a worker and creates the session in it; `spinMs`: how long the worker polls for the next
   * run after each one before it sleeps (see session-worker.ts). Rejects with `SessionCreateError` when ONNX
   * Runtime refuses the model, with another Error when the worker itself fails; the worker is gone
   * either way.
   */
  static async start(path: string, sessionOptions: ort.InferenceSession.SessionOptions, label: string, options: { spinMs?: number } = {}): Promise<{ host: WorkerSessionHost; metadata: SessionMetadata }> {
    const host = new WorkerSessionHost(label);
    try {
      const metadata = await new Promise<SessionMetadata>((resolve, reject) => {
        host.#onLoad = { resolve, reject };
        host.#post({ op: 'load', path, sessionOptions, spinMs: options.spinMs ?? 0 });
      });
      host.#idle();
      // a host whose worker died right after loading reports it to a supervisor set later (onDeath)
      return { host, metadata };
    } catch (err) {
      // the worker exits by itself after `load-failed`, and has exited after an error
      await host.#exited;
      throw err;
    }
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  /** Resolves when the worker thread has exited (for whatever reason). Never rejects. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /**
   * Calls `listener` once when the worker dies (not when it is released): at once when it died
   * already. Before the pending runs are rejected, so that what they are told can say what happens next.
   */
  onDeath(listener: (reason: string, cause: Error | undefined) => void): void {
    if (this.#failure !== undefined && !this.#releasing) {
      listener(this.#failure, this.#lastError);
      return;
    }
    this.#onDeath = listener;
  }

  run(feeds: WireTensor[], fetches: string[], owned: boolean, spin = true): Promise<WireTensor[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failed());
    const id = ++this.#nextId;
    const transfer = owned ? ownedBuffers(feeds) : copyFeeds(feeds);
    return new Promise<WireTensor[]>((resolve, reject) => {
      try {
        this.#post({ op: 'run', id, feeds, fetches, spin }, transfer);
      } catch (err) {
        reject(new TesseraError('TESSERA_E_INFERENCE_FAILED', `${this.#label}: the inputs could not be sent to the session's worker thread: ${(err as Error).message}`, { cause: err }));
        return;
      }
      if (this.#pending.size === 0) this.#worker.ref();
      this.#inWorker++;
      this.#pending.set(id, { resolve, reject });
    });
  }

  /**
   * Asks the worker to release the session and waits for the thread to exit. The worker handles the
   * release after the runs posted before it; while runs are in flight the wait goes on (terminating
   * then would abort the process), and a worker with none that has not exited within
   * RELEASE_TIMEOUT_MS is terminated.
   */
  release(): Promise<void> {
    this.#releasing ??= (async () => {
      this.#worker.ref();
      try {
        this.#post({ op: 'release' });
      } catch {
        // the worker is gone already
      }
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const exited = await Promise.race([
          this.#exited.then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), RELEASE_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        if (exited) return;
        if (this.#inWorker === 0) break;
      }
      await this.#worker.terminate();
      await this.#exited;
    })();
    return this.#releasing;
  }

  /**
   * For tests: the worker thread, to watch it (`exit`) or to end it as a crash would with
   * `postMessage({ op: 'exit', code })`. Not `terminate()` during a run: see above.
   */
  get workerForTests(): Worker {
    return this.#worker;
  }

  #post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    this.#worker.postMessage(message, transfer);
  }

  #idle(): void {
    if (this.#pending.size === 0 && !this.#releasing) this.#worker.unref();
  }

  #onMessage(m: FromWorker): void {
    if (m.id !== undefined) {
      this.#inWorker = Math.max(0, this.#inWorker - 1);
      const pending = this.#pending.get(m.id);
      if (!pending) return;
      this.#pending.delete(m.id);
      this.#idle();
      if (m.error !== undefined) pending.reject(new SessionRunError(m.error));
      else pending.resolve(m.outputs);
      return;
    }
    if (m.op === 'loaded') {
      this.#onLoad?.resolve({ inputMetadata: m.inputMetadata, outputMetadata: m.outputMetadata });
      this.#onLoad = undefined;
    } else if (m.op === 'load-failed') {
      this.#onLoad?.reject(new SessionCreateError(m.message));
      this.#onLoad = undefined;
    }
  }

  #failed(): Error {
    const options = this.#lastError ? { cause: this.#lastError } : {};
    if (this.#releasing) return new SessionRunError(`${this.#label}: ${this.#failure}`, options);
    return new WorkerExitedError(`${this.#label}: ${this.#failure}`, options);
  }

  /** Marks the host failed (the first reason wins), tells `onDeath`, and rejects everything pending. */
  #fail(reason: string): void {
    if (this.#failure !== undefined) return;
    this.#failure = reason;
    const loading = this.#onLoad;
    this.#onLoad = undefined;
    loading?.reject(new Error(reason, this.#lastError ? { cause: this.#lastError } : {}));
    if (!this.#releasing && !loading) {
      const listener = this.#onDeath;
      this.#onDeath = undefined;
      try {
        listener?.(reason, this.#lastError);
      } catch {
        // a supervisor's fault must not leave the pending runs hanging
      }
    }
    const err = this.#failed();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}

/** The buffers of feeds that this code allocated (the concatenated batch): each listed once, whole ArrayBuffers only. */
function ownedBuffers(feeds: readonly WireTensor[]): ArrayBuffer[] {
  const transfer: ArrayBuffer[] = [];
  for (const f of feeds) {
    const data = f.data;
    if (!ArrayBuffer.isView(data)) continue;
    const buffer = data.buffer;
    if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength && !transfer.includes(buffer)) transfer.push(buffer);
  }
  return transfer;
}

/**
 * Feeds that view request memory must be copied, never transferred: a request's typed arrays may
 * be views into a Node Buffer pool slab or an HTTP body that other inputs (or other requests) view
 * too, and a transfer would detach all of them. Each is copied here, once, into an ArrayBuffer of
 * its exact size that nothing else views, and that copy is transferred. Cheaper than leaving the copy
 * to structured clone, which copies twice (into the message, out of it) and copies a view's *whole*
 * underlying buffer (a whole HTTP body for one small input). `feeds` was built for this call and is
 * modified; the requests are not. String arrays are left to structured clone.
 */
function copyFeeds(feeds: WireTensor[]): ArrayBuffer[] | undefined {
  let transfer: ArrayBuffer[] | undefined;
  for (let i = 0; i < feeds.length; i++) {
    const f = feeds[i]!;
    if (!ArrayBuffer.isView(f.data)) continue;
    const copy = exactCopy(f.data);
    feeds[i] = { name: f.name, type: f.type, dims: f.dims, data: copy as WireTensor['data'] };
    (transfer ??= []).push(copy.buffer);
  }
  return transfer;
}

/**
 * A copy of a typed array in a new ArrayBuffer of exactly its size, of the same element type. Not
 * `data.slice()`: on a Node `Buffer` (a Uint8Array that Tessera may be handed) `slice` is a view,
 * not a copy, and transferring its buffer would detach the whole Buffer pool slab.
 */
function exactCopy(data: ArrayBufferView): ArrayBufferView & { buffer: ArrayBuffer } {
  let buffer: ArrayBuffer;
  if (data.buffer instanceof ArrayBuffer) {
    buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  } else {
    const bytes = new Uint8Array(data.byteLength);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer = bytes.buffer;
  }
  const Ctor = (globalThis as unknown as Record<string, new (buffer: ArrayBuffer) => ArrayBufferView & { buffer: ArrayBuffer }>)[(data as Uint8Array)[Symbol.toStringTag]];
  if (!Ctor) throw new Error(`cannot copy a ${(data as Uint8Array)[Symbol.toStringTag]}`);
  return new Ctor(buffer);
}
