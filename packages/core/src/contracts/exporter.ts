import type { FastifyInstance } from 'fastify';
import type { ServingEvents } from './events.js';

/**
 * Observes serving events and exposes them (Prometheus, OTLP, logs). Never throws into the
 * request path; `shutdown` flushes and is idempotent.
 */
export interface Exporter {
  attach(events: ServingEvents): void;
  /** Adds HTTP routes (e.g. `GET /metrics`) to the main server. */
  routes?(app: FastifyInstance): void | Promise<void>;
  shutdown(): Promise<void>;
}

/** DI token for exporters; bind with a name. Every bound exporter is attached. */
export const EXPORTER: symbol = Symbol.for('@tessera/core/Exporter');
