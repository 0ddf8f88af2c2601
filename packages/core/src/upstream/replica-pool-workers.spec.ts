/**
 * Several workers of one server (`server.workers`) each build their own `ReplicaPool` from the same
 * config: consistent hashing must place a key on the same replica in every one of them, whatever
 * order the replicas were added in and whatever else each worker has in flight, as long as the
 * bounded-load rule does not move the key (that rule, like least-loaded, counts a worker's own
 * requests only).
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../testing/random.js';
import { ReplicaPool } from './replica-pool.js';

const URLS = ['http://gpu-1:8000', 'http://gpu-2:8000', 'http://gpu-3:8000', 'http://gpu-4:8000', 'http://gpu-5:8000'];

/** A worker's pool as the vLLM backend builds it from a model's `upstreams` (never started: every replica is a candidate). */
function workerPool(urls: readonly string[]): ReplicaPool {
  const pool = new ReplicaPool({ name: 'chat', strategy: 'prefix-affinity', probe: async () => ({ healthy: true }) });
  for (const url of urls) pool.add(url);
  return pool;
}

function keys(n: number, seed: number): string[] {
  const random = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => `p:[{"role":"user","content":"session ${i} ${Math.floor(random() * 1e9)}`);
}

describe('ReplicaPool: prefix-affinity across workers', () => {
  it('should map every key to the same replica in two pools built from the same upstreams, in any order', () => {
    const a = workerPool(URLS);
    const b = workerPool([...URLS].reverse());
    const owners = new Map<string, number>();
    for (const key of keys(2000, 13)) {
      const picked = a.pick({ affinityKey: key })!.url;
      expect(b.pick({ affinityKey: key })!.url, key).toBe(picked);
      owners.set(picked, (owners.get(picked) ?? 0) + 1);
    }
    // and the keys are spread over every replica (no degenerate ring)
    expect([...owners.keys()].sort()).toEqual([...URLS].sort());
  });

  it('should agree while each worker has its own requests in flight within the load bound', () => {
    const a = workerPool(URLS);
    const b = workerPool(URLS);
    // worker a holds one request on each replica, worker b none: the bound (1.25 × mean, rounded up) is not reached
    const releases = URLS.map((url) => a.acquire(a.get(url)!));
    for (const key of keys(500, 7)) expect(a.pick({ affinityKey: key })!.url, key).toBe(b.pick({ affinityKey: key })!.url);
    for (const release of releases) release();
  });

  it('should move a key in the one worker whose own requests overload its owner, and only there', () => {
    const a = workerPool(URLS);
    const b = workerPool(URLS);
    const key = keys(1, 99)[0]!;
    const owner = a.pick({ affinityKey: key })!;
    const held = Array.from({ length: 6 }, () => a.acquire(owner));
    expect(a.pick({ affinityKey: key })!.url).not.toBe(owner.url);
    expect(b.pick({ affinityKey: key })!.url).toBe(owner.url);
    for (const release of held) release();
    expect(a.pick({ affinityKey: key })!.url).toBe(owner.url);
  });
});
