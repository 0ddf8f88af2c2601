import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PlanInput, countSweep, planSweep, warmupFor } from './plan.js';
import { QUEUE_DELAYS, batchSizes, concurrencyOrder, defaultConcurrency, instancePairs, spreadOrder } from './space.js';

const COSTS = { startMs: 2000, reloadMs: 500, overheadMs: 200 };

/** The full search for a model batching up to `cap` on `cores` cores. */
function input(cores: number, cap: number, timeMs: number, budget = false): PlanInput {
  return { pairs: instancePairs(cores, true), batchSizes: batchSizes(cap), delays: QUEUE_DELAYS, concurrency: concurrencyOrder(defaultConcurrency(cap, cores)), timeMs, costs: COSTS, budget };
}

describe(instancePairs, () => {
  it('should try 1×2, 2×1 and 1×1 on 2 cores', () => {
    expect(instancePairs(2, true)).toEqual([
      { instances: 1, threads: 2 },
      { instances: 2, threads: 1 },
      { instances: 1, threads: 1 },
    ]);
  });

  it('should leave cores for the event loop first on 16 cores, balanced pairs first, and never use more cores than there are', () => {
    const pairs = instancePairs(16, true);
    // 14 of 16 cores: 4×3 and 2×7 are the most balanced
    expect(pairs.slice(0, 4)).toEqual([
      { instances: 4, threads: 3 },
      { instances: 2, threads: 7 },
      { instances: 8, threads: 1 },
      { instances: 1, threads: 14 },
    ]);
    expect(pairs).toContainEqual({ instances: 2, threads: 8 });
    expect(pairs).toContainEqual({ instances: 16, threads: 1 });
    expect(pairs.every((p) => p.instances * p.threads! <= 16)).toBe(true);
    expect(new Set(pairs.map((p) => `${p.instances}x${p.threads}`)).size).toBe(pairs.length);
  });

  it('should try instance counts alone for a backend without threads', () => {
    expect(instancePairs(8, false)).toEqual([{ instances: 8 }, { instances: 1 }, { instances: 2 }, { instances: 4 }]);
    expect(instancePairs(1, false)).toEqual([{ instances: 1 }]);
  });
});

describe(batchSizes, () => {
  it('should spread the powers of two below the cap, the cap first', () => {
    expect(batchSizes(32)).toEqual([32, 1, 4, 2, 8, 16]);
    expect(batchSizes(24)).toEqual([24, 1, 4, 2, 8, 16]);
    expect(batchSizes(1)).toEqual([1]);
    expect(batchSizes(0)).toEqual([]);
  });
});

describe(spreadOrder, () => {
  it('should keep every value once', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer(), { maxLength: 40 }), (values) => {
        expect([...spreadOrder(values)].sort((a, b) => a - b)).toEqual([...values].sort((a, b) => a - b));
      }),
    );
  });
});

describe(defaultConcurrency, () => {
  it('should take one client, one batch and two batches', () => {
    expect(defaultConcurrency(32, 16)).toEqual([1, 32, 64]);
    expect(concurrencyOrder([1, 32, 64])).toEqual([64, 1, 32]);
    // a model that does not batch: the cores
    expect(defaultConcurrency(0, 4)).toEqual([1, 4, 8]);
    // with a latency budget, the levels between as well
    expect(defaultConcurrency(32, 16, true)).toEqual([1, 8, 16, 32, 64]);
    expect(defaultConcurrency(4, 2, true)).toEqual([1, 2, 4, 8]);
  });
});

describe(countSweep, () => {
  it('should count a server per pair and a reload per size and delay after the first', () => {
    // 3 pairs, 3 sizes, 5 delays, 2 concurrencies, with a budget
    expect(countSweep(3, 3, 5, 2, { budget: true, stage1: true, restart: true })).toEqual({
      servers: 3 + 1,
      reloads: 2 + 4 + 1,
      measurements: 3 + (2 - 1) + 2 * 2 + 4 * 2 + 1,
    });
    // re-planned after stage 1 on the server still running
    expect(countSweep(1, 3, 1, 2, { budget: false, stage1: false, restart: false })).toEqual({ servers: 0, reloads: 2, measurements: 1 + 2 * 2 });
    // a model that does not batch: the other concurrencies only
    expect(countSweep(2, 0, 1, 3, { budget: false, stage1: true, restart: true })).toEqual({ servers: 3, reloads: 0, measurements: 2 + 2 });
  });
});

describe(planSweep, () => {
  it('should plan the whole search when the time allows, with measurements of at most 15 s', () => {
    const plan = planSweep(input(2, 32, 60 * 60_000));
    expect(plan.dropped).toEqual([]);
    expect(plan.pairs).toHaveLength(3);
    expect(plan.batchSizes).toEqual([32, 1, 4, 2, 8, 16]);
    expect(plan.delays).toEqual(['auto', 0, 2, 5, 1]);
    expect(plan.concurrency).toEqual([1, 32, 64]);
    expect(plan.measureMs).toBe(15_000);
    expect(plan.warmupMs).toBe(warmupFor(15_000));
    expect(plan.fits).toBe(true);
  });

  it('should drop candidates from the end of their lists to fit a short time, keeping the first of each', () => {
    const plan = planSweep(input(16, 32, 60_000));
    expect(plan.fits).toBe(true);
    expect(plan.estimatedMs).toBeLessThanOrEqual(60_000);
    // fewer points measured for 2 s rather than many for 1 s
    expect(plan.measureMs).toBeGreaterThanOrEqual(2000);
    expect(plan.dropped.length).toBeGreaterThan(0);
    expect(plan.pairs[0]).toEqual({ instances: 4, threads: 3 });
    expect(plan.batchSizes[0]).toBe(32);
    expect(plan.delays[0]).toBe('auto');
    expect(plan.concurrency.at(-1)).toBe(64);
  });

  it('should keep concurrencies longer with a latency budget, and drop them first without one', () => {
    const withBudget = planSweep(input(16, 32, 45_000, true));
    const without = planSweep(input(16, 32, 45_000, false));
    expect(withBudget.concurrency).toEqual([1, 32, 64]);
    expect(without.concurrency.length).toBeLessThan(3);
    expect(without.concurrency).toContain(64);
  });

  it('should say when even the smallest search does not fit', () => {
    const plan = planSweep(input(16, 32, 3000));
    expect(plan.fits).toBe(false);
    expect(plan.pairs).toHaveLength(1);
    expect(plan.batchSizes).toHaveLength(1);
    expect(plan.measureMs).toBe(1000);
  });

  it('should skip the delays of a model that batches one sample at most', () => {
    expect(planSweep(input(2, 1, 600_000)).delays).toEqual(['auto']);
    expect(planSweep(input(2, 0, 600_000)).delays).toEqual(['auto']);
  });

  it('should fit the time whenever it says it fits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 128 }), fc.integer({ min: 5000, max: 3_600_000 }), fc.boolean(), (cores, cap, timeMs, budget) => {
        const plan = planSweep(input(cores, cap, timeMs, budget));
        if (plan.fits) expect(plan.estimatedMs).toBeLessThanOrEqual(timeMs + 1);
        expect(plan.pairs.length).toBeGreaterThanOrEqual(1);
        expect(plan.concurrency.length).toBeGreaterThanOrEqual(1);
        expect(plan.measureMs).toBeGreaterThanOrEqual(1000);
      }),
    );
  });
});
