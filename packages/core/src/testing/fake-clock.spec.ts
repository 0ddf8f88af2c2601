import { describe, expect, it } from 'vitest';
import { FakeClock } from './fake-clock.js';

describe(FakeClock, () => {
  it('should fire due timers in time order when advanced, with now() at their due time', async () => {
    const clock = new FakeClock(1_000_000);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['b', clock.monotonic()]), 20);
    clock.setTimeout(() => fired.push(['a', clock.monotonic()]), 10);
    const never = clock.setTimeout(() => fired.push(['x', clock.monotonic()]), 15);
    clock.clearTimer(never);
    await clock.advance(5);
    expect(fired).toEqual([]);
    await clock.advance(20);
    expect(fired).toEqual([['a', 10], ['b', 20]]);
    expect(clock.now()).toBe(1_000_025);
    expect(clock.pending).toBe(0);
  });

  it('should repeat intervals and let promises started by a timer settle before the next fires', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    const t = clock.setInterval(() => {
      void Promise.resolve().then(() => seen.push(clock.monotonic()));
    }, 30);
    await clock.advance(100);
    expect(seen).toEqual([30, 60, 90]);
    clock.clearTimer(t);
    await clock.advance(100);
    expect(seen).toHaveLength(3);
  });
});
