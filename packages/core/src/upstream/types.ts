/** The public types of `ReplicaPool`: its options, what a probe returns, what users see of a replica. */
import type { Logger } from 'pino';

/** A replica's health: not yet judged, serving, or out of rotation. */
export type ReplicaState = 'unknown' | 'healthy' | 'ejected';

/** How `ReplicaPool.pick` chooses among candidates. */
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
  /** Requests this gateway has in flight to it (`ReplicaPool.acquire` minus releases). */
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

/**
 * Weights of the `least-loaded` score, `running·R + waiting·W + kvCacheUsage·usage`, where R and W
 * are the replica's scraped counts corrected by our in-flight requests since the scrape.
 */
export interface LoadWeights {
  /** Per running request (ours or others'). Default 0.25. */
  running?: number;
  /** Per waiting request. Default 1. */
  waiting?: number;
  /** Times `kvCacheUsage` (0..1). Default 1. */
  kvCacheUsage?: number;
}

/** Options of `ReplicaPool`. */
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

/** Options of `ReplicaPool.pick`. */
export interface PickOptions {
  /** For `prefix-affinity`: what should land on the same replica (a prompt prefix, a session id). */
  affinityKey?: string;
  /** Replicas (or their URLs) not to pick, e.g. those a retried request already tried. */
  exclude?: Iterable<Replica | string>;
}
