/**
 * ONNX Runtime's WebGPU provider shares one GPU device (one Dawn context) among the sessions of a
 * process, and onnxruntime-node 1.30 crashes the process (SIGSEGV, after "Non-zero status code
 * returned while running … webgpu_context.cc") when two of them run at once from different worker
 * threads: seen on the H200 with 12 instances of one model. So in one process, work on such a
 * device goes one at a time: session creation, warm-up and every run. A GPU runs one queue anyway;
 * several instances only overlapped the copies, and the server's other work still runs meanwhile.
 */

/** Work that must not overlap: `run` starts `fn` once everything queued before it has settled. */
export class DeviceQueue {
  #tail: Promise<unknown> = Promise.resolve();
  /** Calls waiting or running (for tests). */
  pending = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.#tail.then(fn, fn).finally(() => {
      this.pending--;
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** The providers whose sessions in one process share a device that must not run two things at once. */
const SERIALIZED_PROVIDERS: ReadonlySet<string> = new Set(['webgpu']);
const queues = new Map<string, DeviceQueue>();

/** The queue of the first serialized provider among `providers` (this process's), or undefined when none is. */
export function deviceQueueFor(providers: readonly string[]): DeviceQueue | undefined {
  const name = providers.find((p) => SERIALIZED_PROVIDERS.has(p));
  if (!name) return undefined;
  let queue = queues.get(name);
  if (!queue) queues.set(name, (queue = new DeviceQueue()));
  return queue;
}
