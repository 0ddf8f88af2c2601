import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { InferenceBatch, ModelInstance, RequestResult } from '../contracts/backend.js';
import type { ServingEventMap } from '../contracts/events.js';
import { ServingEvents } from '../contracts/events.js';
import { TesseraError } from '../errors.js';
import { PassthroughBatcher } from './passthrough-batcher.js';

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

function make(instances: ModelInstance[]) {
  const events = new ServingEvents();
  const batches: number[] = [];
  const batchEvents: ServingEventMap['batch'][0][] = [];
  events.on('batch', (e) => batches.push(e.requests));
  events.on('batch', (e) => batchEvents.push(e));
  const b = new PassthroughBatcher({ model: 'm', version: '1', metadata: instances[0]!.metadata, instances, options: {}, events, logger: pino({ level: 'silent' }) });
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
});
