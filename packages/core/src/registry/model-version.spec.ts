/**
 * A version's readiness (`ModelVersion.availability`): serving while one instance can, and when none
 * can, why — the instances' own reasons, a `ready()` that throws or rejects, or the lifecycle state.
 */
import { describe, expect, it } from 'vitest';
import type { ModelInstance } from '../contracts/backend.js';
import { FAKE_MODEL_METADATA } from '../testing/fake-backend.js';
import { ModelVersion } from './model-version.js';

function instance(ready: () => Promise<boolean>, notReadyReason?: string): ModelInstance {
  return { metadata: FAKE_MODEL_METADATA, execute: async () => [], ready, unload: async () => undefined, ...(notReadyReason ? { notReadyReason } : {}) };
}

function version(...instances: ModelInstance[]): ModelVersion {
  const v = new ModelVersion('m', '1');
  v.instances = instances;
  v.state = 'ready';
  return v;
}

describe('ModelVersion.availability', () => {
  it('should serve while at least one instance is ready (the others restarting)', async () => {
    const v = version(instance(async () => false, 'restarting: the worker died'), instance(async () => true));
    expect(await v.availability()).toEqual({ serving: true });
    expect(await v.serving()).toBe(true);
  });

  it('should say why when no instance is ready: their reasons, once each', async () => {
    const v = version(instance(async () => false, 'restarting: the worker died'), instance(async () => false, 'restarting: the worker died'));
    expect(await v.availability()).toEqual({ serving: false, reason: 'restarting: the worker died' });
  });

  it('should count a ready() that throws synchronously or rejects as not ready, with its message', async () => {
    const throws = instance(() => {
      throw new Error('probe exploded');
    });
    const rejects = instance(() => Promise.reject(new Error('probe rejected')));
    expect(await version(throws, rejects).availability()).toEqual({ serving: false, reason: 'its ready() failed: probe exploded; its ready() failed: probe rejected' });
  });

  it('should fall back to a generic reason, and report the state or failure of a version not ready', async () => {
    expect((await version(instance(async () => false)).availability()).reason).toMatch(/^loaded, but its instances cannot serve now/);
    const failed = new ModelVersion('m', '1');
    failed.state = 'failed';
    failed.reason = 'cannot load';
    expect(await failed.availability()).toEqual({ serving: false, reason: 'cannot load' });
    expect(await new ModelVersion('m', '2').availability()).toEqual({ serving: false, reason: 'loading' });
  });
});
