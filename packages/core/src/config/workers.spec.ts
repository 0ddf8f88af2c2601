import { describe, expect, it } from 'vitest';
import { resolveConfig } from './resolve.js';
import { AUTO_WORKERS_MAX, resolveWorkers } from './workers.js';

describe(resolveWorkers, () => {
  it.each([
    [1, 16, 1],
    [3, 2, 3],
    ['auto', 1, 1],
    ['auto', 2, 1],
    ['auto', 4, 2],
    ['auto', 5, 2],
    ['auto', 16, 8],
    ['auto', 64, AUTO_WORKERS_MAX],
  ] as const)('should resolve %j on %i cores to %i', (value, cores, expected) => {
    expect(resolveWorkers(value, cores)).toBe(expected);
  });
});

describe('server.workers', () => {
  const resolve = (server: Record<string, unknown>, env: Record<string, string> = {}) => resolveConfig({ server, models: {} }, { configDir: '/', env });

  it('should default to one worker', () => {
    expect(resolve({}).server.workers).toBe(1);
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
