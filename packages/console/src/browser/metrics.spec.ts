import { describe, expect, it } from 'vitest';
import type { Histogram } from './metrics.js';
import { formatNumber, histogramIncrease, histogramQuantile, increase, parsePrometheus, ratesBetween, snapshotModels } from './metrics.js';

/** A scrape as the core's exporter writes one (prom-client's text format), for `model` with `n` requests. */
function exposition(counts: { ok: number; failed: number; buckets: number[]; sum: number; batches: number; samples: number; queued: number }): string {
  const bounds = ['0.001', '0.005', '0.01', '0.05', '+Inf'];
  return [
    '# HELP tessera_requests_total Requests answered, by model, version, protocol and HTTP status code.',
    '# TYPE tessera_requests_total counter',
    `tessera_requests_total{model="cls",version="1",protocol="v2",code="200"} ${counts.ok}`,
    `tessera_requests_total{model="cls",version="1",protocol="predict",code="500"} ${counts.failed}`,
    '# TYPE tessera_request_duration_seconds histogram',
    ...bounds.map((le, i) => `tessera_request_duration_seconds_bucket{le="${le}",model="cls",version="1",protocol="v2"} ${counts.buckets[i]}`),
    `tessera_request_duration_seconds_sum{model="cls",version="1",protocol="v2"} ${counts.sum}`,
    `tessera_request_duration_seconds_count{model="cls",version="1",protocol="v2"} ${counts.buckets.at(-1)}`,
    '# TYPE tessera_batch_size histogram',
    `tessera_batch_size_bucket{le="1",model="cls",version="1"} 0`,
    `tessera_batch_size_bucket{le="+Inf",model="cls",version="1"} ${counts.batches}`,
    `tessera_batch_size_sum{model="cls",version="1"} ${counts.samples}`,
    `tessera_batch_size_count{model="cls",version="1"} ${counts.batches}`,
    '# TYPE tessera_queue_depth gauge',
    `tessera_queue_depth{model="cls",version="1"} ${counts.queued}`,
    `tessera_queue_depth{model="cls",version="2"} 1`,
    'tessera_inflight_requests 3',
    '',
  ].join('\n');
}

describe('parsePrometheus', () => {
  it('should read names, labels and values, skipping comments and blank lines', () => {
    const samples = parsePrometheus('# HELP x y\n# TYPE x counter\n\nx_total{a="1",b="two"} 42\nup 1 1700000000000\n');
    expect(samples).toEqual([
      { name: 'x_total', labels: { a: '1', b: 'two' }, value: 42 },
      { name: 'up', labels: {}, value: 1 },
    ]);
  });

  it('should unescape label values and read +Inf, -Inf, NaN and exponents', () => {
    const samples = parsePrometheus(['m{path="C:\\\\x",q="say \\"hi\\"",nl="a\\nb"} 1.5e3', 'm{le="+Inf"} +Inf', 'm -Inf', 'm NaN'].join('\n'));
    expect(samples[0]).toEqual({ name: 'm', labels: { path: 'C:\\x', q: 'say "hi"', nl: 'a\nb' }, value: 1500 });
    expect(samples[1]!.value).toBe(Number.POSITIVE_INFINITY);
    expect(samples[2]!.value).toBe(Number.NEGATIVE_INFINITY);
    expect(samples[3]!.value).toBeNaN();
  });

  it('should skip lines that do not parse rather than fail the scrape', () => {
    const samples = parsePrometheus('broken{a="1" 3\nok 2\nalso_broken abc\n{}\n');
    expect(samples).toEqual([{ name: 'ok', labels: {}, value: 2 }]);
  });
});

describe('snapshotModels', () => {
  it('should sum a model\'s series over versions, protocols and codes, counting 5xx apart', () => {
    const scrape = snapshotModels(parsePrometheus(exposition({ ok: 10, failed: 2, buckets: [1, 4, 8, 11, 12], sum: 0.1, batches: 3, samples: 12, queued: 4 })), 1000);
    const cls = scrape.models.get('cls')!;
    expect(cls.requests).toBe(12);
    expect(cls.errors).toBe(2);
    expect(cls.duration).toEqual({ bounds: [0.001, 0.005, 0.01, 0.05, Number.POSITIVE_INFINITY], counts: [1, 4, 8, 11, 12], sum: 0.1, count: 12 });
    expect(cls.batchSize.count).toBe(3);
    expect(cls.queueDepth).toBe(5);
    expect([...scrape.models.keys()]).toEqual(['cls']);
  });

  it('should merge the buckets of several series in order of their bounds', () => {
    const text = ['h_bucket{model="m",le="+Inf"} 3', 'h_bucket{model="m",le="0.1"} 1'].join('\n').replaceAll('h_', 'tessera_request_duration_seconds_');
    const scrape = snapshotModels(parsePrometheus(`${text}\n${text}`), 0);
    expect(scrape.models.get('m')!.duration.bounds).toEqual([0.1, Number.POSITIVE_INFINITY]);
    expect(scrape.models.get('m')!.duration.counts).toEqual([2, 6]);
  });
});

describe('histogramQuantile', () => {
  const h = (bounds: number[], counts: number[]): Histogram => ({ bounds, counts, sum: 0, count: counts.at(-1) ?? 0 });

  it('should interpolate within the bucket the rank falls in, as Prometheus does', () => {
    // 10 observations ≤ 1, 10 more in (1, 2]: the median is at the top of the first bucket, p75 halfway through the second
    const hist = h([1, 2, Number.POSITIVE_INFINITY], [10, 20, 20]);
    expect(histogramQuantile(0.5, hist)).toBeCloseTo(1);
    expect(histogramQuantile(0.75, hist)).toBeCloseTo(1.5);
    expect(histogramQuantile(0.25, hist)).toBeCloseTo(0.5);
  });

  it('should answer the largest finite bound for ranks in the +Inf bucket, and NaN without observations', () => {
    expect(histogramQuantile(0.99, h([1, 2, Number.POSITIVE_INFINITY], [1, 2, 10]))).toBe(2);
    expect(histogramQuantile(0.5, h([1, Number.POSITIVE_INFINITY], [0, 0]))).toBeNaN();
    expect(histogramQuantile(0.5, h([], []))).toBeNaN();
  });
});

describe('increase and histogramIncrease', () => {
  it('should take a counter that went down as reset, the new reading being the increase', () => {
    expect(increase(10, 15)).toBe(5);
    expect(increase(10, 3)).toBe(3);
  });

  it('should subtract bucket by bucket', () => {
    const before: Histogram = { bounds: [1, Number.POSITIVE_INFINITY], counts: [2, 3], sum: 4, count: 3 };
    const after: Histogram = { bounds: [1, Number.POSITIVE_INFINITY], counts: [5, 9], sum: 10, count: 9 };
    expect(histogramIncrease(before, after)).toEqual({ bounds: [1, Number.POSITIVE_INFINITY], counts: [3, 6], sum: 6, count: 6 });
    expect(histogramIncrease(after, before)).toEqual(before);
  });
});

describe('ratesBetween', () => {
  it('should compute rate, error rate, p50/p99 and mean batch size over the interval between two scrapes', () => {
    const first = snapshotModels(parsePrometheus(exposition({ ok: 10, failed: 0, buckets: [0, 5, 10, 10, 10], sum: 0.04, batches: 5, samples: 10, queued: 0 })), 10_000);
    // 2 s later: 40 more requests (4 of them 5xx), all of them in (5 ms, 10 ms]; 5 batches of 8
    const second = snapshotModels(parsePrometheus(exposition({ ok: 46, failed: 4, buckets: [0, 5, 50, 50, 50], sum: 0.34, batches: 10, samples: 50, queued: 7 })), 12_000);
    const rates = ratesBetween(first, second).get('cls')!;
    expect(rates.rate).toBeCloseTo(20);
    expect(rates.errorRate).toBeCloseTo(2);
    expect(rates.p50Ms).toBeCloseTo(7.5);
    expect(rates.p99Ms).toBeCloseTo(9.95);
    expect(rates.meanBatchSize).toBeCloseTo(8);
    // 7 waiting for version 1, 1 for version 2
    expect(rates.queueDepth).toBe(8);
  });

  it('should answer nothing for the first scrape, and NaN latencies for an idle interval', () => {
    const text = exposition({ ok: 1, failed: 0, buckets: [1, 1, 1, 1, 1], sum: 0.001, batches: 1, samples: 1, queued: 0 });
    const a = snapshotModels(parsePrometheus(text), 0);
    expect(ratesBetween(undefined, a).size).toBe(0);
    const idle = ratesBetween(a, snapshotModels(parsePrometheus(text), 2000)).get('cls')!;
    expect(idle.rate).toBe(0);
    expect(idle.p50Ms).toBeNaN();
    expect(idle.meanBatchSize).toBeNaN();
    expect(formatNumber(idle.p50Ms)).toBe('—');
    expect(formatNumber(12.345)).toBe('12.3');
    expect(formatNumber(3)).toBe('3');
  });
});
