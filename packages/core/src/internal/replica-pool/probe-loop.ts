import { errorMessage } from '../../errors.js';
import type { ProbeResult, ReplicaLoad, ReplicaProbe } from '../../upstream/types.js';
import type { ReplicaEntry } from './replica-entry.js';

/** A probe that did not answer within `probeTimeoutMs`. */
class ProbeTimeoutError extends Error {
  constructor(ms: number) {
    super(`probe timed out after ${ms} ms`);
  }
}

/** Keeps the load fields a probe reported that are finite and ≥ 0. */
function cleanLoad(load: ReplicaLoad | undefined): ReplicaLoad | undefined {
  if (load === undefined || load === null || typeof load !== 'object') return undefined;
  const out: ReplicaLoad = {};
  for (const key of ['running', 'waiting', 'kvCacheUsage'] as const) {
    const v = load[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = v;
  }
  return out;
}

export interface ProbeLoopOptions {
  probe: ReplicaProbe;
  intervalMs: number;
  timeoutMs: number;
  /** The replicas a round probes, read at the start of each round. */
  replicas: () => Iterable<ReplicaEntry>;
  /** Whether verdicts about `entry` still count (not removed, pool not closed). */
  isLive: (entry: ReplicaEntry) => boolean;
  /** A probe failed, timed out, or reported unhealthy. */
  onFailure: (entry: ReplicaEntry, message: string) => void;
  /** A probe reported healthy; `inflightAtProbe` is our in-flight count while it ran. */
  onSuccess: (entry: ReplicaEntry, load: ReplicaLoad | undefined, inflightAtProbe: number) => void;
}

/**
 * The pool's active health checks. A round probes every replica at once; the next round starts
 * `intervalMs` after the previous one ended, so rounds never overlap, and the timer is unref'd so
 * the loop never keeps the process alive. Each probe has its own signal, aborted after `timeoutMs`;
 * a timeout is a failure even when the probe function ignores its signal, and such a probe is
 * never run twice at once: while it is still pending, its replica's next probes fail at once.
 */
export class ProbeLoop {
  readonly #options: ProbeLoopOptions;
  /** Probes running now (rounds' and single ones), awaited by `close`. */
  readonly #running = new Set<Promise<void>>();
  #started: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ProbeLoopOptions) {
    this.#options = options;
  }

  /** Whether `start()` was called. */
  get started(): boolean {
    return this.#started !== undefined;
  }

  /** Runs the first round, then schedules the next ones. Idempotent: later calls return the same promise. */
  start(): Promise<void> {
    this.#started ??= this.#round().then(() => this.#schedule());
    return this.#started;
  }

  /** Probes one replica now, outside the rounds; resolves with its verdict recorded, never rejects. */
  probe(entry: ReplicaEntry): Promise<void> {
    return this.#track(this.#probeOne(entry));
  }

  /** Stops the rounds, aborts the running probes of `entries` and waits for every probe to settle. */
  async close(entries: Iterable<ReplicaEntry>): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const entry of entries) entry.probeAbort?.abort(new Error('replica pool closed'));
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#round().then(() => this.#schedule());
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Probes every replica concurrently; never rejects. */
  async #round(): Promise<void> {
    const probes = [...this.#options.replicas()].map((entry) => this.probe(entry));
    await Promise.all(probes);
  }

  #track(probe: Promise<void>): Promise<void> {
    this.#running.add(probe);
    void probe.finally(() => this.#running.delete(probe));
    return probe;
  }

  /** Probes one replica and records the outcome; never rejects. */
  async #probeOne(entry: ReplicaEntry): Promise<void> {
    const { isLive, timeoutMs } = this.#options;
    if (!isLive(entry)) return;
    if (entry.probePending) {
      this.#options.onFailure(entry, 'previous probe still running (it ignored its abort signal)');
      return;
    }
    const controller = new AbortController();
    entry.probeAbort = controller;
    entry.probePending = true;
    const inflightAtStart = entry.inflight;
    const timer = setTimeout(() => controller.abort(new ProbeTimeoutError(timeoutMs)), timeoutMs);
    timer.unref();
    let onAbort: (() => void) | undefined;
    // the race's other side: the probe function may ignore its signal
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        const reason: unknown = controller.signal.reason;
        reject(reason instanceof Error ? reason : new Error(String(reason)));
      };
      controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    const call = (async () => this.#options.probe(entry, controller.signal))();
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
    if (!isLive(entry)) return; // closed or removed meanwhile: no verdict
    if (failure === undefined && result?.healthy !== true) failure = `probe reported unhealthy${result?.reason ? `: ${result.reason}` : ''}`;
    if (failure !== undefined) {
      this.#options.onFailure(entry, failure);
      return;
    }
    // our in-flight count while the probe ran: the smaller of its values at the start and the end
    this.#options.onSuccess(entry, cleanLoad(result?.load), Math.min(inflightAtStart, entry.inflight));
  }
}
