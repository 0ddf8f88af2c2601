import { describe, expect, it } from 'vitest';
import { resolveConfig } from './resolve.js';
import { AUTO_WORKERS_MAX, coreShares, resolveWorkers } from './workers.js';

describe(resolveWorkers, () => {
  it.each([
    [1, 16, 1],
    [3, 2, 3],
    ['auto', 1, 1],
    ['auto', 2, 1],
    ['auto', 4, 1],
    ['auto', 7, 1],
    ['auto', 8, 2],
    ['auto', 16, 4],
    ['auto', 20, 5],
    ['auto', 64, AUTO_WORKERS_MAX],
  ] as const)('should resolve %j on %i cores to %i', (value, cores, expected) => {
    expect(resolveWorkers(value, cores)).toBe(expected);
  });

  it('should share the cores among the workers, the remainder to the first ones, at least one each', () => {
    expect(coreShares(16, 4)).toEqual([4, 4, 4, 4]);
    expect(coreShares(18, 4)).toEqual([5, 5, 4, 4]);
    expect(coreShares(2, 3)).toEqual([1, 1, 1]);
  });

  it('should resolve auto to one worker when the rate limit counts in memory', () => {
    expect(resolveWorkers('auto', 16, { localRateLimit: true })).toBe(1);
    expect(resolveWorkers(4, 16, { localRateLimit: true })).toBe(4);
  });
});

describe('server.workers', () => {
  const resolve = (server: Record<string, unknown>, env: Record<string, string> = {}) => resolveConfig({ server, models: {} }, { configDir: '/', env });

  it('should default to auto', () => {
    expect(resolve({}).server.workers).toBe(resolveWorkers('auto'));
  });

  it('should keep one worker for a rate limit without redis, and auto with redis', () => {
    const limit = { max: 10, timeWindow: '1m' };
    expect(resolve({ rateLimit: limit }).server.workers).toBe(1);
    expect(resolve({ rateLimit: { ...limit, redis: 'redis://127.0.0.1:6379' } }).server.workers).toBe(resolveWorkers('auto'));
  });

  it('should take an integer, auto, and a numeric string from ${VAR}', () => {
    expect(resolve({ workers: 4 }).server.workers).toBe(4);
    expect(resolve({ workers: 'auto' }).server.workers).toBe(resolveWorkers('auto'));
    expect(resolve({ workers: '${WORKERS}' }, { WORKERS: '3' }).server.workers).toBe(3);
    expect(resolve({ workers: '${WORKERS}' }, { WORKERS: 'auto' }).server.workers).toBe(resolveWorkers('auto'));
  });

  it.each([0, -1, 1.5, 'many', ''])('should refuse %j naming the key', (workers) => {
    expect(() => resolve({ workers })).toThrow('server.workers: must be an integer ≥ 1, or "auto"');
  });
});
