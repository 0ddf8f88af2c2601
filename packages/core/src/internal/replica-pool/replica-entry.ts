import type { Replica, ReplicaLoad, ReplicaState } from '../../upstream/types.js';

/**
 * A replica's mutable record. Users get it typed as the read-only {@link Replica}; the pool's
 * modules (health, probe loop, picking) update its fields. Plain fields rather than `#private`
 * ones: the object users hold is the live state, and shows it when logged or inspected.
 */
export class ReplicaEntry implements Replica {
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
