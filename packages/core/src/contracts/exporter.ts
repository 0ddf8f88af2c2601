import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { JSONSchema } from './backend.js';
import type { Clock } from './clock.js';
import type { ServingEvents } from './events.js';
import type { MetricRegistrar } from './metrics.js';

/**
 * Observes serving events and exposes them (Prometheus, a log, an audit store), after
 * OpenTelemetry's `SpanExporter`: small, never throws into the request path (the events hub catches
 * and reports listener errors once), flushes on demand and at shutdown.
 */
export interface Exporter {
  /** Starts listening to the events: called once, at start, before the server listens and before any model loads (so `modelState` events from `loading` on arrive). */
  attach(events: ServingEvents): void;
  /** Adds HTTP routes (e.g. `GET /metrics`) to the main server and to the `server.metricsPort` listener. Their endpoint kind is `metrics`. */
  routes?(app: FastifyInstance): void | Promise<void>;
  /** Writes out what is buffered now (tests, and before shutdown). */
  forceFlush?(): Promise<void>;
  /**
   * Flushes and releases; later events are ignored. Idempotent. Called last at shutdown: after the
   * last request, after every model closed (so the `draining` and `closed` states were emitted) and
   * after `forceFlush`; exporters shut down in reverse config order.
   */
  shutdown(): Promise<void>;
}

/** What an exporter factory gets. */
export interface ExporterContext {
  /**
   * The exporter's entry in `exporters:` without `exporter`, validated against the factory's
   * schema: the schema's `default`s filled in, strings converted where it wants numbers, booleans
   * or lists, `${VAR}` references already substituted.
   */
  options: Readonly<Record<string, unknown>>;
  logger: Logger;
  metrics: MetricRegistrar;
  /** Time and timers (flush intervals); a `FakeClock` in tests. */
  clock: Clock;
  /** The config file's folder: relative paths in options resolve against it. */
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
