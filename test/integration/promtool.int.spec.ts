/**
 * `GET /metrics` after real traffic through the real CLI — tensor requests (JSON, binary, simple
 * predict), errors (bad input, unknown models, an upstream 500) and LLM generations (streamed and
 * not) through a vLLM stand-in process — must pass `promtool check metrics` (exposition format and
 * Prometheus' naming lint), carry every DESIGN §6 series with the right labels and types, and name
 * no model that is not configured. Also served on `server.metricsPort`.
 *
 * promtool comes from the Debian package `prometheus` (scripts/ensure-promtool.sh installs it).
 * Without it these checks fail, unless TESSERA_SKIP_PROMTOOL=1, which skips them with a warning;
 * the series checks run either way. `PROMTOOL` names another binary.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import { BATCH_SIZE_BUCKETS, LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS } from '@tessera/core';
import type { TesseraProcess } from '@tessera/core/testing';
import { encodeBinaryInferRequest, startTessera, writeTestModels } from '@tessera/core/testing';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { startVllmStandInProcess } from '@tessera/vllm-stand-in';
import { http, tempDir, writeConfig } from './helpers.js';
import { jsonLines } from './otlp-receiver.js';

// --- promtool ------------------------------------------------------------------------------------

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const SKIP_PROMTOOL = process.env.TESSERA_SKIP_PROMTOOL === '1';
const MISSING =
  `promtool not found (${PROMTOOL}): run scripts/ensure-promtool.sh to install it (Debian package "prometheus"), ` +
  'or set TESSERA_SKIP_PROMTOOL=1 to skip the promtool checks';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  missing?: boolean;
}

/** Runs a command with `input` on stdin. */
function run(bin: string, args: string[], input = ''): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: -1, stdout, stderr: err.message, missing: err.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => undefined); // EPIPE when the binary is missing or exits early
    child.stdin.end(input);
  });
}

let promtoolFound: boolean | undefined;

/** Asserts that promtool found nothing at all: no error (exit 1), no lint finding (exit 3). */
function expectClean(r: RunResult): void {
  const findings = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  expect(findings, 'promtool findings').toEqual([]);
  expect(r.code, `promtool exit code ${r.code}`).toBe(0);
}

/** `promtool check metrics` on `text`; fails the test when promtool is missing, or skips it under TESSERA_SKIP_PROMTOOL=1. */
async function checkMetrics(ctx: TestContext, text: string): Promise<RunResult> {
  if (promtoolFound === undefined) promtoolFound = !(await run(PROMTOOL, ['--version'])).missing;
  if (!promtoolFound) {
    if (SKIP_PROMTOOL) {
      console.warn('[promtool.int.spec] SKIPPED promtool check: promtool is not installed and TESSERA_SKIP_PROMTOOL=1');
      ctx.skip('promtool is not installed and TESSERA_SKIP_PROMTOOL=1');
    }
    throw new Error(MISSING);
  }
  return run(PROMTOOL, ['check', 'metrics'], text);
}

// --- Prometheus text ----------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  /** `# TYPE` by metric family. */
  types: Map<string, string>;
  /** `# HELP` by metric family. */
  help: Map<string, string>;
}

/** Parses the text format (0.0.4): samples with their labels, and the TYPE and HELP lines. */
function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'TYPE' ? types : help).set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let l = re.exec(m[2] ?? ''); l; l = re.exec(m[2] ?? '')) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types, help };
}

/** The samples of `name` whose labels include `labels`. */
function find(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with exactly these labels (undefined when absent). */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const keys = Object.keys(labels).sort().join(',');
  const hits = find(e, name, labels).filter((s) => Object.keys(s.labels).sort().join(',') === keys);
  expect(hits.length, `${name}${JSON.stringify(labels)}: ${hits.length} samples`).toBeLessThanOrEqual(1);
  return hits[0]?.value;
}

/** The `le` values of a histogram series, in order, as numbers (`+Inf` = Infinity). */
function bucketBounds(e: Exposition, name: string, labels: Record<string, string>): number[] {
  return find(e, `${name}_bucket`, labels).map((s) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)));
}

// --- the server and its traffic -----------------------------------------------------------------

const CLEAN_ENV: Record<string, string | undefined> = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).map((k) => [k, undefined]));

let standIn: VllmStandInProcess;
let server: TesseraProcess;
let metricsUrl: string | undefined;
/** What the traffic below should have counted. */
const sent = { v2Ok: 0, v2Bad: 0, predictOk: 0, chatOk: 0, chatStreams: 0, chatFailed: 0, promptTokens: 0, completionTokens: 0, samples: 0 };

beforeAll(async () => {
  const dir = await tempDir('tessera-promtool-');
  const models = await writeTestModels(dir);
  standIn = await startVllmStandInProcess('chat');
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    models: {
      // two versions under the default `latest` router: version 2 gets the requests without a version
      affine: { versions: { '1': { path: models.affine.path }, '2': { path: models.affineV2.path } }, batching: { batcher: 'dynamic', maxBatchSize: 16, maxQueueDelayMs: 2 } },
      chat: { backend: 'vllm', upstreams: [standIn.url], health: { interval: '200ms' } },
    },
  });
  server = await startTessera({ args: ['serve', '-c', config], env: CLEAN_ENV });
  metricsUrl = jsonLines(server.stdout).find((l) => typeof l.msg === 'string' && l.msg.startsWith('server ready'))?.metricsUrl as string | undefined;

  const x = (batch: number) => ({ name: 'x', datatype: 'FP32', shape: [batch, 4], data: new Array(batch * 4).fill(0.5) });
  const ok = (r: { status: number; text: string }, status = 200) => expect(r.status, r.text.slice(0, 300)).toBe(status);
  // tensor JSON, concurrently so that the batcher forms batches of several requests
  const json = await Promise.all([1, 2, 3, 1, 2].map((b) => http(`${server.url}/v2/models/affine/infer`, { json: { inputs: [x(b)] } })));
  json.forEach((r) => ok(r));
  sent.v2Ok += json.length;
  sent.samples += 9;
  // tensor binary (Triton's extension), binary output too
  const bin = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array(8).fill(1) }], { binaryOutput: true });
  const binRes = await fetch(`${server.url}/v2/models/affine/infer`, { method: 'POST', body: bin.body, headers: bin.headers });
  expect(binRes.status).toBe(200);
  await binRes.arrayBuffer();
  sent.v2Ok++;
  sent.samples += 2;
  // simple predict
  ok(await http(`${server.url}/v1/predict`, { json: { model: 'affine', inputs: { x: [[1, 2, 3, 4]] } } }));
  sent.predictOk++;
  sent.samples += 1;
  // errors: bad shape, unknown model on every protocol, unknown version
  ok(await http(`${server.url}/v2/models/affine/infer`, { json: { inputs: [{ ...x(1), shape: [1, 3], data: [1, 2, 3] }] } }), 400);
  sent.v2Bad++;
  ok(await http(`${server.url}/v2/models/no-such-model/infer`, { json: { inputs: [x(1)] } }), 404);
  ok(await http(`${server.url}/v2/models/affine/versions/9/infer`, { json: { inputs: [x(1)] } }), 404);
  ok(await http(`${server.url}/v1/predict`, { json: { model: 'no-such-model', inputs: { x: [[1, 2, 3, 4]] } } }), 404);
  ok(await http(`${server.url}/v1/chat/completions`, { json: { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] } }), 404);
  // LLM: not streamed, streamed, and an upstream 500
  const chat = { model: 'chat', messages: [{ role: 'user', content: 'Count the sheep in the field.' }], max_tokens: 6 };
  for (let i = 0; i < 2; i++) {
    const r = await http(`${server.url}/v1/chat/completions`, { json: chat });
    ok(r);
    sent.chatOk++;
    sent.promptTokens += r.body.usage.prompt_tokens;
    sent.completionTokens += r.body.usage.completion_tokens;
  }
  for (let i = 0; i < 3; i++) {
    const r = await http(`${server.url}/v1/chat/completions`, { json: { ...chat, stream: true, stream_options: { include_usage: true } } });
    ok(r);
    const usage = r.text
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)) as { usage?: { prompt_tokens: number; completion_tokens: number } })
      .find((c) => c.usage)?.usage;
    expect(usage, r.text).toBeDefined();
    sent.chatOk++;
    sent.chatStreams++;
    sent.promptTokens += usage!.prompt_tokens;
    sent.completionTokens += usage!.completion_tokens;
  }
  await standIn.setFaults({ failNext: 1 });
  ok(await http(`${server.url}/v1/chat/completions`, { json: chat }), 502);
  sent.chatFailed++;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await standIn?.stop();
});

async function scrape(base: string): Promise<{ text: string; e: Exposition; contentType: string | null }> {
  const res = await http(`${base}/metrics`);
  expect(res.status).toBe(200);
  return { text: res.text, e: parseExposition(res.text), contentType: res.headers.get('content-type') };
}

describe('GET /metrics after real traffic', () => {
  it('should pass `promtool check metrics` without errors or lint warnings', async (ctx) => {
    const { text, contentType } = await scrape(server.url);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expectClean(await checkMetrics(ctx, text));
  });

  it('should count requests by model, version, protocol and status code', async () => {
    const { e } = await scrape(server.url);
    expect(e.types.get('tessera_requests_total')).toBe('counter');
    expect(value(e, 'tessera_requests_total', { model: 'affine', version: '2', protocol: 'v2', code: '200' })).toBe(sent.v2Ok);
    expect(value(e, 'tessera_requests_total', { model: 'affine', version: '2', protocol: 'v2', code: '400' })).toBe(sent.v2Bad);
    expect(value(e, 'tessera_requests_total', { model: 'affine', version: '2', protocol: 'predict', code: '200' })).toBe(sent.predictOk);
    expect(value(e, 'tessera_requests_total', { model: 'chat', version: '1', protocol: 'openai', code: '200' })).toBe(sent.chatOk);
    expect(value(e, 'tessera_requests_total', { model: 'chat', version: '1', protocol: 'openai', code: '502' })).toBe(sent.chatFailed);
    // version 1 got no traffic: the latest router sends everything to 2
    expect(find(e, 'tessera_requests_total', { model: 'affine', version: '1' })).toEqual([]);
    for (const s of find(e, 'tessera_requests_total')) expect(Object.keys(s.labels).sort()).toEqual(['code', 'model', 'protocol', 'version']);
  });

  it('should have the latency histograms with their buckets, per model and version', async () => {
    const { e } = await scrape(server.url);
    const latency = [...LATENCY_BUCKETS, Infinity];
    for (const name of ['tessera_request_duration_seconds', 'tessera_queue_duration_seconds', 'tessera_inference_duration_seconds']) {
      expect(e.types.get(name), name).toBe('histogram');
      expect(e.help.get(name), name).toBeTruthy();
    }
    const req = { model: 'affine', version: '2', protocol: 'v2' };
    expect(bucketBounds(e, 'tessera_request_duration_seconds', req)).toEqual(latency);
    expect(value(e, 'tessera_request_duration_seconds_count', req)).toBe(sent.v2Ok + sent.v2Bad);
    expect(value(e, 'tessera_request_duration_seconds_bucket', { ...req, le: '+Inf' })).toBe(sent.v2Ok + sent.v2Bad);
    expect(value(e, 'tessera_request_duration_seconds_sum', req)).toBeGreaterThan(0);
    expect(value(e, 'tessera_request_duration_seconds_count', { model: 'chat', version: '1', protocol: 'openai' })).toBe(sent.chatOk + sent.chatFailed);

    const mv = { model: 'affine', version: '2' };
    // every successful tensor request waited in the queue once
    expect(bucketBounds(e, 'tessera_queue_duration_seconds', mv)).toEqual(latency);
    expect(value(e, 'tessera_queue_duration_seconds_count', mv)).toBe(sent.v2Ok + sent.predictOk);
    expect(bucketBounds(e, 'tessera_inference_duration_seconds', mv)).toEqual(latency);
    const batches = value(e, 'tessera_inference_duration_seconds_count', mv)!;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(sent.v2Ok + sent.predictOk);
    // buckets are cumulative
    for (const [name, labels] of [['tessera_request_duration_seconds', req], ['tessera_queue_duration_seconds', mv], ['tessera_inference_duration_seconds', mv]] as const) {
      const counts = find(e, `${name}_bucket`, labels).map((s) => s.value);
      expect(counts, name).toEqual([...counts].sort((a, b) => a - b));
    }
  });

  it('should have the batch size histogram: samples per executed batch', async () => {
    const { e } = await scrape(server.url);
    const mv = { model: 'affine', version: '2' };
    expect(e.types.get('tessera_batch_size')).toBe('histogram');
    expect(bucketBounds(e, 'tessera_batch_size', mv)).toEqual([...BATCH_SIZE_BUCKETS, Infinity]);
    expect(value(e, 'tessera_batch_size_sum', mv)).toBe(sent.samples);
    expect(value(e, 'tessera_batch_size_count', mv)).toBe(value(e, 'tessera_inference_duration_seconds_count', mv));
  });

  it('should have the gauges: queue depth, in-flight requests, readiness and route weights', async () => {
    const { e } = await scrape(server.url);
    expect(e.types.get('tessera_queue_depth')).toBe('gauge');
    expect(e.types.get('tessera_inflight_requests')).toBe('gauge');
    expect(e.types.get('tessera_model_ready')).toBe('gauge');
    for (const v of ['1', '2']) {
      expect(value(e, 'tessera_queue_depth', { model: 'affine', version: v })).toBe(0);
      expect(value(e, 'tessera_model_ready', { model: 'affine', version: v })).toBe(1);
    }
    expect(value(e, 'tessera_model_ready', { model: 'chat', version: '1' })).toBe(1);
    // the scrape itself is the only request in flight
    expect(value(e, 'tessera_inflight_requests')).toBeLessThanOrEqual(1);
    expect(value(e, 'tessera_inflight_requests')).toBeGreaterThanOrEqual(0);
  });

  it('should have tessera_route_weight{model,version}: 1 for the version the latest router picks, 0 for the others', async () => {
    const { e } = await scrape(server.url);
    expect(e.types.get('tessera_route_weight')).toBe('gauge');
    expect(value(e, 'tessera_route_weight', { model: 'affine', version: '2' })).toBe(1);
    expect(value(e, 'tessera_route_weight', { model: 'affine', version: '1' })).toBe(0);
    expect(value(e, 'tessera_route_weight', { model: 'chat', version: '1' })).toBe(1);
    for (const s of find(e, 'tessera_route_weight')) expect(Object.keys(s.labels).sort()).toEqual(['model', 'version']);
  });

  it('should have the LLM series: time to first token and per output token (streams), tokens by kind, upstream health', async () => {
    const { e } = await scrape(server.url);
    const mv = { model: 'chat', version: '1' };
    expect(e.types.get('tessera_llm_time_to_first_token_seconds')).toBe('histogram');
    expect(bucketBounds(e, 'tessera_llm_time_to_first_token_seconds', mv)).toEqual([...LATENCY_BUCKETS, Infinity]);
    expect(value(e, 'tessera_llm_time_to_first_token_seconds_count', mv)).toBe(sent.chatStreams);
    expect(e.types.get('tessera_llm_time_per_output_token_seconds')).toBe('histogram');
    expect(bucketBounds(e, 'tessera_llm_time_per_output_token_seconds', mv)).toEqual([...TOKEN_LATENCY_BUCKETS, Infinity]);
    expect(value(e, 'tessera_llm_time_per_output_token_seconds_count', mv)).toBe(sent.chatStreams);
    expect(e.types.get('tessera_llm_tokens_total')).toBe('counter');
    expect(value(e, 'tessera_llm_tokens_total', { ...mv, kind: 'prompt' })).toBe(sent.promptTokens);
    expect(value(e, 'tessera_llm_tokens_total', { ...mv, kind: 'completion' })).toBe(sent.completionTokens);
    expect(find(e, 'tessera_llm_tokens_total').map((s) => s.labels.kind).sort()).toEqual(['completion', 'prompt']);
    expect(e.types.get('tessera_upstream_healthy')).toBe('gauge');
    expect(value(e, 'tessera_upstream_healthy', { model: 'chat', upstream: standIn.url })).toBe(1);
    // tensor models have no LLM series
    expect(find(e, 'tessera_llm_tokens_total', { model: 'affine' })).toEqual([]);
  });

  it("should name no model or version that is not configured (unknown names create no series)", async () => {
    const { text, e } = await scrape(server.url);
    expect(text).not.toContain('no-such-model');
    const configured = new Set(['', 'affine', 'chat']);
    for (const s of e.samples.filter((x) => x.name.startsWith('tessera_'))) {
      if ('model' in s.labels) expect(configured.has(s.labels.model), `${s.name}${JSON.stringify(s.labels)}`).toBe(true);
      if ('version' in s.labels) expect(['', '1', '2'], `${s.name}${JSON.stringify(s.labels)}`).toContain(s.labels.version);
    }
    // requests for unknown models are still counted, without model and version; an unknown version of a known model without version
    expect(value(e, 'tessera_requests_total', { model: '', version: '', protocol: 'v2', code: '404' })).toBe(1);
    expect(value(e, 'tessera_requests_total', { model: '', version: '', protocol: 'predict', code: '404' })).toBe(1);
    expect(value(e, 'tessera_requests_total', { model: '', version: '', protocol: 'openai', code: '404' })).toBe(1);
    expect(value(e, 'tessera_requests_total', { model: 'affine', version: '', protocol: 'v2', code: '404' })).toBe(1);
    // and the process defaults are there
    expect(find(e, 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(find(e, 'nodejs_eventloop_lag_seconds')).toHaveLength(1);
  });
});

describe('server.metricsPort', () => {
  it('should serve /metrics on its own port as well as on the main one, and promtool should accept it', async (ctx) => {
    expect(metricsUrl, 'the `server ready` line names metricsUrl when server.metricsPort is set').toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(metricsUrl).not.toBe(server.url);
    const dedicated = await scrape(metricsUrl!);
    // scrapes of the metrics port are not requests: two in a row count the same
    const total = (e: Exposition) => find(e, 'tessera_requests_total').reduce((sum, x) => sum + x.value, 0);
    expect(total((await scrape(metricsUrl!)).e)).toBe(total(dedicated.e));
    // the same registry behind both ports
    const main = await scrape(server.url);
    expect(value(dedicated.e, 'tessera_requests_total', { model: 'affine', version: '2', protocol: 'v2', code: '200' })).toBe(sent.v2Ok);
    expect(value(main.e, 'tessera_requests_total', { model: 'affine', version: '2', protocol: 'v2', code: '200' })).toBe(sent.v2Ok);
    expect(value(main.e, 'tessera_route_weight', { model: 'affine', version: '2' })).toBe(value(dedicated.e, 'tessera_route_weight', { model: 'affine', version: '2' }));
    expect((await http(`${metricsUrl}/health`)).status).toBe(200);
    // the metrics port serves no inference
    expect((await http(`${metricsUrl}/v2/models/affine/infer`, { json: { inputs: [] } })).status).toBe(404);
    expectClean(await checkMetrics(ctx, dedicated.text));
  });
});
