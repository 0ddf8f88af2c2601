import { describe, expect, it } from 'vitest';
import { BatchLatencyModel } from './latency-model.js';

describe(BatchLatencyModel, () => {
  it('should fit t(b) = a + c·b from per-size averages', () => {
    const m = new BatchLatencyModel();
    for (let i = 0; i < 5; i++) for (const b of [1, 4, 8]) m.observe(b, 3 + 0.5 * b);
    const { a, c } = m.coefficients();
    expect(a).toBeCloseTo(3);
    expect(c).toBeCloseTo(0.5);
    expect(m.predict(16)).toBeCloseTo(11);
  });

  it('should assume no batching gain from a single observed size', () => {
    const m = new BatchLatencyModel();
    m.observe(2, 10);
    expect(m.coefficients()).toEqual({ a: 0, c: 5 });
    expect(new BatchLatencyModel().predict(4)).toBe(0);
  });

  it('should keep the coefficients non-negative', () => {
    const m = new BatchLatencyModel();
    m.observe(1, 10);
    m.observe(8, 5);
    expect(m.coefficients()).toEqual({ a: 7.5, c: 0 });
    const n = new BatchLatencyModel();
    n.observe(1, 0.1);
    n.observe(10, 20);
    expect(n.coefficients().a).toBe(0);
    expect(n.coefficients().c).toBeGreaterThan(0);
  });
});
