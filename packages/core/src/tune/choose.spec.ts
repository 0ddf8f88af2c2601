import { describe, expect, it } from 'vitest';
import { chooseBest, fastest, qualifies } from './choose.js';
import type { Measurement } from './measurement.js';

function row(samplesPerSec: number, p99Ms: number, over: Partial<Measurement> = {}): Measurement {
  return { stage: 'batch', point: { instances: 1, threads: 2, maxBatchSize: 8, maxQueueDelayMs: 'auto' }, concurrency: 8, durationMs: 2000, ok: 100, errors: 0, samplesPerSec, p50Ms: p99Ms / 2, p99Ms, ...over };
}

describe(chooseBest, () => {
  it('should take the highest throughput whose p99 is within the budget', () => {
    const rows = [row(900, 80), row(700, 40), row(650, 20), row(1000, 120)];
    expect(chooseBest(rows, 50)).toEqual({ best: rows[1], qualified: 2 });
  });

  it('should take the highest throughput of all without a budget', () => {
    const rows = [row(900, 80), row(700, 40), row(1000, 120)];
    expect(chooseBest(rows).best).toBe(rows[2]);
  });

  it('should pass over measurements with errors or without answers, however fast', () => {
    const rows = [row(2000, 10, { errors: 3, errorCodes: { '503': 3 } }), row(1500, 10, { ok: 0, p99Ms: undefined }), row(500, 30)];
    expect(chooseBest(rows, 50).best).toBe(rows[2]);
    expect(qualifies(rows[0]!)).toBe(false);
  });

  it('should break a tie of throughput by the lower p99', () => {
    const rows = [row(800, 30), row(800, 20), row(800, 25)];
    expect(chooseBest(rows, 50).best).toBe(rows[1]);
  });

  it('should name the error-free measurement with the lowest p99 when none meets the budget', () => {
    const rows = [row(900, 80), row(700, 60, { errors: 1 }), row(400, 55), row(300, 70)];
    expect(chooseBest(rows, 50)).toEqual({ closest: rows[2], qualified: 0 });
  });

  it('should name the one with the fewest errors when every measurement had some', () => {
    const rows = [row(900, 80, { errors: 50 }), row(700, 60, { errors: 2 })];
    expect(chooseBest(rows, 50)).toEqual({ closest: rows[1], qualified: 0 });
    expect(chooseBest([], 50)).toEqual({ qualified: 0 });
  });
});

describe(fastest, () => {
  it('should rank by throughput, error-free measurements first', () => {
    const rows = [row(900, 80, { errors: 1 }), row(700, 40), row(800, 120)];
    expect(fastest(rows)).toBe(rows[2]);
    expect(fastest([rows[0]!])).toBe(rows[0]);
    expect(fastest([])).toBeUndefined();
  });
});
