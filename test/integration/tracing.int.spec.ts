/**
 * Tracing end to end: the real CLI with `plugins: ['@tessera/tracing']` exporting OTLP/HTTP JSON
 * to a receiver in this process, a tiny ONNX model behind the `dynamic` batcher, and an LLM model
 * whose replica is a vLLM stand-in process. Checks what an operator sees in a tracing backend:
 * the caller's trace is continued, the span tree of a tensor request (server span → route, queue;
 * one batch span linked to every request it carried → inference), the LLM path (server span →
 * client span, `traceparent` passed to the replica), errors on the spans, batches sampled with the
 * requests they carry, the flush at shutdown, and that a server without the plugin sends nothing
 * and adds no header.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { startVllmStandInProcess } from '@tessera/vllm-stand-in';
import { http, tempDir, writeConfig } from './helpers.js';
import type { OtlpReceiver, ReceivedSpan } from './otlp-receiver.js';
import { SPAN_KIND, STATUS_CODE, newTraceparent, startOtlpReceiver, waitFor } from './otlp-receiver.js';

/** The environment of the child processes: no OTEL_* from the machine running the tests. */
const CLEAN_ENV: Record<string, string | undefined> = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).map((k) => [k, undefined]));

/** Four concurrent requests of one sample each form one batch (preferred size 4; the delay is only a bound). */
const CONCURRENT = 4;
const BATCHING = { batcher: 'dynamic', maxBatchSize: 16, maxQueueDelayMs: 400, preferredBatchSizes: [CONCURRENT] };
const INFER = '/v2/models/affine/infer';
const SERVER_SPAN_INFER = 'POST /v2/models/:model/infer';
const CHAT = { model: 'chat', messages: [{ role: 'user', content: 'Say something about tracing.' }], max_tokens: 5 };

const x = (seed: number) => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [seed, 2, 3, 4] });

let dir: string;
let receiver: OtlpReceiver;
let standIn: VllmStandInProcess;
let server: TesseraProcess;

let models: TestModelCatalog | undefined;

async function writeModelsAndConfig(name: string, extra: Record<string, unknown>): Promise<string> {
  models ??= await writeTestModels(dir);
  return writeConfig(
    dir,
    {
      server: { host: '127.0.0.1', port: 0 },
      ...extra,
      models: {
        affine: { path: models.affine.path, batching: BATCHING },
        chat: { backend: 'vllm', upstreams: [standIn.url], health: { interval: '200ms' } },
      },
    },
    name,
  );
}

beforeAll(async () => {
  dir = await tempDir('tessera-tracing-');
  [receiver, standIn] = await Promise.all([startOtlpReceiver(), startVllmStandInProcess('chat')]);
  const config = await writeModelsAndConfig('traced.yaml', {
    plugins: ['@tessera/tracing'],
    tracing: { endpoint: receiver.url, protocol: 'http/json', serviceName: 'tessera-it', sampleRatio: 1, batch: { scheduledDelay: 50 } },
  });
  server = await startTessera({ args: ['serve', '-c', config], env: CLEAN_ENV });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await standIn?.stop();
  await receiver?.close();
});

/** Milliseconds of an OTLP nanosecond difference. */
const ms = (nanos: bigint): number => Number(nanos) / 1e6;
/**
 * Tolerance for comparing times of different spans. The core passes `performance.now()` start
 * times and lets the SDK take end times; the SDK then converts each span's times with its own
 * Date.now()-based offset, so two spans can disagree by up to ~1 ms (see the clock test).
 */
const SKEW_MS = 1.5;
function expectWithin(child: ReceivedSpan, parent: ReceivedSpan): void {
  expect(ms(child.startTimeUnixNano - parent.startTimeUnixNano), `${child.name} starts after ${parent.name}`).toBeGreaterThanOrEqual(-SKEW_MS);
  expect(ms(parent.endTimeUnixNano - child.endTimeUnixNano), `${child.name} ends before ${parent.name}`).toBeGreaterThanOrEqual(-SKEW_MS);
}

const one = (spans: ReceivedSpan[], what: string): ReceivedSpan => {
  expect(spans, `${what}: ${spans.length} spans`).toHaveLength(1);
  return spans[0]!;
};
const childrenOf = (parent: ReceivedSpan, name: string): ReceivedSpan[] =>
  receiver.spans.filter((s) => s.name === name && s.traceId === parent.traceId && s.parentSpanId === parent.spanId);

/**
 * Sends CONCURRENT one-sample requests at once, each in its own caller trace, and waits for the
 * server, route and queue spans of each and for the one batch span linked to them (and its
 * inference span).
 */
async function concurrentBatch(target: TesseraProcess) {
  const callers = Array.from({ length: CONCURRENT }, () => newTraceparent());
  const responses = await Promise.all(callers.map((c, i) => http(`${target.url}${INFER}`, { json: { inputs: [x(10 + i)] }, headers: { traceparent: c.traceparent } })));
  for (const [i, r] of responses.entries()) {
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('x-trace-id')).toBe(callers[i]!.traceId);
  }
  const ids = new Set(callers.map((c) => c.traceId));
  await receiver.waitForSpans(
    callers.flatMap(() => [SERVER_SPAN_INFER, 'tessera.route', 'tessera.queue']),
    { filter: (s) => ids.has(s.traceId) },
  );
  const serverSpans = callers.map((c) => one(receiver.trace(c.traceId).filter((s) => s.name === SERVER_SPAN_INFER), `server span of ${c.traceId}`));
  const linkedTo = (b: ReceivedSpan, span: ReceivedSpan) => b.links.some((l) => l.traceId === span.traceId && l.spanId === span.spanId);
  // the batch ended before the responses were sent: its span is exported with the server spans or before them
  await receiver.waitForSpans(['tessera.batch'], { filter: (b) => serverSpans.some((span) => linkedTo(b, span)), timeoutMs: 3000 });
  const batches = receiver.spans.filter((b) => b.name === 'tessera.batch' && serverSpans.some((span) => linkedTo(b, span)));
  const batch = one(batches, 'batch spans linked to the concurrent requests');
  for (const span of serverSpans) expect(linkedTo(batch, span), `the batch is linked to ${span.traceId}`).toBe(true);
  const [inference] = await receiver.waitForSpans(['tessera.inference'], { filter: (s) => s.traceId === batch.traceId });
  return { callers, serverSpans, batch, inference: inference! };
}

describe('trace context', () => {
  it("should continue the caller's trace: same trace id, the caller's span as parent, X-Trace-Id in the response", async () => {
    const caller = newTraceparent();
    const res = await http(`${server.url}${INFER}`, { json: { inputs: [x(1)] }, headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trace-id')).toBe(caller.traceId);

    const [span] = await receiver.waitForSpans([SERVER_SPAN_INFER], { filter: (s) => s.traceId === caller.traceId });
    expect(span!.kind).toBe(SPAN_KIND.SERVER);
    expect(span!.traceId).toBe(caller.traceId);
    expect(span!.parentSpanId).toBe(caller.spanId);
    expect(span!.resource['service.name']).toBe('tessera-it');
    expect(span!.scope.name).toBe('@tessera/core');
  });

  it('should start a new trace for a caller without traceparent, and name it in X-Trace-Id', async () => {
    const res = await http(`${server.url}${INFER}`, { json: { inputs: [x(2)] } });
    expect(res.status).toBe(200);
    const traceId = res.headers.get('x-trace-id');
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const [span] = await receiver.waitForSpans([SERVER_SPAN_INFER], { filter: (s) => s.traceId === traceId });
    expect(span!.parentSpanId).toBeUndefined();
  });

  it('should record nothing for a caller whose traceparent says not sampled (parent-based sampling)', async () => {
    const unsampled = newTraceparent();
    const res = await http(`${server.url}${INFER}`, { json: { inputs: [x(3)] }, headers: { traceparent: unsampled.traceparent.replace(/-01$/, '-00') } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trace-id')).toBe(unsampled.traceId);
    // a sampled request sent afterwards: once its spans are in, the unsampled ones would be too
    const later = newTraceparent();
    await http(`${server.url}${INFER}`, { json: { inputs: [x(4)] }, headers: { traceparent: later.traceparent } });
    await receiver.waitForSpans([SERVER_SPAN_INFER, 'tessera.queue'], { filter: (s) => s.traceId === later.traceId });
    expect(receiver.trace(unsampled.traceId)).toEqual([]);
    expect(receiver.spans.some((s) => s.links.some((l) => l.traceId === unsampled.traceId))).toBe(false);
  });
});

describe('a tensor request', () => {
  it('should have route and queue spans under the server span, and one batch span linked to every request of the batch', async () => {
    const { callers, serverSpans, batch, inference } = await concurrentBatch(server);
    for (const [i, span] of serverSpans.entries()) {
      expect(span.kind).toBe(SPAN_KIND.SERVER);
      expect(span.parentSpanId).toBe(callers[i]!.spanId);
      expect(span.status.code).toBe(STATUS_CODE.UNSET);
      expect(span.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.route': '/v2/models/:model/infer',
        'url.path': INFER,
        'http.response.status_code': 200,
        'tessera.model': 'affine',
        'tessera.version': '1',
        'tessera.protocol': 'v2',
      });
      const route = one(childrenOf(span, 'tessera.route'), 'tessera.route');
      expect(route.attributes).toMatchObject({ 'tessera.model': 'affine', 'tessera.version': '1' });
      const queue = one(childrenOf(span, 'tessera.queue'), 'tessera.queue');
      expect(queue.attributes).toMatchObject({ 'tessera.model': 'affine', 'tessera.version': '1' });
    }

    // one batch carried the four requests: a root span of its own trace, linked to each request's server span
    expect(batch.links).toHaveLength(CONCURRENT);
    expect(batch.parentSpanId).toBeUndefined();
    expect(callers.some((c) => c.traceId === batch.traceId)).toBe(false);
    expect(batch.attributes).toMatchObject({ 'tessera.model': 'affine', 'tessera.version': '1', 'tessera.batch.size': CONCURRENT, 'tessera.batch.requests': CONCURRENT });
    expect(inference.parentSpanId).toBe(batch.spanId);
    expect(inference.attributes).toMatchObject({ 'tessera.model': 'affine', 'tessera.version': '1', 'tessera.batch.size': CONCURRENT });
    expect(inference.status.code).toBe(STATUS_CODE.UNSET);
    // children within their parents (up to SKEW_MS: see the clock test below)
    expectWithin(inference, batch);
    for (const span of serverSpans) {
      const queue = childrenOf(span, 'tessera.queue')[0]!;
      expectWithin(queue, span);
      expect(Math.abs(ms(queue.endTimeUnixNano - batch.startTimeUnixNano)), 'the queue span ends where the batch starts').toBeLessThanOrEqual(SKEW_MS);
    }
  });

  it('should put all spans on one clock: a queue span ends exactly where its batch starts, children never outside their parents', async () => {
    const { serverSpans, batch, inference } = await concurrentBatch(server);
    // The core computes both instants from one performance.now() value (`startedAt`); the
    // exported times differ only if each span converts it with a different offset.
    for (const span of serverSpans) {
      const queue = childrenOf(span, 'tessera.queue')[0]!;
      expect(ms(queue.endTimeUnixNano - batch.startTimeUnixNano), 'queue end − batch start, ms').toBe(0);
      expect(queue.startTimeUnixNano >= span.startTimeUnixNano, 'queue starts after its request').toBe(true);
    }
    expect(inference.startTimeUnixNano >= batch.startTimeUnixNano, 'inference starts after its batch').toBe(true);
    expect(inference.endTimeUnixNano <= batch.endTimeUnixNano, 'inference ends before its batch').toBe(true);
  });

  it('should name the server span of /v1/predict after its route, with protocol predict', async () => {
    const caller = newTraceparent();
    const res = await http(`${server.url}/v1/predict`, { json: { model: 'affine', inputs: { x: [[1, 2, 3, 4]] } }, headers: { traceparent: caller.traceparent } });
    expect(res.status, res.text).toBe(200);
    const spans = await receiver.waitForSpans(['POST /v1/predict', 'tessera.route', 'tessera.queue'], { filter: (s) => s.traceId === caller.traceId });
    const span = spans.find((s) => s.name === 'POST /v1/predict')!;
    expect(span.kind).toBe(SPAN_KIND.SERVER);
    expect(span.attributes).toMatchObject({ 'tessera.protocol': 'predict', 'tessera.model': 'affine', 'tessera.version': '1', 'http.route': '/v1/predict' });
  });
});

describe('an LLM request', () => {
  it('should have a client span under the server span, and pass its traceparent to the replica', async () => {
    await standIn.reset();
    const caller = newTraceparent();
    const res = await http(`${server.url}/v1/chat/completions`, { json: CHAT, headers: { traceparent: caller.traceparent } });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('x-trace-id')).toBe(caller.traceId);

    const spans = await receiver.waitForSpans(['POST /v1/chat/completions', 'POST /v1/chat/completions', 'tessera.route'], { filter: (s) => s.traceId === caller.traceId });
    const serverSpan = one(spans.filter((s) => s.kind === SPAN_KIND.SERVER), 'server span');
    const clientSpan = one(spans.filter((s) => s.kind === SPAN_KIND.CLIENT), 'client span');
    expect(serverSpan.parentSpanId).toBe(caller.spanId);
    expect(clientSpan.parentSpanId).toBe(serverSpan.spanId);
    expect(one(childrenOf(serverSpan, 'tessera.route'), 'tessera.route').attributes).toMatchObject({ 'tessera.model': 'chat', 'tessera.version': '1' });
    expect(serverSpan.attributes).toMatchObject({
      'http.route': '/v1/chat/completions',
      'http.response.status_code': 200,
      'tessera.model': 'chat',
      'tessera.version': '1',
      'tessera.protocol': 'openai',
      'gen_ai.usage.input_tokens': res.body.usage.prompt_tokens,
      'gen_ai.usage.output_tokens': res.body.usage.completion_tokens,
    });
    expect(res.body.usage.completion_tokens).toBe(5);
    expect(clientSpan.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': `${standIn.url}/v1/chat/completions`,
      'tessera.upstream': standIn.url,
      'http.response.status_code': 200,
    });
    expect(clientSpan.status.code).toBe(STATUS_CODE.UNSET);
    expectWithin(clientSpan, serverSpan);

    // what the replica received: the caller's trace, with the client span as parent
    const { requests } = await standIn.stats();
    const upstream = requests.filter((r) => r.path === '/v1/chat/completions');
    expect(upstream).toHaveLength(1);
    expect(upstream[0]!.headers.traceparent).toBe(`00-${caller.traceId}-${clientSpan.spanId}-01`);
  });

  it('should put token usage on the server span of a stream too', async () => {
    const caller = newTraceparent();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: caller.traceparent },
      body: JSON.stringify({ ...CHAT, stream: true, max_tokens: 7 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trace-id')).toBe(caller.traceId);
    const text = await res.text();
    expect(text).toContain('data: [DONE]');
    const spans = await receiver.waitForSpans(['POST /v1/chat/completions', 'POST /v1/chat/completions'], { filter: (s) => s.traceId === caller.traceId });
    const serverSpan = one(spans.filter((s) => s.kind === SPAN_KIND.SERVER), 'server span');
    expect(serverSpan.attributes['gen_ai.usage.output_tokens']).toBe(7);
    expect(serverSpan.attributes['gen_ai.usage.input_tokens']).toEqual(expect.any(Number));
    expect(one(spans.filter((s) => s.kind === SPAN_KIND.CLIENT), 'client span').parentSpanId).toBe(serverSpan.spanId);
  });
});

describe('errors on spans', () => {
  it('should mark the client and server spans as errors when the replica answers 500', async () => {
    await standIn.setFaults({ failNext: 1 });
    const caller = newTraceparent();
    const res = await http(`${server.url}/v1/chat/completions`, { json: CHAT, headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(502);
    expect(res.headers.get('x-trace-id')).toBe(caller.traceId);
    const spans = await receiver.waitForSpans(['POST /v1/chat/completions', 'POST /v1/chat/completions'], { filter: (s) => s.traceId === caller.traceId });
    const serverSpan = one(spans.filter((s) => s.kind === SPAN_KIND.SERVER), 'server span');
    const clientSpan = one(spans.filter((s) => s.kind === SPAN_KIND.CLIENT), 'client span');
    expect(serverSpan.status).toEqual({ code: STATUS_CODE.ERROR, message: 'TESSERA_E_UPSTREAM_FAILED' });
    expect(serverSpan.attributes).toMatchObject({ 'http.response.status_code': 502, 'tessera.error.code': 'TESSERA_E_UPSTREAM_FAILED' });
    expect(clientSpan.parentSpanId).toBe(serverSpan.spanId);
    expect(clientSpan.status.code).toBe(STATUS_CODE.ERROR);
    expect(clientSpan.attributes).toMatchObject({ 'http.response.status_code': 500, 'tessera.error.code': 'TESSERA_E_UPSTREAM_FAILED' });
    expect(clientSpan.events.map((e) => e.name)).toContain('exception');
  });

  it('should record the error code, not an error status, for a 4xx (unknown model): the client erred, not the server', async () => {
    const caller = newTraceparent();
    const res = await http(`${server.url}/v2/models/no-such-model/infer`, { json: { inputs: [x(5)] }, headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-trace-id')).toBe(caller.traceId);
    const [span] = await receiver.waitForSpans([SERVER_SPAN_INFER], { filter: (s) => s.traceId === caller.traceId });
    // OpenTelemetry HTTP conventions: 4xx leaves a server span's status unset
    expect(span!.status.code).toBe(STATUS_CODE.UNSET);
    expect(span!.attributes).toMatchObject({ 'http.response.status_code': 404, 'tessera.error.code': 'TESSERA_E_MODEL_NOT_FOUND', 'url.path': '/v2/models/no-such-model/infer' });
    // no model label for a name that is not configured
    expect(span!.attributes['tessera.model']).toBeUndefined();
    expect(receiver.trace(caller.traceId).map((s) => s.name)).toEqual([SERVER_SPAN_INFER]);
  });

  it('should mark the client span as an error when the stream breaks after the first token', async () => {
    await standIn.setFaults({ dropStreams: 1, dropAfterTokens: 2 });
    const caller = newTraceparent();
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: caller.traceparent },
      body: JSON.stringify({ ...CHAT, stream: true, max_tokens: 10 }),
    });
    expect(res.status).toBe(200);
    // Tessera ends a broken stream with an error event (then [DONE])
    const text = await res.text();
    expect(text).toContain('"code":"TESSERA_E_STREAM_INTERRUPTED"');
    const spans = await receiver.waitForSpans(['POST /v1/chat/completions', 'POST /v1/chat/completions'], { filter: (s) => s.traceId === caller.traceId });
    const serverSpan = one(spans.filter((s) => s.kind === SPAN_KIND.SERVER), 'server span');
    const clientSpan = one(spans.filter((s) => s.kind === SPAN_KIND.CLIENT), 'client span');
    expect(clientSpan.status.code).toBe(STATUS_CODE.ERROR);
    expect(serverSpan.attributes['tessera.error.code']).toBe('TESSERA_E_STREAM_INTERRUPTED');
  });

  it('should keep span names bounded for unknown endpoints (no URL path in the name)', async () => {
    const caller = newTraceparent();
    const res = await http(`${server.url}/no/such/endpoint/8f2c1d`, { headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(404);
    await waitFor(() => receiver.trace(caller.traceId).length > 0, { message: () => 'no span for the unknown endpoint' });
    const span = one(receiver.trace(caller.traceId), 'server span of the unknown endpoint');
    expect(span.kind).toBe(SPAN_KIND.SERVER);
    expect(span.attributes['http.response.status_code']).toBe(404);
    // the path is in url.path; a span name (and http.route) must not carry it, or every probed URL makes a new span name
    expect(span.attributes['url.path']).toBe('/no/such/endpoint/8f2c1d');
    expect(span.name).not.toContain('8f2c1d');
    expect(String(span.attributes['http.route'] ?? '')).not.toContain('8f2c1d');
  });
});

describe('sampling of batches', () => {
  let sparse: TesseraProcess;

  beforeAll(async () => {
    // sampleRatio 0: new traces are never sampled; callers' sampled traces always are (parent-based)
    const config = await writeModelsAndConfig('sparse.yaml', {
      plugins: ['@tessera/tracing'],
      tracing: { endpoint: receiver.url, protocol: 'http/json', serviceName: 'tessera-it-sparse', sampleRatio: 0, batch: { scheduledDelay: 50 } },
    });
    sparse = await startTessera({ args: ['serve', '-c', config], env: CLEAN_ENV });
  }, 60_000);

  afterAll(async () => {
    await sparse?.stop();
  });

  it("should record the batch of requests whose callers' traces are sampled, whatever sampleRatio says about new traces", async () => {
    // server, route and queue spans follow the callers' sampled flag; the batch span must too,
    // or a sampled request's trace links to nothing at every ratio below 1
    const { batch } = await concurrentBatch(sparse);
    expect(batch.resource['service.name']).toBe('tessera-it-sparse');
  });

  it('should record nothing for requests without traceparent', async () => {
    const res = await http(`${sparse.url}${INFER}`, { json: { inputs: [x(20)] } });
    expect(res.status).toBe(200);
    const traceId = res.headers.get('x-trace-id')!;
    // then a sampled request: once its spans are in, anything of the first would be too
    const caller = newTraceparent();
    await http(`${sparse.url}${INFER}`, { json: { inputs: [x(21)] }, headers: { traceparent: caller.traceparent } });
    await receiver.waitForSpans([SERVER_SPAN_INFER, 'tessera.queue'], { filter: (s) => s.traceId === caller.traceId });
    expect(receiver.trace(traceId)).toEqual([]);
    expect(receiver.spans.filter((s) => s.resource['service.name'] === 'tessera-it-sparse' && s.links.some((l) => l.traceId === traceId))).toEqual([]);
  });
});

describe('without the tracing plugin', () => {
  let plain: TesseraProcess;
  let silentReceiver: OtlpReceiver;

  beforeAll(async () => {
    silentReceiver = await startOtlpReceiver();
    const config = await writeModelsAndConfig('plain.yaml', {});
    // the standard variables point at a receiver: without the plugin nothing may read them
    plain = await startTessera({
      args: ['serve', '-c', config],
      env: { ...CLEAN_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: silentReceiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' },
    });
  }, 60_000);

  afterAll(async () => {
    await plain?.stop();
    await silentReceiver?.close();
  });

  it('should add no X-Trace-Id header and export nothing, and pass a caller traceparent on unchanged', async () => {
    await standIn.reset();
    const caller = newTraceparent();
    const tensor = await http(`${plain.url}${INFER}`, { json: { inputs: [x(6)] }, headers: { traceparent: caller.traceparent } });
    expect(tensor.status).toBe(200);
    expect(tensor.headers.get('x-trace-id')).toBeNull();
    const chat = await http(`${plain.url}/v1/chat/completions`, { json: CHAT, headers: { traceparent: caller.traceparent } });
    expect(chat.status).toBe(200);
    expect(chat.headers.get('x-trace-id')).toBeNull();
    const missing = await http(`${plain.url}/v2/models/no-such-model/infer`, { json: { inputs: [x(7)] } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-trace-id')).toBeNull();

    // no span of ours: the replica sees the caller's own traceparent
    const upstream = (await standIn.stats()).requests.filter((r) => r.path === '/v1/chat/completions');
    expect(upstream).toHaveLength(1);
    expect(upstream[0]!.headers.traceparent).toBe(caller.traceparent);

    // 20 × the schedule delay the environment asks for
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(silentReceiver.exports).toEqual([]);
    expect(silentReceiver.rejected).toEqual([]);
    // nor did anything of this server reach the traced server's receiver
    expect(receiver.trace(caller.traceId)).toEqual([]);
    expect(plain.stdout.join('\n')).not.toContain('tracing:');
  });
});

describe('shutdown', () => {
  /** A traced server whose spans wait (1 h schedule) until the shutdown flush. */
  async function startHoldingServer(name: string): Promise<TesseraProcess> {
    const config = await writeModelsAndConfig(name, {
      server: { host: '127.0.0.1', port: 0, shutdownGracePeriod: '1s' },
      plugins: ['@tessera/tracing'],
      tracing: { endpoint: receiver.url, protocol: 'http/json', serviceName: 'tessera-it-shutdown', exportTimeout: '2s', batch: { scheduledDelay: '1h' } },
    });
    return startTessera({ args: ['serve', '-c', config], env: CLEAN_ENV });
  }

  /** SIGTERM, then the exit code, or SIGKILL and undefined when it takes longer than `ms`. */
  async function stopWithin(p: TesseraProcess, ms: number): Promise<number | null | undefined> {
    const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms));
    const code = await Promise.race([p.stop(), timer]);
    if (code === undefined) {
      // stop() sends one signal only: kill it directly
      p.child.kill('SIGKILL');
      await p.exited;
    }
    return code;
  }

  async function tracedRequest(p: TesseraProcess): Promise<string> {
    const caller = newTraceparent();
    const res = await http(`${p.url}${INFER}`, { json: { inputs: [x(30)] }, headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.trace(caller.traceId), 'nothing exported before the shutdown').toEqual([]);
    return caller.traceId;
  }

  /** Never leave a server behind, whatever failed. */
  const started: TesseraProcess[] = [];
  afterAll(async () => {
    for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });

  it('should flush the queued spans when the server stops', async () => {
    const p = await startHoldingServer('shutdown-flush.yaml');
    started.push(p);
    const traceId = await tracedRequest(p);
    expect(await stopWithin(p, 10_000)).toBe(0);
    expect(receiver.trace(traceId).map((s) => s.name).sort()).toEqual([SERVER_SPAN_INFER, 'tessera.queue', 'tessera.route']);
  });

  it('should stop within the grace period and flush, even while a client holds an idle connection', async () => {
    const p = await startHoldingServer('shutdown-idle.yaml');
    started.push(p);
    const traceId = await tracedRequest(p);
    // a connection that sends nothing (a load balancer's pool, a browser preconnect)
    const socket = connect(p.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    try {
      const started = Date.now();
      const code = await stopWithin(p, 10_000);
      expect(code, `exit after SIGTERM within 10 s (grace period 1 s); took ${Date.now() - started} ms`).toBe(0);
      expect(receiver.trace(traceId).length).toBe(3);
    } finally {
      socket.destroy();
    }
  });
});

describe('the receiver', () => {
  it('should have received only OTLP/JSON it could decode', () => {
    expect(receiver.rejected).toEqual([]);
    expect(receiver.exports.length).toBeGreaterThan(0);
    for (const e of receiver.exports) expect(e.headers['content-type']).toContain('application/json');
  });
});
