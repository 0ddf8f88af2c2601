import type { JSONSchema } from '../contracts/backend.js';

/**
 * How a backend replaces a worker (a thread, a process) of one model instance that died: the
 * model key `restart`, shared by the backends that run instances in workers of their own (the
 * ONNX Runtime backend's worker threads, the Python backend's processes), so that the same key
 * means the same thing, with the same defaults, in both.
 */
export interface RestartPolicy {
  /** Wait before the first attempt after a death, ms. Each failure in a row doubles it. */
  initialDelayMs: number;
  /** The longest wait between attempts, ms. */
  maxDelayMs: number;
  /** A worker that stayed up this long (ms) before dying starts the doubling again from `initialDelayMs`. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = { initialDelayMs: 100, maxDelayMs: 30_000, resetAfterMs: 60_000 };

/** The wait before attempt `n` (1-based) of a run of failures: `initial × 2^(n-1)`, at most `max`. */
export function restartDelay(policy: RestartPolicy, n: number): number {
  const max = Math.max(policy.initialDelayMs, policy.maxDelayMs);
  return Math.min(max, policy.initialDelayMs * 2 ** Math.min(Math.max(0, n - 1), 40));
}

/** The model's `restart` keys over the defaults. */
export function restartPolicyOf(configured: Partial<RestartPolicy> | undefined): RestartPolicy {
  return { ...DEFAULT_RESTART_POLICY, ...configured };
}

/** The JSON schema of the model key `restart`; `worker` names what dies ("worker thread", "worker process"). */
export function restartPolicySchema(worker: string): JSONSchema {
  return {
    type: 'object',
    additionalProperties: false,
    description: `How a dead ${worker} is replaced: backoff from initialDelayMs, doubling per failure in a row up to maxDelayMs; reset after resetAfterMs up.`,
    properties: {
      initialDelayMs: { type: 'integer', minimum: 1, description: `Wait before the first restart after a death, ms (default ${DEFAULT_RESTART_POLICY.initialDelayMs}).` },
      maxDelayMs: { type: 'integer', minimum: 1, description: `Longest wait between restart attempts, ms (default ${DEFAULT_RESTART_POLICY.maxDelayMs}).` },
      resetAfterMs: { type: 'integer', minimum: 0, description: `A worker up this long before it dies restarts after initialDelayMs again, ms (default ${DEFAULT_RESTART_POLICY.resetAfterMs}).` },
    },
  };
}
