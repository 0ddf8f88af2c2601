import type { Logger } from 'pino';
import type { JSONSchema } from './backend.js';
import type { Clock } from './clock.js';
import type { MetricRegistrar } from './metrics.js';
import type { StateStore } from './state-store.js';

/** A version a request can be sent to, as the router sees it. */
export interface RouteCandidate {
  version: string;
  /** Whether the version serves now (lifecycle state `ready`). The core never sends a request to one that does not. */
  ready: boolean;
}

/** What the router sees of a request. */
export interface RouteRequest {
  model: string;
  /**
   * The version the client asked for. The pipeline honours an explicit version itself (404 when
   * unknown, 503 when not ready) and never asks the router for a primary then; this field is set
   * only for routers asked to pick shadows for it (`shadowsFor`).
   */
  version?: string;
  /** `tensor` (OIP v2, /v1/predict) or `generate` (OpenAI-compatible). */
  kind: 'tensor' | 'generate';
  /** The protocol the request came in on: `v2`, `predict`, `openai`, … */
  protocol: string;
  /**
   * The request's id: the client's `x-request-id` when it sent one, else a random UUID the server
   * gave it (unique across restarts and replicas, so it can be hashed to sample traffic).
   */
  id: string;
  /** Request headers, lower-cased (for A/B by header or cookie, sticky sessions). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Where to send a request: the primary version, and optionally versions that get a shadow copy. */
export interface RouteTarget {
  version: string;
  /**
   * Versions that receive a copy of the request after the primary answered; their answers are
   * discarded and their outcomes reported with `shadow: true`. Versions that are not ready (or
   * equal to the primary) are skipped. A copy never delays or fails the primary.
   */
  shadow?: string[];
}

/** How a request ended, for routers that judge versions (canary analysis, A/B statistics). */
export interface RouteOutcome {
  /** The request's id; a shadow copy's outcome carries its primary's, so the two can be matched. */
  id: string;
  model: string;
  /** The version that served it (the primary, or the shadow version for a shadow copy). */
  version: string;
  /** The router's target for the request (absent when the client named the version). */
  target?: RouteTarget;
  /** The client named the version (`/versions/N/infer`, `version` in /v1/predict): not the router's choice. */
  explicit: boolean;
  /** A shadow copy: its answer was discarded. */
  shadow: boolean;
  kind: 'tensor' | 'generate';
  /** HTTP status the request ended with (499: the client went away). */
  status: number;
  /**
   * `ok` (2xx), `client_error` (4xx: the request's fault, never count it against a version),
   * `server_error` (5xx: the version's fault, or overload for 503).
   */
  statusClass: 'ok' | 'client_error' | 'server_error';
  /** The error code when the request failed. */
  code?: string;
  /** From arrival to the answer (for a shadow: from its submission to its result). */
  durationMs: number;
  /** Streamed generations: time to the first generated text. */
  ttftMs?: number;
  /** Streamed generations: mean time per output token after the first. */
  tpotMs?: number;
  /** performance.now() when the request ended (for windows). */
  at: number;
  /**
   * A shadow copy that succeeded, of a primary that succeeded: how its answer compared with the
   * primary's (the answer the client got). Absent otherwise.
   */
  comparison?: ShadowComparison;
}

/** How one output tensor of a shadow copy compared with the primary's. */
export interface OutputComparison {
  /** Same datatype and shape on both sides (when not, no values are compared). */
  sameShape: boolean;
  /** Largest absolute difference of the values (numeric outputs; `Infinity` where one side is NaN and the other is not). */
  maxAbsDiff?: number;
  /**
   * Float outputs of rank ≥ 2 read as scores per label on the last axis: the share of rows whose
   * arg-max (the predicted label) is the same on both sides, 0..1.
   */
  labelAgreement?: number;
}

/** How a shadow copy's answer compared with its primary's. */
export interface ShadowComparison {
  /** Tensor requests: each output both answers have, by name. */
  outputs?: Readonly<Record<string, OutputComparison>>;
  /** Tensor requests: the largest `maxAbsDiff` over the outputs (`Infinity` when a shape differs). */
  maxAbsDiff?: number;
  /** Tensor requests: rows with the same label over all outputs that have `labelAgreement`, 0..1. */
  labelAgreement?: number;
  /** Generations: the shadow generated exactly the primary's text. */
  exactMatch?: boolean;
}

/** What an operator's action on a model's routing carries: `POST /v1/routing/{model}/{action}`'s JSON body. */
export interface RoutingActionInput {
  /** The version the action is about, where it needs one (e.g. which A/B variant to promote). */
  version?: string;
  /** Why, in the operator's words: kept in the router's history and logs. */
  reason?: string;
}

/** What `Router.status()` returns: JSON-serialisable, served by `GET /v1/routing/{model}`. */
export interface RoutingStatus {
  /** The routing strategy (`latest`, `canary`, …). */
  strategy: string;
  [key: string]: unknown;
}

/**
 * Picks the version for each request of one model that names none, and learns from outcomes.
 * Created by a `RouterFactory` once per model. `select` runs on the hot path: keep it synchronous
 * and cheap.
 */
export interface Router {
  /**
   * Picks the primary (and shadow) versions of a request that named no version. Only `ready`
   * candidates may be returned; the core checks and answers 503 when the choice is not ready. Throw
   * a TesseraError (usually `TESSERA_E_MODEL_NOT_READY`) when none fits.
   */
  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget;
  /**
   * Shadow versions for a request that named its version explicitly (optional; absent: none). The
   * primary stays the asked version.
   */
  shadowsFor?(request: RouteRequest, candidates: readonly RouteCandidate[]): readonly string[] | undefined;
  /**
   * Feedback after every request of the model (and every shadow copy). Must not throw; runs after
   * the answer was sent. Never called after `close()` (shadow copies are drained before the routers
   * close).
   */
  observe(outcome: RouteOutcome): void;
  /** The router's state for people and tools (weights, stage, judgements). */
  status(): RoutingStatus;
  /**
   * The share of new requests each version gets now, 0..1 by version label (`tessera_route_weight`,
   * and `weight` in `GET /v1/routing`). Absent: the model has no weight series (the core does not
   * call `select` to guess, since a router's `select` may count or assign).
   */
  weights?(candidates: readonly RouteCandidate[]): Readonly<Record<string, number>>;
  /**
   * Operator actions this router takes (`promote`, `rollback`, `pause`, `resume`, …), served by
   * `POST /v1/routing/{model}/{action}`; absent: none. Lower-case names.
   */
  readonly actions?: readonly string[];
  /**
   * Carries out one of `actions` (the core answers 404 for any other). Throw a TesseraError with a
   * 4xx status (409 by convention) when the action does not fit the router's state now, e.g.
   * resuming a rollout that is not paused. Resolves when the new state is in effect (and stored).
   */
  act?(action: string, input: RoutingActionInput): void | Promise<void>;
  /** Stops timers, writes state. Called once at shutdown, after the models unloaded (and on `close()` of the server); idempotent. */
  close?(): Promise<void>;
}

/** What a router factory gets for each model. */
export interface RouterContext {
  model: string;
  /**
   * The model's `routing` section without `strategy`, validated against the factory's schema: its
   * `default`s filled in, strings converted where it wants numbers, booleans or lists.
   */
  options: Readonly<Record<string, unknown>>;
  /** Configured versions, oldest first. */
  versions: readonly string[];
  /** Time and timers (a `FakeClock` in tests). */
  clock: Clock;
  /** A child logger bound to the model. */
  logger: Logger;
  /** Registers the router's own metric series (exported on `/metrics` by the Prometheus exporter). */
  metrics: MetricRegistrar;
  /**
   * Durable state for this model's router: survives restarts (e.g. a rollout's stage). The store is
   * per model (`<stateDir>/routers/<model>/<key>.json`), shared by whatever strategy the model
   * uses over time: prefix your keys with your strategy's name when that matters.
   */
  state: StateStore;
}

/** Makes one router per model; registered with `registerRouter(name, factory)`, chosen by `routing.strategy`. */
export interface RouterFactory {
  /** JSON Schema of the `routing` keys besides `strategy`. */
  readonly optionsSchema?: JSONSchema;
  create(ctx: RouterContext): Router | Promise<Router>;
}

/** DI token for router factories; bound with the strategy name (`latest`, `canary`, …). */
export const ROUTER_FACTORY: symbol = Symbol.for('@tessera/core/RouterFactory');
