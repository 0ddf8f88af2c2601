import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';

// the shape of a vLLM /metrics page (trimmed), with both the old and the new KV-cache gauge names
const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="chat"} 3.0
vllm:num_requests_running{engine="1",model_name="chat"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="chat"} 1.0
vllm:num_requests_waiting{engine="1",model_name="chat"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="chat"} 0.25
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="chat"} 4.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="chat"} 9.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="chat"} 9.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="chat"} 4.5
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
`;

describe('parsePrometheusText', () => {
  it('reads a vLLM metrics page', () => {
    const samples = parsePrometheusText(VLLM, { strict: true });
    expect(samples).toHaveLength(10);
    expect(samples[0]).toEqual({ name: 'vllm:num_requests_running', labels: { engine: '0', model_name: 'chat' }, value: 3 });
    expect(samples.find((s) => s.labels.le === '+Inf')?.value).toBe(9);
    expect(samples.at(-1)?.labels.version).toBe('3.12.3');
  });

  it('reads escapes, special values, timestamps, blanks and the odd forms', () => {
    const text = [
      'plain 1',
      'esc{path="C:\\\\dir\\\\\\"x\\"",msg="a\\nb",empty=""} 2',
      'has_hash{v="not # a comment",w="}{,="} 3',
      'nan NaN',
      'pinf +Inf',
      'ninf -Inf',
      'inf_lower inf',
      'exp 1.5e-3',
      'neg -0.5',
      'stamped{a="b"} 7 1712345678901',
      '  \tindented \t 8\t',
      'trailing_comma{a="1",} 9',
      'spaced { a = "1" , b="2" } 10',
      'crlf 11\r',
      'with_exemplar_total{a="1"} 12 # {trace_id="abc"} 1.0 1712345678.1',
      '{"dotted.name", a="1"} 13',
      'quoted_label{"dotted.label"="x"} 15',
    ].join('\n');
    const byName = new Map(parsePrometheusText(text, { strict: true }).map((s) => [s.name, s]));
    expect(byName.get('plain')).toEqual({ name: 'plain', labels: {}, value: 1 });
    expect(byName.get('esc')?.labels).toEqual({ path: 'C:\\dir\\"x"', msg: 'a\nb', empty: '' });
    expect(byName.get('has_hash')?.labels).toEqual({ v: 'not # a comment', w: '}{,=' });
    expect(byName.get('nan')?.value).toBeNaN();
    expect(byName.get('pinf')?.value).toBe(Infinity);
    expect(byName.get('ninf')?.value).toBe(-Infinity);
    expect(byName.get('inf_lower')?.value).toBe(Infinity);
    expect(byName.get('exp')?.value).toBe(0.0015);
    expect(byName.get('neg')?.value).toBe(-0.5);
    expect(byName.get('stamped')).toEqual({ name: 'stamped', labels: { a: 'b' }, value: 7, timestamp: 1712345678901 });
    expect(byName.get('indented')?.value).toBe(8);
    expect(byName.get('trailing_comma')?.labels).toEqual({ a: '1' });
    expect(byName.get('spaced')?.labels).toEqual({ a: '1', b: '2' });
    expect(byName.get('crlf')?.value).toBe(11);
    expect(byName.get('with_exemplar_total')).toEqual({ name: 'with_exemplar_total', labels: { a: '1' }, value: 12 });
    expect(byName.get('dotted.name')?.labels).toEqual({ a: '1' });
    expect(byName.get('quoted_label')?.labels).toEqual({ 'dotted.label': 'x' });
  });

  it('skips malformed lines, or throws on them with strict', () => {
    const bad = [
      'no_value',
      'bad_value abc',
      'hex 0x10',
      'unterminated{a="1} 1',
      'bad_escape{a="\\t"} 1',
      'dup{a="1",a="2"} 1',
      'missing_eq{a "1"} 1',
      '9starts_with_digit 1',
      'junk_after 1 2 3',
      'no_blank{a="1"}1',
      '{"only_label"="x"} 1',
    ];
    const text = ['ok_before 1', ...bad, 'ok_after 2'].join('\n');
    expect(parsePrometheusText(text).map((s) => s.name)).toEqual(['ok_before', 'ok_after']);
    for (const line of bad) {
      expect(() => parsePrometheusText(`ok 1\n# comment\n${line}`, { strict: true }), line).toThrow(/^Prometheus text, line 3: /);
      expect(() => parsePrometheusText(`ok 1\n${line}`, { strict: true })).toThrow(SyntaxError);
    }
  });

  it('treats odd label names as plain labels', () => {
    const [s] = parsePrometheusText('m{__proto__="x",constructor="y"} 1', { strict: true });
    expect(s?.labels.__proto__).toBe('x');
    expect(s?.labels.constructor).toBe('y');
    expect(Object.keys(s!.labels)).toEqual(['__proto__', 'constructor']);
    expect(sampleValue([s!], ['m'], { toString: 'z' })).toBeUndefined();
  });

  it('reads back what prom-client writes', async () => {
    const registry = new Registry();
    const gauge = new Gauge({ name: 'queue_depth', help: 'h', labelNames: ['model', 'path'], registers: [registry] });
    gauge.set({ model: 'chat', path: 'a\\b "quoted"\nline' }, 4);
    gauge.set({ model: 'embed', path: '/' }, 2.5);
    const counter = new Counter({ name: 'requests_total', help: 'h', registers: [registry] });
    counter.inc(3);
    const histogram = new Histogram({ name: 'latency_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] });
    histogram.observe(0.5);
    const samples = parsePrometheusText(await registry.metrics(), { strict: true });
    expect(sampleValue(samples, ['queue_depth'], { model: 'chat' })).toBe(4);
    expect(samples.find((s) => s.name === 'queue_depth' && s.labels.model === 'chat')?.labels.path).toBe('a\\b "quoted"\nline');
    expect(sampleValue(samples, ['queue_depth'])).toBe(6.5);
    expect(sampleValue(samples, ['requests_total'])).toBe(3);
    expect(sampleValue(samples, ['latency_seconds_bucket'], { le: '+Inf' })).toBe(1);
    expect(sampleValue(samples, ['latency_seconds_count'])).toBe(1);
  });
});

describe('sampleValue', () => {
  const samples = parsePrometheusText(VLLM);

  it('sums the first present name over its series, filtered by labels', () => {
    expect(sampleValue(samples, ['vllm:num_requests_running'])).toBe(5);
    expect(sampleValue(samples, ['vllm:num_requests_running'], { model_name: 'chat', engine: '1' })).toBe(2);
    expect(sampleValue(samples, ['vllm:num_requests_waiting'], { model_name: 'chat' })).toBe(1);
    // the new name first, the old one as a fallback; the absent one is skipped
    expect(sampleValue(samples, ['vllm:gpu_cache_usage_perc', 'vllm:kv_cache_usage_perc'])).toBe(0.25);
    expect(sampleValue(parsePrometheusText('vllm:gpu_cache_usage_perc{model_name="chat"} 0.5'), ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'])).toBe(0.5);
  });

  it('is undefined when no name has a matching sample, and a present name wins even at 0', () => {
    expect(sampleValue(samples, ['nope', 'also_nope'])).toBeUndefined();
    expect(sampleValue(samples, ['vllm:num_requests_running'], { model_name: 'other' })).toBeUndefined();
    expect(sampleValue(samples, ['vllm:num_requests_waiting', 'vllm:num_requests_running'], { engine: '1' })).toBe(0);
    expect(sampleValue(samples, [])).toBeUndefined();
  });

  it('propagates NaN', () => {
    expect(sampleValue(parsePrometheusText('m{a="1"} 1\nm{a="2"} NaN'), ['m'])).toBeNaN();
  });
});
