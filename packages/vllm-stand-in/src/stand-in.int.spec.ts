/**
 * The vLLM stand-in against the official `openai` client and raw HTTP: vLLM's response shapes
 * (fields, order, SSE framing), errors, metrics, health, continuous batching, aborts and faults,
 * and the `vllm serve` command line (its flag parsing alone is unit-tested in cli.spec.ts).
 */
import OpenAI, { APIError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { VllmStandIn, VllmStandInOptions } from './index.js';
import { runCli, startVllmStandIn } from './index.js';

const MODEL = 'stand-in-model';

let standIn: VllmStandIn;
let client: OpenAI;
const extra: VllmStandIn[] = [];

async function start(options: VllmStandInOptions): Promise<VllmStandIn> {
  const s = await startVllmStandIn(options);
  extra.push(s);
  return s;
}

beforeAll(async () => {
  standIn = await startVllmStandIn({ model: 'org/stand-in-model', servedModelName: [MODEL, 'alias'], maxModelLen: 256 });
  client = new OpenAI({ baseURL: `${standIn.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterEach(async () => {
  standIn.reset();
  await Promise.all(extra.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await standIn.close();
});

async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** The SSE events of a response body, framing checked: `data: …` events separated by a blank line. */
function sseEvents(text: string): string[] {
  expect(text.endsWith('\n\n')).toBe(true);
  const events = text.slice(0, -2).split('\n\n');
  for (const e of events) expect(e.startsWith('data: ')).toBe(true);
  return events.map((e) => e.slice('data: '.length));
}

async function apiError(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error('expected an APIError');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('chat completions', () => {
  it('answers like vLLM, deterministically, with the first served name', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about the stand in' }];
    const a = await client.chat.completions.create({ model: 'alias', messages, max_tokens: 5 });
    const b = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5 });
    expect(a.id).toMatch(/^chatcmpl-[0-9a-f]{16}$/);
    expect(a.object).toBe('chat.completion');
    expect(a.model).toBe(MODEL);
    expect(a.choices).toHaveLength(1);
    expect(a.choices[0]!.message.role).toBe('assistant');
    expect(a.choices[0]!.message.content!.split(' ')).toHaveLength(5);
    expect(a.choices[0]!.finish_reason).toBe('length');
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    // 6 words + 4 per message + 3 for the generation prompt
    expect(a.usage).toEqual({ prompt_tokens: 13, total_tokens: 18, completion_tokens: 5, prompt_tokens_details: null });
  });

  it('emits every field of vLLM\'s response model, in order', async () => {
    const res = await post(standIn.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 3 });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as any;
    expect(Object.keys(body)).toEqual([
      'id', 'object', 'created', 'model', 'choices', 'service_tier', 'system_fingerprint', 'usage', 'prompt_logprobs', 'prompt_token_ids', 'prompt_text', 'kv_transfer_params',
    ]);
    expect(Object.keys(body.choices[0])).toEqual(['index', 'message', 'logprobs', 'finish_reason', 'stop_reason', 'token_ids', 'routed_experts']);
    expect(body.choices[0].message).toEqual({
      role: 'assistant',
      content: expect.any(String),
      refusal: null,
      annotations: null,
      audio: null,
      function_call: null,
      tool_calls: [],
      reasoning: null,
    });
    expect(Object.keys(body.usage)).toEqual(['prompt_tokens', 'total_tokens', 'completion_tokens', 'prompt_tokens_details']);
    expect(body.system_fingerprint).toMatch(/^vllm-0\.26\.0-[0-9a-f]{8}$/);
    expect(body.choices[0].stop_reason).toBeNull();
    expect(Number.isInteger(body.created)).toBe(true);
  });

  it('streams like vLLM: role chunk, one chunk per token, finish in the last token chunk, [DONE]', async () => {
    const res = await post(standIn.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi there' }], max_tokens: 3, stream: true });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = sseEvents(await res.text());
    expect(events).toHaveLength(5);
    expect(events[4]).toBe('[DONE]');
    const chunks = events.slice(0, 4).map((e) => JSON.parse(e));
    const { id, created } = chunks[0];
    expect(id).toMatch(/^chatcmpl-/);
    const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${MODEL}","choices":[{"index":0,"delta":`;
    expect(events[0]).toBe(`${head}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}`);
    const words = chunks.slice(1).map((c: any) => c.choices[0].delta.content as string);
    expect(events[1]).toBe(`${head}{"content":${JSON.stringify(words[0])}},"logprobs":null,"finish_reason":null,"token_ids":null}]}`);
    expect(words[1]!.startsWith(' ')).toBe(true);
    const fp = chunks[3].system_fingerprint as string;
    expect(events[3]).toBe(
      `${head}{"content":${JSON.stringify(words[2])}},"logprobs":null,"finish_reason":"length","stop_reason":null,"token_ids":null}],"system_fingerprint":"${fp}"}`,
    );
    for (const c of chunks) expect(c.id).toBe(id);

    const whole = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi there' }], max_tokens: 3 });
    expect(words.join('')).toBe(whole.choices[0]!.message.content);
  });

  it('adds the usage chunk (choices: []) for include_usage, through the openai client', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'count to three' }],
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    // 2 + 3 words, 2 messages × 4, 3 for the generation prompt
    expect(last.usage).toEqual({ prompt_tokens: 16, total_tokens: 20, completion_tokens: 4 });
    expect(last.system_fingerprint).toMatch(/^vllm-/);
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]!.finish_reason).toBe('length');
    expect((finish as any).system_fingerprint).toBeUndefined();
    expect(chunks.filter((c) => c.choices.length && c.choices[0]!.delta.content)).toHaveLength(4);
  });

  it('adds usage to every chunk with continuous_usage_stats', async () => {
    const res = await post(standIn.url, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'one two' }],
      max_tokens: 2,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    const chunks = sseEvents(await res.text())
      .slice(0, -1)
      .map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.usage.completion_tokens)).toEqual([0, 1, 2, 2]);
    expect(chunks.map((c) => c.usage.prompt_tokens)).toEqual([9, 9, 9, 9]);
    expect(Object.keys(chunks[1])).toEqual(['id', 'object', 'created', 'model', 'choices', 'usage']);
  });

  it('stops at a stop string (stop_reason), holding back partial matches while streaming', async () => {
    const messages = [{ role: 'user' as const, content: 'a prompt for stop strings' }];
    const full = (await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12 })).choices[0]!.message.content!;
    const words = full.split(' ');
    const stop = ` ${words[4]}`;
    const cut = full.slice(0, full.indexOf(stop));
    const stopped = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, stop: [stop] });
    expect(stopped.choices[0]!.message.content).toBe(cut);
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    expect((stopped.choices[0] as any).stop_reason).toBe(stop);

    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, stop: stop, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(cut);
    expect(finish).toBe('stop');
  });

  it('generates n choices', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 4, n: 2 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(r.choices[0]!.message.content).not.toBe(r.choices[1]!.message.content);
    expect(r.usage!.completion_tokens).toBe(8);
  });

  it('defaults max_tokens to defaultMaxTokens, capped by the context', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] });
    expect(r.usage!.completion_tokens).toBe(16);
    const small = await start({ maxModelLen: 20, defaultMaxTokens: null });
    const c = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const r2 = await c.chat.completions.create({ model: 'stand-in/model', messages: [{ role: 'user', content: 'x' }] });
    expect(r2.usage).toMatchObject({ prompt_tokens: 8, completion_tokens: 12 });
  });

  it('accepts vLLM\'s extra fields and records bodies and headers as sent', async () => {
    const body = {
      model: MODEL,
      messages: [{ role: 'user', content: 'pass me through' }],
      max_tokens: 2,
      top_k: 5,
      min_p: 0.1,
      repetition_penalty: 1.1,
      structured_outputs: { regex: '[a-z]+' },
      chat_template_kwargs: { enable_thinking: false },
      some_future_field: { nested: [1, 2] },
    };
    const res = await post(standIn.url, '/v1/chat/completions', body, { 'x-trace': 'abc' });
    expect(res.status).toBe(200);
    const stats = standIn.stats();
    expect(stats.lastRequest!.body).toEqual(body);
    expect(stats.lastRequest!.headers['x-trace']).toBe('abc');
    expect(stats.lastRequest!.path).toBe('/v1/chat/completions');
    expect(stats).toMatchObject({ received: 1, completed: 1, failed: 0, aborted: 0 });
  });

  it('uses X-Request-Id for the response id', async () => {
    const res = await post(standIn.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }, { 'x-request-id': 'my-id' });
    expect(((await res.json()) as any).id).toBe('chatcmpl-my-id');
  });
});

describe('completions', () => {
  it('answers like vLLM, non-streaming', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 4 });
    expect(r.id).toMatch(/^cmpl-[0-9a-f]{16}$/);
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text.split(' ')).toHaveLength(4);
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: 5, total_tokens: 9, completion_tokens: 4, prompt_tokens_details: null });
    const raw = (await (await post(standIn.url, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 4 })).json()) as any;
    expect(Object.keys(raw)).toEqual(['id', 'object', 'created', 'model', 'choices', 'service_tier', 'system_fingerprint', 'usage', 'kv_transfer_params']);
    expect(Object.keys(raw.choices[0])).toEqual(['index', 'text', 'logprobs', 'finish_reason', 'stop_reason', 'token_ids', 'prompt_logprobs', 'prompt_token_ids']);
    expect(raw.choices[0].text).toBe(r.choices[0]!.text);
  });

  it('defaults max_tokens to 16 as vLLM\'s CompletionRequest does', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'x' });
    expect(r.usage!.completion_tokens).toBe(16);
  });

  it('streams every field of each chunk, then the usage chunk and [DONE]', async () => {
    const res = await post(standIn.url, '/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 2, stream: true, stream_options: { include_usage: true } });
    const events = sseEvents(await res.text());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks).toHaveLength(3);
    expect(Object.keys(chunks[0])).toEqual(['id', 'object', 'created', 'model', 'choices', 'usage']);
    expect(chunks[0].usage).toBeNull();
    expect(chunks[0].choices[0]).toEqual({ index: 0, text: expect.any(String), logprobs: null, finish_reason: null, stop_reason: null, prompt_token_ids: null, token_ids: null });
    expect(chunks[1].choices[0].finish_reason).toBe('length');
    expect(chunks[2]).toEqual({ id: chunks[0].id, object: 'text_completion', created: chunks[0].created, model: MODEL, choices: [], usage: { prompt_tokens: 5, total_tokens: 7, completion_tokens: 2 } });
  });

  it('streams through the openai client, matching the non-streaming text', async () => {
    const stream = await client.completions.create({ model: MODEL, prompt: 'The quick brown fox', max_tokens: 6, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    const whole = await client.completions.create({ model: MODEL, prompt: 'The quick brown fox', max_tokens: 6 });
    expect(text).toBe(whole.choices[0]!.text);
  });

  it('takes several prompts and token-id prompts', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: ['a b', 'c d e'], max_tokens: 2 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(r.usage).toMatchObject({ prompt_tokens: 3 + 4, completion_tokens: 4 });
    const t = await client.completions.create({ model: MODEL, prompt: [1, 2, 3, 4], max_tokens: 1 });
    expect(t.usage!.prompt_tokens).toBe(4);
  });

  it('echoes the prompt when asked', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Echo me', max_tokens: 2, echo: true });
    expect(r.choices[0]!.text.startsWith('Echo me')).toBe(true);
  });
});

describe('errors, as vLLM returns them', () => {
  it('404 NotFoundError for an unknown model', async () => {
    const err = await apiError(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
    expect(err.status).toBe(404);
    expect(err.type).toBe('NotFoundError');
    expect(err.param).toBe('model');
    expect(err.message).toContain('The model `nope` does not exist.');
    const res = await post(standIn.url, '/v1/completions', { model: 'nope', prompt: 'x' });
    expect(await res.json()).toEqual({ error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
    expect(standIn.stats().failed).toBe(2);
  });

  it('400 BadRequestError for out-of-range sampling parameters', async () => {
    const msgs = [{ role: 'user' as const, content: 'x' }];
    const zero = await post(standIn.url, '/v1/chat/completions', { model: MODEL, messages: msgs, max_tokens: 0 });
    expect(zero.status).toBe(400);
    expect(await zero.json()).toEqual({
      error: { message: 'max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)', type: 'BadRequestError', param: 'max_tokens', code: 400 },
    });
    const hot = await apiError(client.chat.completions.create({ model: MODEL, messages: msgs, temperature: 3 }));
    expect(hot.status).toBe(400);
    expect(hot.type).toBe('BadRequestError');
    expect(hot.param).toBe('temperature');
    expect(hot.message).toContain('temperature must be in [0, 2], got 3.0.');
    const topP = await apiError(client.chat.completions.create({ model: MODEL, messages: msgs, top_p: 0 }));
    expect(topP.message).toContain('top_p must be in (0, 1], got 0.0.');
    const greedy = await apiError(client.chat.completions.create({ model: MODEL, messages: msgs, temperature: 0, n: 2 }));
    expect(greedy.message).toContain('n must be 1 when using greedy sampling, got 2.');
  });

  it('400 BadRequestError when prompt + max_tokens exceed max_model_len', async () => {
    const long = await apiError(client.completions.create({ model: MODEL, prompt: 'w '.repeat(250), max_tokens: 10 }));
    expect(long.status).toBe(400);
    expect(long.param).toBe('input_tokens');
    expect(long.message).toContain("You passed 251 input tokens and requested 10 output tokens. However, the model's context length is only 256 tokens");
    const big = await apiError(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 1000 }));
    expect(big.param).toBe('max_completion_tokens');
    expect(big.message).toContain('max_completion_tokens=1000 cannot be greater than max_model_len=max_total_tokens=256.');
  });

  it('400 "Bad Request" (request validation) for wrong types and missing fields', async () => {
    const missing = await post(standIn.url, '/v1/chat/completions', { model: MODEL });
    expect(missing.status).toBe(400);
    const body = (await missing.json()) as any;
    expect(body.error.type).toBe('Bad Request');
    expect(body.error.code).toBe(400);
    expect(body.error.param).toBeNull();
    expect(body.error.message).toContain("'loc': ('body', 'messages'), 'msg': 'Field required'");
    const frac = (await (await post(standIn.url, '/v1/chat/completions', { messages: [], max_tokens: 1.5 })).json()) as any;
    expect(frac.error.message).toContain("'type': 'int_from_float'");
    const noPrompt = (await (await post(standIn.url, '/v1/completions', { model: MODEL })).json()) as any;
    expect(noPrompt.error.message).toContain('Either prompt or prompt_embeds must be provided and non-empty.');
    const opts = await apiError(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } }));
    expect(opts.status).toBe(400);
    expect(opts.type).toBe('Bad Request');
    expect(opts.param).toBe('stream_options');
    const notJson = await fetch(`${standIn.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).error.message).toContain("Unsupported Media Type: Only 'application/json' is allowed");
    const broken = await fetch(`${standIn.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
    expect(((await broken.json()) as any).error.message).toContain('JSON decode error');
  });

  it('400 for tools without --enable-auto-tool-choice', async () => {
    const err = await apiError(
      client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }),
    );
    expect(err.status).toBe(400);
    expect(err.message).toContain('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set');
  });

  it('FastAPI\'s 404/405 for unknown routes and methods', async () => {
    const r404 = await fetch(`${standIn.url}/v1/nothing`);
    expect(r404.status).toBe(404);
    expect(await r404.json()).toEqual({ detail: 'Not Found' });
    const r405 = await fetch(`${standIn.url}/v1/chat/completions`);
    expect(r405.status).toBe(405);
  });

  it('401 without the API key on /v1 paths only', async () => {
    const secured = await start({ apiKey: 'sekrit' });
    const denied = await post(secured.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
    expect(denied.status).toBe(401);
    expect(await denied.json()).toEqual({ error: 'Unauthorized' });
    expect((await fetch(`${secured.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${secured.url}/health`)).status).toBe(200);
    expect((await fetch(`${secured.url}/metrics`)).status).toBe(200);
    const ok = await post(secured.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }, { authorization: 'Bearer sekrit' });
    expect(ok.status).toBe(200);
    const c = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
    expect((await c.models.list()).data[0]!.id).toBe('stand-in/model');
  });
});

describe('models, health, metrics', () => {
  it('/v1/models in vLLM\'s shape', async () => {
    const res = (await (await fetch(`${standIn.url}/v1/models`)).json()) as any;
    expect(res.object).toBe('list');
    expect(res.data.map((m: any) => m.id)).toEqual([MODEL, 'alias']);
    expect(res.data[0]).toEqual({
      id: MODEL,
      object: 'model',
      created: expect.any(Number),
      owned_by: 'vllm',
      root: 'org/stand-in-model',
      parent: null,
      max_model_len: 256,
      permission: [
        {
          id: expect.stringMatching(/^modelperm-[0-9a-f]{16}$/),
          object: 'model_permission',
          created: expect.any(Number),
          allow_create_engine: false,
          allow_sampling: true,
          allow_logprobs: true,
          allow_search_indices: false,
          allow_view: true,
          allow_fine_tuning: false,
          organization: '*',
          group: null,
          is_blocking: false,
        },
      ],
    });
    const listed = await client.models.list();
    expect(listed.data.map((m) => m.owned_by)).toEqual(['vllm', 'vllm']);
  });

  it('/health: 200 with an empty body, 503 when made unhealthy (JS handle and HTTP control)', async () => {
    const ok = await fetch(`${standIn.url}/health`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('');
    standIn.setFaults({ unhealthy: true });
    expect((await fetch(`${standIn.url}/health`)).status).toBe(503);
    await post(standIn.url, '/stand-in/faults', { unhealthy: false });
    expect((await fetch(`${standIn.url}/health`)).status).toBe(200);
    const bad = await post(standIn.url, '/stand-in/faults', { nope: 1 });
    expect(bad.status).toBe(400);
  });

  it('/metrics with vLLM\'s names and labels; running and waiting follow max_num_seqs', async () => {
    const s = await start({ servedModelName: 'm', maxNumSeqs: 1, tokenDelayMs: 20 });
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const calls = [0, 1, 2].map(() => c.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 }));
    await until(() => s.stats().running === 1 && s.stats().waiting === 2);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toContain('# TYPE vllm:num_requests_running gauge');
    expect(text).toContain('vllm:num_requests_running{model_name="m",engine="0"} 1.0');
    expect(text).toContain('vllm:num_requests_waiting{model_name="m",engine="0"} 2.0');
    expect(text).toMatch(/vllm:kv_cache_usage_perc\{model_name="m",engine="0"\} 0\.\d+/);
    expect(text).not.toContain('gpu_cache_usage_perc');
    await Promise.all(calls);
    const after = await (await fetch(`${s.url}/metrics`)).text();
    expect(after).toContain('vllm:num_requests_running{model_name="m",engine="0"} 0.0');
    expect(after).toContain('vllm:generation_tokens_total{model_name="m",engine="0"} 15.0');
    expect(after).toContain('vllm:prompt_tokens_total{model_name="m",engine="0"} 24.0');
    expect(after).toContain('vllm:request_success_total{model_name="m",engine="0",finished_reason="length"} 3.0');
    expect(after).toContain('vllm:e2e_request_latency_seconds_count{model_name="m",engine="0"} 3.0');

    const legacy = await start({ legacyMetricNames: true });
    const legacyText = await (await fetch(`${legacy.url}/metrics`)).text();
    expect(legacyText).toContain('vllm:gpu_cache_usage_perc{model_name="stand-in/model",engine="0"} 0.0');
    expect(legacyText).not.toContain('kv_cache_usage_perc');
    legacy.setFaults({ kvCacheUsage: 0.75 });
    expect(await (await fetch(`${legacy.url}/metrics`)).text()).toContain('vllm:gpu_cache_usage_perc{model_name="stand-in/model",engine="0"} 0.75');
  });
});

describe('aborts and faults', () => {
  it('counts a client that closes mid-stream as aborted and frees its slot at once', async () => {
    const s = await start({ maxNumSeqs: 1, tokenDelayMs: 50 });
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'y' }], max_tokens: 1000, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.startsWith('data: {')).toBe(true);
    expect(s.stats().running).toBe(1);
    ac.abort();
    await until(() => s.stats().aborted === 1);
    expect(s.stats()).toMatchObject({ aborted: 1, running: 0, completed: 0 });
    // The slot is free: another request runs to the end.
    expect((await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'z' }], max_tokens: 2 })).status).toBe(200);
  });

  it('frees the sequence of an aborted non-streaming request and of a waiting one', async () => {
    const s = await start({ maxNumSeqs: 1, tokenDelayMs: 30 });
    const running = new AbortController();
    const waiting = new AbortController();
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 });
    const opts = (signal: AbortSignal): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body, signal });
    const p1 = fetch(`${s.url}/v1/chat/completions`, opts(running.signal)).catch(() => undefined);
    await until(() => s.stats().running === 1);
    const p2 = fetch(`${s.url}/v1/chat/completions`, opts(waiting.signal)).catch(() => undefined);
    await until(() => s.stats().waiting === 1);
    waiting.abort();
    await until(() => s.stats().waiting === 0);
    running.abort();
    await until(() => s.stats().running === 0);
    await Promise.all([p1, p2]);
    expect(s.stats()).toMatchObject({ aborted: 2, completed: 0, running: 0, waiting: 0 });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain('finished_reason="abort"} 2.0');
  });

  it('fails the next N requests with vLLM\'s 500', async () => {
    standIn.setFaults({ failNext: 2 });
    for (let i = 0; i < 2; i++) {
      const err = await apiError(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }));
      expect(err.status).toBe(500);
      expect(err.type).toBe('InternalServerError');
    }
    const ok = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    expect(ok.choices).toHaveLength(1);
    expect(standIn.stats()).toMatchObject({ received: 3, failed: 2, completed: 1 });
  });

  it('resets the socket before any header', async () => {
    await post(standIn.url, '/stand-in/faults', { resetNext: 1 });
    await expect(post(standIn.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow();
    expect(standIn.stats().reset).toBe(1);
    expect((await post(standIn.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })).status).toBe(200);
  });

  it('drops a stream after K tokens, without [DONE]', async () => {
    standIn.setFaults({ dropStreams: 1, dropAfterTokens: 2 });
    const res = await post(standIn.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 10, stream: true });
    expect(res.status).toBe(200);
    let text = '';
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let failed = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
    expect(text).not.toContain('[DONE]');
    expect(text.match(/"content":"[^"]+"/g)).toHaveLength(2);
    const stats = (await (await fetch(`${standIn.url}/stand-in/stats`)).json()) as any;
    expect(stats).toMatchObject({ dropped: 1, aborted: 0, running: 0 });
  });

  it('resets counters and faults over HTTP', async () => {
    standIn.setFaults({ failNext: 5 });
    await post(standIn.url, '/stand-in/reset', {});
    expect(standIn.faults().failNext).toBe(0);
    expect(standIn.stats().received).toBe(0);
  });
});

describe('throughput', () => {
  it('serves 256 concurrent streams', async () => {
    const s = await start({ maxNumSeqs: 256 });
    const t0 = performance.now();
    const bodies = await Promise.all(
      Array.from({ length: 256 }, (_, i) =>
        post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: `request ${i}` }], max_tokens: 64, stream: true }).then((r) => r.text()),
      ),
    );
    const ms = performance.now() - t0;
    for (const b of bodies) expect(b.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(s.stats()).toMatchObject({ completed: 256, generationTokens: 256 * 64 });
    expect(ms).toBeLessThan(15_000);
  });
});

describe('vllm serve command line', () => {
  it('exits 2 with argparse\'s message for an unknown flag', async () => {
    let code: number | undefined;
    let stderr = '';
    const result = await runCli(['serve', 'm', '--bogus-flag', '1'], { exit: (c) => (code = c), stderr: (t) => (stderr += t), stdout: () => undefined, env: {} });
    expect(result).toBeUndefined();
    expect(code).toBe(2);
    expect(stderr).toBe('usage: vllm serve [model_tag] [options]\nvllm serve: error: unrecognized arguments: --bogus-flag 1\n');
  });

  it('starts in-process from a command line and prints what it parsed', async () => {
    let stdout = '';
    const s = await runCli(['serve', 'org/m', '--host', '127.0.0.1', '--port', '0', '--served-model-name', 'served'], {
      env: { CUDA_VISIBLE_DEVICES: '3,4', VLLM_STAND_IN_TOKEN_DELAY_MS: '1' },
      stdout: (t) => (stdout += t),
      exit: () => undefined,
      handleSignals: false,
    });
    expect(s).toBeDefined();
    extra.push(s!);
    const line = stdout.split('\n').find((l) => l.startsWith('VLLM_STAND_IN_ARGS '))!;
    const printed = JSON.parse(line.slice('VLLM_STAND_IN_ARGS '.length));
    expect(printed).toMatchObject({ model: 'org/m', host: '127.0.0.1', port: 0, servedModelName: ['served'], env: { CUDA_VISIBLE_DEVICES: '3,4' } });
    const r = await post(s!.url, '/v1/completions', { model: 'served', prompt: 'x', max_tokens: 2 });
    expect(((await r.json()) as any).model).toBe('served');
  });
});
