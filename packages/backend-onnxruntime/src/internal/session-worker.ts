/**
 * The worker thread of one model instance: owns one ONNX Runtime `InferenceSession` and runs it off
 * the main thread. onnxruntime-node's `session.run` is a synchronous native call (wrapped in a
 * `setImmediate`), so on the main thread it would stop the event loop for the whole inference.
 *
 * Protocol (`protocol.ts`): `load` → `loaded` | `load-failed` (then the thread exits); `run` →
 * `{ id, outputs }` | `{ id, error }`; `release` → `released`, then the thread exits. Messages are
 * handled one at a time, in order: a `release` waits for the runs posted before it. (`exit` and
 * `crash`, for tests, end the thread at once.)
 *
 * **Polling between runs** (`spinMs`, from `load`): once everything it was sent is done, the worker
 * polls its port (`receiveMessageOnPort`, a synchronous look at the queue) for up to `spinMs`
 * before it returns to its event loop and sleeps. At low concurrency the next run arrives one
 * network round trip after the answer went out; a sleeping thread is woken through the event
 * loop's async handle (a futex wake and a scheduler hop: 0.1–0.8 ms on an idle VM core), a polling
 * one takes it at once. The poll only runs when the worker has nothing else to do, so it never
 * delays a run; it costs the core it runs on, for at most `spinMs` after each run. A run sent
 * while other instances of the model were busy says `spin: false`: under load the batcher keeps
 * several instances going and the next batch is rarely one round trip away, while a dozen idle
 * workers polling would take the cores from the event loop that feeds them (on 16 cores, 12
 * instances polling 1 ms cut the classifier's throughput from 3965 to 2761 samples/s).
 *
 * Imports only `onnxruntime-node` (and types): a worker is a fresh isolate, and this keeps its start
 * cheap.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { FromWorker, ToWorker, WireTensor } from './protocol.js';

if (!parentPort) throw new Error('session-worker.js runs as a worker thread of @tessera/backend-onnxruntime, not on its own');
const port = parentPort;

let session: ort.InferenceSession | undefined;
let queue: Promise<void> = Promise.resolve();
/** Messages accepted and not handled yet (the run in progress included). */
let busy = 0;
/** How long to poll for the next message once idle, ms (from `load`). */
let spinMs = 0;
/** Whether the last run may be followed by a poll (its `spin`: false while sibling instances are busy too). */
let spinAfter = true;

function reply(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function load(path: string, sessionOptions: ort.InferenceSession.SessionOptions): Promise<void> {
  try {
    session = await ort.InferenceSession.create(path, sessionOptions);
  } catch (err) {
    reply({ op: 'load-failed', message: messageOf(err) });
    // nothing to serve: end the thread (the main thread waits for its exit)
    port.close();
    return;
  }
  reply({ op: 'loaded', inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata });
}

async function run(id: number, feeds: readonly WireTensor[], fetches: string[]): Promise<void> {
  const outputs: WireTensor[] = [];
  const transfer: ArrayBuffer[] = [];
  try {
    if (!session) throw new Error('the session is not loaded');
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const f of feeds) ortFeeds[f.name] = new ort.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
    const result = await session.run(ortFeeds, fetches);
    for (const name of fetches) {
      const t = result[name] as ort.Tensor;
      const data = t.data;
      // onnxruntime-node copies each output into an ArrayBuffer of its own (offset 0, exact length),
      // which nothing else in this thread keeps: hand it over instead of copying it again. Anything
      // else (a view into a larger buffer, a buffer already listed) is left to structured clone.
      if (ArrayBuffer.isView(data)) {
        const buffer = data.buffer;
        if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength && !transfer.includes(buffer)) transfer.push(buffer);
      }
      outputs.push({ name, type: t.type, dims: t.dims, data });
    }
  } catch (err) {
    reply({ id, error: messageOf(err) });
    return;
  }
  try {
    reply({ id, outputs }, transfer);
  } catch {
    // a buffer that cannot be transferred (none seen with onnxruntime-node 1.30): copy them all
    reply({ id, outputs });
  }
}

async function release(): Promise<void> {
  const s = session;
  session = undefined;
  try {
    await s?.release();
  } catch {
    // the thread ends anyway, and the session with it
  }
  reply({ op: 'released' });
  // nothing else keeps the thread's event loop alive: it ends, and the thread exits
  port.close();
}

function handle(message: ToWorker): Promise<void> {
  switch (message.op) {
    case 'run':
      spinAfter = message.spin !== false;
      return run(message.id, message.feeds, message.fetches);
    case 'load':
      spinMs = message.spinMs;
      return load(message.path, message.sessionOptions);
    case 'release':
      return release();
    case 'exit':
    case 'crash':
      return Promise.resolve();
  }
}

/** Takes one message, from the port's listener or from the poll. */
function accept(message: ToWorker): void {
  if (message.op === 'exit') process.exit(message.code);
  if (message.op === 'crash') {
    // uncaught: the thread's `error` event, as a bug in this script would be
    const err = new Error(message.message);
    setImmediate(() => {
      throw err;
    });
    return;
  }
  busy++;
  // a failure here (a reply that cannot be cloned) would leave the main thread waiting: end the
  // thread instead, which fails whatever is pending there
  queue = queue
    .then(() => handle(message))
    .catch((err: unknown) => {
      queueMicrotask(() => {
        throw err;
      });
    })
    .finally(() => {
      if (--busy === 0) poll();
    });
}

/** Idle: looks for the next message for up to `spinMs` before going back to the event loop (see the file's comment). */
function poll(): void {
  if (spinMs <= 0 || !spinAfter || !session) return;
  const end = performance.now() + spinMs;
  do {
    const received = receiveMessageOnPort(port);
    if (received) {
      accept(received.message as ToWorker);
      return;
    }
  } while (performance.now() < end);
}

port.on('message', accept);
