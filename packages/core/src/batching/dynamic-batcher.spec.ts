import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { InferenceBatch, InferenceRequest, ModelInstance, ModelMetadata, RequestResult } from '../contracts/backend.js';
import { BATCHER_FACTORY } from '../contracts/batcher.js';
import type { BatcherFactory } from '../contracts/batcher.js';
import type { ServingEventMap } from '../contracts/events.js';
import { ServingEvents } from '../contracts/events.js';
import type { DataType, Tensor } from '../contracts/tensor.js';
import { resolveConfig } from '../config/resolve.js';
import { TesseraError } from '../errors.js';
import { deadlineExceeded } from '../pipeline/deadline.js';
import { TesseraServer } from '../server.js';
import { DynamicBatcher, NEXT_BATCH_LEAD_MS, dynamicBatcherFactory } from './dynamic-batcher.js';

type BatchEvent = ServingEventMap['batch'][0];

interface Call {
  batch: InferenceBatch;
  signal: AbortSignal;
  at: number;
  /** Finishes the execution; `slot` may give a request (by index) an Error instead of its outputs. */
  resolve: (slot?: (index: number) => Error | undefined) => void;
  reject: (err: Error) => void;
}

/**
 * A model instance under the test's control: each execution waits for `resolve()`/`reject()`, or,
 * with `cost`, finishes by itself after `cost(samples)` ms of (fake) time. Every request gets its
 * own input back as output `y`, so that tests can tell whose answer is whose; or, when `failing`
 * says so, an Error in its slot.
 */
class FakeInstance implements ModelInstance {
  readonly metadata: ModelMetadata;
  readonly calls: Call[] = [];
  running = 0;
  maxRunning = 0;
  /** An Error for the slot of a request (by its value), for executions that finish by themselves. */
  failing: ((value: number) => Error | undefined) | undefined;

  constructor(
    maxBatchSize = 8,
    readonly cost?: (samples: number) => number,
  ) {
    this.metadata = { platform: 'test', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, -1] }], maxBatchSize };
  }

  execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve, reject) => {
      const call: Call = {
        batch,
        signal,
        at: performance.now(),
        resolve: (slot = (i) => this.failing?.(valueOf(batch.requests[i]!))) => {
          this.running--;
          resolve(batch.requests.map((r, i) => slot(i) ?? [{ ...r.inputs[0]!, name: 'y' }]));
        },
        reject: (err) => {
          this.running--;
          reject(err);
        },
      };
      this.calls.push(call);
      if (this.cost) {
        const samples = batch.requests.reduce((n, r) => n + (r.inputs[0]?.shape[0] ?? 1), 0);
        setTimeout(() => call.resolve(), this.cost(samples));
      }
    });
  }

  /** Values (first element of x) of each call's requests. */
  get values(): number[][] {
    return this.calls.map((c) => c.batch.requests.map(valueOf));
  }

  async unload(): Promise<void> {}
}

/**
 * An instance whose executions queue and run one after the other, `cost` ms (fake time) each, as the
 * ONNX Runtime backend's worker thread runs them: it accepts its next batch while one runs.
 */
class SerialInstance extends FakeInstance {
  readonly acceptsNextBatch = true;
  /** Executions handed over and not finished, and the most at once. */
  held = 0;
  maxHeld = 0;
  /** When each execution was handed over and when it started running (fake ms). */
  readonly handedAt: number[] = [];
  readonly startedAt: number[] = [];
  #tail: Promise<unknown> = Promise.resolve();

  constructor(readonly each: number) {
    super(8);
  }

  override execute(batch: InferenceBatch): Promise<RequestResult[]> {
    this.held++;
    this.maxHeld = Math.max(this.maxHeld, this.held);
    this.handedAt.push(performance.now());
    this.calls.push({ batch, signal: live(), at: performance.now(), resolve: () => undefined, reject: () => undefined });
    const run = this.#tail.then(async () => {
      this.startedAt.push(performance.now());
      await new Promise((r) => setTimeout(r, this.each));
      this.held--;
      return batch.requests.map((r) => [{ ...r.inputs[0]!, name: 'y' }]);
    });
    this.#tail = run;
    return run;
  }
}

/** Every call of the instances, in the order they started. */
function byTime(instances: FakeInstance[]): Call[] {
  return instances.flatMap((i) => i.calls).sort((x, y) => x.at - y.at);
}

function valueOf(r: InferenceRequest): number {
  return (r.inputs[0]!.data as Float32Array)[0]!;
}

interface ReqOptions {
  samples?: number;
  width?: number;
  datatype?: DataType;
  priority?: unknown;
  timeout?: unknown;
  outputs?: string[];
}

/** A request whose `x` has `samples` rows of `width` values, all equal to `value`. */
function req(value: number, o: ReqOptions = {}): InferenceRequest {
  const samples = o.samples ?? 1;
  const width = o.width ?? 4;
  const data = o.datatype === 'INT32' ? new Int32Array(samples * width).fill(value) : new Float32Array(samples * width).fill(value);
  const parameters: Record<string, unknown> = {};
  if (o.priority !== undefined) parameters['priority'] = o.priority;
  if (o.timeout !== undefined) parameters['timeout'] = o.timeout;
  return {
    inputs: [{ name: 'x', datatype: o.datatype ?? 'FP32', shape: [samples, width], data }],
    ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
    ...(o.outputs ? { outputs: o.outputs } : {}),
  };
}

const live = (): AbortSignal => new AbortController().signal;
/** A signal that aborts after `ms` (fake time) as a request's deadline does (`ServingRequest.workSignal`). */
function deadlineSignal(ms: number): AbortSignal {
  const ac = new AbortController();
  const fire = (): void => ac.abort(deadlineExceeded({ source: 'X-Request-Timeout', ms }, 'before the answer was ready'));
  if (ms <= 0) fire();
  else setTimeout(fire, ms);
  return ac.signal;
}
const advance = async (ms: number): Promise<void> => {
  await vi.advanceTimersByTimeAsync(ms);
};
const flush = (): Promise<void> => advance(0);

function make(options: Record<string, unknown> = {}, instances: FakeInstance[] = [new FakeInstance()]) {
  const events = new ServingEvents();
  const batches: BatchEvent[] = [];
  events.on('batch', (e) => batches.push(e));
  const b = new DynamicBatcher({ model: 'm', version: '1', metadata: instances[0]!.metadata, instances, options, events, logger: pino({ level: 'silent' }) });
  return { b, batches, inst: instances[0]!, instances };
}

/** Submits and records how the promise settled, so that tests can look without awaiting. */
function track(p: Promise<Tensor[]>) {
  const state: { outputs?: Tensor[]; error?: { code?: string; status?: number; headers?: Record<string, string>; message: string } } = {};
  p.then(
    (outputs) => (state.outputs = outputs),
    (error) => (state.error = error),
  );
  return state;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe(DynamicBatcher, () => {
  describe('.submit having a delay window', () => {
    it('should wait up to maxQueueDelayMs from the first request, then run the queue as one batch', async () => {
      const { b, inst, batches } = make({ maxQueueDelayMs: 10 });
      const p1 = b.submit(req(1), live());
      await advance(5);
      const p2 = b.submit(req(2), live());
      await advance(4);
      expect(inst.calls).toHaveLength(0);
      expect(b.stats()).toEqual({ queued: 2, executing: 0 });
      await advance(1);
      expect(inst.values).toEqual([[1, 2]]);
      expect(b.stats()).toEqual({ queued: 0, executing: 2 });
      inst.calls[0]!.resolve();
      expect((await p1)[0]!.data).toEqual(new Float32Array(4).fill(1));
      expect((await p2)[0]!.data).toEqual(new Float32Array(4).fill(2));
      expect(batches).toEqual([{ model: 'm', version: '1', size: 2, requests: 2, queueMs: [10, 5], executeMs: 0, ok: true, failed: 0 }]);
    });

    it('should accept durations with units', async () => {
      const { b, inst } = make({ maxQueueDelayMs: '3ms' });
      void b.submit(req(1), live());
      await advance(2);
      expect(inst.calls).toHaveLength(0);
      await advance(1);
      expect(inst.calls).toHaveLength(1);
    });

    it('should not wait with maxQueueDelayMs 0, and batch what queued while the instance was busy', async () => {
      const { b, inst } = make({});
      const ps = [1, 2, 3].map((v) => b.submit(req(v), live()));
      await flush();
      expect(inst.values).toEqual([[1]]);
      inst.calls[0]!.resolve();
      await flush();
      expect(inst.values).toEqual([[1], [2, 3]]);
      inst.calls[1]!.resolve();
      await Promise.all(ps);
    });
  });

  describe('.submit having maxBatchSize', () => {
    it('should count samples along dim 0 and dispatch a full batch without waiting', async () => {
      const { b, inst, batches } = make({ maxQueueDelayMs: 100 }, [new FakeInstance(4)]);
      void b.submit(req(1, { samples: 2 }), live());
      void b.submit(req(2, { samples: 1 }), live());
      await flush();
      expect(inst.calls).toHaveLength(0);
      void b.submit(req(3, { samples: 1 }), live());
      await flush();
      expect(inst.values).toEqual([[1, 2, 3]]);
      inst.calls[0]!.resolve();
      await flush();
      expect(batches.map((e) => [e.size, e.requests])).toEqual([[4, 3]]);
    });

    it('should put a request that does not fit into the next batch, unsplit', async () => {
      const { b, instances } = make({ maxQueueDelayMs: 100 }, [new FakeInstance(4), new FakeInstance(4)]);
      void b.submit(req(1, { samples: 2 }), live());
      void b.submit(req(2, { samples: 1 }), live());
      void b.submit(req(3, { samples: 2 }), live());
      await flush();
      // 2 + 1 + 2 > 4: the first two go at once (waiting cannot grow them), the third starts the next batch
      const all = () => byTime(instances).map((c) => c.batch.requests.map((r) => [valueOf(r), r.inputs[0]!.shape[0]]));
      expect(all()).toEqual([
        [
          [1, 2],
          [2, 1],
        ],
      ]);
      await advance(100);
      expect(all()).toEqual([
        [
          [1, 2],
          [2, 1],
        ],
        [[3, 2]],
      ]);
    });

    it('should run a request larger than maxBatchSize alone rather than hold it forever (the pipeline rejects such requests first)', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 100 }, [new FakeInstance(4)]);
      const big = track(b.submit(req(1, { samples: 5 }), live()));
      const next = track(b.submit(req(2), live()));
      await flush();
      expect(inst.values).toEqual([[1]]);
      inst.calls[0]!.resolve();
      await advance(100);
      expect(inst.values).toEqual([[1], [2]]);
      inst.calls[1]!.resolve();
      await flush();
      expect(big.outputs).toHaveLength(1);
      expect(next.outputs).toHaveLength(1);
    });

    it('should run requests one at a time when the model does not batch (maxBatchSize 0)', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 50, preferredBatchSizes: [2] }, [new FakeInstance(0)]);
      const ps = [1, 2].map((v) => b.submit(req(v), live()));
      await flush();
      expect(inst.values).toEqual([[1]]);
      inst.calls[0]!.resolve();
      await flush();
      expect(inst.values).toEqual([[1], [2]]);
      inst.calls[1]!.resolve();
      await Promise.all(ps);
    });
  });

  describe('.submit having preferredBatchSizes', () => {
    it('should dispatch as soon as the queue forms a preferred size', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 100, preferredBatchSizes: [4] });
      void b.submit(req(1, { samples: 2 }), live());
      void b.submit(req(2), live());
      await advance(10);
      expect(inst.calls).toHaveLength(0);
      void b.submit(req(3), live());
      await flush();
      expect(inst.values).toEqual([[1, 2, 3]]);
    });

    it('should dispatch the largest preferred prefix and keep the rest waiting', async () => {
      const { b, instances } = make({ maxQueueDelayMs: 100, preferredBatchSizes: [2] }, [new FakeInstance(8), new FakeInstance(8)]);
      void b.submit(req(1), live());
      void b.submit(req(2), live());
      void b.submit(req(3), live());
      await flush();
      expect(byTime(instances).map((c) => c.batch.requests.map(valueOf))).toEqual([[1, 2]]);
      await advance(100);
      expect(byTime(instances).map((c) => c.batch.requests.map(valueOf))).toEqual([[1, 2], [3]]);
    });
  });

  describe('.submit having priorities', () => {
    it('should batch higher priority requests first (1 = highest; default = the lowest level)', async () => {
      const { b, inst } = make({ priorityLevels: 3 }, [new FakeInstance(2)]);
      void b.submit(req(0), live());
      await flush();
      void b.submit(req(30, { priority: 3 }), live());
      void b.submit(req(10, { priority: 1 }), live());
      void b.submit(req(31), live());
      void b.submit(req(20, { priority: 2 }), live());
      void b.submit(req(11, { priority: 0 }), live()); // 0 = the default level (3)
      await flush();
      inst.calls[0]!.resolve();
      await flush();
      inst.calls[1]!.resolve();
      await flush();
      inst.calls[2]!.resolve();
      await flush();
      expect(inst.values).toEqual([[0], [10, 20], [30, 31], [11]]);
    });

    it('should honour defaultPriorityLevel and clamp levels past the last', async () => {
      const { b, inst } = make({ priorityLevels: 2, defaultPriorityLevel: 1 }, [new FakeInstance(1)]);
      void b.submit(req(0), live());
      await flush();
      void b.submit(req(2, { priority: 7 }), live());
      void b.submit(req(1), live());
      await flush();
      inst.calls[0]!.resolve();
      await flush();
      inst.calls[1]!.resolve();
      await flush();
      expect(inst.values).toEqual([[0], [1], [2]]);
    });

    it('should serve the shape whose head has the highest priority first', async () => {
      const { b, inst } = make({ priorityLevels: 2 }, [new FakeInstance(8)]);
      void b.submit(req(0), live());
      await flush();
      void b.submit(req(1, { width: 3 }), live());
      void b.submit(req(2, { width: 5, priority: 1 }), live());
      await flush();
      inst.calls[0]!.resolve();
      await flush();
      expect(inst.values).toEqual([[0], [2]]);
    });

    it('should reject an invalid parameters.priority with 400', async () => {
      const { b } = make({ priorityLevels: 2 });
      await expect(b.submit(req(1, { priority: 'high' }), live())).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_INVALID', status: 400 });
      await expect(b.submit(req(1, { priority: 1.5 }), live())).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_INVALID' });
    });
  });

  describe('.submit having timeouts', () => {
    it('should reject a request whose batch did not start within timeoutMs with 503 and Retry-After', async () => {
      const { b, inst } = make({ timeoutMs: 50 });
      void b.submit(req(0), live());
      await flush();
      const late = track(b.submit(req(1), live()));
      await advance(49);
      expect(late.error).toBeUndefined();
      await advance(1);
      expect(late.error).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT', status: 503, headers: { 'retry-after': '1' } });
      expect(b.stats()).toEqual({ queued: 0, executing: 1 });
      inst.calls[0]!.resolve();
      await flush();
      expect(inst.calls).toHaveLength(1);
    });

    it('should take a request out at its deadline (its signal aborting with the deadline) with 503 TESSERA_E_QUEUE_TIMEOUT, before timeoutMs', async () => {
      const { b } = make({ timeoutMs: 50 });
      void b.submit(req(0), live());
      await flush();
      const early = track(b.submit(req(1), deadlineSignal(20)));
      const late = track(b.submit(req(2), deadlineSignal(500)));
      await advance(20);
      expect(early.error).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT', status: 503, headers: { 'retry-after': '1' } });
      expect(early.error!.message).toMatch(/deadline of 20 ms \(X-Request-Timeout\) passed while it waited in the batching queue/);
      expect(late.error).toBeUndefined();
      await advance(30);
      expect(late.error).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT' });
      expect(b.stats()).toEqual({ queued: 0, executing: 1 });
    });

    it('should answer a running request at its deadline with 504 and drop its slot of the result, the batch running on for the others', async () => {
      const { b, inst } = make({});
      const ac = new AbortController();
      const timed = track(b.submit(req(1), deadlineSignal(30)));
      await flush();
      const plain = track(b.submit(req(2), ac.signal));
      await flush();
      expect(inst.values).toEqual([[1]]);
      await advance(30);
      expect(timed.error).toMatchObject({ code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED', status: 504 });
      expect(timed.error!.message).toMatch(/during its execution; the result is dropped/);
      // the only client of the batch left (at its deadline): the execution is told
      expect(inst.calls[0]!.signal.aborted).toBe(true);
      inst.calls[0]!.resolve();
      await flush();
      expect(inst.values).toEqual([[1], [2]]);
      inst.calls[1]!.resolve();
      await flush();
      expect(plain.outputs).toHaveLength(1);
      expect(b.stats()).toEqual({ queued: 0, executing: 0 });
    });

    it('should refuse a request whose deadline passed before it arrived with 503 TESSERA_E_QUEUE_TIMEOUT', async () => {
      const { b } = make({});
      await expect(b.submit(req(1), deadlineSignal(0))).rejects.toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT' });
    });

    it('should leave parameters.timeout to the pipeline (it reaches the batcher as a deadline)', async () => {
      const { b, inst } = make({});
      const p = track(b.submit(req(1, { timeout: 5 }), live()));
      await advance(100);
      inst.calls[0]!.resolve();
      await flush();
      expect(p.outputs).toHaveLength(1);
    });

    it('should not time out a request once its batch started', async () => {
      const { b, inst } = make({ timeoutMs: 10 });
      const p = track(b.submit(req(1), live()));
      await advance(100);
      inst.calls[0]!.resolve();
      await flush();
      expect(p.outputs).toHaveLength(1);
    });
  });

  describe('.submit having maxQueueSize', () => {
    it('should reject with 503 TESSERA_E_QUEUE_FULL and Retry-After when the queue is full', async () => {
      const { b, inst } = make({ maxQueueSize: 2 });
      void b.submit(req(0), live());
      await flush();
      void b.submit(req(1), live());
      expect(b.saturated()).toBe(false);
      void b.submit(req(2), live());
      expect(b.saturated()).toBe(true);
      const err = await b.submit(req(3), live()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TESSERA_E_QUEUE_FULL', status: 503, headers: { 'retry-after': '1' } });
      inst.calls[0]!.resolve();
      await flush();
      // room again
      void b.submit(req(4), live());
      expect(b.stats().queued).toBe(1);
    });
  });

  describe('.submit having cancellation', () => {
    it('should take a request whose client went away out of the queue, with 499, and never run it', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 5 });
      const ac = new AbortController();
      const gone = b.submit(req(1), ac.signal);
      const stays = b.submit(req(2), live());
      ac.abort();
      await expect(gone).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED', status: 499 });
      expect(b.stats().queued).toBe(1);
      await advance(5);
      expect(inst.values).toEqual([[2]]);
      inst.calls[0]!.resolve();
      await stays;
    });

    it('should reject at once when the signal is already aborted', async () => {
      const { b } = make({});
      const ac = new AbortController();
      ac.abort();
      await expect(b.submit(req(1), ac.signal)).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED' });
    });

    it('should abort a running batch only when every one of its clients went away', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 1 });
      const a1 = new AbortController();
      const a2 = new AbortController();
      const p1 = track(b.submit(req(1), a1.signal));
      const p2 = track(b.submit(req(2), a2.signal));
      await advance(1);
      a1.abort();
      expect(inst.calls[0]!.signal.aborted).toBe(false);
      a2.abort();
      expect(inst.calls[0]!.signal.aborted).toBe(true);
      inst.calls[0]!.reject(new Error('aborted'));
      await flush();
      expect(p1.error).toBeDefined();
      expect(p2.error).toBeDefined();
    });
  });

  describe('.submit having different shapes', () => {
    it('should never mix non-batch dims or datatypes in one batch', async () => {
      const instances = [new FakeInstance(), new FakeInstance(), new FakeInstance()];
      const { b } = make({ maxQueueDelayMs: 10 }, instances);
      void b.submit(req(1, { width: 4 }), live());
      void b.submit(req(2, { width: 3 }), live());
      void b.submit(req(3, { width: 4 }), live());
      void b.submit(req(4, { width: 4, datatype: 'INT32' }), live());
      void b.submit(req(5, { width: 3 }), live());
      await advance(10);
      const calls = instances.flatMap((i) => i.calls);
      expect(calls).toHaveLength(3);
      for (const c of calls) {
        const kinds = new Set(c.batch.requests.map((r) => `${r.inputs[0]!.datatype}/${r.inputs[0]!.shape[1]}`));
        expect(kinds.size).toBe(1);
      }
      const groups = calls.map((c) => c.batch.requests.map((r) => Number((r.inputs[0]!.data as Float32Array | Int32Array)[0]))).sort((x, y) => x[0]! - y[0]!);
      expect(groups).toEqual([[1, 3], [2, 5], [4]]);
    });

    it('should pass the union of requested outputs, or none when a request wants every output', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 1 });
      void b.submit(req(1, { outputs: ['y'] }), live());
      void b.submit(req(2, { outputs: ['z', 'y'] }), live());
      await advance(1);
      expect(inst.calls[0]!.batch.outputs).toEqual(['y', 'z']);
      void b.submit(req(3, { outputs: ['y'] }), live());
      void b.submit(req(4), live());
      inst.calls[0]!.resolve();
      await advance(1);
      expect(inst.calls[1]!.batch.outputs).toBeUndefined();
    });
  });

  describe('.submit having several instances', () => {
    it('should run one batch per instance at a time, N at once', async () => {
      const instances = [new FakeInstance(1), new FakeInstance(1), new FakeInstance(1)];
      const { b } = make({}, instances);
      const ps = [1, 2, 3, 4].map((v) => b.submit(req(v), live()));
      await flush();
      expect(instances.map((i) => i.running)).toEqual([1, 1, 1]);
      expect(b.stats()).toEqual({ queued: 1, executing: 3 });
      instances[1]!.calls[0]!.resolve();
      await flush();
      expect(instances.map((i) => i.calls.length).reduce((x, y) => x + y)).toBe(4);
      for (const i of instances) for (const c of i.calls) c.resolve();
      await Promise.all(ps);
      expect(instances.every((i) => i.maxRunning === 1)).toBe(true);
    });
  });

  describe('.submit having an instance that accepts its next batch while one runs (acceptsNextBatch)', () => {
    it('should hand it the next batch NEXT_BATCH_LEAD_MS before the running one is predicted to end, never more than one ahead', async () => {
      const inst = new SerialInstance(10);
      const { b, batches } = make({ maxQueueDelayMs: 0 }, [inst]);
      // one execution observed: the batcher now predicts 10 ms a batch
      await Promise.all([b.submit(req(0), live()), advance(10)]);
      await flush();
      const t0 = performance.now();
      const ps = [b.submit(req(1), live())];
      await advance(1);
      ps.push(b.submit(req(2), live()), b.submit(req(3), live()));
      // the queue gathers while the first batch runs: nothing is handed over early
      await advance(10 - NEXT_BATCH_LEAD_MS - 2);
      expect(inst.values).toEqual([[0], [1]]);
      await advance(1);
      expect(inst.values).toEqual([[0], [1], [2, 3]]);
      // handed over NEXT_BATCH_LEAD_MS before the running batch ends
      expect(inst.handedAt[2]! - t0).toBe(10 - NEXT_BATCH_LEAD_MS);
      // one batch ahead at most: the next request waits in the batcher
      ps.push(b.submit(req(4), live()));
      await flush();
      expect(inst.values).toEqual([[0], [1], [2, 3]]);
      await advance(40);
      const outputs = await Promise.all(ps);
      expect(outputs.map((o) => (o[0]!.data as Float32Array)[0])).toEqual([1, 2, 3, 4]);
      expect(inst.values).toEqual([[0], [1], [2, 3], [4]]);
      expect(inst.maxHeld).toBe(2);
      // the session never waited between batches, and each batch's execution time counts from
      // when it started (not from when it was handed over, behind the one before)
      expect(inst.startedAt[2]! - inst.startedAt[1]!).toBe(10);
      expect(batches.map((e) => Math.round(e.executeMs))).toEqual([10, 10, 10, 10]);
      expect(Math.round(batches[2]!.queueMs[0]!)).toBe(9);
    });

    it('should hand out no batch ahead before it has observed an execution, nor to instances that do not accept one', async () => {
      const serial = new SerialInstance(10);
      const { b } = make({ maxQueueDelayMs: 0 }, [serial]);
      const ps = [1, 2, 3].map((v) => b.submit(req(v), live()));
      await advance(5);
      expect(serial.maxHeld).toBe(1);
      await advance(30);
      await Promise.all(ps);
      const plain = new FakeInstance(8, () => 10);
      const other = make({ maxQueueDelayMs: 0 }, [plain]);
      const qs: Promise<Tensor[]>[] = [];
      for (let i = 0; i < 20; i++) {
        qs.push(other.b.submit(req(i), live()));
        await advance(3);
      }
      await advance(50);
      await Promise.all(qs);
      expect(plain.maxRunning).toBe(1);
    });
  });

  describe('.submit having failures', () => {
    it('should reject only the failing batch, wrapped as TESSERA_E_INFERENCE_FAILED, and keep serving', async () => {
      const instances = [new FakeInstance(), new FakeInstance()];
      const { b, batches } = make({ maxQueueDelayMs: 1, preferredBatchSizes: [2] }, instances);
      const bad = [1, 2].map((v) => track(b.submit(req(v), live())));
      await flush();
      const good = [3, 4].map((v) => track(b.submit(req(v), live())));
      await flush();
      const calls = byTime(instances).sort((x, y) => valueOf(x.batch.requests[0]!) - valueOf(y.batch.requests[0]!));
      expect(calls.map((c) => c.batch.requests.map(valueOf))).toEqual([
        [1, 2],
        [3, 4],
      ]);
      calls[0]!.reject(new Error('kaboom'));
      calls[1]!.resolve();
      await flush();
      for (const p of bad) expect(p.error).toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', status: 500, message: expect.stringContaining('kaboom') });
      for (const p of good) expect(p.outputs).toHaveLength(1);
      expect(batches.map((e) => e.ok).sort()).toEqual([false, true]);
      const again = track(b.submit(req(5), live()));
      await advance(1);
      instances.find((i) => i.running > 0)!.calls.at(-1)!.resolve();
      await flush();
      expect(again.outputs).toHaveLength(1);
    });

    it('should reject every request when the backend returns the wrong number of output lists', async () => {
      const inst = new FakeInstance();
      inst.execute = () => Promise.resolve([[]]);
      const { b } = make({ maxQueueDelayMs: 1 }, [inst]);
      const ps = [1, 2].map((v) => track(b.submit(req(v), live())));
      await advance(1);
      for (const p of ps) expect(p.error).toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', message: expect.stringContaining('1 output lists for a batch of 2') });
    });

    it('should survive an execute that throws synchronously', async () => {
      const inst = new FakeInstance();
      inst.execute = () => {
        throw new Error('sync');
      };
      const { b } = make({}, [inst]);
      await expect(b.submit(req(1), live())).rejects.toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED' });
      await expect(b.submit(req(2), live())).rejects.toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED' });
      expect(b.stats()).toEqual({ queued: 0, executing: 0 });
    });
  });

  describe('.submit having a request that fails inside its batch', () => {
    it('should give the others of the batch their outputs, and that request its own error, status kept', async () => {
      const { b, inst, batches } = make({ maxQueueDelayMs: 1 });
      const ps = [1, 2, 3, 4].map((v) => track(b.submit(req(v), live())));
      await advance(1);
      expect(inst.values).toEqual([[1, 2, 3, 4]]);
      const bad = new TesseraError('TESSERA_E_INPUT_DATA', 'request 2: a value the model cannot take');
      inst.calls[0]!.resolve((i) => (i === 1 ? bad : undefined));
      await flush();
      expect(ps[1]!.error).toBe(bad);
      expect(ps[1]!.error).toMatchObject({ code: 'TESSERA_E_INPUT_DATA', status: 400 });
      for (const i of [0, 2, 3]) {
        expect(ps[i]!.error, `request ${i + 1}`).toBeUndefined();
        expect(ps[i]!.outputs![0]!.data, `request ${i + 1}`).toEqual(new Float32Array(4).fill(i + 1));
      }
      expect(batches).toEqual([{ model: 'm', version: '1', size: 4, requests: 4, queueMs: [1, 1, 1, 1], executeMs: 0, ok: true, failed: 1 }]);
    });

    it('should turn a plain Error in a slot into TESSERA_E_INFERENCE_FAILED naming the model and version', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 1 });
      const ps = [1, 2].map((v) => track(b.submit(req(v), live())));
      await advance(1);
      const cause = new Error('row 0 is out of range');
      inst.calls[0]!.resolve((i) => (i === 0 ? cause : undefined));
      await flush();
      expect(ps[0]!.error).toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', status: 500, message: 'm v1: row 0 is out of range', cause });
      expect(ps[1]!.outputs).toHaveLength(1);
    });

    it('should still learn the execution time from an execution that failed some of its requests', async () => {
      // the latency budget sheds only once 3 executions were observed (see the latencyBudgetMs tests)
      const inst = new FakeInstance(1, () => 10);
      inst.failing = () => new TesseraError('TESSERA_E_INPUT_DATA', 'no');
      const { b, batches } = make({ latencyBudgetMs: 25 }, [inst]);
      for (let i = 0; i < 3; i++) {
        const p = track(b.submit(req(i), live()));
        await advance(10);
        expect(p.error).toMatchObject({ code: 'TESSERA_E_INPUT_DATA' });
      }
      expect(batches.map((e) => [e.ok, e.failed])).toEqual([
        [true, 1],
        [true, 1],
        [true, 1],
      ]);
      inst.failing = undefined;
      const ps = [1, 2, 3, 4].map((v) => track(b.submit(req(v), live())));
      await flush();
      expect(ps.map((p) => p.error?.code)).toEqual([undefined, undefined, 'TESSERA_E_QUEUE_SHED', 'TESSERA_E_QUEUE_SHED']);
      await advance(20);
      expect(ps[0]!.outputs && ps[1]!.outputs).toBeTruthy();
    });

    it('should fail the whole batch when a slot is neither outputs nor an Error', async () => {
      const inst = new FakeInstance();
      inst.execute = () => Promise.resolve([[], undefined] as unknown as RequestResult[]);
      const { b, batches } = make({ maxQueueDelayMs: 1 }, [inst]);
      const ps = [1, 2].map((v) => track(b.submit(req(v), live())));
      await advance(1);
      for (const p of ps) expect(p.error).toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', message: expect.stringContaining('undefined for request 2 of the batch') });
      expect(batches.map((e) => [e.ok, e.failed])).toEqual([[false, 0]]);
    });
  });

  describe('.drain', () => {
    it('should dispatch queued work at once, refuse new work and resolve when everything finished', async () => {
      const { b, inst } = make({ maxQueueDelayMs: 1000 }, [new FakeInstance(2)]);
      const ps = [1, 2, 3].map((v) => track(b.submit(req(v), live())));
      await flush();
      expect(inst.values).toEqual([[1, 2]]);
      let drained = false;
      const d = b.drain().then(() => (drained = true));
      expect(b.drain()).toBe(b.drain());
      await expect(b.submit(req(4), live())).rejects.toMatchObject({ code: 'TESSERA_E_MODEL_NOT_READY', status: 503, headers: { 'retry-after': '1' } });
      inst.calls[0]!.resolve();
      await flush();
      // the last request did not wait for its delay window
      expect(inst.values).toEqual([[1, 2], [3]]);
      expect(drained).toBe(false);
      inst.calls[1]!.resolve();
      await d;
      expect(drained).toBe(true);
      expect(ps.every((p) => p.outputs)).toBe(true);
      await b.drain();
    });

    it('should resolve at once when idle', async () => {
      const { b } = make({});
      await b.drain();
      expect(b.stats()).toEqual({ queued: 0, executing: 0 });
    });
  });

  describe('.submit having maxQueueDelayMs auto', () => {
    it('should dispatch at once at low load, so one request at a time sees the raw batch-1 latency', async () => {
      const inst = new FakeInstance(8, (b) => 2 + 0.5 * b);
      const { b, batches } = make({ maxQueueDelayMs: 'auto' }, [inst]);
      for (let i = 0; i < 20; i++) {
        const p = b.submit(req(i), live());
        await advance(3);
        await p;
        await advance(20);
      }
      expect(batches).toHaveLength(20);
      expect(batches.every((e) => e.requests === 1 && e.queueMs[0] === 0)).toBe(true);
    });

    it('should dispatch at once in a closed loop (concurrency 1, back to back)', async () => {
      const inst = new FakeInstance(8, (b) => 2 + 0.5 * b);
      const { b, batches } = make({ maxQueueDelayMs: 'auto' }, [inst]);
      // some load first, so that the model has learned a fixed cost worth amortising
      await Promise.all(Array.from({ length: 30 }, (_, i) => b.submit(req(i), live())).concat([advance(100).then(() => [])]));
      batches.length = 0;
      for (let i = 0; i < 20; i++) {
        const p = b.submit(req(i), live());
        await advance(2.5);
        await p;
      }
      expect(batches.every((e) => e.requests === 1 && e.queueMs[0] === 0)).toBe(true);
    });

    it('should form larger batches under load', async () => {
      const inst = new FakeInstance(16, (b) => 4 + 0.2 * b);
      const { b, batches } = make({ maxQueueDelayMs: 'auto' }, [inst]);
      const ps: Promise<Tensor[]>[] = [];
      for (let i = 0; i < 300; i++) {
        ps.push(b.submit(req(i), live()));
        await advance(0.5);
      }
      await advance(100);
      await Promise.all(ps);
      const late = batches.slice(10);
      const mean = late.reduce((n, e) => n + e.requests, 0) / late.length;
      expect(mean).toBeGreaterThan(4);
      expect(batches.every((e) => e.size <= 16)).toBe(true);
    });

    it('should hold a batch while more requests are due soon and one execution costs much more than waiting', async () => {
      // a large fixed cost per execution (a GPU-like model): t(b) = 40 + 0.1·b ms
      const inst = new FakeInstance(32, (b) => 40 + 0.1 * b);
      const { b, batches } = make({ maxQueueDelayMs: 'auto', adaptiveMaxDelayMs: 8 }, [inst]);
      const ps: Promise<Tensor[]>[] = [];
      for (let i = 0; i < 30; i++) {
        ps.push(b.submit(req(i), live()));
        await advance(2);
      }
      await advance(70);
      await Promise.all(ps);
      expect(inst.running).toBe(0);
      // the instance is idle; requests come again every 2 ms
      batches.length = 0;
      const first = track(b.submit(req(100), live()));
      await advance(2);
      expect(inst.running).toBe(0);
      for (const v of [101, 102, 103]) {
        void b.submit(req(v), live());
        await advance(2);
      }
      // held for the next arrivals, at most adaptiveMaxDelayMs from the first request
      expect(inst.running).toBe(1);
      const held = inst.values.at(-1)!;
      expect(held.length).toBeGreaterThan(1);
      expect(held.slice(0, 2)).toEqual([100, 101]);
      await advance(50);
      expect(first.outputs).toHaveLength(1);
      expect(batches[0]!.queueMs[0]).toBeGreaterThan(0);
      expect(batches[0]!.queueMs[0]).toBeLessThanOrEqual(8);
    });

    it('should stop holding when holds gain nothing (a closed loop with a large fixed cost)', async () => {
      // the cost model alone would hold every request: t(b) = 40 + 0.1·b and a short gap between
      // requests; but one client waits for each answer, so no hold can ever gain a second request
      const inst = new FakeInstance(32, (b) => 40 + 0.1 * b);
      const { b, batches } = make({ maxQueueDelayMs: 'auto', adaptiveMaxDelayMs: 8 }, [inst]);
      const warm: Promise<Tensor[]>[] = [];
      for (let i = 0; i < 30; i++) {
        warm.push(b.submit(req(i), live()));
        await advance(2);
      }
      await advance(100);
      await Promise.all(warm);
      batches.length = 0;
      for (let i = 0; i < 40; i++) {
        const p = b.submit(req(100 + i), live());
        await advance(50);
        await p;
      }
      expect(batches.every((e) => e.requests === 1)).toBe(true);
      const held = batches.filter((e) => e.queueMs[0]! > 0).length;
      // a few holds while it learns, then only the rare probe
      expect(held).toBeLessThanOrEqual(6);
      expect(batches.slice(-20).filter((e) => e.queueMs[0]! > 0).length).toBeLessThanOrEqual(1);
    });

    it('should never hold a batch back while another instance is idle', async () => {
      const instances = [new FakeInstance(32, (b) => 20 + 0.1 * b), new FakeInstance(32, (b) => 20 + 0.1 * b)];
      const { b, batches } = make({ maxQueueDelayMs: 'auto' }, instances);
      const ps: Promise<Tensor[]>[] = [];
      for (let i = 0; i < 60; i++) {
        ps.push(b.submit(req(i), live()));
        await advance(2);
      }
      await advance(200);
      await Promise.all(ps);
      batches.length = 0;
      void b.submit(req(100), live());
      await flush();
      expect(instances.reduce((n, i) => n + i.running, 0)).toBe(1);
    });
  });

  describe('.submit having latencyBudgetMs', () => {
    it('should shed on admission the requests predicted to miss the budget', async () => {
      const inst = new FakeInstance(1, () => 10);
      const { b } = make({ latencyBudgetMs: 25 }, [inst]);
      for (let i = 0; i < 3; i++) {
        const p = b.submit(req(i), live());
        await advance(10);
        await p;
      }
      const ps = [1, 2, 3, 4].map((v) => track(b.submit(req(v), live())));
      await flush();
      // running: done in 10; next: 10 + 10 = 20 ≤ 25; the rest would need 30 and more
      expect(ps.map((p) => p.error?.code)).toEqual([undefined, undefined, 'TESSERA_E_QUEUE_SHED', 'TESSERA_E_QUEUE_SHED']);
      expect(ps[2]!.error).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
      await advance(20);
      expect(ps[0]!.outputs && ps[1]!.outputs).toBeTruthy();
    });

    it('should shed a queued request that became late before its batch starts', async () => {
      let cost = 10;
      const inst = new FakeInstance(1, () => cost);
      const { b } = make({ latencyBudgetMs: 25 }, [inst]);
      for (let i = 0; i < 3; i++) {
        const p = b.submit(req(i), live());
        await advance(10);
        await p;
      }
      cost = 30; // the model slows down
      const running = track(b.submit(req(1), live()));
      const queued = track(b.submit(req(2), live()));
      await flush();
      expect(queued.error).toBeUndefined();
      await advance(30);
      expect(running.outputs).toHaveLength(1);
      expect(queued.error).toMatchObject({ code: 'TESSERA_E_QUEUE_SHED' });
      expect(inst.calls).toHaveLength(4);
    });

    it('should not shed before it has observed executions', async () => {
      const inst = new FakeInstance(1, () => 100);
      const { b } = make({ latencyBudgetMs: 5 }, [inst]);
      const p = track(b.submit(req(1), live()));
      await advance(100);
      expect(p.outputs).toHaveLength(1);
    });
  });
});

describe('dynamicBatcherFactory', () => {
  it('should be registered in the core as `dynamic`', () => {
    const server = new TesseraServer({ config: resolveConfig({}, { configDir: '/', env: {} }), logger: pino({ level: 'silent' }) });
    expect(server.container.get<BatcherFactory>(BATCHER_FACTORY, { name: 'dynamic' })).toBe(dynamicBatcherFactory);
  });
});
