import type { GenerationLimits } from '../config/types.js';
import { TesseraError } from '../errors.js';
import { isDeadlineExceeded } from '../pipeline/deadline.js';

const RETRY_AFTER: Readonly<Record<string, string>> = { 'retry-after': '1' };

/** Gives a slot back; extra calls do nothing. */
export type ReleaseSlot = () => void;

interface Waiter {
  signal: AbortSignal;
  since: number;
  resolve: (release: ReleaseSlot) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/**
 * Admission of one model version's generations: at most `maxConcurrent` at once, `maxQueued`
 * more waiting first come, first served; beyond that 503 TESSERA_E_QUEUE_FULL. Generations bypass
 * the batchers (LLM engines batch inside), so without this an overload would pile up upstream
 * requests, sockets and buffers without bound. A waiter leaves when its signal aborts: at its
 * deadline (503 TESSERA_E_QUEUE_TIMEOUT) or when its client goes away (499).
 */
export class GenerationGate {
  readonly limits: Readonly<GenerationLimits>;
  readonly #label: string;
  readonly #waiting: Waiter[] = [];
  #active = 0;

  constructor(label: string, limits: GenerationLimits) {
    this.#label = label;
    this.limits = { ...limits };
  }

  /** Generations holding a slot. */
  get active(): number {
    return this.#active;
  }

  /** Generations waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Whether a generation arriving now would be refused. */
  get saturated(): boolean {
    return this.#active >= this.limits.maxConcurrent && this.#waiting.length >= this.limits.maxQueued;
  }

  /**
   * A slot: at once (the release function itself, no promise) when one is free, else a promise of
   * one once an earlier generation ends.
   * @throws TesseraError TESSERA_E_QUEUE_FULL when every slot is taken and the queue is full;
   *   the promise rejects with TESSERA_E_QUEUE_TIMEOUT or TESSERA_E_REQUEST_CANCELLED when `signal` aborts.
   */
  acquire(signal: AbortSignal): ReleaseSlot | Promise<ReleaseSlot> {
    const { maxConcurrent, maxQueued } = this.limits;
    if (this.#active < maxConcurrent) {
      this.#active++;
      return this.#slot();
    }
    if (this.#waiting.length >= maxQueued) {
      throw new TesseraError(
        'TESSERA_E_QUEUE_FULL',
        `${this.#label}: ${this.#active} generations are running (generation.maxConcurrent ${maxConcurrent}) and ${this.#waiting.length} waiting (generation.maxQueued ${maxQueued}); retry later`,
        { headers: { ...RETRY_AFTER } },
      );
    }
    if (signal.aborted) return Promise.reject(this.#leaving(signal, 0));
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const waiter: Waiter = {
        signal,
        since: performance.now(),
        resolve,
        reject,
        onAbort: () => {
          const i = this.#waiting.indexOf(waiter);
          if (i < 0) return;
          this.#waiting.splice(i, 1);
          reject(this.#leaving(signal, performance.now() - waiter.since));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #slot(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // the slot passes straight to the oldest waiter: `active` stays the same
      if (next) {
        next.signal.removeEventListener('abort', next.onAbort);
        next.resolve(this.#slot());
      } else this.#active--;
    };
  }

  #leaving(signal: AbortSignal, waitedMs: number): TesseraError {
    const reason: unknown = signal.reason;
    if (!isDeadlineExceeded(reason)) return new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the connection before the generation started');
    return new TesseraError('TESSERA_E_QUEUE_TIMEOUT', `${this.#label}: ${reason.message.replace(/ passed .*$/, ' passed')} while it waited for a generation slot (${Math.round(waitedMs)} ms); retry later`, {
      headers: { ...RETRY_AFTER },
    });
  }
}
