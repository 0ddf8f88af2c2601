/**
 * The stand-in's `GET /metrics`: the vLLM V1 engine metrics a router reads (names, labels
 * `model_name` + `engine`, HELP texts and histogram buckets as in vllm/v1/metrics/loggers.py),
 * rendered like prometheus_client does (floats as `1.0`).
 */

const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
const LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

/** Finish reasons of `vllm:request_success_total` (vLLM's `FinishReason`). */
export type FinishedReason = 'stop' | 'length' | 'abort' | 'error';

/** Python's float formatting as prometheus_client uses it. */
function pyNum(value: number): string {
  if (Number.isInteger(value)) return `${value}.0`;
  return String(value);
}

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
  }
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** Counters and histograms of one stand-in; gauges are read when rendering. */
export class StandInMetrics {
  promptTokens = 0;
  generationTokens = 0;
  readonly success: Record<FinishedReason, number> = { stop: 0, length: 0, abort: 0, error: 0 };
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly e2e = new Histogram(LATENCY_BUCKETS);
  readonly queueTime = new Histogram(LATENCY_BUCKETS);

  /** Zeroes every counter and histogram. */
  reset(): void {
    this.promptTokens = 0;
    this.generationTokens = 0;
    for (const k of Object.keys(this.success) as FinishedReason[]) this.success[k] = 0;
    this.ttft.reset();
    this.e2e.reset();
    this.queueTime.reset();
  }

  /** The exposition text. */
  render(gauges: { modelName: string; running: number; waiting: number; kvCacheUsage: number; legacyMetricNames: boolean }): string {
    const labels = `model_name="${gauges.modelName.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}",engine="0"`;
    const out: string[] = [];
    const gauge = (name: string, help: string, value: number): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}{${labels}} ${pyNum(value)}`);
    };
    const counter = (name: string, help: string, value: number): void => {
      out.push(`# HELP ${name}_total ${help}`, `# TYPE ${name}_total counter`, `${name}_total{${labels}} ${pyNum(value)}`);
    };
    const histogram = (name: string, help: string, h: Histogram): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      for (let i = 0; i < h.buckets.length; i++) out.push(`${name}_bucket{${labels},le="${pyNum(h.buckets[i]!)}"} ${pyNum(h.counts[i]!)}`);
      out.push(`${name}_bucket{${labels},le="+Inf"} ${pyNum(h.count)}`, `${name}_count{${labels}} ${pyNum(h.count)}`, `${name}_sum{${labels}} ${pyNum(h.sum)}`);
    };

    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', gauges.running);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', gauges.waiting);
    if (gauges.legacyMetricNames) {
      gauge('vllm:gpu_cache_usage_perc', 'GPU KV-cache usage. 1 means 100 percent usage.', gauges.kvCacheUsage);
    } else {
      gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', gauges.kvCacheUsage);
    }
    counter('vllm:num_preemptions', 'Cumulative number of preemption from the engine.', 0);
    counter('vllm:prompt_tokens', 'Number of prefill tokens processed.', this.promptTokens);
    counter('vllm:generation_tokens', 'Number of generation tokens processed.', this.generationTokens);
    out.push('# HELP vllm:request_success_total Count of successfully processed requests.', '# TYPE vllm:request_success_total counter');
    for (const reason of Object.keys(this.success) as FinishedReason[]) {
      out.push(`vllm:request_success_total{${labels},finished_reason="${reason}"} ${pyNum(this.success[reason])}`);
    }
    histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', this.ttft);
    histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', this.e2e);
    histogram('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', this.queueTime);
    return `${out.join('\n')}\n`;
  }
}
