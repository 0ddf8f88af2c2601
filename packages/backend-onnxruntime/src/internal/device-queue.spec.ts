import { describe, expect, it } from 'vitest';
import { OnnxRuntimeBackend } from '../backend.js';
import { DeviceQueue, deviceQueueFor } from './device-queue.js';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('DeviceQueue', () => {
  it('should run one call at a time, in order, and go on after a call that fails', async () => {
    const queue = new DeviceQueue();
    let active = 0;
    let most = 0;
    const order: number[] = [];
    const job = (n: number, fail = false) => async (): Promise<number> => {
      active++;
      most = Math.max(most, active);
      await tick(5);
      order.push(n);
      active--;
      if (fail) throw new Error(`job ${n} failed`);
      return n;
    };
    const results = await Promise.allSettled([queue.run(job(1)), queue.run(job(2, true)), queue.run(job(3)), queue.run(job(4))]);
    expect(most).toBe(1);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([1, 'job 2 failed', 3, 4]);
    expect(queue.pending).toBe(0);
  });

  it('should give the sessions of a process on WebGPU one queue, and none to CPU-only sessions', () => {
    const a = deviceQueueFor(['webgpu', 'cpu']);
    expect(a).toBeInstanceOf(DeviceQueue);
    expect(deviceQueueFor(['webgpu'])).toBe(a);
    expect(deviceQueueFor(['cpu'])).toBeUndefined();
    expect(deviceQueueFor(['cuda', 'cpu'])).toBeUndefined();
  });

  it('should load one instance of a model on a GPU provider with instances: auto, whatever the cores', () => {
    const backend = new OnnxRuntimeBackend();
    expect(backend.autoInstances({ config: { sessionOptions: { executionProviders: ['webgpu'] } } }, 16)).toBe(1);
    expect(backend.autoInstances({ config: { sessionOptions: { executionProviders: [{ name: 'cuda', deviceId: 0 }, 'cpu'] } } }, 64)).toBe(1);
    expect(backend.autoInstances({ config: { sessionOptions: { executionProviders: ['cpu'] } } }, 16)).toBeGreaterThan(1);
  });
});
