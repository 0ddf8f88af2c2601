import type { RouteOutcome } from '@tessera/core';
import type { RunningMomentsJSON } from '../stats/index.js';
import { RunningMoments, quantile } from '../stats/index.js';

/** The latency-like measures a version is judged on (milliseconds, compared on their logarithm). */
export const TIMINGS = ['latency', 'ttft', 'tpot'] as const;
export type Timing = (typeof TIMINGS)[number];

/** Window samples kept for the p99 (beyond this a reservoir keeps a uniform sample). */
const WINDOW_CAP = 20_000;

export interface ArmJSON {
  requests: number;
  errors: number;
  clientErrors: number;
  timings: Record<Timing, RunningMomentsJSON>;
}

/** A uniform sample of at most `WINDOW_CAP` values (Vitter's algorithm R). */
class Reservoir {
  values: number[] = [];
  seen = 0;

  add(x: number): void {
    this.seen++;
    if (this.values.length < WINDOW_CAP) this.values.push(x);
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < WINDOW_CAP) this.values[j] = x;
    }
  }
}

/** A summary of one arm for `status()`. */
export interface ArmSummary {
  requests: number;
  errors: number;
  clientErrors: number;
  errorRate: number | null;
  /** Geometric means, ms. */
  latencyMs: number | null;
  ttftMs?: number;
  tpotMs?: number;
}

/**
 * What one version did in one role (baseline, canary, A/B variant, primary, shadow): requests the
 * version answered (client errors left out: a 4xx is the request's fault, never the version's),
 * server faults among them, and the logarithm of each timing. Cumulative for the sequential tests;
 * the window since the last judgement is kept apart (counts, and request latencies for the p99).
 */
export class Arm {
  requests = 0;
  errors = 0;
  clientErrors = 0;
  timings: Record<Timing, RunningMoments> = { latency: new RunningMoments(), ttft: new RunningMoments(), tpot: new RunningMoments() };
  window = { requests: 0, errors: 0, latencies: new Reservoir() };

  static fromJSON(json: unknown): Arm {
    const arm = new Arm();
    const j = json as Partial<ArmJSON> | undefined;
    if (!j || typeof j !== 'object') return arm;
    const count = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
    arm.requests = count(j.requests);
    arm.errors = Math.min(count(j.errors), arm.requests);
    arm.clientErrors = count(j.clientErrors);
    for (const t of TIMINGS) arm.timings[t] = RunningMoments.fromJSON(j.timings?.[t]);
    return arm;
  }

  observe(outcome: RouteOutcome): void {
    if (outcome.statusClass === 'client_error') {
      this.clientErrors++;
      return;
    }
    this.requests++;
    this.window.requests++;
    if (outcome.statusClass === 'server_error') {
      this.errors++;
      this.window.errors++;
      // a failure's latency says how fast it failed, not how fast the version serves
      return;
    }
    if (outcome.durationMs > 0) {
      this.timings.latency.add(Math.log(outcome.durationMs));
      this.window.latencies.add(outcome.durationMs);
    }
    if (outcome.ttftMs !== undefined && outcome.ttftMs > 0) this.timings.ttft.add(Math.log(outcome.ttftMs));
    if (outcome.tpotMs !== undefined && outcome.tpotMs > 0) this.timings.tpot.add(Math.log(outcome.tpotMs));
  }

  /** Starts the next window (after a judgement). */
  nextWindow(): void {
    this.window = { requests: 0, errors: 0, latencies: new Reservoir() };
  }

  /** The p`q` request latency of the window, ms (undefined without samples). */
  windowQuantile(q: number): number | undefined {
    const v = this.window.latencies.values;
    if (v.length === 0) return undefined;
    return quantile([...v].sort((a, b) => a - b), q);
  }

  summary(): ArmSummary {
    const geo = (t: Timing): number | undefined => (this.timings[t].n > 0 ? round(Math.exp(this.timings[t].mean)) : undefined);
    const ttft = geo('ttft');
    const tpot = geo('tpot');
    return {
      requests: this.requests,
      errors: this.errors,
      clientErrors: this.clientErrors,
      errorRate: this.requests > 0 ? round(this.errors / this.requests, 6) : null,
      latencyMs: geo('latency') ?? null,
      ...(ttft !== undefined ? { ttftMs: ttft } : {}),
      ...(tpot !== undefined ? { tpotMs: tpot } : {}),
    };
  }

  toJSON(): ArmJSON {
    return {
      requests: this.requests,
      errors: this.errors,
      clientErrors: this.clientErrors,
      timings: { latency: this.timings.latency.toJSON(), ttft: this.timings.ttft.toJSON(), tpot: this.timings.tpot.toJSON() },
    };
  }
}

/** Rounds for people: status and logs, never the statistics. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
