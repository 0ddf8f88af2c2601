import type { CounterMetric, GaugeMetric, HistogramMetric, MetricLabels, MetricOptions, MetricRegistrar } from '../contracts/metrics.js';

/** One series as `InMemoryMetrics` holds it. */
export interface RecordedSeries {
  name: string;
  kind: 'counter' | 'gauge' | 'histogram';
  labels: Record<string, string>;
  /** Counter and gauge: the value; histogram: the sum of observations. */
  value: number;
  /** Histogram: the observations, in order. */
  observations: number[];
}

const key = (name: string, labels: MetricLabels = {}): string =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${String(labels[k])}`)
    .join(',')}}`;

/**
 * A `MetricRegistrar` that records in memory, for unit tests of routers, hooks and exporters:
 * `value('tessera_route_rollbacks_total', {model: 'cls'})` reads a series back.
 */
export class InMemoryMetrics implements MetricRegistrar {
  readonly #series = new Map<string, RecordedSeries>();
  readonly #kinds = new Map<string, RecordedSeries['kind']>();

  counter(options: MetricOptions): CounterMetric {
    this.#declare(options, 'counter');
    return { inc: (labels, value = 1) => void (this.#get(options.name, 'counter', labels).value += value) };
  }

  gauge(options: MetricOptions): GaugeMetric {
    this.#declare(options, 'gauge');
    return {
      set: (labels, value) => void (this.#get(options.name, 'gauge', labels).value = value),
      inc: (labels, value = 1) => void (this.#get(options.name, 'gauge', labels).value += value),
      dec: (labels, value = 1) => void (this.#get(options.name, 'gauge', labels).value -= value),
      remove: (labels) => void this.#series.delete(key(options.name, labels)),
    };
  }

  histogram(options: MetricOptions & { buckets?: readonly number[] }): HistogramMetric {
    this.#declare(options, 'histogram');
    return {
      observe: (labels, value) => {
        const s = this.#get(options.name, 'histogram', labels);
        s.value += value;
        s.observations.push(value);
      },
    };
  }

  /** A series' value (undefined when it was never touched). */
  value(name: string, labels: MetricLabels = {}): number | undefined {
    return this.#series.get(key(name, labels))?.value;
  }

  /** Every series recorded. */
  series(): RecordedSeries[] {
    return [...this.#series.values()];
  }

  #declare(options: MetricOptions, kind: RecordedSeries['kind']): void {
    const known = this.#kinds.get(options.name);
    if (known && known !== kind) throw new Error(`metric '${options.name}' is already a ${known}`);
    this.#kinds.set(options.name, kind);
  }

  #get(name: string, kind: RecordedSeries['kind'], labels: MetricLabels = {}): RecordedSeries {
    const k = key(name, labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { name, kind, labels: Object.fromEntries(Object.entries(labels).map(([a, b]) => [a, String(b)])), value: 0, observations: [] };
      this.#series.set(k, s);
    }
    return s;
  }
}
