import { describe, expect, it } from 'vitest';
import { deadlineExceeded } from '../pipeline/deadline.js';
import type { ReleaseSlot } from './generation-gate.js';
import { GenerationGate } from './generation-gate.js';
import { ModelVersion } from './model-version.js';

const live = (): AbortSignal => new AbortController().signal;

describe(GenerationGate, () => {
  it('should hand out maxConcurrent slots at once, queue maxQueued more in order, and refuse the rest with 503 TESSERA_E_QUEUE_FULL', async () => {
    const gate = new GenerationGate('llm v1', { maxConcurrent: 2, maxQueued: 2 });
    const a = gate.acquire(live()) as ReleaseSlot;
    const b = gate.acquire(live()) as ReleaseSlot;
    expect(typeof a).toBe('function');
    const order: string[] = [];
    const c = (gate.acquire(live()) as Promise<ReleaseSlot>).then((r) => (order.push('c'), r));
    const d = (gate.acquire(live()) as Promise<ReleaseSlot>).then((r) => (order.push('d'), r));
    expect(gate.saturated).toBe(true);
    expect(() => gate.acquire(live())).toThrow(expect.objectContaining({ code: 'TESSERA_E_QUEUE_FULL', status: 503, headers: { 'retry-after': '1' } }));
    expect(() => gate.acquire(live())).toThrow(/2 generations are running \(generation.maxConcurrent 2\) and 2 waiting \(generation.maxQueued 2\)/);
    a();
    a();
    const rc = await c;
    expect(order).toEqual(['c']);
    expect({ active: gate.active, queued: gate.queued }).toEqual({ active: 2, queued: 1 });
    b();
    (await d)();
    rc();
    expect({ active: gate.active, queued: gate.queued }).toEqual({ active: 0, queued: 0 });
  });

  it('should refuse at once with maxQueued 0', () => {
    const gate = new GenerationGate('llm v1', { maxConcurrent: 1, maxQueued: 0 });
    expect(typeof gate.acquire(live())).toBe('function');
    expect(() => gate.acquire(live())).toThrow(expect.objectContaining({ code: 'TESSERA_E_QUEUE_FULL' }));
  });

  it('should let a waiter leave at its deadline (503 TESSERA_E_QUEUE_TIMEOUT) or when its client goes (499), keeping the others in order', async () => {
    const gate = new GenerationGate('llm v1', { maxConcurrent: 1, maxQueued: 3 });
    const first = gate.acquire(live()) as ReleaseSlot;
    const timed = new AbortController();
    const gone = new AbortController();
    const p1 = (gate.acquire(timed.signal) as Promise<ReleaseSlot>).catch((e: unknown) => e);
    const p2 = (gate.acquire(gone.signal) as Promise<ReleaseSlot>).catch((e: unknown) => e);
    const p3 = gate.acquire(live()) as Promise<ReleaseSlot>;
    timed.abort(deadlineExceeded({ source: 'X-Request-Timeout', ms: 100 }, 'before the answer was ready'));
    gone.abort();
    expect(await p1).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT', status: 503, headers: { 'retry-after': '1' } });
    expect((await p1 as Error).message).toMatch(/deadline of 100 ms \(X-Request-Timeout\) passed while it waited for a generation slot/);
    expect(await p2).toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED' });
    expect(gate.queued).toBe(1);
    first();
    (await p3)();
    expect(gate.active).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    expect(typeof gate.acquire(live())).toBe('function');
    await expect(gate.acquire(aborted.signal)).rejects.toMatchObject({ code: 'TESSERA_E_REQUEST_CANCELLED' });
  });
});

describe('ModelVersion.admitGeneration', () => {
  it('should count admitted and queued generations for the drain, and give the slot back once', async () => {
    const v = new ModelVersion('llm', '1', { maxConcurrent: 1, maxQueued: 1 });
    const end1 = v.admitGeneration(live()) as ReleaseSlot;
    const queued = v.admitGeneration(live()) as Promise<ReleaseSlot>;
    let drained = false;
    void v.generationsDrained().then(() => (drained = true));
    end1();
    end1();
    const end2 = await queued;
    await Promise.resolve();
    expect(drained).toBe(false);
    end2();
    await Promise.resolve();
    expect(drained).toBe(true);
    expect(v.generations.active).toBe(0);
  });

  it('should not count a refused or abandoned generation', async () => {
    const v = new ModelVersion('llm', '1', { maxConcurrent: 1, maxQueued: 1 });
    const end = v.admitGeneration(live()) as ReleaseSlot;
    const ac = new AbortController();
    const waiting = (v.admitGeneration(ac.signal) as Promise<ReleaseSlot>).catch((e: unknown) => e);
    expect(() => v.admitGeneration(live())).toThrow(expect.objectContaining({ code: 'TESSERA_E_QUEUE_FULL' }));
    ac.abort();
    await waiting;
    end();
    await v.generationsDrained();
  });
});
