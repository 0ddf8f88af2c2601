/** Label values by label name. */
export type MetricLabels = Readonly<Record<string, string | number>>;

export interface MetricOptions {
  /** A Prometheus metric name; by convention `tessera_<area>_<what>[_unit][_total]`. */
  name: string;
  help: string;
  /** Label names; every observation gives a value for each (keep their values bounded). */
  labelNames?: readonly string[];
  /**
   * How `/metrics` combines the series of several workers (`server.workers` > 1), per label set:
   * prom-client's aggregators. Default `sum`, right for counters, histograms and gauges of amounts
   * (requests in flight); a gauge of a state says `min` (1 only if every worker is), `max` or
   * `average` (the share of workers), a timestamp `max`.
   */
  aggregator?: MetricAggregator;
}

/** prom-client's cluster aggregators (`omit`: left out of the combined output). */
export type MetricAggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

export interface CounterMetric {
  inc(labels?: MetricLabels, value?: number): void;
}

export interface GaugeMetric {
  set(labels: MetricLabels, value: number): void;
  inc(labels?: MetricLabels, value?: number): void;
  dec(labels?: MetricLabels, value?: number): void;
  /** Drops one labelled series (e.g. a version that went away). */
  remove(labels: MetricLabels): void;
}

export interface HistogramMetric {
  observe(labels: MetricLabels, value: number): void;
}

/**
 * Registers a plugin's own metric series in the server's metric registry, which the Prometheus
 * exporter serves on `/metrics`. Registering the same name again with the same kind and labels
 * returns the same metric (so routers of several models share one series family); a clash of kind
 * or labels throws.
 */
export interface MetricRegistrar {
  counter(options: MetricOptions): CounterMetric;
  gauge(options: MetricOptions): GaugeMetric;
  histogram(options: MetricOptions & { buckets?: readonly number[] }): HistogramMetric;
}
