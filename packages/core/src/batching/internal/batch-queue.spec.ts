import { describe, expect, it } from 'vitest';
import type { InferenceRequest } from '../../contracts/backend.js';
import type { Entry } from './batch-queue.js';
import { BatchQueue, planBatch, shapeKey } from './batch-queue.js';

function request(shapes: number[][], datatype: 'FP32' | 'INT32' = 'FP32'): InferenceRequest {
  return { inputs: shapes.map((shape, i) => ({ name: `in${i}`, datatype, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })) };
}

function entry(queue: BatchQueue, key: string, samples: number, level = 0, enqueuedAt = 0): Entry {
  const e: Entry = {
    request: request([[samples, 1]]),
    signal: new AbortController().signal,
    samples,
    level,
    seq: 0,
    enqueuedAt,
    queue: queue.subQueue(key),
    state: 'queued',
    batch: undefined,
    timer: undefined,
    resolve: () => undefined,
    reject: () => undefined,
    onAbort: () => undefined,
  };
  queue.add(e);
  return e;
}

describe('shapeKey', () => {
  it('should tell apart the non-batch dims and datatypes of each input position, and ignore dim 0', () => {
    expect(shapeKey(request([[1, 4]]), true)).toBe(shapeKey(request([[7, 4]]), true));
    expect(shapeKey(request([[1, 4]]), true)).not.toBe(shapeKey(request([[1, 5]]), true));
    expect(shapeKey(request([[1, 4]]), true)).not.toBe(shapeKey(request([[1, 4]], 'INT32'), true));
    expect(shapeKey(request([[1, 2], [1, 3]]), true)).not.toBe(shapeKey(request([[1, 3], [1, 2]]), true));
    expect(shapeKey(request([[1, 4]]), false)).toBe(shapeKey(request([[2, 9]]), false));
  });
});

describe('planBatch', () => {
  const limits = { batched: true, maxBatch: 4, preferred: new Set([2]) };

  it('should take higher levels first, then FIFO, until a request does not fit', () => {
    const q = new BatchQueue(2);
    const low = entry(q, 'k', 1, 1, 0);
    const high = entry(q, 'k', 2, 0, 5);
    const big = entry(q, 'k', 3, 1, 6);
    const plan = planBatch(q.subQueue('k'), limits);
    expect(plan.entries).toEqual([high, low]);
    expect(plan).toMatchObject({ samples: 3, full: true, preferred: 1, oldest: 0 });
    q.remove(high);
    q.remove(low);
    expect(planBatch(q.subQueue('k'), limits).entries).toEqual([big]);
  });

  it('should always take the head, even one larger than the limit, so that nothing waits forever', () => {
    const q = new BatchQueue(1);
    const huge = entry(q, 'k', 9);
    entry(q, 'k', 1);
    expect(planBatch(q.subQueue('k'), limits)).toMatchObject({ entries: [huge], samples: 9, full: true });
  });

  it('should take one request at a time when the model does not batch', () => {
    const q = new BatchQueue(1);
    const first = entry(q, '', 1);
    entry(q, '', 1);
    expect(planBatch(q.subQueue(''), { batched: false, maxBatch: 1, preferred: new Set() })).toMatchObject({ entries: [first], full: true });
  });
});

describe(BatchQueue, () => {
  it('should count what waits, drop emptied sub-queues and count samples ahead by level', () => {
    const q = new BatchQueue(2);
    const a = entry(q, 'a', 2, 0);
    entry(q, 'b', 3, 1);
    expect(q.size).toBe(2);
    expect(q.ahead(0, true)).toBe(2);
    expect(q.ahead(1, true)).toBe(5);
    expect(q.ahead(1, false)).toBe(2);
    q.remove(a);
    q.remove(a);
    expect(q.size).toBe(1);
    expect(q.byHead().map((s) => s.key)).toEqual(['b']);
  });
});
