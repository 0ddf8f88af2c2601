import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mulberry32 } from '../testing/random.js';
import { HashRing } from '../internal/hash-ring.js';
import type { ProbeResult, Replica, ReplicaPoolOptions, ReplicaProbe } from './types.js';
import { ReplicaPool } from './replica-pool.js';

/** What the fake probe does for a replica: answer, reject, hang until aborted, or hang for good. */
type Behaviour = ProbeResult | Error | 'hang' | 'hang-ignoring-abort';

const INTERVAL = 1000;
const TIMEOUT = 100;

function setup(urls: string[], options: Partial<ReplicaPoolOptions> = {}) {
  const behaviour = new Map<string, Behaviour>();
  const calls: string[] = [];
  const signals: AbortSignal[] = [];
  const changes: Array<[url: string, healthy: boolean, reason: string]> = [];
  const probe: ReplicaProbe = (replica, signal) => {
    calls.push(replica.url);
    signals.push(signal);
    const b = behaviour.get(replica.url) ?? { healthy: true };
    if (b instanceof Error) return Promise.reject(b);
    if (b === 'hang') return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    if (b === 'hang-ignoring-abort') return new Promise(() => {});
    return Promise.resolve(b);
  };
  const pool = new ReplicaPool({
    name: 'chat',
    probe,
    probeIntervalMs: INTERVAL,
    probeTimeoutMs: TIMEOUT,
    onHealthChange: (replica, healthy, reason) => changes.push([replica.url, healthy, reason]),
    ...options,
  });
  for (const url of urls) pool.add(url);
  const r = (url: string): Replica => pool.get(url)!;
  return { pool, behaviour, calls, signals, changes, r };
}

/** Runs the next probe round (the timer fires `INTERVAL` after the previous round ended). */
const nextRound = () => vi.advanceTimersByTimeAsync(INTERVAL);

function countPicks(pool: ReplicaPool, n: number, pick = () => pool.pick()): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = pick();
    if (r) counts.set(r.url, (counts.get(r.url) ?? 0) + 1);
  }
  return counts;
}

/** A small deterministic PRNG. */
const prng = mulberry32;

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `<|user|> conversation ${i} about ${(i * 2654435761) % 1000}`);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('ReplicaPool: states', () => {
  it('ejects a replica at once on eject() and re-admits it on the probe probeNow() starts', async () => {
    const { pool, behaviour, changes, r } = setup(['a', 'b']);
    await pool.start();
    expect(pool.eject('a', 'process exited with code 1')).toBe(true);
    expect(r('a').state).toBe('ejected');
    expect(changes.at(-1)).toEqual(['a', false, 'process exited with code 1']);
    expect(countPicks(pool, 10).get('a')).toBeUndefined();
    expect(pool.eject('nope', 'x')).toBe(false);
    behaviour.set('a', { healthy: true });
    await pool.probeNow('a');
    expect(r('a').state).toBe('healthy');
    expect(changes.at(-1)?.slice(0, 2)).toEqual(['a', true]);
    await pool.close();
  });

  it('judges every replica in the first round: unknown → healthy or ejected, one event each', async () => {
    const { pool, behaviour, changes, r } = setup(['a', 'b', 'c']);
    behaviour.set('b', { healthy: false, reason: 'loading model' });
    behaviour.set('c', new Error('ECONNREFUSED'));
    expect(pool.snapshot().map((s) => s.state)).toEqual(['unknown', 'unknown', 'unknown']);
    await pool.start();
    expect(pool.snapshot().map((s) => s.state)).toEqual(['healthy', 'ejected', 'ejected']);
    expect(r('b').lastError).toBe('probe reported unhealthy: loading model');
    expect(r('c').lastError).toBe('ECONNREFUSED');
    expect(changes).toEqual([
      ['a', true, 'probe succeeded'],
      ['b', false, 'first probe failed: probe reported unhealthy: loading model'],
      ['c', false, 'first probe failed: ECONNREFUSED'],
    ]);
    await nextRound();
    expect(changes).toHaveLength(3); // no transition, no event
    await pool.close();
  });

  it('ejects after ejectAfterFailures consecutive request failures and re-admits after readmitAfterSuccesses probes', async () => {
    const warn = vi.fn();
    const info = vi.fn();
    const { pool, behaviour, changes, r } = setup(['a', 'b'], { ejectAfterFailures: 3, readmitAfterSuccesses: 2, logger: { debug: vi.fn(), info, warn } });
    await pool.start();
    changes.length = 0;
    pool.reportFailure(r('a'), new Error('ECONNRESET'));
    pool.reportFailure(r('a'), new Error('ECONNRESET'));
    pool.reportSuccess(r('a')); // resets the count
    pool.reportFailure(r('a'), new Error('ECONNRESET'));
    pool.reportFailure(r('a'), new Error('ECONNRESET'));
    expect(r('a').state).toBe('healthy');
    expect(r('a').consecutiveFailures).toBe(2);
    behaviour.set('a', new Error('ECONNREFUSED'));
    pool.reportFailure(r('a'), new Error('HTTP 502'));
    expect(r('a').state).toBe('ejected');
    expect(changes).toEqual([['a', false, '3 consecutive failures, last: request failed: HTTP 502']]);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ pool: 'chat', upstream: 'a', from: 'healthy', to: 'ejected' }), 'upstream replica ejected');
    expect(countPicks(pool, 10)).toEqual(new Map([['b', 10]]));

    // while ejected: probed every interval; a request success (sent before the ejection) does not re-admit
    pool.reportSuccess(r('a'));
    await nextRound();
    expect(r('a').state).toBe('ejected');
    behaviour.delete('a');
    await nextRound(); // 1 success
    expect(r('a').state).toBe('ejected');
    pool.reportFailure(r('a'), new Error('late failure')); // restarts the run of successes
    await nextRound(); // 1 success again
    expect(r('a').state).toBe('ejected');
    await nextRound(); // 2 successes
    expect(r('a').state).toBe('healthy');
    expect(r('a').consecutiveFailures).toBe(0);
    expect(changes).toEqual([
      ['a', false, '3 consecutive failures, last: request failed: HTTP 502'],
      ['a', true, '2 consecutive successful probes'],
    ]);
    expect(info).toHaveBeenCalledWith(expect.objectContaining({ from: 'ejected', to: 'healthy' }), 'upstream replica re-admitted');
    expect(countPicks(pool, 10).get('a')).toBeGreaterThan(0);
    await pool.close();
  });

  it('counts failed probes and request failures together', async () => {
    const { pool, behaviour, changes, r } = setup(['a', 'b'], { ejectAfterFailures: 3 });
    await pool.start();
    behaviour.set('a', { healthy: false });
    await nextRound();
    await nextRound();
    expect(r('a').state).toBe('healthy');
    expect(r('a').consecutiveFailures).toBe(2);
    pool.reportFailure(r('a'));
    expect(r('a').state).toBe('ejected');
    expect(r('a').lastError).toBe('request failed');
    expect(changes.filter(([, healthy]) => !healthy)).toHaveLength(1);
    // a successful probe resets the count
    const { pool: pool2, behaviour: behaviour2, r: r2 } = setup(['x'], { ejectAfterFailures: 3 });
    await pool2.start();
    pool2.reportFailure(r2('x'));
    pool2.reportFailure(r2('x'));
    await nextRound();
    expect(r2('x').consecutiveFailures).toBe(0);
    behaviour2.set('x', new Error('down'));
    await nextRound();
    await nextRound();
    expect(r2('x').state).toBe('healthy');
    await nextRound();
    expect(r2('x').state).toBe('ejected');
    await Promise.all([pool.close(), pool2.close()]);
  });

  it('picks nothing when every replica is ejected (one replica: the caller answers 503)', async () => {
    const { pool, behaviour, r } = setup(['only'], { ejectAfterFailures: 2 });
    await pool.start();
    expect(pool.pick()?.url).toBe('only');
    pool.reportFailure(r('only'));
    pool.reportFailure(r('only'));
    expect(pool.pick()).toBeUndefined();
    expect(pool.pick({ affinityKey: 'k' })).toBeUndefined();
    behaviour.set('only', { healthy: true });
    await nextRound();
    expect(pool.pick()?.url).toBe('only');

    const all = setup(['a', 'b', 'c']);
    for (const url of ['a', 'b', 'c']) all.behaviour.set(url, new Error('down'));
    await all.pool.start();
    for (const strategy of ['least-loaded', 'round-robin', 'prefix-affinity'] as const) {
      const p = setup(['a', 'b'], { strategy });
      p.behaviour.set('a', new Error('down')).set('b', new Error('down'));
      await p.pool.start();
      expect(p.pool.pick({ affinityKey: 'k' })).toBeUndefined();
      await p.pool.close();
    }
    expect(all.pool.pick()).toBeUndefined();
    await Promise.all([pool.close(), all.pool.close()]);
  });

  it('picks unknown replicas only when no healthy one is eligible, and probes a replica added after start at once', async () => {
    const { pool, behaviour, calls, changes, r } = setup(['a', 'b']);
    // before start: all unknown, still served (the request outcome judges them)
    expect(countPicks(pool, 4)).toEqual(new Map([['a', 2], ['b', 2]]));
    pool.reportSuccess(r('a'));
    expect(r('a').state).toBe('healthy');
    expect(changes).toEqual([['a', true, 'a request succeeded']]);
    expect(countPicks(pool, 4)).toEqual(new Map([['a', 4]])); // b unknown, a healthy
    expect(pool.pick({ exclude: ['a'] })?.url).toBe('b'); // no healthy one left: unknown
    await pool.start();

    behaviour.set('c', { healthy: true });
    pool.add('c');
    expect(r('c').state).toBe('unknown');
    expect(calls.filter((u) => u === 'c')).toHaveLength(1); // probed at once, not at the next round
    await vi.advanceTimersByTimeAsync(0);
    expect(r('c').state).toBe('healthy');
    expect(pool.add('c')).toBe(r('c')); // idempotent
    expect(pool.size).toBe(3);
    await pool.close();
  });

  it('keeps a probe to itself: a timeout is a failure, and a probe that ignores its signal is not started again', async () => {
    const { pool, behaviour, calls, signals, r } = setup(['a', 'b'], { ejectAfterFailures: 2 });
    await pool.start();
    behaviour.set('a', 'hang');
    await nextRound();
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(r('a').lastError).toBe(`probe timed out after ${TIMEOUT} ms`);
    expect(r('a').consecutiveFailures).toBe(1);
    expect(signals.at(-2)?.aborted).toBe(true); // [a, b] per round: a's signal was aborted

    behaviour.set('a', 'hang-ignoring-abort');
    const before = calls.filter((u) => u === 'a').length;
    await nextRound();
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(r('a').state).toBe('ejected');
    expect(r('a').lastError).toBe(`probe timed out after ${TIMEOUT} ms`);
    behaviour.set('a', { healthy: true });
    await nextRound();
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    // the hung call is still pending: no second call, one more failure
    expect(calls.filter((u) => u === 'a').length).toBe(before + 1);
    expect(r('a').lastError).toMatch(/previous probe still running/);
    expect(r('a').consecutiveFailures).toBe(3);
    expect(r('b').state).toBe('healthy'); // the other replica's probes went on
    await pool.close();
  });

  it('ignores reports about removed replicas and aborts their probe', async () => {
    const { pool, behaviour, changes, signals, r } = setup(['a', 'b'], { ejectAfterFailures: 1 });
    await pool.start();
    const a = r('a');
    behaviour.set('a', 'hang');
    await nextRound();
    const probeSignal = signals.at(-2)!;
    expect(pool.remove('a')).toBe(true);
    expect(probeSignal.aborted).toBe(true);
    expect(pool.remove('a')).toBe(false);
    expect(pool.get('a')).toBeUndefined();
    changes.length = 0;
    pool.reportFailure(a, new Error('x'));
    pool.reportSuccess(a);
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    expect(a.state).toBe('healthy');
    expect(a.consecutiveFailures).toBe(0);
    expect(changes).toEqual([]);
    const release = pool.acquire(a);
    release();
    expect(a.inflight).toBe(0);
    expect(pool.snapshot().map((s) => s.url)).toEqual(['b']);
    await pool.close();
  });

  it('survives a throwing onHealthChange', async () => {
    const warn = vi.fn();
    const pool = new ReplicaPool({
      name: 'm',
      probe: async () => ({ healthy: true }),
      onHealthChange: () => {
        throw new Error('listener bug');
      },
      logger: { debug: vi.fn(), info: vi.fn(), warn },
    });
    pool.add('a');
    await pool.start();
    expect(pool.get('a')?.state).toBe('healthy');
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'listener bug' }), 'onHealthChange threw');
    await pool.close();
  });
});

describe('ReplicaPool: unavailableError', () => {
  it('should answer 503 naming every replica and its state, with Retry-After the probe interval', async () => {
    const { pool, behaviour } = setup(['http://a:1', 'http://b:2'], { probeIntervalMs: 2500, ejectAfterFailures: 1 });
    behaviour.set('http://b:2', new Error('connect ECONNREFUSED'));
    await pool.start();
    const err = pool.unavailableError("model 'm' has no healthy replica");
    expect([err.code, err.status, err.headers]).toEqual(['TESSERA_E_UPSTREAM_UNAVAILABLE', 503, { 'retry-after': '3' }]);
    expect(err.message).toBe("model 'm' has no healthy replica (http://a:1: healthy, http://b:2: ejected)");
    await pool.close();
    const empty = setup([]).pool;
    expect(empty.unavailableError('no replica').message).toBe('no replica (none configured)');
  });
});

describe('ReplicaPool: probing lifecycle', () => {
  it('close() clears every timer, aborts running probes and stops picking', async () => {
    const { pool, behaviour, signals, calls } = setup(['a', 'b']);
    await pool.start();
    expect(vi.getTimerCount()).toBe(1); // the next round
    behaviour.set('a', 'hang').set('b', 'hang-ignoring-abort');
    await nextRound();
    expect(vi.getTimerCount()).toBe(2); // the two probe timeouts
    const probeSignals = signals.slice(-2);
    await pool.close();
    expect(probeSignals.every((s) => s.aborted)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    const n = calls.length;
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(calls).toHaveLength(n);
    expect(pool.pick()).toBeUndefined();
    expect(pool.closed).toBe(true);
    expect(() => pool.add('c')).toThrow(/after close/);
    await expect(pool.start()).rejects.toThrow(/after close/);
    await pool.close(); // idempotent
  });

  it('close() during the first round leaves nothing behind', async () => {
    const { pool, behaviour } = setup(['a']);
    behaviour.set('a', 'hang');
    const started = pool.start();
    expect(vi.getTimerCount()).toBe(1); // the probe timeout
    await pool.close();
    await started;
    expect(vi.getTimerCount()).toBe(0);
    expect(pool.get('a')?.state).toBe('unknown'); // no verdict from an aborted probe
  });

  it('start() is idempotent, rounds never overlap, and the timers are unref’d', async () => {
    const { pool, calls } = setup(['a']);
    const unref = vi.spyOn(globalThis, 'setTimeout');
    const first = pool.start();
    expect(pool.start()).toBe(first);
    await first;
    await nextRound();
    await nextRound();
    expect(calls).toEqual(['a', 'a', 'a']);
    for (const result of unref.mock.results) expect((result.value as NodeJS.Timeout).hasRef()).toBe(false);
    unref.mockRestore();
    await pool.close();
  });

  it('keeps the latest probe load with its time', async () => {
    const { pool, behaviour, r } = setup(['a']);
    behaviour.set('a', { healthy: true, load: { running: 3, waiting: 1, kvCacheUsage: 0.4 } });
    await pool.start();
    const t0 = Date.now();
    expect(r('a').load).toEqual({ running: 3, waiting: 1, kvCacheUsage: 0.4 });
    expect(r('a').loadAt).toBe(t0);
    behaviour.set('a', { healthy: true, load: { running: 5, waiting: -1, kvCacheUsage: NaN } });
    await nextRound();
    expect(r('a').load).toEqual({ running: 5 }); // invalid fields dropped
    expect(r('a').loadAt).toBe(t0 + INTERVAL);
    behaviour.set('a', new Error('blip'));
    await nextRound();
    expect(r('a').load).toEqual({ running: 5 }); // a failed probe keeps the last load
    const [snap] = pool.snapshot();
    expect(snap).toMatchObject({ url: 'a', healthy: true, state: 'healthy', inflight: 0, load: { running: 5 }, consecutiveFailures: 1, lastError: 'blip' });
    await pool.close();
  });

  it('validates its options', () => {
    const probe: ReplicaProbe = async () => ({ healthy: true });
    expect(() => new ReplicaPool({ name: 'm', probe, strategy: 'random' as never })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, ejectAfterFailures: 0 })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, readmitAfterSuccesses: 1.5 })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, probeIntervalMs: 0 })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, probeTimeoutMs: -1 })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, affinity: { loadFactor: 0.9 } })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, affinity: { virtualNodes: 0 } })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe, loadWeights: { waiting: -1 } })).toThrow(RangeError);
    expect(() => new ReplicaPool({ name: 'm', probe: undefined as never })).toThrow(TypeError);
    expect(() => new ReplicaPool({ name: 'm', probe }).acquire({ url: 'x' } as Replica)).toThrow(TypeError);
    expect(new ReplicaPool({ name: 'm', probe, affinity: { loadFactor: 1 }, loadWeights: { running: 0 } }).strategy).toBe('least-loaded');
  });
});

describe('ReplicaPool: least-loaded', () => {
  it('picks the least loaded replica and follows the load as it changes', async () => {
    const { pool, behaviour } = setup(['a', 'b', 'c']);
    behaviour.set('a', { healthy: true, load: { running: 8, waiting: 2 } });
    behaviour.set('b', { healthy: true, load: { running: 2, waiting: 0 } });
    behaviour.set('c', { healthy: true, load: { running: 4, waiting: 0 } });
    await pool.start();
    expect(countPicks(pool, 9)).toEqual(new Map([['b', 9]]));
    behaviour.set('b', { healthy: true, load: { running: 12, waiting: 3 } });
    await nextRound();
    expect(countPicks(pool, 9)).toEqual(new Map([['c', 9]]));
    await pool.close();
  });

  it('counts our live in-flight requests between scrapes, without counting them twice', async () => {
    const { pool, behaviour, r } = setup(['a', 'b']);
    behaviour.set('a', { healthy: true, load: { running: 0, waiting: 0 } });
    behaviour.set('b', { healthy: true, load: { running: 1, waiting: 0 } });
    await pool.start();
    // between scrapes, acquires steer the picks: a, then alternate as the scores meet
    const releases: Array<() => void> = [];
    const picked: string[] = [];
    for (let i = 0; i < 5; i++) {
      const p = pool.pick()!;
      picked.push(p.url);
      releases.push(pool.acquire(p));
    }
    expect(picked[0]).toBe('a');
    expect(r('a').inflight).toBe(3);
    expect(r('b').inflight).toBe(2);
    // the next scrape sees our requests: a runs 3 (all ours), b 2 (ours) + 1 from someone else
    behaviour.set('a', { healthy: true, load: { running: 3, waiting: 0 } });
    behaviour.set('b', { healthy: true, load: { running: 3, waiting: 0 } });
    await nextRound();
    const score = () => new Map(pool.snapshot().map((s) => [s.url, s.score]));
    expect(score()).toEqual(new Map([['a', 0.25 * 3], ['b', 0.25 * 3]])); // not 0.25 × (3 + 3)
    // two of ours finish on a before the next scrape: it is the less loaded now
    releases[0]!();
    releases[2]!();
    expect(score().get('a')).toBe(0.25 * 1);
    expect(pool.pick()?.url).toBe('a');
    for (const release of releases) release();
    await pool.close();
  });

  it('weighs waiting above running, and new work on a queueing replica as waiting', async () => {
    const { pool, behaviour, r } = setup(['a', 'b'], { ejectAfterFailures: 10, loadMaxAgeMs: 2.5 * INTERVAL });
    behaviour.set('a', { healthy: true, load: { running: 16, waiting: 0, kvCacheUsage: 0.5 } }); // 4 + 0.5
    behaviour.set('b', { healthy: true, load: { running: 4, waiting: 2, kvCacheUsage: 0.9 } }); // 1 + 2 + 0.9
    await pool.start();
    const score = (url: string) => pool.snapshot().find((s) => s.url === url)!.score;
    expect(score('a')).toBe(4.5);
    expect(score('b')).toBeCloseTo(3.9);
    expect(pool.pick()?.url).toBe('b');
    const release = pool.acquire(r('b'));
    expect(score('b')).toBeCloseTo(4.9); // queued behind the others: +1, not +0.25
    expect(pool.pick()?.url).toBe('a');
    const releaseA = pool.acquire(r('a'));
    expect(score('a')).toBe(4.75); // a was not queueing: +0.25
    release();
    releaseA();
    // a scrape older than loadMaxAgeMs is ignored: the live count alone, on the same scale
    behaviour.set('a', new Error('blip')).set('b', new Error('blip'));
    await nextRound();
    await nextRound();
    expect(score('b')).toBeCloseTo(3.9); // 2 intervals old: still used
    await nextRound();
    const hold = pool.acquire(r('a'));
    expect(r('a').state).toBe('healthy');
    expect(score('a')).toBe(0.25);
    expect(score('b')).toBe(0);
    hold();
    await pool.close();
  });

  it('rotates among equal scores instead of always taking the first', async () => {
    const { pool } = setup(['a', 'b', 'c']);
    await pool.start();
    expect(countPicks(pool, 30)).toEqual(new Map([['a', 10], ['b', 10], ['c', 10]]));
    await pool.close();
  });
});

describe('ReplicaPool: round-robin', () => {
  it('spreads picks evenly over the healthy replicas', async () => {
    const { pool, behaviour } = setup(['a', 'b', 'c', 'd'], { strategy: 'round-robin' });
    behaviour.set('d', new Error('down'));
    await pool.start();
    expect(countPicks(pool, 300)).toEqual(new Map([['a', 100], ['b', 100], ['c', 100]]));
    // load does not matter to it
    const { r } = { r: (u: string) => pool.get(u)! };
    const release = pool.acquire(r('a'));
    expect(countPicks(pool, 30)).toEqual(new Map([['a', 10], ['b', 10], ['c', 10]]));
    release();
    await pool.close();
  });
});

describe('ReplicaPool: prefix-affinity', () => {
  const urls = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000', 'http://10.0.0.3:8000', 'http://10.0.0.4:8000'];
  const affinity = (extra: Partial<ReplicaPoolOptions> = {}) => setup(urls, { strategy: 'prefix-affinity', ...extra });

  it('sends a key to the same replica every time', async () => {
    const { pool } = affinity();
    await pool.start();
    for (const key of keys(50)) {
      const first = pool.pick({ affinityKey: key })!.url;
      for (let i = 0; i < 5; i++) expect(pool.pick({ affinityKey: key })!.url).toBe(first);
    }
    await pool.close();
  });

  it('spreads many keys about evenly', async () => {
    const { pool } = affinity();
    await pool.start();
    const ks = keys(8000);
    const counts = countPicks(pool, ks.length, (i => () => pool.pick({ affinityKey: ks[i++]! }))(0));
    expect(counts.size).toBe(4);
    for (const c of counts.values()) {
      expect(c / ks.length).toBeGreaterThan(0.25 * 0.75);
      expect(c / ks.length).toBeLessThan(0.25 * 1.25);
    }
    await pool.close();
  });

  it('remaps only the keys of a replica that leaves or is ejected (about 1/n)', async () => {
    const { pool, behaviour } = affinity({ ejectAfterFailures: 1 });
    await pool.start();
    const ks = keys(8000);
    const owner = () => new Map(ks.map((k) => [k, pool.pick({ affinityKey: k })!.url]));
    const before = owner();
    const gone = urls[1]!;

    const check = (after: Map<string, string>) => {
      let moved = 0;
      for (const k of ks) {
        if (before.get(k) === gone) {
          moved++;
          expect(after.get(k)).not.toBe(gone);
        } else {
          expect(after.get(k)).toBe(before.get(k));
        }
      }
      expect(moved / ks.length).toBeGreaterThan(0.25 * 0.75);
      expect(moved / ks.length).toBeLessThan(0.25 * 1.25);
    };

    // ejected: its keys go to their ring successors, and come back on re-admission
    behaviour.set(gone, new Error('down'));
    await nextRound();
    expect(pool.get(gone)?.state).toBe('ejected');
    check(owner());
    behaviour.delete(gone);
    await nextRound();
    expect(owner()).toEqual(before);

    pool.remove(gone);
    check(owner());
    await pool.close();
  });

  it('sheds a hot replica’s keys to the next replica on the ring, and returns when it cools', async () => {
    const { pool, r } = affinity();
    await pool.start();
    const ring = new HashRing(160);
    for (const u of urls) ring.add(u);
    const key = 'system prompt of a very popular assistant';
    const [home, next] = [...ring.walk(key)];
    expect(pool.pick({ affinityKey: key })!.url).toBe(home);
    // bound = ceil(1.25 × (total + 1) / 4); home takes keys while inflight + 1 ≤ bound
    const releases: Array<() => void> = [];
    for (let i = 0; i < 2; i++) releases.push(pool.acquire(r(home!)));
    // total 2: bound ceil(1.25 × 3 / 4) = 1, home has 2: over the bound
    expect(pool.pick({ affinityKey: key })!.url).toBe(next);
    // other keys of the same home still stick to it when it is not hot
    for (const release of releases) release();
    expect(pool.pick({ affinityKey: key })!.url).toBe(home);
    // exclude walks on too (a retry after the home replica failed)
    expect(pool.pick({ affinityKey: key, exclude: [home!] })!.url).toBe(next);
    await pool.close();
  });

  it('holds the load bound under a skewed key stream', async () => {
    const loadFactor = 1.25;
    const { pool, r } = affinity({ affinity: { loadFactor, virtualNodes: 160 } });
    await pool.start();
    const random = prng(42);
    const hotKeys = ['hot prompt A', 'hot prompt B'];
    const coldKeys = keys(200);
    const nextKey = () => (random() < 0.8 ? hotKeys[random() < 0.75 ? 0 : 1]! : coldKeys[Math.floor(random() * coldKeys.length)]!);
    const inflight = () => urls.map((u) => r(u).inflight);

    // no releases: the bound only grows, so max ≤ ceil(c × total / n) at every step
    const held: Array<() => void> = [];
    for (let i = 0; i < 400; i++) {
      const chosen = pool.pick({ affinityKey: nextKey() })!;
      held.push(pool.acquire(chosen));
      const loads = inflight();
      const total = loads.reduce((a, b) => a + b, 0);
      expect(Math.max(...loads)).toBeLessThanOrEqual(Math.ceil((loadFactor * total) / urls.length));
    }
    expect(Math.min(...inflight())).toBeGreaterThan(0); // the hot keys spilled everywhere
    for (const release of held) release();

    // with releases: every pick is within the bound computed just before it
    const live: Array<() => void> = [];
    for (let i = 0; i < 2000; i++) {
      if (live.length > 0 && random() < 0.45) live.splice(Math.floor(random() * live.length), 1)[0]!();
      const total = inflight().reduce((a, b) => a + b, 0);
      const bound = Math.ceil((loadFactor * (total + 1)) / urls.length);
      const chosen = pool.pick({ affinityKey: nextKey() })!;
      expect(chosen.inflight + 1).toBeLessThanOrEqual(bound);
      live.push(pool.acquire(chosen));
    }
    for (const release of live) release();
    await pool.close();
  });

  it('uses least-loaded without a key', async () => {
    const { pool, behaviour } = affinity();
    behaviour.set(urls[0]!, { healthy: true, load: { running: 9 } });
    behaviour.set(urls[1]!, { healthy: true, load: { running: 9 } });
    behaviour.set(urls[2]!, { healthy: true, load: { running: 1 } });
    behaviour.set(urls[3]!, { healthy: true, load: { running: 9 } });
    await pool.start();
    expect(countPicks(pool, 5)).toEqual(new Map([[urls[2], 5]]));
    await pool.close();
  });
});

describe('ReplicaPool: exclude', () => {
  it.each(['least-loaded', 'round-robin', 'prefix-affinity'] as const)('%s never picks an excluded replica', async (strategy) => {
    const { pool, r } = setup(['a', 'b', 'c'], { strategy });
    await pool.start();
    for (let i = 0; i < 30; i++) {
      const tried = new Set<string>();
      for (let attempt = 0; attempt < 3; attempt++) {
        const p = pool.pick({ affinityKey: `key ${i}`, exclude: tried })!;
        expect(tried.has(p.url)).toBe(false);
        tried.add(p.url);
      }
      expect(pool.pick({ affinityKey: `key ${i}`, exclude: tried })).toBeUndefined();
    }
    // replicas or URLs
    expect(pool.pick({ exclude: [r('a'), 'b'] })?.url).toBe('c');
    await pool.close();
  });
});

describe('ReplicaPool: acquire', () => {
  it('counts in-flight requests; release is idempotent', async () => {
    const { pool, r } = setup(['a']);
    await pool.start();
    const one = pool.acquire(r('a'));
    const two = pool.acquire(r('a'));
    expect(r('a').inflight).toBe(2);
    one();
    one();
    expect(r('a').inflight).toBe(1);
    two();
    expect(r('a').inflight).toBe(0);
    await pool.close();
    expect(pool.snapshot()[0]?.inflight).toBe(0);
  });
});
