/**
 * The core's OpenAI-compatible endpoints over real HTTP with the official `openai` client, in
 * front of an in-process generative backend whose chunks each test scripts (the vLLM gateway has
 * its own tests against a vLLM stand-in). Checks SSE framing, the role/usage/[DONE] rules, errors
 * in OpenAI's shape, mid-stream failures and client aborts.
 */
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateChunk, GenerateRequest, ModelInstance } from '../contracts/backend.js';
import type { GenerationEvent } from '../contracts/events.js';
import { resolveConfig } from '../config/index.js';
import { TesseraError } from '../errors.js';
import { definePlugin } from '../plugins/define-plugin.js';
import { TesseraServer } from '../server.js';

type Script = (req: GenerateRequest, signal: AbortSignal) => AsyncGenerator<GenerateChunk>;

const seen: GenerateRequest[] = [];
const aborted: string[] = [];
let script: Script;

function chatChunk(content: string | undefined, extra: Record<string, unknown> = {}): GenerateChunk {
  const delta = content === undefined ? { role: 'assistant', content: '' } : { content };
  return { data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [{ index: 0, delta, logprobs: null, finish_reason: null }], ...extra } };
}

const finalChunk: GenerateChunk = { data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] } };
const usageChunk: GenerateChunk = {
  data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } },
};

/** A well-behaved stream: role, three tokens, finish, usage when asked. */
const goodStream: Script = async function* (req) {
  yield chatChunk(undefined);
  for (const t of ['Hel', 'lo', '!']) yield chatChunk(t);
  yield finalChunk;
  const opts = req.body.stream_options as { include_usage?: boolean } | undefined;
  if (opts?.include_usage) yield usageChunk;
};

const plugin = definePlugin({
  name: 'scripted-llm',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('scripted', {
      requiresPath: false,
      async load(): Promise<ModelInstance> {
        return {
          metadata: { platform: 'scripted', inputs: [], outputs: [], maxBatchSize: 0 },
          // the backend declares the headers it needs beyond the request id and trace context
          requestHeaders: ['X-Session-Id'],
          generate(req, signal) {
            seen.push(req);
            const id = String(req.headers['x-request-id']);
            signal.addEventListener('abort', () => aborted.push(id), { once: true });
            return script(req, signal);
          },
          async unload() {},
        };
      },
    });
  },
});

let server: TesseraServer;
let url: string;
let client: OpenAI;
const generations: GenerationEvent[] = [];

beforeAll(async () => {
  const config = resolveConfig(
    { server: { host: '127.0.0.1', port: 0 }, models: { llm: { backend: 'scripted' }, chat2: { backend: 'scripted', versions: { '1': {} } } } },
    { configDir: '/', env: {} },
  );
  server = new TesseraServer({ config, plugins: [plugin], logger: pino({ level: 'silent' }) });
  server.events.on('generation', (e) => generations.push(e));
  ({ url } = await server.start());
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
});

async function rawStream(body: Record<string, unknown>): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

describe('POST /v1/chat/completions (streaming)', () => {
  it('should send each chunk as one `data:` event and end with [DONE]', async () => {
    script = goodStream;
    const r = await rawStream({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/event-stream/);
    const events = r.text.split('\n\n');
    expect(events.at(-1)).toBe('');
    expect(events.at(-2)).toBe('data: [DONE]');
    const chunks = events.slice(0, -2).map((e) => JSON.parse(e.replace(/^data: /, '')) as { choices: { delta: { role?: string; content?: string } }[] });
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello!');
    // the core asked the backend for usage; the client did not ask, so it sees no usage chunk
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
  });

  it('should stream through the official client and include usage only when asked', async () => {
    script = goodStream;
    const text: string[] = [];
    let usage: unknown;
    const stream = await client.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      text.push(chunk.choices[0]?.delta.content ?? '');
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.join('')).toBe('Hello!');
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });

  it('should pass unknown fields through untouched and forward the declared session header and the trace headers, no other', async () => {
    script = goodStream;
    const body = { model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true, top_k: 5, min_p: 0.1, repetition_penalty: 1.1, structured_outputs: { regex: '[a-z]+' }, foo: { bar: [1] } };
    await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'abc', 'x-user': 'u1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', cookie: 'secret' },
      body: JSON.stringify(body),
    }).then((r) => r.text());
    const req = seen.at(-1)!;
    expect(req.kind).toBe('chat');
    expect(req.stream).toBe(true);
    expect(req.body).toEqual({ ...body, stream_options: { include_usage: true } });
    expect(req.headers['x-session-id']).toBe('abc');
    expect(req.headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(req.headers.cookie).toBeUndefined();
    expect(req.headers['x-user']).toBeUndefined();
    expect(Object.keys(req.headers).sort()).toEqual(['traceparent', 'x-request-id', 'x-session-id']);
  });

  it('should end a stream that fails midway with an error event and [DONE]', async () => {
    script = async function* () {
      yield chatChunk(undefined);
      yield chatChunk('par');
      throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', 'replica http://x died');
    };
    const r = await rawStream({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    expect(r.status).toBe(200);
    const events = r.text.trim().split('\n\n');
    expect(events.at(-1)).toBe('data: [DONE]');
    const error = JSON.parse(events.at(-2)!.replace(/^data: /, '')) as { error: Record<string, unknown> };
    expect(error.error).toMatchObject({ type: 'server_error', code: 'TESSERA_E_STREAM_INTERRUPTED', param: null });
    expect(error.error.message).toContain('replica http://x died');

    // the official client turns the error event into an APIError
    const stream = await client.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    await expect(
      (async () => {
        for await (const _ of stream) void _;
      })(),
    ).rejects.toThrow(/replica http:\/\/x died/);
  });

  it('should answer a failure before the first chunk with a plain HTTP error', async () => {
    script = async function* () {
      yield* [];
      throw new TesseraError('TESSERA_E_UPSTREAM_UNAVAILABLE', 'no healthy replica', { headers: { 'retry-after': '2' } });
    };
    const err = await client.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const e = err as InstanceType<typeof OpenAI.APIError>;
    expect(e.status).toBe(503);
    expect(e.headers?.get('retry-after')).toBe('2');
    expect(e.error).toEqual({ message: 'no healthy replica', type: 'server_error', param: null, code: 'TESSERA_E_UPSTREAM_UNAVAILABLE' });
  });

  it("should pass an engine's rejection through with its status, type and param", async () => {
    script = async function* () {
      yield* [];
      throw new TesseraError('TESSERA_E_UPSTREAM_REJECTED', "This model's maximum context length is 4096 tokens.", { status: 400, openai: { type: 'BadRequestError', param: 'max_tokens', code: 400 } });
    };
    const err = (await client.completions.create({ model: 'llm', prompt: 'x', max_tokens: 9999 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(400);
    expect(err.error).toEqual({ message: "This model's maximum context length is 4096 tokens.", type: 'BadRequestError', param: 'max_tokens', code: 400 });
  });

  it('should abort the backend when the client goes away mid-stream', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    script = async function* (_req, signal) {
      yield chatChunk(undefined);
      yield chatChunk('a');
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
        void gate.then(resolve);
      });
      yield chatChunk('never');
    };
    const controller = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'abort-me' },
      body: JSON.stringify({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await expect.poll(() => aborted.includes('abort-me'), { timeout: 5000 }).toBe(true);
    release();
  });
});

describe('POST /v1/chat/completions and /v1/completions (not streaming)', () => {
  it('should return the one response object as is', async () => {
    const response = { id: 'cmpl-1', object: 'text_completion', created: 1, model: 'llm', choices: [{ index: 0, text: 'abc', logprobs: null, finish_reason: 'length' }], usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 } };
    script = async function* () {
      yield { data: response, json: JSON.stringify(response) };
    };
    const before = generations.length;
    const out = await client.completions.create({ model: 'llm', prompt: 'x', max_tokens: 3 });
    expect(out).toEqual(response);
    expect(seen.at(-1)!.kind).toBe('completion');
    expect(seen.at(-1)!.stream).toBe(false);
    await expect.poll(() => generations.length).toBe(before + 1);
    expect(generations.at(-1)).toMatchObject({ model: 'llm', version: '1', kind: 'completion', stream: false, ok: true, promptTokens: 1, completionTokens: 3 });
  });
});

describe('errors in OpenAI shape', () => {
  it('should answer 404 for an unknown model', async () => {
    const err = (await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(404);
    expect(err.error).toMatchObject({ type: 'not_found_error', code: 'TESSERA_E_MODEL_NOT_FOUND', param: null });
  });

  it('should answer 400 naming the field when messages are missing', async () => {
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'llm' }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', param: 'messages', code: 'TESSERA_E_REQUEST_INVALID' });
  });

  it('should answer 400 for a body that is not JSON', async () => {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', code: 'TESSERA_E_REQUEST_INVALID' });
  });
});

describe('GET /v1/models', () => {
  it('should list the generative models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['chat2', 'llm']);
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'tessera' });
  });
});

describe('telemetry', () => {
  it('should report time to first token, time per output token and token counts of a stream', async () => {
    script = goodStream;
    const before = generations.length;
    const stream = await client.chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _ of stream) void _;
    await expect.poll(() => generations.length).toBe(before + 1);
    const e = generations.at(-1)!;
    expect(e).toMatchObject({ kind: 'chat', stream: true, ok: true, promptTokens: 5, completionTokens: 3 });
    expect(e.ttftMs).toBeGreaterThan(0);
    expect(e.tpotMs).toBeGreaterThanOrEqual(0);
    expect(e.ttftMs!).toBeLessThanOrEqual(e.durationMs);
  });
});
