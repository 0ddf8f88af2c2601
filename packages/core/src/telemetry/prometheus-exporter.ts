import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServingEventMap, ServingEvents } from '../contracts/events.js';
import type { Exporter } from '../contracts/exporter.js';

/** Latency buckets, seconds: sub-millisecond inference up to multi-second generations. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Batch size buckets, samples. */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** What the exporter reads at scrape time for its gauges. */
export interface ServingSnapshot {
  inflight: number;
  versions: { model: string; version: string; ready: boolean; queued: number; executing: number }[];
}

/**
 * The core's default exporter: Prometheus text on `GET /metrics` (DESIGN §6 names). Labels carry
 * only configured model names and versions, never request ids, so cardinality stays bounded.
 */
export class PrometheusExporter implements Exporter {
  readonly registry = new Registry();
  readonly #snapshot: () => ServingSnapshot;
  readonly #requests: Counter<'model' | 'version' | 'protocol' | 'code'>;
  readonly #requestDuration: Histogram<'model' | 'version' | 'protocol'>;
  readonly #queueDuration: Histogram<'model' | 'version'>;
  readonly #inferenceDuration: Histogram<'model' | 'version'>;
  readonly #batchSize: Histogram<'model' | 'version'>;
  #events: ServingEvents | undefined;
  #onRequest: ((...a: ServingEventMap['request']) => void) | undefined;
  #onBatch: ((...a: ServingEventMap['batch']) => void) | undefined;

  constructor(snapshot: () => ServingSnapshot) {
    this.#snapshot = snapshot;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({ name: 'tessera_requests_total', help: 'Requests answered, by model, version, protocol and HTTP status code.', labelNames: ['model', 'version', 'protocol', 'code'], registers });
    this.#requestDuration = new Histogram({ name: 'tessera_request_duration_seconds', help: 'Time from the request arriving to its answer being sent.', labelNames: ['model', 'version', 'protocol'], buckets: LATENCY_BUCKETS, registers });
    this.#queueDuration = new Histogram({ name: 'tessera_queue_duration_seconds', help: 'Time a request waited in its batcher queue before its batch started.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.#inferenceDuration = new Histogram({ name: 'tessera_inference_duration_seconds', help: 'Time one batch took to execute on a model instance.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.#batchSize = new Histogram({ name: 'tessera_batch_size', help: 'Samples (along dim 0) per executed batch.', labelNames: ['model', 'version'], buckets: BATCH_SIZE_BUCKETS, registers });
    const snap = (): ServingSnapshot => this.#snapshot();
    new Gauge({
      name: 'tessera_inflight_requests',
      help: 'Requests being handled now.',
      registers,
      collect() {
        this.set(snap().inflight);
      },
    });
    new Gauge({
      name: 'tessera_queue_depth',
      help: 'Requests waiting in a batcher queue.',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        for (const v of snap().versions) this.set({ model: v.model, version: v.version }, v.queued);
      },
    });
    new Gauge({
      name: 'tessera_model_ready',
      help: '1 when the model version is ready to serve, else 0.',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        for (const v of snap().versions) this.set({ model: v.model, version: v.version }, v.ready ? 1 : 0);
      },
    });
  }

  attach(events: ServingEvents): void {
    this.#events = events;
    this.#onRequest = (e) => {
      // requests for unknown models carry no model label: they must not create series
      const labels = { model: e.model ?? '', version: e.version ?? '', protocol: e.protocol };
      this.#requests.inc({ ...labels, code: String(e.status) });
      this.#requestDuration.observe(labels, e.durationMs / 1000);
    };
    this.#onBatch = (e) => {
      const labels = { model: e.model, version: e.version };
      this.#batchSize.observe(labels, e.size);
      this.#inferenceDuration.observe(labels, e.executeMs / 1000);
      for (const q of e.queueMs) this.#queueDuration.observe(labels, q / 1000);
    };
    events.on('request', this.#onRequest);
    events.on('batch', this.#onBatch);
  }

  routes(app: FastifyInstance): void {
    app.get('/metrics', async (_request, reply) => {
      const body = await this.registry.metrics();
      return reply.type(this.registry.contentType).send(body);
    });
  }

  async shutdown(): Promise<void> {
    if (this.#events && this.#onRequest && this.#onBatch) {
      this.#events.off('request', this.#onRequest);
      this.#events.off('batch', this.#onBatch);
    }
    this.#events = undefined;
  }
}
