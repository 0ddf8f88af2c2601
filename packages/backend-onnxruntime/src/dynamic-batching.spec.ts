import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batcher, ServingEventMap, Tensor } from '@tessera/core';
import { ServingEvents, dynamicBatcherFactory } from '@tessera/core';
import type { TestModelCatalog } from '@tessera/core/testing';
import { diffTensorLists, makeTempDir, testLoadContext, testModelSpec, writeTestModels } from '@tessera/core/testing';
import type { OnnxRuntimeModelInstance } from './backend.js';
import { DEFAULT_MAX_BATCH_SIZE, OnnxRuntimeBackend } from './backend.js';

type BatchEvent = ServingEventMap['batch'][0];

/** The affine model declares a dynamic dim 0; the backend's default max batch size applies. */
const batcherMaxBatchSize = DEFAULT_MAX_BATCH_SIZE;
let models: TestModelCatalog;
const loaded: OnnxRuntimeModelInstance[] = [];

beforeAll(async () => {
  // removed after the file's tests by makeTempDir
  models = await writeTestModels(await makeTempDir('tessera-dynamic-'));
});

afterAll(async () => {
  await Promise.all(loaded.map((i) => i.unload()));
});

async function batcherFor(options: Record<string, unknown>, instanceCount = 1, config: Record<string, unknown> = {}): Promise<{ batcher: Batcher; batches: BatchEvent[]; instances: OnnxRuntimeModelInstance[] }> {
  const backend = new OnnxRuntimeBackend();
  const instances: OnnxRuntimeModelInstance[] = [];
  for (let i = 0; i < instanceCount; i++) {
    instances.push(await backend.load(testModelSpec({ name: 'affine', path: models.affine.path, config }, { instanceIndex: i, instanceCount }), testLoadContext()));
  }
  loaded.push(...instances);
  const events = new ServingEvents();
  const batches: BatchEvent[] = [];
  events.on('batch', (e) => batches.push(e));
  const batcher = dynamicBatcherFactory.create({
    model: 'affine',
    version: '1',
    metadata: instances[0]!.metadata,
    instances,
    options,
    events,
    logger: testLoadContext().logger,
  });
  return { batcher, batches, instances };
}

/** Submits 20 requests at once (1 to 3 rows each, different data) and checks every answer against the model's reference. */
async function submitConcurrently(batcher: Batcher): Promise<void> {
  const inputs = Array.from({ length: 20 }, (_, i) => models.affine.makeInputs(1 + (i % 3), i + 1));
  const results = await Promise.all(inputs.map((x) => batcher.submit({ inputs: x }, new AbortController().signal)));
  results.forEach((outputs: Tensor[], i) => {
    expect(diffTensorLists(outputs, models.affine.expected(inputs[i]!), { tolerance: models.affine.tolerance }), `request ${i}`).toBeUndefined();
  });
}

describe('dynamic batcher on ONNX Runtime', () => {
  it('should answer 20 concurrent requests correctly, in batches of more than one', async () => {
    const { batcher, batches } = await batcherFor({ maxQueueDelayMs: 5 });
    await submitConcurrently(batcher);
    expect(batches.reduce((n, e) => n + e.requests, 0)).toBe(20);
    expect(batches.every((e) => e.ok)).toBe(true);
    expect(Math.max(...batches.map((e) => e.requests))).toBeGreaterThan(1);
    expect(batches.every((e) => e.size <= batcherMaxBatchSize)).toBe(true);
    await batcher.drain();
  });

  it('should do the same with the adaptive delay, two instances and a requested output', async () => {
    const { batcher, batches } = await batcherFor({ maxQueueDelayMs: 'auto' }, 2);
    const inputs = Array.from({ length: 20 }, (_, i) => models.affine.makeInputs(2, 100 + i));
    const results = await Promise.all(inputs.map((x) => batcher.submit({ inputs: x, outputs: ['sum'] }, new AbortController().signal)));
    results.forEach((outputs, i) => {
      const expected = models.affine.expected(inputs[i]!).filter((t) => t.name === 'sum');
      expect(diffTensorLists(outputs, expected, { tolerance: models.affine.tolerance }), `request ${i}`).toBeUndefined();
    });
    expect(Math.max(...batches.map((e) => e.requests))).toBeGreaterThan(1);
    await batcher.drain();
  });

  it('should answer every request right with nextBatchInWorker, the next batch queued in the worker behind the running one', async () => {
    const { batcher, batches, instances } = await batcherFor({ maxQueueDelayMs: 0 }, 1, { nextBatchInWorker: true });
    expect(instances[0]!.acceptsNextBatch).toBe(true);
    expect(instances[0]!.settings['nextBatchInWorker']).toBe(true);
    // how many executions the instance holds at once
    const instance = instances[0]!;
    const execute = instance.execute.bind(instance);
    let held = 0;
    let maxHeld = 0;
    instance.execute = async (batch, signal) => {
      maxHeld = Math.max(maxHeld, ++held);
      try {
        return await execute(batch, signal);
      } finally {
        held--;
      }
    };
    // waves of 20 requests (40 rows: more than one batch of DEFAULT_MAX_BATCH_SIZE): once the batcher
    // has observed a batch, the second batch of a wave goes to the worker while the first runs
    for (let wave = 0; wave < 5; wave++) await submitConcurrently(batcher);
    expect(maxHeld).toBe(2);
    expect(batches.reduce((n, e) => n + e.requests, 0)).toBe(100);
    expect(batches.every((e) => e.ok && e.executeMs >= 0)).toBe(true);
    await batcher.drain();
  });
});
