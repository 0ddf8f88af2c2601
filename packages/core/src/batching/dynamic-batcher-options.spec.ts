import { describe, expect, it } from 'vitest';
import { validateAgainstSchema } from '../config/validate.js';
import { DYNAMIC_BATCHER_OPTIONS_SCHEMA, resolveDynamicBatcherOptions } from './dynamic-batcher-options.js';
import { dynamicBatcherFactory } from './dynamic-batcher.js';

describe('dynamic batcher options', () => {
  it('should resolve defaults and durations', () => {
    expect(resolveDynamicBatcherOptions({})).toEqual({
      maxQueueDelayMs: 0,
      preferredBatchSizes: [],
      maxQueueSize: 1024,
      timeoutMs: 0,
      priorityLevels: 1,
      defaultPriorityLevel: 1,
      latencyBudgetMs: 0,
      adaptiveMaxDelayMs: 10,
    });
    const options = { maxQueueDelayMs: '2ms', timeoutMs: '1.5s', preferredBatchSizes: [16, 8], priorityLevels: 3 };
    expect(resolveDynamicBatcherOptions(options)).toMatchObject({ maxQueueDelayMs: 2, timeoutMs: 1500, preferredBatchSizes: [8, 16], defaultPriorityLevel: 3 });
    expect(options.maxQueueDelayMs).toBe('2ms');
    expect(resolveDynamicBatcherOptions({ maxQueueDelayMs: 'auto' }).maxQueueDelayMs).toBe('auto');
  });

  it('should reject invalid options with the path, the value and what is allowed', () => {
    expect(() => resolveDynamicBatcherOptions({ maxQueueDelayMs: 'soon' })).toThrow(/batching\.maxQueueDelayMs: must be a number ≥ 0, or "auto", or a duration.*got "soon"/);
    expect(() => validateAgainstSchema(dynamicBatcherFactory.optionsSchema!, { maxQueueDelay: 2 }, 'models.m.batching')).toThrow(/unknown key "maxQueueDelay".*did you mean "maxQueueDelayMs"/);
    expect(() => validateAgainstSchema(DYNAMIC_BATCHER_OPTIONS_SCHEMA, { priorityLevels: 0 }, 'b')).toThrow(/b\.priorityLevels: must be an integer ≥ 1/);
  });

  it('should give every option a description', () => {
    const properties = DYNAMIC_BATCHER_OPTIONS_SCHEMA['properties'] as Record<string, { description?: string }>;
    for (const [key, p] of Object.entries(properties)) expect(p.description, key).toBeTruthy();
  });
});
