import { errorMessage } from '../../errors.js';
import type { PoolLogger, ReplicaLoad, ReplicaPoolOptions, ReplicaState } from '../../upstream/types.js';
import type { ReplicaEntry } from './replica-entry.js';

export interface HealthOptions {
  /** The pool's name, for logs. */
  name: string;
  ejectAfterFailures: number;
  readmitAfterSuccesses: number;
  logger: PoolLogger;
  onHealthChange: ReplicaPoolOptions['onHealthChange'];
}

/**
 * The replica state machine: `unknown → healthy ⇄ ejected` (and `unknown → ejected`). Probe and
 * request failures count together towards ejection; only probes re-admit, because request outcomes
 * may come from requests sent before the ejection. Each transition logs and calls
 * `onHealthChange` once.
 */
export class ReplicaHealth {
  readonly #name: string;
  readonly #ejectAfter: number;
  readonly #readmitAfter: number;
  readonly #logger: PoolLogger;
  readonly #onHealthChange: ReplicaPoolOptions['onHealthChange'];

  constructor(options: HealthOptions) {
    this.#name = options.name;
    this.#ejectAfter = options.ejectAfterFailures;
    this.#readmitAfter = options.readmitAfterSuccesses;
    this.#logger = options.logger;
    this.#onHealthChange = options.onHealthChange;
  }

  /** A request succeeded: resets the failure count; turns an `unknown` replica healthy. */
  requestSucceeded(entry: ReplicaEntry): void {
    if (entry.state === 'ejected') return; // a request sent before the ejection: only probes re-admit
    entry.consecutiveFailures = 0;
    if (entry.state === 'unknown') this.#transition(entry, 'healthy', 'a request succeeded');
  }

  /**
   * A probe or a request failed. A replica never seen healthy (an engine still loading its model)
   * is ejected by its first failed probe rather than after several failures.
   */
  failed(entry: ReplicaEntry, message: string, fromProbe: boolean): void {
    entry.lastError = message;
    entry.consecutiveSuccesses = 0;
    entry.consecutiveFailures++;
    const n = entry.consecutiveFailures;
    if (entry.state === 'unknown' && fromProbe) {
      this.#transition(entry, 'ejected', `first probe failed: ${message}`);
    } else if (entry.state !== 'ejected' && n >= this.#ejectAfter) {
      this.#transition(entry, 'ejected', `${n} consecutive failure${n === 1 ? '' : 's'}, last: ${message}`);
    } else {
      this.#logger.debug({ pool: this.#name, upstream: entry.url, state: entry.state, consecutiveFailures: n, err: message }, 'upstream replica failure');
    }
  }

  /** A probe succeeded; keeps the load it read with the in-flight count it was read at. */
  probeSucceeded(entry: ReplicaEntry, load: ReplicaLoad | undefined, inflightAtProbe: number): void {
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

  /** Ejects now, whatever the failure count (a supervisor saw the process die). */
  eject(entry: ReplicaEntry, reason: string): void {
    entry.lastError = reason;
    entry.consecutiveSuccesses = 0;
    entry.consecutiveFailures = Math.max(entry.consecutiveFailures, this.#ejectAfter);
    this.#transition(entry, 'ejected', reason);
  }

  #transition(entry: ReplicaEntry, to: ReplicaState, reason: string): void {
    const from = entry.state;
    if (from === to) return;
    entry.state = to;
    entry.consecutiveSuccesses = 0;
    if (to === 'healthy') entry.consecutiveFailures = 0;
    const fields = { pool: this.#name, upstream: entry.url, from, to, reason };
    if (to === 'ejected') this.#logger.warn(fields, 'upstream replica ejected');
    else this.#logger.info(fields, from === 'ejected' ? 'upstream replica re-admitted' : 'upstream replica healthy');
    if (!this.#onHealthChange) return;
    try {
      this.#onHealthChange(entry, to === 'healthy', reason);
    } catch (err) {
      this.#logger.warn({ pool: this.#name, upstream: entry.url, err: errorMessage(err) }, 'onHealthChange threw');
    }
  }
}
