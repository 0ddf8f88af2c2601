/**
 * Why the router uses a sequential test: under H0 (canary = baseline), looking after every interval at the cumulative
 * data, the mSPRT's false alarms stay within α while the fixed-horizon z-test's pile up. Seeded, so deterministic.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@tessera/core/testing';
import { RunningMoments } from './moments.js';
import { compareMeans, compareProportions, fixedHorizonZTest, runningMin } from './sequential.js';

const RUNS = 2000;
const LOOKS = 200;
const ALPHA = 0.05;
// finite runs: 2000 Bernoulli(0.05) trials have a standard deviation of 0.005
const SLACK = 0.015;


/** Standard normal draws by Box–Muller, both outputs used. */
function gaussian(uniform: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

describe('peeking under H0', () => {
  it('should keep the sequential test\'s false alarms within α for means, while the peeked z-test\'s pile up', () => {
    const normal = gaussian(mulberry32(20_170_101));
    const perLook = 10;
    let sequential = 0;
    let peeked = 0;
    let lastLookOnly = 0;
    for (let run = 0; run < RUNS; run++) {
      const control = new RunningMoments();
      const treatment = new RunningMoments();
      let p: number | undefined;
      let zRejected = false;
      let z = fixedHorizonZTest(control.summary(), treatment.summary(), ALPHA);
      for (let look = 0; look < LOOKS; look++) {
        for (let i = 0; i < perLook; i++) {
          control.add(normal());
          treatment.add(normal());
        }
        // the router's minRequests: the normal approximation needs a few dozen observations per arm
        if (control.n < 50) continue;
        p = runningMin(p, compareMeans(control.summary(), treatment.summary(), { alpha: ALPHA, tau: 0.1 })!.pValue);
        z = fixedHorizonZTest(control.summary(), treatment.summary(), ALPHA);
        zRejected ||= z.reject;
      }
      if (p! <= ALPHA) sequential++;
      if (zRejected) peeked++;
      if (z.reject) lastLookOnly++;
    }
    expect(sequential / RUNS).toBeLessThanOrEqual(ALPHA + SLACK);
    // looked at once, the z-test is right; looked at every interval, it is not
    expect(Math.abs(lastLookOnly / RUNS - ALPHA)).toBeLessThanOrEqual(SLACK);
    expect(peeked / RUNS).toBeGreaterThan(4 * ALPHA);
  });

  it('should keep the sequential test\'s false alarms within α for rates, while the peeked z-test\'s pile up', () => {
    const uniform = mulberry32(20_220_101);
    const perLook = 25;
    const rate = 0.05;
    let sequential = 0;
    let peeked = 0;
    for (let run = 0; run < RUNS; run++) {
      const control = { n: 0, successes: 0 };
      const treatment = { n: 0, successes: 0 };
      let p: number | undefined;
      let zRejected = false;
      for (let look = 0; look < LOOKS; look++) {
        for (let i = 0; i < perLook; i++) {
          if (uniform() < rate) control.successes++;
          if (uniform() < rate) treatment.successes++;
        }
        control.n += perLook;
        treatment.n += perLook;
        if (control.n < 100) continue;
        p = runningMin(p, compareProportions(control, treatment, { alpha: ALPHA, tau: 0.03 })!.pValue);
        zRejected ||= fixedHorizonZTest(control, treatment, ALPHA).reject;
      }
      if (p! <= ALPHA) sequential++;
      if (zRejected) peeked++;
    }
    expect(sequential / RUNS).toBeLessThanOrEqual(ALPHA + SLACK);
    expect(peeked / RUNS).toBeGreaterThan(4 * ALPHA);
  });
});
