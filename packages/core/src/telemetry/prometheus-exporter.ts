import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServingEventMap, ServingEvents } from '../contracts/events.js';
import type { Exporter } from '../contracts/exporter.js';

/** Latency buckets, seconds: sub-millisecond inference up to multi-second generations. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Time-per-output-token buckets, seconds: 1 ms (speculative decoding, small models) to 1 s. */
export const TOKEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1];
/** Batch size buckets, samples. */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** What the exporter reads at scrape time for its gauges. */
export interface ServingSnapshot {
  inflight: number;
  versions: { model: string; version: string; ready: boolean; queued: number; executing: number }[];
  /** Each model's route weights by version (0..1). */
  routes: { model: string; weights: Readonly<Record<string, number>> }[];
}

/** prom-client default gauges that are sums of their `type`-labelled twins, named like counters: not served. */
export const PROM_CLIENT_TOTAL_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/**
 * The core's default exporter: Prometheus text on `GET /metrics` (DESIGN §6 names). Labels carry
 * only configured model names and versions, never request ids, so cardinality stays bounded.
 */
export class PrometheusExporter implements Exporter {
  readonly registry: Registry;
  readonly #snapshot: () => ServingSnapshot;
  readonly #text: (() => Promise<string>) | undefined;
  readonly #requests: Counter<'model' | 'version' | 'protocol' | 'code'>;
  readonly #requestDuration: Histogram<'model' | 'version' | 'protocol'>;
  readonly #queueDuration: Histogram<'model' | 'version'>;
  readonly #inferenceDuration: Histogram<'model' | 'version'>;
  readonly #batchSize: Histogram<'model' | 'version'>;
  readonly #ttft: Histogram<'model' | 'version'>;
  readonly #tpot: Histogram<'model' | 'version'>;
  readonly #tokens: Counter<'model' | 'version' | 'kind'>;
  readonly #upstreamHealthy: Gauge<'model' | 'upstream'>;
  #events: ServingEvents | undefined;
  /** Labelled children by label values (bounded: configured names, protocols, status codes). */
  readonly #children = new Map<string, { inc(v?: number): void; observe(v: number): void }>();

  #child(key: string, create: () => unknown): { inc(v?: number): void; observe(v: number): void } {
    let child = this.#children.get(key);
    if (!child) {
      child = create() as { inc(v?: number): void; observe(v: number): void };
      this.#children.set(key, child);
    }
    return child;
  }
  #listeners: { [K in keyof ServingEventMap]?: (...a: ServingEventMap[K]) => void } = {};

  readonly #shadows: Counter<'model' | 'version' | 'code'>;

  /**
   * `registry`: where the series go (the server's, so that plugins' own series are served too).
   * `text`: what `GET /metrics` answers instead of the registry's own text — a cluster worker's
   * answer is the whole server's, aggregated by the primary.
   */
  constructor(snapshot: () => ServingSnapshot, registry: Registry = new Registry(), text?: () => Promise<string>) {
    this.registry = registry;
    this.#snapshot = snapshot;
    this.#text = text;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client's three gauges named `…_total` break Prometheus' naming rule (promtool check
    // metrics: "non-counter metrics should not have _total suffix"); each is the sum over `type` of
    // its labelled twin, which stays: sum(nodejs_active_handles) is nodejs_active_handles_total
    for (const name of PROM_CLIENT_TOTAL_GAUGES) this.registry.removeSingleMetric(name);
    this.#requests = new Counter({ name: 'tessera_requests_total', help: 'Requests answered, by model, version, protocol and HTTP status code.', labelNames: ['model', 'version', 'protocol', 'code'], registers });
    this.#requestDuration = new Histogram({ name: 'tessera_request_duration_seconds', help: 'Time from the request arriving to its answer being sent.', labelNames: ['model', 'version', 'protocol'], buckets: LATENCY_BUCKETS, registers });
    this.#queueDuration = new Histogram({ name: 'tessera_queue_duration_seconds', help: 'Time a request waited in its batcher queue before its batch started.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.#inferenceDuration = new Histogram({ name: 'tessera_inference_duration_seconds', help: 'Time one batch took to execute on a model instance.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.#batchSize = new Histogram({ name: 'tessera_batch_size', help: 'Samples (along dim 0) per executed batch.', labelNames: ['model', 'version'], buckets: BATCH_SIZE_BUCKETS, registers });
    this.#ttft = new Histogram({ name: 'tessera_llm_time_to_first_token_seconds', help: 'Streamed generations: time from the request arriving to the first chunk with generated text.', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers });
    this.#tpot = new Histogram({ name: 'tessera_llm_time_per_output_token_seconds', help: 'Streamed generations: mean time between output tokens after the first.', labelNames: ['model', 'version'], buckets: TOKEN_LATENCY_BUCKETS, registers });
    this.#tokens = new Counter({ name: 'tessera_llm_tokens_total', help: 'Tokens processed by generations, by kind (prompt or completion), as the engine reported them.', labelNames: ['model', 'version', 'kind'], registers });
    this.#shadows = new Counter({ name: 'tessera_shadow_requests_total', help: 'Shadow copies of requests sent to another version (answers discarded), by model, version and HTTP status code.', labelNames: ['model', 'version', 'code'], registers });
    // with several workers (server.workers), each probes the replicas itself: 1 only while every worker has the replica in rotation
    this.#upstreamHealthy = new Gauge({ name: 'tessera_upstream_healthy', help: '1 while an upstream replica is healthy (in rotation), 0 while it is ejected or down.', labelNames: ['model', 'upstream'], registers, aggregator: 'min' });
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
      name: 'tessera_route_weight',
      help: "The share of new requests the model's router sends to each version (0..1): canary and A/B progress.",
      labelNames: ['model', 'version'],
      registers,
      // each worker's router decides for itself: the mean of their weights
      aggregator: 'average',
      collect() {
        this.reset();
        for (const r of snap().routes) for (const [version, weight] of Object.entries(r.weights)) this.set({ model: r.model, version }, weight);
      },
    });
    new Gauge({
      name: 'tessera_model_ready',
      help: '1 when the model version is ready to serve, else 0.',
      labelNames: ['model', 'version'],
      registers,
      // ready only when ready in every worker
      aggregator: 'min',
      collect() {
        this.reset();
        for (const v of snap().versions) this.set({ model: v.model, version: v.version }, v.ready ? 1 : 0);
      },
    });
  }

  attach(events: ServingEvents): void {
    this.#events = events;
    const on = <K extends keyof ServingEventMap>(name: K, listener: (...a: ServingEventMap[K]) => void): void => {
      (this.#listeners as Record<string, unknown>)[name] = listener;
      events.on(name, listener);
    };
    on('request', (e) => {
      // probes, scrapes and unknown routes are not serving traffic
      if (e.protocol === 'http') return;
      // requests for unknown models carry no model label: they must not create series
      const model = e.model ?? '';
      const version = e.version ?? '';
      // labelled children are cached: prom-client hashes a label object on every call otherwise
      this.#child(`r\0${model}\0${version}\0${e.protocol}\0${e.status}`, () => this.#requests.labels(model, version, e.protocol, String(e.status))).inc();
      this.#child(`d\0${model}\0${version}\0${e.protocol}`, () => this.#requestDuration.labels(model, version, e.protocol)).observe(e.durationMs / 1000);
    });
    on('batch', (e) => {
      const labels = { model: e.model, version: e.version };
      this.#batchSize.observe(labels, e.size);
      this.#inferenceDuration.observe(labels, e.executeMs / 1000);
      for (const q of e.queueMs) this.#queueDuration.observe(labels, q / 1000);
    });
    on('generation', (e) => {
      const { model, version } = e;
      const key = `\0${model}\0${version}`;
      if (e.ttftMs !== undefined) this.#child(`t${key}`, () => this.#ttft.labels(model, version)).observe(e.ttftMs / 1000);
      if (e.tpotMs !== undefined) this.#child(`o${key}`, () => this.#tpot.labels(model, version)).observe(e.tpotMs / 1000);
      if (e.promptTokens) this.#child(`p${key}`, () => this.#tokens.labels(model, version, 'prompt')).inc(e.promptTokens);
      if (e.completionTokens) this.#child(`c${key}`, () => this.#tokens.labels(model, version, 'completion')).inc(e.completionTokens);
    });
    on('shadow', (e) => {
      this.#child(`s\0${e.model}\0${e.version}\0${e.status}`, () => this.#shadows.labels(e.model, e.version, String(e.status))).inc();
    });
    on('upstream', (e) => {
      const labels = { model: e.model, upstream: e.upstream };
      if (e.removed) this.#upstreamHealthy.remove(labels);
      else this.#upstreamHealthy.set(labels, e.healthy ? 1 : 0);
    });
  }

  routes(app: FastifyInstance): void {
    app.get('/metrics', async (_request, reply) => {
      const body = this.#text ? await this.#text() : await this.registry.metrics();
      return reply.type(this.registry.contentType).send(body);
    });
  }

  async shutdown(): Promise<void> {
    const events = this.#events;
    if (events) {
      for (const [name, listener] of Object.entries(this.#listeners)) events.off(name as keyof ServingEventMap, listener as never);
    }
    this.#listeners = {};
    this.#events = undefined;
  }
}
