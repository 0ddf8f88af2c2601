import type { Context, Span } from '@opentelemetry/api';
import type { TensorTimings } from '../contracts/events.js';
import type { EndpointKind, HookRequest } from '../contracts/hook.js';
import type { RouteTarget } from '../contracts/router.js';
import type { TesseraError } from '../errors.js';
import type { ModelEntry, ModelVersion } from '../registry/model-registry.js';
import type { DeadlineOrigin } from './deadline.js';
import { MAX_DEADLINE_MS, deadlineExceeded } from './deadline.js';

/** Where a request was routed: what `finish` reports to the model's router. */
export interface RoutedTo {
  entry: ModelEntry;
  kind: 'tensor' | 'generate';
  /** The router's target; absent when the client named the version. */
  target?: RouteTarget;
  /** The version object it was sent to, held (`ModelVersion.inflight`) until the answer; absent when routing failed. */
  held?: ModelVersion;
}

/** What the protocol edge knows of a request when it arrives. */
export interface ServingRequestInit {
  id: string;
  method: string;
  path: string;
  route: string | undefined;
  endpoint: EndpointKind;
  params: Readonly<Record<string, string>>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  ip: string;
  /** performance.now() at arrival. */
  started: number;
  /** Makes the signal that aborts when the client goes away (created on first use). */
  clientGone: () => AbortSignal;
}

/**
 * One request on its way through the serving pipeline, from the protocol edge to its answer: what
 * hooks see (`HookRequest`), and the facts the pipeline records for accounting, the router's
 * outcome and the access log. Created by the edge for every request; the pipeline writes it, the
 * edge reads it when the answer is sent.
 */
export class ServingRequest implements HookRequest {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly route: string | undefined;
  readonly endpoint: EndpointKind;
  readonly params: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly ip: string;
  readonly started: number;
  #locals: Map<string | symbol, unknown> | undefined;
  /** `v2`, `predict`, `openai`; `http` for everything that is not a serving protocol. */
  protocol = 'http';
  model: string | undefined;
  version: string | undefined;
  /** The error code the request ended with. */
  code: string | undefined;
  routed: RoutedTo | undefined;
  /**
   * The status the router should judge the request by, when it differs from the HTTP status sent
   * (a stream that broke after its 200 headers went out).
   */
  outcomeStatus: number | undefined;
  /** Streamed generations: for the router's outcome. */
  ttftMs: number | undefined;
  tpotMs: number | undefined;
  /** Tensor requests, once validated: their input and output phases (the `request` event's `tensor`). */
  tensorTimings: TensorTimings | undefined;
  /** The server span and its context, while tracing is on. */
  span: Span | undefined;
  trace: Context | undefined;
  /** Attributes for the server span (e.g. token counts). */
  spanAttributes: Record<string, string | number | boolean> | undefined;
  /** Set once the request was counted. */
  finished = false;
  /** Work to start once the answer was sent (shadow copies). */
  afterAnswer: (() => void)[] | undefined;
  /** Whether the request ran the onRequest hooks (so it gets onResponse). */
  admitted = false;
  /** Headers hooks added for the answer (`setResponseHeader`); the edge sends them. */
  responseHeaders: Record<string, string> | undefined;
  /**
   * When the request must be answered, `performance.now()` ms: the smallest of its deadlines
   * (headers, `parameters.timeout`, the model's `timeout`), counted from `started`. Undefined: none.
   */
  deadline: number | undefined;
  #deadlineOrigin: DeadlineOrigin | undefined;
  readonly #clientGone: () => AbortSignal;
  #signal: AbortSignal | undefined;
  /**
   * Set when the request was admitted at arrival against a model's queue while its body is still
   * to be read (`ServingPipeline.screen`): the model's count of such requests, decremented once by
   * `bodyRead()`.
   */
  #incoming: { n: number } | undefined;
  /** Made only for requests with a deadline: aborts at it, or when the client leaves. */
  #work: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline's timer fired (Node's timers may fire a fraction of a millisecond early). */
  #expired = false;

  constructor(init: ServingRequestInit) {
    this.id = init.id;
    this.method = init.method;
    this.path = init.path;
    this.route = init.route;
    this.endpoint = init.endpoint;
    this.params = init.params;
    this.headers = init.headers;
    this.ip = init.ip;
    this.started = init.started;
    this.#clientGone = init.clientGone;
  }

  /** What hooks keep for this request (created when first used: most requests meet no hook). */
  get locals(): Map<string | symbol, unknown> {
    return (this.#locals ??= new Map());
  }

  setResponseHeader(name: string, value: string): void {
    (this.responseHeaders ??= {})[name.toLowerCase()] = value;
  }

  /** Aborts when the client goes away before its answer was sent. */
  get signal(): AbortSignal {
    return (this.#signal ??= this.#clientGone());
  }

  /** Whether the client has gone (without creating the signal when nobody asked for it). */
  get clientLeft(): boolean {
    return this.#signal?.aborted === true;
  }

  /**
   * Lowers the deadline to `ms` after arrival, never raises it; `source` names what set it (for
   * the messages). `0` is a deadline already past; more than `MAX_DEADLINE_MS` is none.
   */
  limitDeadline(ms: number, source: string): void {
    if (!(ms >= 0) || ms > MAX_DEADLINE_MS) return;
    const at = this.started + ms;
    if (this.deadline !== undefined && at >= this.deadline) return;
    this.deadline = at;
    this.#deadlineOrigin = { source, ms };
    if (this.#work && !this.#work.signal.aborted) {
      clearTimeout(this.#timer);
      this.#arm(this.#work);
    }
  }

  /** Whether the deadline has passed (a comparison: no timer is involved). */
  get pastDeadline(): boolean {
    return this.deadline !== undefined && (this.#expired || performance.now() >= this.deadline);
  }

  /** The 504 of this request's deadline; `where` says what it interrupted (`during execution`). */
  deadlineError(where: string): TesseraError {
    return deadlineExceeded(this.#deadlineOrigin ?? { source: 'deadline', ms: 0 }, where);
  }

  /**
   * The signal the request's work listens to (batchers, processors, backends, generations): it
   * aborts when the client goes away (the client's reason) or when the deadline passes (reason:
   * a `TESSERA_E_REQUEST_DEADLINE_EXCEEDED` TesseraError, see `isDeadlineExceeded`). Without a
   * deadline it is `signal` itself: no timer and no extra signal on the hot path.
   */
  get workSignal(): AbortSignal {
    if (this.deadline === undefined) return this.signal;
    if (this.#work) return this.#work.signal;
    const work = (this.#work = new AbortController());
    const client = this.signal;
    if (client.aborted) work.abort(client.reason);
    else {
      client.addEventListener('abort', () => {
        clearTimeout(this.#timer);
        work.abort(client.reason);
      }, { once: true });
      this.#arm(work);
    }
    return work.signal;
  }

  #arm(work: AbortController): void {
    const left = this.deadline! - performance.now();
    const fire = (): void => {
      this.#expired = true;
      work.abort(this.deadlineError('before the answer was ready'));
    };
    if (left <= 0) fire();
    else {
      this.#timer = setTimeout(fire, left);
      this.#timer.unref?.();
    }
  }

  /** Counts the request as arriving at a model's queue until `bodyRead()` (see `ServingPipeline.screen`). */
  countIncoming(counter: { n: number }): void {
    counter.n++;
    this.#incoming = counter;
  }

  /** The body was read (or the request ended without it): it no longer counts as arriving. */
  bodyRead(): void {
    if (this.#incoming) this.#incoming.n--;
    this.#incoming = undefined;
  }

  /** The answer went out: the deadline's timer, if any, stops; the request no longer counts as arriving. */
  release(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.bodyRead();
  }
}
