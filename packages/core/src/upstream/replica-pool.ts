/**
 * A pool of remote replicas of one model (vLLM servers, Triton, KServe, other Tessera servers):
 * active health probes, passive health from real traffic, ejection and re-admission, and
 * load-aware picking. Backend-agnostic: what a probe does (which endpoint, which metrics) is the
 * backend's `probe` function; the pool only sees {@link ProbeResult}s and request outcomes.
 *
 * ## States
 * ```
 *  unknown ───── a probe or a request succeeds ───────────────────▶ healthy
 *     │                                                              │   ▲
 *     │ its first probe fails, or                                    │   │ readmitAfterSuccesses
 *     │ ejectAfterFailures consecutive request failures              │   │ consecutive successful
 *     ▼                                                              │   │ probes
 *  ejected ◀── ejectAfterFailures consecutive failures (probe or ─────┘   │
 *     │        request, counted together)                                │
 *     └──────────────────────────────────────────────────────────────────┘
 * ```
 * - `unknown`: added, no verdict yet. Picked only when no healthy replica is eligible (so a
 *   newly added replica does not take traffic before its first probe, yet a pool whose probes
 *   have not run still serves). Its first failed probe ejects it at once: a replica never seen
 *   healthy (an engine still loading its model) must not wait for several failures.
 * - `healthy`: picked. Failures from probes and from requests ({@link ReplicaPool.reportFailure})
 *   count together; any success resets the count; `ejectAfterFailures` in a row eject it.
 * - `ejected`: never picked; still probed every interval; `readmitAfterSuccesses` successful probes
 *   in a row re-admit it. Request outcomes do not re-admit (they come from requests sent before
 *   the ejection); a request failure restarts the run of successes.
 * Every transition calls `onHealthChange` once and logs (ejection at warn, the others at info).
 *
 * ## Probing
 * One loop per pool: a round probes every replica concurrently, each with its own `AbortSignal`
 * that aborts after `probeTimeoutMs` (a timeout counts as a failed probe, even if the probe
 * function ignores the signal); the next round starts `probeIntervalMs` after the previous one
 * ended (`setTimeout`, unref'd, so rounds never overlap and the loop never keeps the process
 * alive). A probe never overlaps itself: if a replica's previous probe is still running (its
 * function ignored the abort), the round records a failure for it instead of starting another.
 * A replica added after `start()` is probed at once. `close()` stops the loop and aborts probes.
 *
 * ## Picking
 * Candidates: healthy replicas not in `exclude`, else (none) unknown replicas not in `exclude`.
 * - `round-robin`: the candidates in turn.
 * - `least-loaded`: the lowest load score (below), a full scan starting one further each pick so
 *   that ties rotate instead of always going to the first replica.
 * - `prefix-affinity`: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
 *   "Consistent Hashing with Bounded Loads", 2018): the key's replica on a hash ring (see
 *   {@link HashRing}), unless its in-flight count is over the bound, in which case the walk goes
 *   clockwise to the next candidate under it. Eligible: `inflight + 1 ≤ ceil(loadFactor ×
 *   (total in-flight + 1) / candidates)`, counting this gateway's in-flight requests over the
 *   candidates. Repeated keys (a prompt prefix, a session) reach the same replica and its prefix
 *   cache; a hot replica sheds to its ring successor; no replica exceeds the bound, so the load
 *   stays within `loadFactor` of the mean. Without a key: `least-loaded`.
 *
 * ## Load score (`least-loaded`)
 * Two sources disagree: the replica's own counts (`running`, `waiting`, from the latest probe)
 * see every client but are up to an interval old; this gateway's in-flight count is live but
 * sees only its own requests. The score starts from the scrape and corrects it by the change in
 * our in-flight count since the scrape (`d = inflight − inflightAtProbe`, where
 * `inflightAtProbe` is our in-flight count while the probe ran, the smaller of its values at the
 * probe's start and end):
 * ```
 * R = running (or inflightAtProbe if the probe gave no `running`),  W = waiting (or 0)
 * d > 0: W += d if W > 0 (the replica was queueing: new work queues too), else R += d
 * d < 0: take −d from W first, then from R (never below 0)
 * R += max(0, inflight − (R + W))           (never less than what we know we sent)
 * score = weights.running·R + weights.waiting·W + weights.kvCacheUsage·kvCacheUsage
 * ```
 * defaults: running 0.25 (running sequences share batched steps: a few more cost little),
 * waiting 1 (a queued request waits for capacity), kvCacheUsage 1 (a full cache is about to
 * preempt or queue). A scrape older than `loadMaxAgeMs`, or none, leaves only the live count:
 * `score = weights.running · inflight`, on the same scale.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { HashRing } from './hash-ring.js';

/** A replica's health: not yet judged, serving, or out of rotation. */
export type ReplicaState = 'unknown' | 'healthy' | 'ejected';

/** How {@link ReplicaPool.pick} chooses among candidates. */
export type PickStrategy = 'least-loaded' | 'round-robin' | 'prefix-affinity';

/**
 * A replica's self-reported load, from a probe (e.g. scraped from its `/metrics`). Every field is
 * optional; non-finite or negative values are ignored.
 */
export interface ReplicaLoad {
  /** Requests (sequences) being executed now. */
  running?: number;
  /** Requests queued, waiting for capacity. */
  waiting?: number;
  /** Share of the replica's cache or memory in use, 0..1 (an LLM engine's KV cache). */
  kvCacheUsage?: number;
}

/** What a probe found. */
export interface ProbeResult {
  /** Whether the replica can serve. False counts as a failed probe. */
  healthy: boolean;
  /** Its load, if the probe read it; kept with the time of the probe. */
  load?: ReplicaLoad;
  /** Why it is unhealthy (logged, and kept as `lastError`). */
  reason?: string;
}

/**
 * A backend's health check of one replica. Must honour `signal` (aborted on timeout, `remove` and
 * `close`). Throwing or rejecting counts as a failed probe, with the error's message as reason.
 */
export type ReplicaProbe = (replica: Replica, signal: AbortSignal) => Promise<ProbeResult>;

/** The logger methods the pool uses (a pino `Logger` fits). */
export type PoolLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

/** A replica as the pool's users see it: read-only, live (the fields change as the pool works). */
export interface Replica {
  /** The replica's identity in the pool, normally its base URL. */
  readonly url: string;
  /** Its health state. */
  readonly state: ReplicaState;
  /** `state === 'healthy'`. */
  readonly healthy: boolean;
  /** Requests this gateway has in flight to it ({@link ReplicaPool.acquire} minus releases). */
  readonly inflight: number;
  /** Its load from the latest successful probe that reported one. */
  readonly load: Readonly<ReplicaLoad> | undefined;
  /** When `load` was read (ms since the epoch). */
  readonly loadAt: number | undefined;
  /** Failures (probe or request) since the last success. */
  readonly consecutiveFailures: number;
  /** The latest failure's message. */
  readonly lastError: string | undefined;
}

/** A point-in-time copy of a replica's state, for status pages and tests. */
export interface ReplicaSnapshot {
  url: string;
  healthy: boolean;
  state: ReplicaState;
  inflight: number;
  load: ReplicaLoad | undefined;
  loadAt: number | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  /** The `least-loaded` score now (lower is better). */
  score: number;
}

/** Weights of the load score; see the module comment. */
export interface LoadWeights {
  /** Per running request (ours or others'). Default 0.25. */
  running?: number;
  /** Per waiting request. Default 1. */
  waiting?: number;
  /** Times `kvCacheUsage` (0..1). Default 1. */
  kvCacheUsage?: number;
}

/** Options of {@link ReplicaPool}. */
export interface ReplicaPoolOptions {
  /** The pool's name (the model), for logs. */
  name: string;
  /** How to pick. Default `least-loaded`. */
  strategy?: PickStrategy;
  /** The backend's health check. */
  probe: ReplicaProbe;
  /** Pause between the end of a probe round and the start of the next, ms. Default 2000. */
  probeIntervalMs?: number;
  /** Longest a probe may take before it counts as failed (its signal is aborted), ms. Default 1000. */
  probeTimeoutMs?: number;
  /** Consecutive failures (request or probe) that eject a healthy replica. Default 3. */
  ejectAfterFailures?: number;
  /** Consecutive successful probes that re-admit an ejected replica. Default 1. */
  readmitAfterSuccesses?: number;
  /** `prefix-affinity` settings. */
  affinity?: {
    /** The bound's slack over the mean in-flight count, ≥ 1 (1: perfectly even, little affinity). Default 1.25. */
    loadFactor?: number;
    /** Points per replica on the hash ring. Default 160. */
    virtualNodes?: number;
  };
  /** Weights of the `least-loaded` score. */
  loadWeights?: LoadWeights;
  /** A probe's load older than this is ignored by the score, ms. Default 3 × probeIntervalMs. */
  loadMaxAgeMs?: number;
  /** Where transitions and probe failures are logged. Default: nowhere. */
  logger?: PoolLogger;
  /**
   * Called once per state transition, after the state changed: `healthy` is the new
   * `replica.healthy`. Errors it throws are logged and otherwise ignored.
   */
  onHealthChange?: (replica: Replica, healthy: boolean, reason: string) => void;
}

/** Options of {@link ReplicaPool.pick}. */
export interface PickOptions {
  /** For `prefix-affinity`: what should land on the same replica (a prompt prefix, a session id). */
  affinityKey?: string;
  /** Replicas (or their URLs) not to pick, e.g. those a retried request already tried. */
  exclude?: Iterable<Replica | string>;
}

const DEFAULTS = {
  strategy: 'least-loaded' as PickStrategy,
  probeIntervalMs: 2000,
  probeTimeoutMs: 1000,
  ejectAfterFailures: 3,
  readmitAfterSuccesses: 1,
  loadFactor: 1.25,
  virtualNodes: 160,
  weights: { running: 0.25, waiting: 1, kvCacheUsage: 1 },
} as const;

const STRATEGIES: readonly PickStrategy[] = ['least-loaded', 'round-robin', 'prefix-affinity'];

const noopLogger: PoolLogger = { debug: () => {}, info: () => {}, warn: () => {} };

/** A probe that did not answer within `probeTimeoutMs`. */
class ProbeTimeoutError extends Error {
  constructor(ms: number) {
    super(`probe timed out after ${ms} ms`);
  }
}

class ReplicaEntry implements Replica {
  state: ReplicaState = 'unknown';
  inflight = 0;
  load: ReplicaLoad | undefined;
  loadAt: number | undefined;
  /** Our in-flight count while the probe that read `load` ran. */
  inflightAtProbe = 0;
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  lastError: string | undefined;
  /** The probe function's promise is still pending (even past its timeout). */
  probePending = false;
  /** Aborts the running probe. */
  probeAbort: AbortController | undefined;
  removed = false;

  constructor(readonly url: string) {}

  get healthy(): boolean {
    return this.state === 'healthy';
  }
}

/** `value ?? fallback`, checked: finite, and `> 0` (`min` 0), or `≥ min`, and an integer if asked. */
function numberOption(value: number | undefined, fallback: number, what: string, min = 0, integer = false): number {
  const v = value ?? fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) && (min === 0 ? v > 0 : v >= min) && (!integer || Number.isInteger(v));
  if (!ok) throw new RangeError(`ReplicaPool: ${what} must be ${integer ? 'an integer' : 'a number'} ${min === 0 ? '> 0' : `≥ ${min}`}, got ${String(value)}`);
  return v;
}

function weightOption(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`ReplicaPool: loadWeights.${what} must be a number ≥ 0, got ${String(value)}`);
  return v;
}

function cleanLoad(load: ReplicaLoad | undefined): ReplicaLoad | undefined {
  if (load === undefined || load === null || typeof load !== 'object') return undefined;
  const out: ReplicaLoad = {};
  for (const key of ['running', 'waiting', 'kvCacheUsage'] as const) {
    const v = load[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = v;
  }
  return out;
}

/**
 * A pool of replicas of one model with health checking and load-aware picking; see the module
 * comment for the state machine, the probe loop, the strategies and the load score.
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
  readonly #probe: ReplicaProbe;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #ejectAfter: number;
  readonly #readmitAfter: number;
  readonly #loadFactor: number;
  readonly #weights: Required<LoadWeights>;
  readonly #loadMaxAgeMs: number;
  readonly #logger: PoolLogger;
  readonly #onHealthChange: ReplicaPoolOptions['onHealthChange'];
  readonly #replicas = new Map<string, ReplicaEntry>();
  readonly #ring: HashRing;
  /** Probes running now (rounds' and ad-hoc ones), awaited by `close`. */
  readonly #running = new Set<Promise<void>>();
  #started: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #turn = 0;

  constructor(options: ReplicaPoolOptions) {
    if (typeof options.probe !== 'function') throw new TypeError('ReplicaPool: probe must be a function');
    this.name = options.name;
    this.strategy = options.strategy ?? DEFAULTS.strategy;
    if (!STRATEGIES.includes(this.strategy)) throw new RangeError(`ReplicaPool: strategy must be one of ${STRATEGIES.join(', ')}, got ${String(options.strategy)}`);
    this.#probe = options.probe;
    this.#intervalMs = numberOption(options.probeIntervalMs, DEFAULTS.probeIntervalMs, 'probeIntervalMs');
    this.#timeoutMs = numberOption(options.probeTimeoutMs, DEFAULTS.probeTimeoutMs, 'probeTimeoutMs');
    this.#ejectAfter = numberOption(options.ejectAfterFailures, DEFAULTS.ejectAfterFailures, 'ejectAfterFailures', 1, true);
    this.#readmitAfter = numberOption(options.readmitAfterSuccesses, DEFAULTS.readmitAfterSuccesses, 'readmitAfterSuccesses', 1, true);
    this.#loadFactor = numberOption(options.affinity?.loadFactor, DEFAULTS.loadFactor, 'affinity.loadFactor', 1);
    this.#ring = new HashRing(numberOption(options.affinity?.virtualNodes, DEFAULTS.virtualNodes, 'affinity.virtualNodes', 1, true));
    const w = options.loadWeights ?? {};
    this.#weights = {
      running: weightOption(w.running, DEFAULTS.weights.running, 'running'),
      waiting: weightOption(w.waiting, DEFAULTS.weights.waiting, 'waiting'),
      kvCacheUsage: weightOption(w.kvCacheUsage, DEFAULTS.weights.kvCacheUsage, 'kvCacheUsage'),
    };
    this.#loadMaxAgeMs = numberOption(options.loadMaxAgeMs, 3 * this.#intervalMs, 'loadMaxAgeMs');
    this.#logger = options.logger ?? noopLogger;
    this.#onHealthChange = options.onHealthChange;
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
    if (this.#started) void this.#track(this.#probeOne(entry));
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
    this.#started ??= this.#round().then(() => this.#schedule());
    return this.#started;
  }

  /**
   * Stops probing: clears the timer, aborts running probes and waits for them to settle. Picks
   * return undefined afterwards; releases still work. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const entry of this.#replicas.values()) entry.probeAbort?.abort(new Error('replica pool closed'));
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  /**
   * Picks a replica for one request, by the pool's strategy (see the module comment), or
   * undefined when no candidate is left (all ejected or excluded, or the pool is closed): the
   * caller answers 503.
   */
  pick(options: PickOptions = {}): Replica | undefined {
    if (this.#closed) return undefined;
    const candidates = this.#candidates(options.exclude);
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return candidates[0];
    const turn = this.#nextTurn();
    if (this.strategy === 'round-robin') return candidates[turn % candidates.length];
    if (this.strategy === 'prefix-affinity' && options.affinityKey !== undefined) {
      const chosen = this.#pickAffinity(candidates, options.affinityKey);
      if (chosen) return chosen;
    }
    return this.#pickLeastLoaded(candidates, turn);
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
    if (entry.state === 'ejected') return; // a request sent before the ejection: only probes re-admit
    entry.consecutiveFailures = 0;
    if (entry.state === 'unknown') this.#transition(entry, 'healthy', 'a request succeeded');
  }

  /**
   * Passive health: a request to `replica` failed in a way that blames the replica (connection
   * refused or reset, timeout, 5xx; not a 4xx caused by the request). Counts towards ejection.
   * Ignored for removed replicas and after `close()`.
   */
  reportFailure(replica: Replica, error?: unknown): void {
    const entry = this.#entry(replica);
    if (!this.#live(entry)) return;
    this.#failure(entry, error === undefined ? 'request failed' : `request failed: ${errorMessage(error)}`, false);
  }

  /**
   * Takes a replica out of rotation now, whatever its failure count: what a supervisor calls when
   * it sees the replica's process die. Probes re-admit it as usual once it answers again.
   * Returns whether the replica was in the pool.
   */
  eject(url: string, reason: string): boolean {
    const entry = this.#replicas.get(url);
    if (!entry || !this.#live(entry)) return false;
    entry.lastError = reason;
    entry.consecutiveSuccesses = 0;
    entry.consecutiveFailures = Math.max(entry.consecutiveFailures, this.#ejectAfter);
    this.#transition(entry, 'ejected', reason);
    return true;
  }

  /**
   * Probes one replica now instead of at the next round (e.g. a supervisor saw it start), so that
   * it is re-admitted without waiting for the interval. Resolves when the probe has a verdict.
   */
  probeNow(url: string): Promise<void> {
    const entry = this.#replicas.get(url);
    if (!entry || !this.#live(entry) || !this.#started) return Promise.resolve();
    return this.#track(this.#probeOne(entry));
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

  // ---- picking ----

  #nextTurn(): number {
    const turn = this.#turn;
    this.#turn = (this.#turn + 1) % Number.MAX_SAFE_INTEGER;
    return turn;
  }

  #candidates(exclude: Iterable<Replica | string> | undefined): ReplicaEntry[] {
    let excluded: Set<string> | undefined;
    if (exclude !== undefined) {
      excluded = new Set();
      for (const e of exclude) excluded.add(typeof e === 'string' ? e : e.url);
    }
    const healthy: ReplicaEntry[] = [];
    const unknown: ReplicaEntry[] = [];
    for (const r of this.#replicas.values()) {
      if (excluded?.has(r.url)) continue;
      if (r.state === 'healthy') healthy.push(r);
      else if (r.state === 'unknown') unknown.push(r);
    }
    return healthy.length > 0 ? healthy : unknown;
  }

  #pickLeastLoaded(candidates: ReplicaEntry[], turn: number): ReplicaEntry {
    const now = Date.now();
    const n = candidates.length;
    let best = candidates[turn % n]!;
    let bestScore = this.#score(best, now);
    for (let i = 1; i < n; i++) {
      const r = candidates[(turn + i) % n]!;
      const score = this.#score(r, now);
      if (score < bestScore) {
        best = r;
        bestScore = score;
      }
    }
    return best;
  }

  #pickAffinity(candidates: ReplicaEntry[], key: string): ReplicaEntry | undefined {
    const byUrl = new Map<string, ReplicaEntry>();
    let total = 0;
    for (const r of candidates) {
      byUrl.set(r.url, r);
      total += r.inflight;
    }
    const bound = Math.ceil((this.#loadFactor * (total + 1)) / candidates.length);
    for (const url of this.#ring.walk(key)) {
      const r = byUrl.get(url);
      if (r !== undefined && r.inflight + 1 <= bound) return r;
    }
    return undefined; // unreachable: the least loaded candidate is always under the bound
  }

  /** The `least-loaded` score; see the module comment. */
  #score(r: ReplicaEntry, now: number): number {
    const w = this.#weights;
    const load = r.load;
    if (load === undefined || r.loadAt === undefined || now - r.loadAt > this.#loadMaxAgeMs) return w.running * r.inflight;
    let running = load.running ?? r.inflightAtProbe;
    let waiting = load.waiting ?? 0;
    const d = r.inflight - r.inflightAtProbe;
    if (d > 0) {
      if (waiting > 0) waiting += d;
      else running += d;
    } else if (d < 0) {
      const fromWaiting = Math.min(waiting, -d);
      waiting -= fromWaiting;
      running = Math.max(0, running - (-d - fromWaiting));
    }
    running += Math.max(0, r.inflight - (running + waiting));
    return w.running * running + w.waiting * waiting + w.kvCacheUsage * (load.kvCacheUsage ?? 0);
  }

  // ---- health ----

  #entry(replica: Replica): ReplicaEntry {
    if (!(replica instanceof ReplicaEntry)) throw new TypeError(`ReplicaPool ${this.name}: not a replica of a pool: ${String((replica as { url?: unknown } | undefined)?.url)}`);
    return replica;
  }

  #live(entry: ReplicaEntry): boolean {
    return !this.#closed && !entry.removed && this.#replicas.get(entry.url) === entry;
  }

  #failure(entry: ReplicaEntry, message: string, fromProbe: boolean): void {
    entry.lastError = message;
    entry.consecutiveSuccesses = 0;
    entry.consecutiveFailures++;
    const n = entry.consecutiveFailures;
    if (entry.state === 'unknown' && fromProbe) {
      this.#transition(entry, 'ejected', `first probe failed: ${message}`);
    } else if (entry.state !== 'ejected' && n >= this.#ejectAfter) {
      this.#transition(entry, 'ejected', `${n} consecutive failure${n === 1 ? '' : 's'}, last: ${message}`);
    } else {
      this.#logger.debug({ pool: this.name, upstream: entry.url, state: entry.state, consecutiveFailures: n, err: message }, 'upstream replica failure');
    }
  }

  #probeSuccess(entry: ReplicaEntry, load: ReplicaLoad | undefined, inflightAtProbe: number): void {
    if (load !== undefined) {
      entry.load = load;
      entry.loadAt = Date.now();
      entry.inflightAtProbe = inflightAtProbe;
    }
    entry.consecutiveFailures = 0;
    if (entry.state === 'unknown') {
      this.#transition(entry, 'healthy', 'probe succeeded');
    } else if (entry.state === 'ejected') {
      entry.consecutiveSuccesses++;
      const n = entry.consecutiveSuccesses;
      if (n >= this.#readmitAfter) this.#transition(entry, 'healthy', `${n} consecutive successful probe${n === 1 ? '' : 's'}`);
    }
  }

  #transition(entry: ReplicaEntry, to: ReplicaState, reason: string): void {
    const from = entry.state;
    if (from === to) return;
    entry.state = to;
    entry.consecutiveSuccesses = 0;
    if (to === 'healthy') entry.consecutiveFailures = 0;
    const fields = { pool: this.name, upstream: entry.url, from, to, reason };
    if (to === 'ejected') this.#logger.warn(fields, 'upstream replica ejected');
    else this.#logger.info(fields, from === 'ejected' ? 'upstream replica re-admitted' : 'upstream replica healthy');
    if (!this.#onHealthChange) return;
    try {
      this.#onHealthChange(entry, to === 'healthy', reason);
    } catch (err) {
      this.#logger.warn({ pool: this.name, upstream: entry.url, err: errorMessage(err) }, 'onHealthChange threw');
    }
  }

  // ---- probing ----

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#round().then(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Probes every replica concurrently; never rejects. */
  async #round(): Promise<void> {
    const probes = [...this.#replicas.values()].map((entry) => this.#track(this.#probeOne(entry)));
    await Promise.all(probes);
  }

  #track(probe: Promise<void>): Promise<void> {
    this.#running.add(probe);
    void probe.finally(() => this.#running.delete(probe));
    return probe;
  }

  /** Probes one replica and records the outcome; never rejects. */
  async #probeOne(entry: ReplicaEntry): Promise<void> {
    if (!this.#live(entry)) return;
    if (entry.probePending) {
      this.#failure(entry, 'previous probe still running (it ignored its abort signal)', true);
      return;
    }
    const controller = new AbortController();
    entry.probeAbort = controller;
    entry.probePending = true;
    const inflightAtStart = entry.inflight;
    const timer = setTimeout(() => controller.abort(new ProbeTimeoutError(this.#timeoutMs)), this.#timeoutMs);
    timer.unref();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        const reason: unknown = controller.signal.reason;
        reject(reason instanceof Error ? reason : new Error(String(reason)));
      };
      controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    const call = (async () => this.#probe(entry, controller.signal))();
    void call.then(
      () => (entry.probePending = false),
      () => (entry.probePending = false),
    );
    let result: ProbeResult | undefined;
    let failure: string | undefined;
    try {
      result = await Promise.race([call, aborted]);
    } catch (err) {
      failure = errorMessage(err);
    } finally {
      clearTimeout(timer);
      if (onAbort) controller.signal.removeEventListener('abort', onAbort);
      if (entry.probeAbort === controller) entry.probeAbort = undefined;
    }
    if (!this.#live(entry)) return; // closed or removed meanwhile: no verdict
    if (failure === undefined && result?.healthy !== true) failure = `probe reported unhealthy${result?.reason ? `: ${result.reason}` : ''}`;
    if (failure !== undefined) this.#failure(entry, failure, true);
    else this.#probeSuccess(entry, cleanLoad(result?.load), Math.min(inflightAtStart, entry.inflight));
  }
}
