import type { Logger } from 'pino';
import type { JSONSchema } from './backend.js';
import type { Clock } from './clock.js';
import type { MetricRegistrar } from './metrics.js';

/**
 * What an endpoint is for, so that hooks (authentication, rate limits) can decide per kind:
 * `infer` (inference and generation), `metadata` (server/model metadata and readiness of one model),
 * `admin` (repository, routing, plugin routes unless they say otherwise), `metrics` (scrapes),
 * `health` (liveness/readiness probes), `ui` (the static assets of a page a browser opens — the
 * `/docs` page, the console — which hold no data: a browser cannot send a key before the page that
 * asks for it has loaded; the data the page shows comes from API routes of the other kinds),
 * `unknown` (no route matched: answered 404 after the hooks).
 */
export type EndpointKind = 'infer' | 'metadata' | 'admin' | 'metrics' | 'health' | 'ui' | 'unknown';

/** What every hook sees of a request. */
export interface HookRequest {
  /** The server's id for the request (the client's `x-request-id` when it sent one). */
  readonly id: string;
  readonly method: string;
  /** The URL path, without the query string. */
  readonly path: string;
  /** The route template (`/v2/models/:model/infer`), undefined when no route matched. */
  readonly route: string | undefined;
  /** The route's parameters (`{model: 'cls', version: '2'}` for `/v2/models/:model/versions/:version/infer`); `{}` when none. */
  readonly params: Readonly<Record<string, string>>;
  readonly endpoint: EndpointKind;
  /** Request headers, lower-cased. May carry secrets: never log them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client's address. */
  readonly ip: string;
  /**
   * State that hooks of one request share, e.g. the principal an auth hook found, read by a quota
   * hook in `preInfer`. Use a Symbol or a namespaced string as the key.
   */
  readonly locals: Map<string | symbol, unknown>;
  /**
   * Adds a header to the answer, whatever the answer turns out to be (e.g. `RateLimit-Remaining`).
   * A refusal carries its own headers (`TesseraError.headers`), which win.
   */
  setResponseHeader(name: string, value: string): void;
}

/** A serving request in `preInfer`: routed, not yet validated or queued. */
export interface InferHookContext extends HookRequest {
  /** `v2`, `predict`, `openai`, … */
  readonly protocol: string;
  readonly kind: 'tensor' | 'generate';
  readonly model: string;
  /** The version that will serve it. */
  readonly version: string;
}

/** A request after its answer was sent (or the client went away). */
export interface HookResponse extends HookRequest {
  readonly protocol: string | undefined;
  /**
   * The model the request was about, once the server knew it: serving requests that named a
   * configured model, and model metadata, readiness and repository requests. Undefined for an
   * unknown model and for endpoints about no model.
   */
  readonly model: string | undefined;
  /** The version that served it (serving requests), or the one a metadata request named. */
  readonly version: string | undefined;
  readonly status: number;
  /** The error code, when the request failed. */
  readonly code: string | undefined;
  readonly durationMs: number;
}

/**
 * Request hooks, after fastify's lifecycle: where authentication, rate limits and audit plug in,
 * for every protocol alike. Every method is optional. Hooks run in the order `hooks:` lists them.
 *
 * - `onRequest`: every request (any endpoint), before its body is read. Throw a TesseraError to
 *   answer with it instead (401, 403, 429 …; its `headers` are sent; under `/v1/` OpenAI-style
 *   endpoints it is sent in OpenAI's error shape, e.g. `authentication_error` for a 401); later
 *   hooks do not run.
 * - `preInfer`: serving requests (tensor and generate), right after routing — before the core
 *   checks that the model supports the request kind, before validation and queueing: per-model
 *   authorization, quotas. Throwing refuses the request, as above.
 * - `onResponse`: once per request that ran `onRequest`, after the answer (audit). Errors are
 *   logged once and never change the answer.
 */
export interface RequestHook {
  onRequest?(request: HookRequest): void | Promise<void>;
  preInfer?(context: InferHookContext): void | Promise<void>;
  onResponse?(response: HookResponse): void | Promise<void>;
  /** Flushes and frees at shutdown (after the last request). Idempotent. */
  close?(): Promise<void>;
}

/** What a hook factory gets. */
export interface RequestHookContext {
  /**
   * The hook's entry in `hooks:` without `hook`, validated against the factory's schema (its
   * `default`s filled in, strings converted where it wants numbers, booleans or lists).
   */
  options: Readonly<Record<string, unknown>>;
  logger: Logger;
  clock: Clock;
  metrics: MetricRegistrar;
  /** The config file's folder (relative paths in options resolve against it). */
  configDir: string;
}

/** Makes a hook; registered with `registerHook(name, factory)`, enabled by listing it under `hooks:`. */
export interface RequestHookFactory {
  readonly optionsSchema?: JSONSchema;
  create(ctx: RequestHookContext): RequestHook | Promise<RequestHook>;
}

/** DI token for request hook factories; bound with the hook name. */
export const REQUEST_HOOK_FACTORY: symbol = Symbol.for('@tessera/core/RequestHookFactory');
