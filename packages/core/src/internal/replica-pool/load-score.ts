import type { LoadWeights } from '../../upstream/types.js';
import type { ReplicaEntry } from './replica-entry.js';

/**
 * The `least-loaded` score of a replica (lower is better). The replica's own counts (from its
 * latest probe) see every client but are up to an interval old; our in-flight count is live but
 * sees only our requests: the score starts from the scrape and corrects it by how much our
 * in-flight count changed since. Without a fresh scrape, only the live count, on the same scale.
 */
export function loadScore(r: ReplicaEntry, now: number, w: Required<LoadWeights>, maxAgeMs: number): number {
  const load = r.load;
  if (load === undefined || r.loadAt === undefined || now - r.loadAt > maxAgeMs) return w.running * r.inflight;
  let running = load.running ?? r.inflightAtProbe;
  let waiting = load.waiting ?? 0;
  const d = r.inflight - r.inflightAtProbe;
  if (d > 0) {
    // the replica was queueing: new work queues too
    if (waiting > 0) waiting += d;
    else running += d;
  } else if (d < 0) {
    const fromWaiting = Math.min(waiting, -d);
    waiting -= fromWaiting;
    running = Math.max(0, running - (-d - fromWaiting));
  }
  // never less than what we know we sent
  running += Math.max(0, r.inflight - (running + waiting));
  return w.running * running + w.waiting * waiting + w.kvCacheUsage * (load.kvCacheUsage ?? 0);
}
