/**
 * RunningMoments against numpy. Reference values: `python3 packages/router-canary/src/stats/reference.py`
 * (section `moments`: numpy's mean and var with ddof=1 of the same data).
 */
import { describe, expect, it } from 'vitest';
import { RunningMoments } from './moments.js';

const DATA1 = [12.5, 13.1, 11.9, 250.0, 14.2, 12.8, 13.7, 15.1, 12.2, 13.3];
const DATA1_REF = { mean: 36.88, variance: 5608.337333333333 };
// a large offset: the textbook Σx² − n·mean² gives garbage here
const DATA2 = [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16];
const DATA2_REF = { mean: 1000000010.0, variance: 30.0 };

function expectClose(actual: number, expected: number, rel = 1e-9): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected) + 1e-300);
}

describe(RunningMoments, () => {
  describe('.add', () => {
    it('should match numpy\'s mean and unbiased variance', () => {
      for (const [data, ref] of [[DATA1, DATA1_REF], [DATA2, DATA2_REF]] as const) {
        const m = RunningMoments.of(data);
        expect(m.n).toBe(data.length);
        expectClose(m.mean, ref.mean);
        expectClose(m.variance, ref.variance);
        expect(m.summary()).toEqual({ n: data.length, mean: m.mean, variance: m.variance });
      }
    });

    it('should report variance 0 below two observations', () => {
      const m = new RunningMoments();
      expect(m.summary()).toEqual({ n: 0, mean: 0, variance: 0 });
      m.add(4);
      expect(m.summary()).toEqual({ n: 1, mean: 4, variance: 0 });
    });

    it('should skip non-finite values', () => {
      const m = RunningMoments.of([1, Number.NaN, 3, Infinity, -Infinity]);
      expect(m.summary()).toEqual({ n: 2, mean: 2, variance: 2 });
    });
  });

  describe('.merge', () => {
    it('should equal adding every value to one accumulator, whatever the split', () => {
      for (const cut of [0, 1, 4, 9, 10]) {
        const m = RunningMoments.of(DATA1.slice(0, cut)).merge(RunningMoments.of(DATA1.slice(cut)));
        expect(m.n).toBe(DATA1.length);
        expectClose(m.mean, DATA1_REF.mean);
        expectClose(m.variance, DATA1_REF.variance);
      }
      const big = RunningMoments.of(DATA2.slice(0, 3)).merge(RunningMoments.of(DATA2.slice(3)));
      expectClose(big.mean, DATA2_REF.mean);
      expectClose(big.variance, DATA2_REF.variance);
    });

    it('should leave the merged accumulator unchanged', () => {
      const other = RunningMoments.of([1, 2, 3]);
      RunningMoments.of([10]).merge(other);
      expect(other.toJSON()).toEqual({ n: 3, mean: 2, m2: 2 });
    });
  });

  describe('.toJSON / .fromJSON', () => {
    it('should round-trip exactly, through JSON text too', () => {
      const m = RunningMoments.of(DATA1);
      const back = RunningMoments.fromJSON(JSON.parse(JSON.stringify(m)));
      expect(back.toJSON()).toEqual(m.toJSON());
      expect(back.variance).toBe(m.variance);
      back.add(1);
      expect(back.n).toBe(11);
    });

    it('should give empty moments for anything it did not write', () => {
      const bad: unknown[] = [
        undefined, null, 42, 'x', [], {}, { n: 2, mean: 1 }, { n: -1, mean: 0, m2: 0 }, { n: 1.5, mean: 0, m2: 0 },
        { n: 2, mean: Number.NaN, m2: 0 }, { n: 2, mean: 0, m2: -1 }, { n: 2, mean: '1', m2: 0 }, { n: 1, mean: 3, m2: 2 },
      ];
      for (const json of bad) expect(RunningMoments.fromJSON(json).toJSON()).toEqual({ n: 0, mean: 0, m2: 0 });
    });
  });
});
