import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { InferenceBatch, ModelInstance, RequestResult } from '../contracts/backend.js';
import type { ServingEventMap } from '../contracts/events.js';
import { ServingEvents } from '../contracts/events.js';
import { TesseraError } from '../errors.js';
import { deadlineExceeded } from '../pipeline/deadline.js';
import { PassthroughBatcher } from './passthrough-batcher.js';

/** A signal aborted as a request's work signal is at its deadline. */
function pastDeadline(): AbortController {
  return new AbortController();
}
const deadline = (ac: AbortController): void => ac.abort(deadlineExceeded({ source: 'grpc-timeout', ms: 50 }, 'before the answer was ready'));
const live = (): AbortSignal => new AbortController().signal;

/** An instance whose executions finish when the test says so. */
class ControlledInstance implements ModelInstance {
  readonly metadata = { platform: 'test', inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1] }], outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1] }], maxBatchSize: 8 };
  readonly calls: InferenceBatch[] = [];
  /** `resolve(slot)`: the request gets `slot` (an Error) instead of its outputs, when given. */
  readonly pending: { resolve: (slot?: Error) => void; reject: (e: Error) => void }[] = [];
  running = 0;
  maxRunning = 0;

  execute(batch: InferenceBatch): Promise<RequestResult[]> {
    this.calls.push(batch);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve, reject) => {
      this.pending.push({
        resolve: (slot) => {
          this.running--;
          resolve(batch.requests.map((r) => slot ?? [{ ...r.inputs[0]!, name: 'y' }]));
        },
        reject: (e) => {
          this.running--;
          reject(e);
        },
      });
    });
  }

  async unload(): Promise<void> {}
}

const tick = () => new Promise((r) => setImmediate(r));
const req = (v: number) => ({ inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1], data: Float32Array.of(v) }] });

function make(instances: ModelInstance[], options: Record<string, unknown> = {}) {
  const events = new ServingEvents();
  const batches: number[] = [];
  const batchEvents: ServingEventMap['batch'][0][] = [];
  events.on('batch', (e) => batches.push(e.requests));
  events.on('batch', (e) => batchEvents.push(e));
  const b = new PassthroughBatcher({ model: 'm', version: '1', metadata: instances[0]!.metadata, instances, options, events, logger: pino({ level: 'silent' }) });
  return { b, batches, batchEvents };
}

describe('PassthroughBatcher', () => {
  it('should run one request per execution, one execution per instance at a time', async () => {
    const inst = new ControlledInstance();
    const { b, batches } = make([inst]);
    const p1 = b.submit(req(1), new AbortController().signal);
    const p2 = b.submit(req(2), new AbortController().signal);
    await tick();
    expect(inst.calls).toHaveLength(1);
    expect(b.stats()).toEqual({ queued: 1, executing: 1 });
    inst.pending[0]!.resolve();
    expect((await p1)[0]!.data).toEqual(Float32Array.of(1));
    await tick();
    inst.pending[1]!.resolve();
    expect((await p2)[0]!.data).toEqual(Float32Array.of(2));
    expect(inst.maxRunning).toBe(1);
    expect(batches).toEqual([1, 1]);
  });

  it('should spread requests over instances', async () => {
    const a = new ControlledInstance();
    const c = new ControlledInstance();
    const { b } = make([a, c]);
    const ps = [b.submit(req(1), new AbortController().signal), b.submit(req(2), new AbortController().signal)];
    await tick();
    expect(a.calls.length + c.calls.length).toBe(2);
    expect(a.calls).toHaveLength(1);
    a.pending[0]!.resolve();
    c.pending[0]!.resolve();
    await Promise.all(ps);
  });

  it('should drop a queued request whose client went away, with 499', async () => {
    const inst = new ControlledInstance();
    const { b } = make([inst]);
    const first = b.submit(req(1), new AbortController().signal);
    const ac = new AbortController();
    const second = b.submit(req(2), ac.signal);
    ac.abort();
    await expect(second).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED', status: 499 });
    inst.pending[0]!.resolve();
    await first;
    await tick();
    expect(inst.calls).toHaveLength(1);
  });

  it('should wrap backend failures as TESSERA_E_INFERENCE_FAILED and keep serving', async () => {
    const inst = new ControlledInstance();
    const { b } = make([inst]);
    const p = b.submit(req(1), new AbortController().signal);
    await tick();
    inst.pending[0]!.reject(new Error('kaboom'));
    await expect(p).rejects.toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', message: expect.stringContaining('kaboom') });
    const q = b.submit(req(2), new AbortController().signal);
    await tick();
    inst.pending[1]!.resolve();
    await expect(q).resolves.toHaveLength(1);
  });

  it('should reject a request with the Error in its slot, a TesseraError as is, and count it in the batch event', async () => {
    const inst = new ControlledInstance();
    const { b, batchEvents } = make([inst]);
    const p = b.submit(req(1), new AbortController().signal);
    await tick();
    const bad = new TesseraError('TESSERA_E_INPUT_DATA', 'a value the model cannot take');
    inst.pending[0]!.resolve(bad);
    await expect(p).rejects.toBe(bad);
    expect(bad.status).toBe(400);
    expect(batchEvents).toEqual([{ model: 'm', version: '1', size: 1, requests: 1, queueMs: [expect.any(Number)], executeMs: expect.any(Number), ok: true, failed: 1 }]);
    const q = b.submit(req(2), new AbortController().signal);
    await tick();
    inst.pending[1]!.resolve();
    await expect(q).resolves.toHaveLength(1);
    expect(batchEvents.map((e) => [e.ok, e.failed])).toEqual([
      [true, 1],
      [true, 0],
    ]);
  });

  it('should wrap a plain Error in a slot as TESSERA_E_INFERENCE_FAILED with the model and version', async () => {
    const inst = new ControlledInstance();
    const { b } = make([inst]);
    const p = b.submit(req(1), new AbortController().signal);
    await tick();
    const cause = new Error('out of range');
    inst.pending[0]!.resolve(cause);
    await expect(p).rejects.toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', status: 500, message: 'm v1: out of range', cause });
  });

  it('should fail the execution when the backend returns the wrong number of results', async () => {
    const inst = new ControlledInstance();
    inst.execute = () => Promise.resolve([]);
    const { b, batchEvents } = make([inst]);
    await expect(b.submit(req(1), new AbortController().signal)).rejects.toMatchObject({ code: 'TESSERA_E_INFERENCE_FAILED', message: expect.stringContaining('0 output lists for a batch of 1') });
    expect(batchEvents.map((e) => [e.ok, e.failed])).toEqual([[false, 0]]);
  });

  it('should finish queued work on drain and refuse new work', async () => {
    const inst = new ControlledInstance();
    const { b } = make([inst]);
    const p1 = b.submit(req(1), new AbortController().signal);
    const p2 = b.submit(req(2), new AbortController().signal);
    let drained = false;
    const d = b.drain().then(() => (drained = true));
    await expect(b.submit(req(3), new AbortController().signal)).rejects.toBeInstanceOf(TesseraError);
    await tick();
    inst.pending[0]!.resolve();
    await tick();
    expect(drained).toBe(false);
    inst.pending[1]!.resolve();
    await Promise.all([p1, p2, d]);
    expect(drained).toBe(true);
    await b.drain();
  });

  describe('having maxQueueSize', () => {
    it('should refuse with 503 TESSERA_E_QUEUE_FULL and Retry-After past maxQueueSize waiting requests, saturated() saying so first', async () => {
      const inst = new ControlledInstance();
      const { b } = make([inst], { maxQueueSize: 2 });
      const running = b.submit(req(0), live());
      const queued = [b.submit(req(1), live())];
      expect(b.saturated()).toBe(false);
      queued.push(b.submit(req(2), live()));
      expect(b.saturated()).toBe(true);
      const err = await b.submit(req(3), live()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TESSERA_E_QUEUE_FULL', status: 503, headers: { 'retry-after': '1' } });
      expect(b.stats()).toEqual({ queued: 2, executing: 1 });
      inst.pending[0]!.resolve();
      await running;
      expect(b.saturated()).toBe(false);
      await tick();
      inst.pending[1]!.resolve();
      await tick();
      inst.pending[2]!.resolve();
      await Promise.all(queued);
    });

    it('should default to 1024 and take 0 as unbounded', async () => {
      expect(make([new ControlledInstance()]).b.options).toEqual({ maxQueueSize: 1024 });
      const inst = new ControlledInstance();
      const { b } = make([inst], { maxQueueSize: 0 });
      const ps = Array.from({ length: 1100 }, (_, i) => b.submit(req(i), live()));
      expect(b.stats().queued).toBe(1099);
      expect(b.saturated()).toBe(false);
      for (let i = 0; i < ps.length; i++) {
        await tick();
        inst.pending[i]!.resolve();
      }
      await Promise.all(ps);
    });

    it('should refuse options it does not take, naming the key', () => {
      expect(() => make([new ControlledInstance()], { maxQueueSize: -1 })).toThrow(/batching\.maxQueueSize/);
      expect(() => make([new ControlledInstance()], { maxQueueDelayMs: 2 })).toThrow(TesseraError);
    });
  });

  describe('having deadlines', () => {
    it('should take a queued request out at its deadline with 503 TESSERA_E_QUEUE_TIMEOUT', async () => {
      const inst = new ControlledInstance();
      const { b } = make([inst]);
      const running = b.submit(req(0), live());
      const ac = pastDeadline();
      const timed = b.submit(req(1), ac.signal).catch((e: unknown) => e);
      const after = b.submit(req(2), live());
      deadline(ac);
      expect(await timed).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT', status: 503, headers: { 'retry-after': '1' } });
      expect(b.stats()).toEqual({ queued: 1, executing: 1 });
      inst.pending[0]!.resolve();
      await running;
      await tick();
      expect(inst.calls.map((c) => (c.requests[0]!.inputs[0]!.data as Float32Array)[0])).toEqual([0, 2]);
      inst.pending[1]!.resolve();
      await after;
    });

    it('should answer a running request at its deadline with 504, drop its result, and free the instance only when the execution ends', async () => {
      const inst = new ControlledInstance();
      const { b } = make([inst]);
      const ac = pastDeadline();
      const timed = b.submit(req(1), ac.signal).catch((e: unknown) => e);
      const next = b.submit(req(2), live());
      deadline(ac);
      expect(await timed).toMatchObject({ code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED', status: 504 });
      expect(b.stats()).toEqual({ queued: 1, executing: 1 });
      inst.pending[0]!.resolve();
      await tick();
      inst.pending[1]!.resolve();
      expect((await next)[0]!.data).toEqual(Float32Array.of(2));
    });

    it('should refuse a request whose deadline already passed, and keep 499 for a client that left', async () => {
      const { b } = make([new ControlledInstance()]);
      const ac = pastDeadline();
      deadline(ac);
      await expect(b.submit(req(1), ac.signal)).rejects.toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT' });
      const gone = new AbortController();
      gone.abort();
      await expect(b.submit(req(1), gone.signal)).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED' });
    });
  });
});
