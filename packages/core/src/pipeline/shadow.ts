import type { Logger } from 'pino';
import type { InferenceRequest } from '../contracts/backend.js';
import type { ServingEvents } from '../contracts/events.js';
import type { RouteOutcome, ShadowComparison } from '../contracts/router.js';
import type { Tensor } from '../contracts/tensor.js';
import { errorMessage, isTesseraError } from '../errors.js';
import type { ModelEntry, ModelVersion } from '../registry/model-registry.js';
import { pickGenerative } from './generation.js';
import { GeneratedText, compareTensorAnswers, sameGeneratedText } from './shadow-compare.js';
import type { GenerateCall, TensorCall } from './types.js';

/** What a shadow copy re-runs, with the primary's answer to compare its own with. */
export type ShadowWork =
  | { tensor: TensorCall['request']; primary: readonly Tensor[] }
  | { generate: GenerateCall; primary: { text: GeneratedText; ok: boolean } | undefined };

interface ShadowResult {
  status: number;
  code?: string;
  ttftMs?: number;
  comparison?: ShadowComparison;
}

/** Most shadow copies in flight per model; more are dropped (a shadow never queues up behind itself). */
export const SHADOW_CONCURRENCY = 64;

export interface ShadowMirrorOptions {
  events: ServingEvents;
  logger: Logger;
  observe: (entry: ModelEntry, outcome: RouteOutcome) => void;
  validate: (v: ModelVersion, decoded: TensorCall['request']) => InferenceRequest;
  tensor: (v: ModelVersion, request: InferenceRequest, signal: AbortSignal) => Promise<Tensor[]>;
}

/**
 * Sends shadow copies: after the primary answered, a copy of the request runs on another version;
 * its answer is discarded, its outcome goes to the router (`shadow: true`) and the `shadow` event.
 * A copy runs the whole path of its version (validation, processors, batcher), so it measures what
 * that version would have answered; it has its own abort signal (the client may be gone already)
 * and never touches the primary's answer. Bounded per model; drained at shutdown.
 */
export class ShadowMirror {
  readonly #opts: ShadowMirrorOptions;
  readonly #inflight = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  readonly #controller = new AbortController();
  #dropped = 0;

  constructor(options: ShadowMirrorOptions) {
    this.#opts = options;
  }

  send(entry: ModelEntry, v: ModelVersion, work: ShadowWork, id: string): void {
    const n = this.#inflight.get(entry.name) ?? 0;
    if (n >= SHADOW_CONCURRENCY) {
      if (this.#dropped++ % 1000 === 0) this.#opts.logger.warn({ model: entry.name, dropped: this.#dropped }, `shadow copies of '${entry.name}' dropped: ${SHADOW_CONCURRENCY} already in flight`);
      return;
    }
    this.#inflight.set(entry.name, n + 1);
    const kind = 'tensor' in work ? 'tensor' : 'generate';
    const started = performance.now();
    const run = (async (): Promise<ShadowResult> => {
      if ('tensor' in work) {
        const request = this.#opts.validate(v, work.tensor);
        request.id ??= id;
        const outputs = await this.#opts.tensor(v, request, this.#controller.signal);
        return { status: 200, comparison: compareTensorAnswers(work.primary, outputs) };
      }
      return this.#generate(v, work, started);
    })().then(
      (r) => r,
      (err: unknown): ShadowResult => {
        const status = isTesseraError(err) ? err.status : 500;
        if (status >= 500 && status !== 503) this.#opts.logger.debug({ err, model: entry.name, version: v.version }, `shadow copy failed: ${errorMessage(err)}`);
        return { status, ...(isTesseraError(err) ? { code: err.code } : {}) };
      },
    );
    const settled = run.then(({ status, code, ttftMs, comparison }) => {
      const durationMs = performance.now() - started;
      this.#inflight.set(entry.name, (this.#inflight.get(entry.name) ?? 1) - 1);
      this.#opts.events.emit('shadow', { model: entry.name, version: v.version, kind, status, ...(code ? { code } : {}), durationMs });
      this.#opts.observe(entry, {
        id,
        model: entry.name,
        version: v.version,
        explicit: false,
        shadow: true,
        kind,
        status,
        statusClass: status < 400 ? 'ok' : status < 500 ? 'client_error' : 'server_error',
        ...(code ? { code } : {}),
        durationMs,
        ...(ttftMs !== undefined ? { ttftMs } : {}),
        at: performance.now(),
        ...(comparison ? { comparison } : {}),
      });
    });
    this.#running.add(settled);
    void settled.finally(() => this.#running.delete(settled));
  }

  /**
   * Reads a shadow generation to its end, for its status, time to first chunk and text (compared
   * with the primary's when the primary ended well); its bytes are discarded.
   */
  async #generate(v: ModelVersion, work: Extract<ShadowWork, { generate: GenerateCall }>, started: number): Promise<ShadowResult> {
    const call = work.generate;
    const instance = pickGenerative(v, 0);
    if (!instance?.generate) return { status: 400 };
    const stream = call.body.stream === true;
    const text = work.primary ? new GeneratedText() : undefined;
    const done = v.beginGeneration();
    let ttftMs: number | undefined;
    try {
      for await (const chunk of instance.generate({ kind: call.kind, body: call.body, stream, headers: {} }, this.#controller.signal)) {
        ttftMs ??= performance.now() - started;
        text?.see(chunk);
      }
    } finally {
      done();
    }
    return {
      status: 200,
      ...(stream && ttftMs !== undefined ? { ttftMs } : {}),
      ...(text && work.primary?.ok ? { comparison: { exactMatch: sameGeneratedText(work.primary.text, text) } } : {}),
    };
  }

  /** Waits for the copies in flight. */
  async drain(): Promise<void> {
    await Promise.all([...this.#running]);
  }

  /** Aborts the copies in flight (past the shutdown grace period). */
  abort(): void {
    this.#controller.abort(new Error('the server is shutting down'));
  }
}
