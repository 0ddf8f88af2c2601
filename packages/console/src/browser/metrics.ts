/**
 * What the console computes from `GET /metrics`: the Prometheus text format parsed into samples,
 * per-model snapshots of the serving series, and rates and quantiles between two snapshots, as
 * Prometheus' `rate()` and `histogram_quantile()` compute them. Pure functions without DOM or Node
 * APIs: compiled to `dist/browser/metrics.js`, the page imports it as an ES module and the unit
 * tests import the same file.
 */

/** One sample of the text format: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/** A value of the text format: a float, `NaN`, `+Inf`, `-Inf`. */
function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  return text === '' ? Number.NaN : Number(text);
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4): comments and blank lines are
 * skipped, label values unescaped (`\\`, `\"`, `\n`), timestamps ignored. A line that does not
 * parse is skipped rather than failing the whole scrape.
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const name = NAME.exec(line)?.[0];
    if (!name) continue;
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      let ok = false;
      while (i < line.length) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') {
          i++;
          ok = true;
          break;
        }
        const eq = line.indexOf('=', i);
        if (eq < 0 || line[eq + 1] !== '"') break;
        const key = line.slice(i, eq).trim();
        let value = '';
        let j = eq + 2;
        for (; j < line.length && line[j] !== '"'; j++) {
          if (line[j] === '\\' && j + 1 < line.length) {
            j++;
            value += line[j] === 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        if (j >= line.length) break;
        labels[key] = value;
        i = j + 1;
      }
      if (!ok) continue;
    }
    const [valueText = ''] = line.slice(i).trim().split(/\s+/);
    const value = parseValue(valueText);
    if (valueText !== 'NaN' && Number.isNaN(value)) continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** A histogram summed over the series of one model: cumulative bucket counts by upper bound, sum and count. */
export interface Histogram {
  /** Upper bounds ascending, the last `+Inf`; `counts[i]` the observations ≤ `bounds[i]`. */
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** What one scrape says about one model: the counters and histograms summed over its versions, protocols and codes. */
export interface ModelSnapshot {
  /** `tessera_requests_total`, every code. */
  requests: number;
  /** `tessera_requests_total` with a 5xx code. */
  errors: number;
  /** `tessera_request_duration_seconds`. */
  duration: Histogram;
  /** `tessera_batch_size`. */
  batchSize: Histogram;
  /** `tessera_queue_depth`, a gauge: requests waiting now. */
  queueDepth: number;
}

/** One scrape: when it was taken (ms) and each model's snapshot. */
export interface Scrape {
  at: number;
  models: Map<string, ModelSnapshot>;
}

const emptyHistogram = (): Histogram => ({ bounds: [], counts: [], sum: 0, count: 0 });

function addBucket(h: Histogram, bound: number, count: number): void {
  const i = h.bounds.indexOf(bound);
  if (i >= 0) {
    h.counts[i]! += count;
    return;
  }
  // keep the bounds sorted as buckets of several series are summed
  let at = h.bounds.findIndex((b) => b > bound);
  if (at < 0) at = h.bounds.length;
  h.bounds.splice(at, 0, bound);
  h.counts.splice(at, 0, count);
}

/** The serving series of a scrape, per model (series without a `model` label are left out). */
export function snapshotModels(samples: readonly Sample[], at: number): Scrape {
  const models = new Map<string, ModelSnapshot>();
  const of = (model: string): ModelSnapshot => {
    let m = models.get(model);
    if (!m) {
      m = { requests: 0, errors: 0, duration: emptyHistogram(), batchSize: emptyHistogram(), queueDepth: 0 };
      models.set(model, m);
    }
    return m;
  };
  const histogram = (s: Sample, base: string, pick: (m: ModelSnapshot) => Histogram, model: string): boolean => {
    if (s.name === `${base}_bucket`) {
      const le = s.labels['le'];
      if (le !== undefined) addBucket(pick(of(model)), parseValue(le), s.value);
    } else if (s.name === `${base}_sum`) pick(of(model)).sum += s.value;
    else if (s.name === `${base}_count`) pick(of(model)).count += s.value;
    else return false;
    return true;
  };
  for (const s of samples) {
    const model = s.labels['model'];
    if (model === undefined) continue;
    if (s.name === 'tessera_requests_total') {
      const m = of(model);
      m.requests += s.value;
      if ((s.labels['code'] ?? '').startsWith('5')) m.errors += s.value;
    } else if (s.name === 'tessera_queue_depth') {
      of(model).queueDepth += s.value;
    } else if (!histogram(s, 'tessera_request_duration_seconds', (m) => m.duration, model)) {
      histogram(s, 'tessera_batch_size', (m) => m.batchSize, model);
    }
  }
  return { at, models };
}

/** The increase of a counter between two readings; a reading below the previous one is a reset (a restart): the new value is the increase. */
export function increase(before: number, after: number): number {
  return after < before ? after : after - before;
}

/** The observations of `after` not in `before` (bucket by bucket, resets as in {@link increase}). */
export function histogramIncrease(before: Histogram | undefined, after: Histogram): Histogram {
  if (!before) return after;
  const reset = after.count < before.count;
  if (reset) return after;
  return {
    bounds: [...after.bounds],
    counts: after.bounds.map((b, i) => {
      const j = before.bounds.indexOf(b);
      return after.counts[i]! - (j >= 0 ? before.counts[j]! : 0);
    }),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of a histogram, as Prometheus' `histogram_quantile`: the bucket it
 * falls in, interpolated linearly within it (from 0 for the first bucket); in the `+Inf` bucket,
 * the largest finite bound. `NaN` when the histogram holds no observation.
 */
export function histogramQuantile(q: number, h: Histogram): number {
  const n = h.counts.length;
  if (n === 0) return Number.NaN;
  const total = h.counts[n - 1]!;
  if (!(total > 0)) return Number.NaN;
  const rank = q * total;
  let i = h.counts.findIndex((c) => c >= rank);
  if (i < 0) i = n - 1;
  const upper = h.bounds[i]!;
  if (upper === Number.POSITIVE_INFINITY) return n >= 2 ? h.bounds[n - 2]! : Number.NaN;
  const lower = i === 0 ? 0 : h.bounds[i - 1]!;
  const below = i === 0 ? 0 : h.counts[i - 1]!;
  const inBucket = h.counts[i]! - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/** What the console shows of a model between two scrapes. */
export interface ModelRates {
  /** Requests answered per second. */
  rate: number;
  /** 5xx answers per second. */
  errorRate: number;
  /** Latency quantiles over the interval, ms (`NaN` without requests in it). */
  p50Ms: number;
  p99Ms: number;
  /** Mean samples per executed batch over the interval (`NaN` without batches in it). */
  meanBatchSize: number;
  /** Requests waiting in the queue at the later scrape. */
  queueDepth: number;
}

/** Each model's rates between two scrapes (`before` undefined: the first scrape, nothing to compare; models it lacks count from zero). */
export function ratesBetween(before: Scrape | undefined, after: Scrape): Map<string, ModelRates> {
  const out = new Map<string, ModelRates>();
  if (!before) return out;
  const seconds = (after.at - before.at) / 1000;
  if (!(seconds > 0)) return out;
  for (const [model, now] of after.models) {
    const prev = before.models.get(model);
    const duration = histogramIncrease(prev?.duration, now.duration);
    const batches = histogramIncrease(prev?.batchSize, now.batchSize);
    out.set(model, {
      rate: increase(prev?.requests ?? 0, now.requests) / seconds,
      errorRate: increase(prev?.errors ?? 0, now.errors) / seconds,
      p50Ms: histogramQuantile(0.5, duration) * 1000,
      p99Ms: histogramQuantile(0.99, duration) * 1000,
      meanBatchSize: batches.count > 0 ? batches.sum / batches.count : Number.NaN,
      queueDepth: now.queueDepth,
    });
  }
  return out;
}

/** A number for people: `—` for NaN, at most `digits` decimals. */
export function formatNumber(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '—';
  return value.toFixed(Number.isInteger(value) ? 0 : digits);
}
