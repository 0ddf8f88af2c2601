/**
 * Request deadlines over real HTTP on 127.0.0.1: `X-Request-Timeout` (milliseconds or a duration),
 * `grpc-timeout`, `parameters.timeout` and the model's `timeout`, the smallest winning, counted
 * from arrival; a deadline that passes while the request waits in a queue (503
 * TESSERA_E_QUEUE_TIMEOUT) and one that passes while it runs (504
 * TESSERA_E_REQUEST_DEADLINE_EXCEEDED, answered before the execution ends); generations (503 while
 * waiting for a slot, 504 non-streamed, a stream cut with an error event and `[DONE]`); invalid
 * values (400); a deadline already past on arrival.
 */
import { FakeBackend } from '@tessera/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Started, TickStats } from './support.js';
import { backendsPlugin, sseData, startServer, tickingGenerate } from './support.js';

/** Ids (the first value of `x`) of the requests whose execution on the slow fake model finished. */
const finished = new Set<number>();
const slow = new FakeBackend({
  delayMs: 400,
  compute: (request) => {
    finished.add((request.inputs[0]!.data as Float32Array)[0]!);
    return [{ ...request.inputs[0]!, name: 'y' }];
  },
});
const streams: TickStats = { running: 0, maxRunning: 0, aborted: 0, started: 0 };
const llm = new FakeBackend({ generate: tickingGenerate(streams, 40, 0) });
let s: Started;

beforeAll(async () => {
  s = await startServer(
    {
      models: {
        // eight instances: each test's request runs at once, whatever the earlier ones still run
        slow: { backend: 'slow', warmup: false, instances: 8 },
        'slow-timeout': { backend: 'slow', warmup: false, instances: 8, timeout: '150ms' },
        // one instance, one request at a time: the second one queues
        'slow-pt': { backend: 'slow', warmup: false },
        'slow-dyn': { backend: 'slow', warmup: false, batching: { batcher: 'dynamic', maxBatchSize: 1 } },
        llm: { backend: 'llm', generation: { maxConcurrent: 1, maxQueued: 1 } },
        'llm-wide': { backend: 'llm' },
      },
    },
    [backendsPlugin({ slow, llm })],
  );
});

afterAll(async () => {
  await s?.close();
});

let nextId = 1;

/** A body whose `x` starts with a fresh id; `parameters` when given. */
function body(parameters?: Record<string, unknown>): { id: number; text: string } {
  const id = nextId++;
  return { id, text: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [id, 0, 0, 0] }], ...(parameters ? { parameters } : {}) }) };
}

/** One inference; `done` says whether its execution had finished when the answer came. */
async function infer(model: string, headers: Record<string, string> = {}, sent = body()): Promise<{ status: number; body: { error?: string; code?: string }; headers: Headers; done: boolean }> {
  const res = await fetch(`${s.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: sent.text });
  const done = finished.has(sent.id);
  return { status: res.status, body: (await res.json()) as { error?: string; code?: string }, headers: res.headers, done };
}

describe('a deadline that passes during execution', () => {
  it.each([
    ['X-Request-Timeout in milliseconds', { 'x-request-timeout': '120' }, undefined, /120 ms \(X-Request-Timeout\)/],
    ['X-Request-Timeout as a duration', { 'x-request-timeout': '0.12s' }, undefined, /120 ms \(X-Request-Timeout\)/],
    ['grpc-timeout', { 'grpc-timeout': '120m' }, undefined, /120 ms \(grpc-timeout\)/],
    // Triton's unit: microseconds
    ['parameters.timeout', {}, { timeout: 120_000 }, /120 ms \(parameters\.timeout\)/],
  ])('should answer 504 TESSERA_E_REQUEST_DEADLINE_EXCEEDED before the execution ends (%s)', async (_, headers, parameters, origin) => {
    const before = slow.instances.reduce((n, i) => n + i.batches.length, 0);
    const r = await infer('slow', headers, body(parameters));
    expect(r.status).toBe(504);
    expect(r.body.code).toBe('TESSERA_E_REQUEST_DEADLINE_EXCEEDED');
    expect(r.body.error).toMatch(origin);
    expect(r.body.error).toMatch(/during its execution; the result is dropped/);
    // answered at the deadline: the execution it started was still running
    expect(slow.instances.reduce((n, i) => n + i.batches.length, 0)).toBe(before + 1);
    expect(r.done).toBe(false);
  });

  it("should apply the model's timeout, and let a request lower it but never raise it", async () => {
    const byModel = await infer('slow-timeout', {});
    expect(byModel.status).toBe(504);
    expect(byModel.body.error).toMatch(/150 ms \(models\.slow-timeout\.timeout\)/);
    const raised = await infer('slow-timeout', { 'x-request-timeout': '10s' });
    expect(raised.body.error).toMatch(/150 ms \(models\.slow-timeout\.timeout\)/);
    const lowered = await infer('slow-timeout', { 'x-request-timeout': '100', 'grpc-timeout': '5S' });
    expect(lowered.status).toBe(504);
    expect(lowered.body.error).toMatch(/100 ms \(X-Request-Timeout\)/);
  });

  it('should answer normally when the deadline leaves room', async () => {
    const r = await infer('slow', { 'x-request-timeout': '30s' });
    expect(r.status).toBe(200);
  });
});

describe('a deadline that passes in the queue', () => {
  it.each(['slow-pt', 'slow-dyn'])('should take the request out of the %s queue with 503 TESSERA_E_QUEUE_TIMEOUT and Retry-After', async (model) => {
    const first = infer(model);
    // the first request occupies the only instance
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await infer(model, { 'x-request-timeout': '100ms' });
    expect(second.status).toBe(503);
    expect(second.body.code).toBe('TESSERA_E_QUEUE_TIMEOUT');
    expect(second.body.error).toMatch(/100 ms \(X-Request-Timeout\) passed while it waited in the batching queue/);
    expect(second.headers.get('retry-after')).toBe('1');
    expect((await first).status).toBe(200);
  });
});

describe('deadlines on arrival', () => {
  it.each([
    [{ 'x-request-timeout': 'soon' }, /X-Request-Timeout must be milliseconds or a duration/],
    [{ 'x-request-timeout': '-5' }, /X-Request-Timeout/],
    [{ 'grpc-timeout': '1.5S' }, /grpc-timeout must be up to 8 digits and a unit/],
    [{ 'grpc-timeout': '100ms' }, /grpc-timeout/],
  ])('should refuse %j with 400 TESSERA_E_REQUEST_DEADLINE_INVALID', async (headers, message) => {
    const r = await infer('slow', headers);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('TESSERA_E_REQUEST_DEADLINE_INVALID');
    expect(r.body.error).toMatch(message);
  });

  it('should refuse an invalid parameters.timeout with 400 TESSERA_E_REQUEST_INVALID', async () => {
    const r = await infer('slow', {}, body({ timeout: -1 }));
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('TESSERA_E_REQUEST_INVALID');
  });

  it('should answer a deadline already past at once with 504, running nothing', async () => {
    const before = slow.instances.reduce((n, i) => n + i.batches.length, 0);
    for (const headers of [{ 'grpc-timeout': '0m' }, { 'x-request-timeout': '0' }] as Record<string, string>[]) {
      const r = await infer('slow', headers);
      expect(r.status).toBe(504);
      expect(r.body.code).toBe('TESSERA_E_REQUEST_DEADLINE_EXCEEDED');
      expect(r.body.error).toMatch(/passed on arrival/);
    }
    expect(slow.instances.reduce((n, i) => n + i.batches.length, 0)).toBe(before);
  });

  it('should refuse invalid deadline headers on the OpenAI routes in OpenAI\'s shape', async () => {
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'grpc-timeout': 'never' }, body: JSON.stringify({ model: 'llm-wide', messages: [{ role: 'user', content: 'hi' }] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'TESSERA_E_REQUEST_DEADLINE_INVALID', type: 'invalid_request_error' } });
  });
});

describe('generations', () => {
  const chat = (model: string, stream: boolean) => JSON.stringify({ model, messages: [{ role: 'user', content: 'count' }], stream });

  it('should end a stream at its deadline with an error event naming the deadline, then [DONE], and abort the backend', async () => {
    const aborted = streams.aborted;
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-timeout': '300ms' }, body: chat('llm-wide', true) });
    expect(res.status).toBe(200);
    const events = sseData(await res.text());
    expect(events.at(-1)).toBe('[DONE]');
    const error = JSON.parse(events.at(-2)!) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('TESSERA_E_REQUEST_DEADLINE_EXCEEDED');
    expect(error.error.message).toMatch(/300 ms \(X-Request-Timeout\) passed during the stream/);
    // some chunks went out before the deadline (a tick every 40 ms, the stream never ends by itself)
    expect(events.length).toBeGreaterThan(3);
    expect(streams.aborted).toBe(aborted + 1);
  });

  it('should answer a non-streamed generation past its deadline with 504 in OpenAI\'s shape', async () => {
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'grpc-timeout': '200m' }, body: chat('llm-wide', false) });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: { code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED', type: 'server_error' } });
  });

  it('should time out a generation waiting for a slot with 503 TESSERA_E_QUEUE_TIMEOUT, and refuse one beyond the queue with 503 TESSERA_E_QUEUE_FULL', async () => {
    // the only slot of `llm`: a stream that ends at its deadline
    const holder = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-timeout': '1500' }, body: chat('llm', true) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const waiting = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-timeout': '300' }, body: chat('llm', true) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const beyond = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('llm', true) });
    expect(beyond.status).toBe(503);
    expect(beyond.headers.get('retry-after')).toBe('1');
    expect(await beyond.json()).toMatchObject({ error: { code: 'TESSERA_E_QUEUE_FULL' } });
    const timedOut = await waiting;
    expect(timedOut.status).toBe(503);
    expect(timedOut.headers.get('retry-after')).toBe('1');
    expect(((await timedOut.json()) as { error: { message: string } }).error).toMatchObject({ code: 'TESSERA_E_QUEUE_TIMEOUT', message: expect.stringMatching(/waited for a generation slot/) });
    const held = await holder;
    expect(held.status).toBe(200);
    expect(sseData(await held.text()).at(-1)).toBe('[DONE]');
    // the slot is free again
    const after = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-timeout': '200' }, body: chat('llm', true) });
    expect(after.status).toBe(200);
    await after.text();
  });
});
