import type { Context, Span } from '@opentelemetry/api';
import type { EndpointKind, HookRequest } from '../contracts/hook.js';
import type { RouteTarget } from '../contracts/router.js';
import type { ModelEntry } from '../registry/model-registry.js';

/** Where a request was routed: what `finish` reports to the model's router. */
export interface RoutedTo {
  entry: ModelEntry;
  kind: 'tensor' | 'generate';
  /** The router's target; absent when the client named the version. */
  target?: RouteTarget;
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
  readonly #clientGone: () => AbortSignal;
  #signal: AbortSignal | undefined;

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
}
