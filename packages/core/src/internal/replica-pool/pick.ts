import type { HashRing } from '../hash-ring.js';
import type { Replica } from '../../upstream/types.js';
import type { ReplicaEntry } from './replica-entry.js';

/**
 * The replicas a pick may choose from: the healthy ones not excluded, else the unknown ones not
 * excluded, so that a new replica takes no traffic before its first verdict, yet a pool whose
 * probes have not run yet still serves.
 */
export function pickCandidates(replicas: Iterable<ReplicaEntry>, exclude: Iterable<Replica | string> | undefined): ReplicaEntry[] {
  let excluded: Set<string> | undefined;
  if (exclude !== undefined) {
    excluded = new Set();
    for (const e of exclude) excluded.add(typeof e === 'string' ? e : e.url);
  }
  const healthy: ReplicaEntry[] = [];
  const unknown: ReplicaEntry[] = [];
  for (const r of replicas) {
    if (excluded?.has(r.url)) continue;
    if (r.state === 'healthy') healthy.push(r);
    else if (r.state === 'unknown') unknown.push(r);
  }
  return healthy.length > 0 ? healthy : unknown;
}

/** `round-robin`: the candidates in turn. */
export function pickRoundRobin(candidates: readonly ReplicaEntry[], turn: number): ReplicaEntry {
  return candidates[turn % candidates.length]!;
}

/**
 * `least-loaded`: the lowest score, scanning from a different start each turn so that ties rotate
 * instead of always going to the first candidate.
 */
export function pickLeastLoaded(candidates: readonly ReplicaEntry[], turn: number, score: (r: ReplicaEntry) => number): ReplicaEntry {
  const n = candidates.length;
  let best = candidates[turn % n]!;
  let bestScore = score(best);
  for (let i = 1; i < n; i++) {
    const r = candidates[(turn + i) % n]!;
    const s = score(r);
    if (s < bestScore) {
      best = r;
      bestScore = s;
    }
  }
  return best;
}

/**
 * `prefix-affinity`: consistent hashing with bounded loads. The key's owner on the ring, unless
 * taking one more request would put it over `ceil(loadFactor × (total in-flight + 1) / candidates)`;
 * then the next candidate clockwise that stays within it. Repeated keys reach the same replica
 * (and its prefix cache) while no replica exceeds the mean by more than `loadFactor`.
 */
export function pickAffinity(candidates: readonly ReplicaEntry[], key: string, ring: HashRing, loadFactor: number): ReplicaEntry | undefined {
  const byUrl = new Map<string, ReplicaEntry>();
  let total = 0;
  for (const r of candidates) {
    byUrl.set(r.url, r);
    total += r.inflight;
  }
  const bound = Math.ceil((loadFactor * (total + 1)) / candidates.length);
  for (const url of ring.walk(key)) {
    const r = byUrl.get(url);
    if (r !== undefined && r.inflight + 1 <= bound) return r;
  }
  return undefined; // unreachable: the least loaded candidate is always under the bound
}
