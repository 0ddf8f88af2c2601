import type { JSONSchema } from './backend.js';

/** A version a request can be sent to. */
export interface RouteCandidate {
  version: string;
  ready: boolean;
}

/** What the router sees of a request. */
export interface RouteRequest {
  model: string;
  /** The version the client asked for, if any. */
  version?: string;
  /** Request headers, lowercased (for A/B by header or cookie, sticky sessions). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Where to send a request: the primary version, and optionally versions that get a shadow copy. */
export interface RouteTarget {
  version: string;
  /** Versions that receive a copy whose answer is discarded (shadow traffic). */
  shadow?: string[];
}

export interface RouteOutcome {
  /** HTTP status the request ended with. */
  status: number;
  durationMs: number;
}

/**
 * Picks the model version for each request of one model. `select` throws a TesseraError when no
 * candidate fits (unknown or unready version).
 */
export interface Router {
  select(request: RouteRequest, candidates: readonly RouteCandidate[]): RouteTarget;
  /** Feedback after each request; progressive rollouts use it to promote or roll back. */
  observe(target: RouteTarget, outcome: RouteOutcome): void;
  /** Status for the admin/metrics surface (weights, stage); JSON-serialisable. */
  status(): unknown;
  /**
   * The share of new requests each version gets now, 0..1 by version label (`tessera_route_weight`).
   * Absent: the exporter shows 1 for the version a request without a version would get.
   */
  weights?(candidates: readonly RouteCandidate[]): Readonly<Record<string, number>>;
  /** Stops timers. Idempotent. */
  close?(): Promise<void>;
}

export interface RouterContext {
  model: string;
  /** The model's `routing` config section (validated against the factory's schema). */
  options: Readonly<Record<string, unknown>>;
  /** Configured versions, oldest first. */
  versions: readonly string[];
}

export interface RouterFactory {
  readonly optionsSchema?: JSONSchema;
  create(ctx: RouterContext): Router;
}

/** DI token for router factories; bind with the strategy name (`latest`, `canary`, …). */
export const ROUTER_FACTORY: symbol = Symbol.for('@tessera/core/RouterFactory');
