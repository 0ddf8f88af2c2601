import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { CounterMetric, GaugeMetric, HistogramMetric, MetricAggregator, MetricLabels, MetricOptions, MetricRegistrar } from '../contracts/metrics.js';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

type Kind = 'counter' | 'gauge' | 'histogram';

/** prom-client's `aggregator` option when the metric names one (it defaults to `sum`). */
function aggregatorOf(options: MetricOptions): { aggregator?: MetricAggregator } {
  return options.aggregator ? { aggregator: options.aggregator } : {};
}

/** `MetricRegistrar` over a prom-client registry (the one the Prometheus exporter serves). */
export class PromMetricRegistrar implements MetricRegistrar {
  readonly #registry: Registry;
  readonly #made = new Map<string, { kind: Kind; labels: string; metric: unknown }>();

  constructor(registry: Registry) {
    this.#registry = registry;
  }

  counter(options: MetricOptions): CounterMetric {
    return this.#make('counter', options, () => {
      const c = new Counter({ name: options.name, help: options.help, labelNames: [...(options.labelNames ?? [])], registers: [this.#registry], ...aggregatorOf(options) });
      return { inc: (labels?: MetricLabels, value?: number) => (labels ? c.inc(labels, value ?? 1) : c.inc(value ?? 1)) };
    });
  }

  gauge(options: MetricOptions): GaugeMetric {
    return this.#make('gauge', options, () => {
      const g = new Gauge({ name: options.name, help: options.help, labelNames: [...(options.labelNames ?? [])], registers: [this.#registry], ...aggregatorOf(options) });
      return {
        set: (labels: MetricLabels, value: number) => g.set(labels, value),
        inc: (labels?: MetricLabels, value?: number) => (labels ? g.inc(labels, value ?? 1) : g.inc(value ?? 1)),
        dec: (labels?: MetricLabels, value?: number) => (labels ? g.dec(labels, value ?? 1) : g.dec(value ?? 1)),
        remove: (labels: MetricLabels) => g.remove(labels),
      };
    });
  }

  histogram(options: MetricOptions & { buckets?: readonly number[] }): HistogramMetric {
    return this.#make('histogram', options, () => {
      const h = new Histogram({
        name: options.name,
        help: options.help,
        labelNames: [...(options.labelNames ?? [])],
        ...(options.buckets ? { buckets: [...options.buckets] } : {}),
        registers: [this.#registry],
        ...aggregatorOf(options),
      });
      return { observe: (labels: MetricLabels, value: number) => h.observe(labels, value) };
    });
  }

  #make<T>(kind: Kind, options: MetricOptions, create: () => T): T {
    if (!NAME.test(options.name)) throw new Error(`metric name '${options.name}' is not a valid Prometheus name`);
    const labels = [...(options.labelNames ?? [])].join(',');
    const made = this.#made.get(options.name);
    if (made) {
      if (made.kind !== kind || made.labels !== labels) {
        throw new Error(`metric '${options.name}' is already registered as a ${made.kind} with labels [${made.labels}]; got a ${kind} with [${labels}]`);
      }
      return made.metric as T;
    }
    if (this.#registry.getSingleMetric(options.name)) throw new Error(`metric '${options.name}' is one of the core's; choose another name`);
    const metric = create();
    this.#made.set(options.name, { kind, labels, metric });
    return metric;
  }
}
