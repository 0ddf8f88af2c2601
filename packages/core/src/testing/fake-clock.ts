import type { Clock, ClockTimer } from '../contracts/clock.js';

interface FakeTimer extends ClockTimer {
  id: number;
  at: number;
  every: number | undefined;
  fn: () => void;
}

/**
 * A `Clock` whose time moves only when a test says so: `advance(ms)` runs, in time order, every
 * timer that falls due, letting promises settle between them. For routers' rollout intervals,
 * hooks' rate windows, anything that acts over time. Starts at `start` (epoch ms) and monotonic 0.
 */
export class FakeClock implements Clock {
  #now: number;
  #monotonic = 0;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#monotonic;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimer(timer: ClockTimer): void {
    this.#timers.delete((timer as FakeTimer).id);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order (each sees `now()` at its due time) and
   * letting the promises they start settle before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#monotonic + ms;
    for (;;) {
      const next = [...this.#timers.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.#set(next.at);
      if (next.every === undefined) this.#timers.delete(next.id);
      else next.at += next.every;
      next.fn();
      await settle();
    }
    this.#set(end);
    await settle();
  }

  #set(monotonic: number): void {
    this.#now += monotonic - this.#monotonic;
    this.#monotonic = monotonic;
  }

  #add(fn: () => void, ms: number, every: number | undefined): FakeTimer {
    const timer: FakeTimer = { id: this.#seq++, at: this.#monotonic + Math.max(0, ms), every, fn, unref() {} };
    this.#timers.set(timer.id, timer);
    return timer;
  }
}

/** Lets pending promise callbacks (and the ones they queue) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
