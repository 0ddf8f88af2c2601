import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { JSONSchema } from './backend.js';
import type { ServingEvents } from './events.js';
import type { MetricRegistrar } from './metrics.js';

/**
 * Observes serving events and exposes them (Prometheus, a log, an audit store), after
 * OpenTelemetry's `SpanExporter`: small, never throws into the request path (the events hub catches
 * and reports listener errors once), flushes on demand and at shutdown.
 */
export interface Exporter {
  /** Starts listening to the events (called once, before the server listens). */
  attach(events: ServingEvents): void;
  /** Adds HTTP routes (e.g. `GET /metrics`) to the main server and to the `server.metricsPort` listener. Their endpoint kind is `metrics`. */
  routes?(app: FastifyInstance): void | Promise<void>;
  /** Writes out what is buffered now (tests, and before shutdown). */
  forceFlush?(): Promise<void>;
  /** Flushes and releases; later events are ignored. Idempotent. */
  shutdown(): Promise<void>;
}

/** What an exporter factory gets. */
export interface ExporterContext {
  /** The exporter's entry in `exporters:` without `exporter` (validated against the factory's schema). */
  options: Readonly<Record<string, unknown>>;
  logger: Logger;
  metrics: MetricRegistrar;
  configDir: string;
}

/**
 * Makes an exporter from its config entry. `registerExporter(name, x)` takes a factory or a ready
 * `Exporter`; the config's `exporters:` list chooses which run (default: `[prometheus]`).
 */
export interface ExporterFactory {
  readonly optionsSchema?: JSONSchema;
  create(ctx: ExporterContext): Exporter | Promise<Exporter>;
}

/** DI token for exporters (or their factories); bound with a name. */
export const EXPORTER: symbol = Symbol.for('@tessera/core/Exporter');
