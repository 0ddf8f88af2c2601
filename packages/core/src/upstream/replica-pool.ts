/**
 * A pool of remote replicas of one model (vLLM servers, Triton, KServe, other Tessera servers):
 * active health probes, passive health from real traffic, ejection and re-admission, and
 * load-aware picking. Backend-agnostic: what a probe does is the backend's `probe` function; the
 * pool only sees `ProbeResult`s and request outcomes. The parts live in `internal/replica-pool/`.
 */
import { TesseraError, errorMessage } from '../errors.js';
import { HashRing } from '../internal/hash-ring.js';
import { ReplicaHealth } from '../internal/replica-pool/health.js';
import { loadScore } from '../internal/replica-pool/load-score.js';
import { resolvePoolOptions } from '../internal/replica-pool/options.js';
import { pickAffinity, pickCandidates, pickLeastLoaded, pickRoundRobin } from '../internal/replica-pool/pick.js';
import { ProbeLoop } from '../internal/replica-pool/probe-loop.js';
import { ReplicaEntry } from '../internal/replica-pool/replica-entry.js';
import type { LoadWeights, PickOptions, PickStrategy, Replica, ReplicaPoolOptions, ReplicaSnapshot } from './types.js';

/**
 * A pool of replicas of one model with health checking and load-aware picking.
 *
 * States: `unknown` (added, no verdict; picked only when no replica is healthy) → `healthy`
 * (picked) ⇄ `ejected` (never picked, still probed). `ejectAfterFailures` consecutive failures,
 * probes' and requests' together, eject; `readmitAfterSuccesses` successful probes in a row
 * re-admit; a replica's first failed probe ejects it at once.
 *
 * Typical use: `add` the replicas, `await start()`, then per request `pick()`, `acquire()`, send,
 * `reportSuccess`/`reportFailure`, `release()`; on a failure, `pick({ exclude })` to retry
 * elsewhere. Call `acquire` right after `pick` (same tick): the in-flight counts steer the next picks.
 */
export class ReplicaPool {
  /** The pool's name, as given. */
  readonly name: string;
  /** The picking strategy, as resolved. */
  readonly strategy: PickStrategy;
  readonly #loadFactor: number;
  readonly #weights: Required<LoadWeights>;
  readonly #loadMaxAgeMs: number;
  readonly #replicas = new Map<string, ReplicaEntry>();
  readonly #ring: HashRing;
  readonly #health: ReplicaHealth;
  readonly #probes: ProbeLoop;
  readonly #probeIntervalMs: number;
  #closed = false;
  #turn = 0;

  constructor(options: ReplicaPoolOptions) {
    const o = resolvePoolOptions(options);
    this.name = o.name;
    this.strategy = o.strategy;
    this.#loadFactor = o.loadFactor;
    this.#ring = new HashRing(o.virtualNodes);
    this.#weights = o.weights;
    this.#loadMaxAgeMs = o.loadMaxAgeMs;
    this.#health = new ReplicaHealth(o);
    this.#probeIntervalMs = o.probeIntervalMs;
    this.#probes = new ProbeLoop({
      probe: o.probe,
      intervalMs: o.probeIntervalMs,
      timeoutMs: o.probeTimeoutMs,
      replicas: () => this.#replicas.values(),
      isLive: (entry) => this.#live(entry),
      onFailure: (entry, message) => this.#health.failed(entry, message, true),
      onSuccess: (entry, load, inflightAtProbe) => this.#health.probeSucceeded(entry, load, inflightAtProbe),
    });
  }

  /** Number of replicas in the pool, in any state. */
  get size(): number {
    return this.#replicas.size;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds a replica (state `unknown`) and returns it; returns the existing one if `url` is already
   * in the pool. After `start()`, it is probed at once.
   * @throws Error after `close()`.
   */
  add(url: string): Replica {
    if (this.#closed) throw new Error(`ReplicaPool ${this.name}: add() after close()`);
    const existing = this.#replicas.get(url);
    if (existing) return existing;
    const entry = new ReplicaEntry(url);
    this.#replicas.set(url, entry);
    this.#ring.add(url);
    if (this.#probes.started) void this.#probes.probe(entry);
    return entry;
  }

  /**
   * Removes a replica: it is no longer picked or probed (a running probe is aborted), and reports
   * about it are ignored; releases of its in-flight requests still work. No `onHealthChange`.
   * Returns whether it was in the pool.
   */
  remove(url: string): boolean {
    const entry = this.#replicas.get(url);
    if (!entry) return false;
    entry.removed = true;
    entry.probeAbort?.abort(new Error('replica removed from the pool'));
    this.#replicas.delete(url);
    this.#ring.remove(url);
    return true;
  }

  /** The replica with this URL, if in the pool. */
  get(url: string): Replica | undefined {
    return this.#replicas.get(url);
  }

  /**
   * Runs the first probe round (resolves when every replica has a verdict: healthy or ejected),
   * then probes every `probeIntervalMs`. Idempotent: later calls return the same promise.
   * @throws Error (rejects) after `close()`.
   */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`ReplicaPool ${this.name}: start() after close()`));
    return this.#probes.start();
  }

  /**
   * Stops probing: clears the timer, aborts running probes and waits for them to settle. Picks
   * return undefined afterwards; releases still work. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#probes.close(this.#replicas.values());
  }

  /**
   * Picks a replica for one request by the pool's strategy, or undefined when no candidate is left
   * (all ejected or excluded, or the pool is closed): the caller answers 503. Candidates are the
   * healthy replicas not excluded, else the unknown ones. `prefix-affinity` without a key picks
   * as `least-loaded`.
   */
  pick(options: PickOptions = {}): Replica | undefined {
    if (this.#closed) return undefined;
    const candidates = pickCandidates(this.#replicas.values(), options.exclude);
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return candidates[0];
    const turn = this.#nextTurn();
    if (this.strategy === 'round-robin') return pickRoundRobin(candidates, turn);
    if (this.strategy === 'prefix-affinity' && options.affinityKey !== undefined) {
      const chosen = pickAffinity(candidates, options.affinityKey, this.#ring, this.#loadFactor);
      if (chosen) return chosen;
    }
    const now = Date.now();
    return pickLeastLoaded(candidates, turn, (r) => this.#score(r, now));
  }

  /**
   * Counts one request in flight to `replica` until the returned function is called (idempotent:
   * extra calls do nothing).
   * @throws TypeError if `replica` did not come from a pool.
   */
  acquire(replica: Replica): () => void {
    const entry = this.#entry(replica);
    entry.inflight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.inflight--;
    };
  }

  /**
   * Passive health: a request to `replica` succeeded. Resets its failure count; turns an `unknown`
   * replica healthy. Ignored for removed replicas and after `close()`.
   */
  reportSuccess(replica: Replica): void {
    const entry = this.#entry(replica);
    if (!this.#live(entry)) return;
    this.#health.requestSucceeded(entry);
  }

  /**
   * Passive health: a request to `replica` failed in a way that blames the replica (connection
   * refused or reset, timeout, 5xx; not a 4xx caused by the request). Counts towards ejection.
   * Ignored for removed replicas and after `close()`.
   */
  reportFailure(replica: Replica, error?: unknown): void {
    const entry = this.#entry(replica);
    if (!this.#live(entry)) return;
    this.#health.failed(entry, error === undefined ? 'request failed' : `request failed: ${errorMessage(error)}`, false);
  }

  /**
   * Takes a replica out of rotation now, whatever its failure count: what a supervisor calls when
   * it sees the replica's process die. Probes re-admit it as usual once it answers again.
   * Returns whether the replica was in the pool.
   */
  eject(url: string, reason: string): boolean {
    const entry = this.#replicas.get(url);
    if (!entry || !this.#live(entry)) return false;
    this.#health.eject(entry, reason);
    return true;
  }

  /**
   * Probes one replica now instead of at the next round (e.g. a supervisor saw it start), so that
   * it is re-admitted without waiting for the interval. Resolves when the probe has a verdict.
   */
  probeNow(url: string): Promise<void> {
    const entry = this.#replicas.get(url);
    if (!entry || !this.#live(entry) || !this.#probes.started) return Promise.resolve();
    return this.#probes.probe(entry);
  }

  /**
   * The answer for a request no replica could take: 503 TESSERA_E_UPSTREAM_UNAVAILABLE, `subject`
   * (e.g. "model 'm' has no healthy replica") followed by every replica's state, and `Retry-After`
   * the probe interval, the soonest an ejected replica can be back.
   */
  unavailableError(subject: string): TesseraError {
    const states = this.snapshot()
      .map((r) => `${r.url}: ${r.state}`)
      .join(', ');
    return new TesseraError('TESSERA_E_UPSTREAM_UNAVAILABLE', `${subject} (${states || 'none configured'})`, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(this.#probeIntervalMs / 1000))) },
    });
  }

  /** A copy of every replica's state, in the order they were added. */
  snapshot(): ReplicaSnapshot[] {
    const now = Date.now();
    return [...this.#replicas.values()].map((r) => ({
      url: r.url,
      healthy: r.healthy,
      state: r.state,
      inflight: r.inflight,
      load: r.load === undefined ? undefined : { ...r.load },
      loadAt: r.loadAt,
      consecutiveFailures: r.consecutiveFailures,
      lastError: r.lastError,
      score: this.#score(r, now),
    }));
  }

  #nextTurn(): number {
    const turn = this.#turn;
    this.#turn = (this.#turn + 1) % Number.MAX_SAFE_INTEGER;
    return turn;
  }

  #score(r: ReplicaEntry, now: number): number {
    return loadScore(r, now, this.#weights, this.#loadMaxAgeMs);
  }

  #entry(replica: Replica): ReplicaEntry {
    if (!(replica instanceof ReplicaEntry)) throw new TypeError(`ReplicaPool ${this.name}: not a replica of a pool: ${String((replica as { url?: unknown } | undefined)?.url)}`);
    return replica;
  }

  #live(entry: ReplicaEntry): boolean {
    return !this.#closed && !entry.removed && this.#replicas.get(entry.url) === entry;
  }
}
