import { availableCores } from '../internal/cores.js';

/** The most workers `server.workers: auto` starts. */
export const AUTO_WORKERS_MAX = 8;

/**
 * `server.workers` as a count: an integer as given; `auto`: half the cores this process may use
 * (`availableCores()`: the cgroup CPU quota included), at least 1 and at most {@link AUTO_WORKERS_MAX}. Half, because a
 * streaming gateway's sockets cost the kernel about as much CPU as the workers' own JavaScript
 * (loopback and TCP work is charged to no process), and the replicas or the load balancer often
 * share the machine; at most 8, because each worker has its own connections to every upstream and
 * its own health probes, and 8 event loops already stream well over 100,000 tokens a second.
 */
export function resolveWorkers(value: number | 'auto', cores: number = availableCores()): number {
  if (value !== 'auto') return value;
  return Math.max(1, Math.min(AUTO_WORKERS_MAX, Math.floor(cores / 2)));
}
