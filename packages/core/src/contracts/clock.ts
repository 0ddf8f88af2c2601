/** A timer handle from a `Clock`. */
export interface ClockTimer {
  /** Lets the process exit while the timer is pending (the system clock's timers are unref'd already). */
  unref?(): void;
}

/**
 * Time and timers for plugins that act over time (rollout intervals, rate windows, flushes). The
 * server gives the system clock; tests give a `FakeClock` (`@tessera/core/testing`) and advance it.
 */
export interface Clock {
  /** Milliseconds since the epoch (wall time: for timestamps in state and status). */
  now(): number;
  /** A monotonic millisecond reading (for durations: never jumps with the wall clock). */
  monotonic(): number;
  /** Calls `fn` once after `ms`. The system clock's timers never keep the process alive. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  /** Calls `fn` every `ms`. */
  setInterval(fn: () => void, ms: number): ClockTimer;
  /** Cancels a timer of either kind; a handle that already fired or was cleared is ignored. */
  clearTimer(timer: ClockTimer): void;
}

/** The real clock: `Date.now`, `performance.now`, unref'd Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearTimer(timer) {
    clearTimeout(timer as NodeJS.Timeout);
  },
};
