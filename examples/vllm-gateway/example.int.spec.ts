/**
 * The vllm-gateway example, as its README runs it: two vLLM stand-in processes (the
 * `vllm-stand-in` executable of `@tessera/vllm-stand-in`, which takes `vllm serve`'s command line
 * and speaks vLLM's protocol), then `tessera serve` on the example's config with only `VLLM_URLS`
 * set, then the official `openai` client against the gateway.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { startVllmStandInProcess } from '@tessera/vllm-stand-in';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/vllm-gateway/tessera.config.yaml';

/** `vllm-stand-in serve stand-in/llm --host 127.0.0.1 --port 0`, as `npx vllm-stand-in` runs it. */
const startStandIn = (): Promise<VllmStandInProcess> => startVllmStandInProcess('stand-in/llm');

const replicas: VllmStandInProcess[] = [];
let gateway: TesseraProcess;
let client: OpenAI;

beforeAll(async () => {
  replicas.push(...(await Promise.all([startStandIn(), startStandIn()])));
  gateway = await startTessera({
    args: ['serve', '-c', CONFIG],
    cwd: ROOT,
    // the one variable the README sets; the rest keep the config's defaults (undefined unsets an inherited one)
    env: {
      VLLM_URLS: replicas.map((r) => r.url).join(','),
      VLLM_MODEL: undefined,
      VLLM_API_KEY: undefined,
      VLLM_BALANCE: undefined,
      TESSERA_PORT: '0',
      TESSERA_HOST: '127.0.0.1',
      TESSERA_LOG_LEVEL: 'info',
    },
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  if (gateway) expect(await gateway.stop()).toBe(0);
  await Promise.all(replicas.map((r) => r.stop()));
});

const messages = [{ role: 'user' as const, content: 'Write a haiku about a mosaic.' }];

describe('examples/vllm-gateway in front of two vLLM stand-ins', () => {
  it('should list the gateway model on /v1/models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['chat']);
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'tessera' });
  });

  it('should answer a chat completion, streamed and not, with the same text', async () => {
    const reply = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 8 });
    expect(reply.object).toBe('chat.completion');
    // the replicas' own model name (VLLM_MODEL's default), as vLLM reports it
    expect(reply.model).toBe('stand-in/llm');
    expect(reply.choices[0]!.message.role).toBe('assistant');
    expect(reply.choices[0]!.message.content!.split(' ')).toHaveLength(8);
    expect(reply.choices[0]!.finish_reason).toBe('length');
    expect(reply.usage).toMatchObject({ completion_tokens: 8 });
    expect(reply.usage!.prompt_tokens).toBeGreaterThan(0);

    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of await client.chat.completions.create({ model: 'chat', messages, max_tokens: 8, stream: true })) chunks.push(chunk);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    // the stand-in generates deterministically from the prompt: the same words, one per chunk
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(reply.choices[0]!.message.content);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
    // usage only when asked for
    expect(chunks.every((c) => !c.usage)).toBe(true);
  });

  it('should answer a text completion, streamed (with usage) and not', async () => {
    const done = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 5 });
    expect(done.object).toBe('text_completion');
    expect(done.usage?.completion_tokens).toBe(5);
    let text = '';
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    for await (const chunk of await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 5, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(done.choices[0]!.text);
    expect(usage).toMatchObject({ completion_tokens: 5, prompt_tokens: done.usage!.prompt_tokens });
  });

  it("should pass the engine's own 400 through", async () => {
    // the stand-in's context is 4096 tokens, as a vLLM replica with --max-model-len 4096
    const err = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 100_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ type: 'BadRequestError', param: 'max_tokens' });
  });

  it('prefix-affinity (the example default): keeps each conversation on one replica and spreads conversations over both', async () => {
    const before = await Promise.all(replicas.map((r) => r.stats()));
    const sessions = Array.from({ length: 16 }, (_, i) => `conversation-${i}`);
    // the gateway forwards x-request-id: it tells which replica served which turn
    for (const session of sessions) {
      for (let turn = 0; turn < 2; turn++) {
        await client.chat.completions.create(
          { model: 'chat', messages: [{ role: 'user', content: `turn ${turn}` }], max_tokens: 1 },
          { headers: { 'x-session-id': session, 'x-request-id': `${session}/turn-${turn}` } },
        );
      }
    }
    const after = await Promise.all(replicas.map((r) => r.stats()));
    const served = after.map((s, i) => s.received - before[i]!.received);
    expect(served.reduce((a, b) => a + b)).toBe(32);
    // both replicas hold some conversations
    expect(served.every((n) => n >= 2)).toBe(true);
    const replicaOf = (id: string): number[] =>
      after.flatMap((s, i) => (s.requests.some((r) => r.path === '/v1/chat/completions' && r.headers['x-request-id'] === id) ? [i] : []));
    for (const session of sessions) {
      const first = replicaOf(`${session}/turn-0`);
      expect(first, session).toHaveLength(1);
      expect(replicaOf(`${session}/turn-1`), session).toEqual(first);
    }
    // the replicas were asked for their own model name, never the gateway's
    expect(after[0]!.requests.filter((r) => r.path === '/v1/chat/completions').every((r) => (r.body as { model?: unknown }).model === 'stand-in/llm')).toBe(true);
  });

  it('should show both replicas healthy and the token counts on /metrics', async () => {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    for (const r of replicas) expect(text).toContain(`tessera_upstream_healthy{model="chat",upstream="${r.url}"} 1`);
    expect(text).toMatch(/tessera_llm_tokens_total\{model="chat",version="1",kind="completion"\} [1-9]/);
    expect(text).toMatch(/tessera_llm_time_to_first_token_seconds_count\{model="chat",version="1"\} [1-9]/);
    expect(text).toMatch(/tessera_requests_total\{model="chat",version="1",protocol="openai",code="200"\} [1-9]/);
    expect(text).toMatch(/tessera_requests_total\{model="chat",version="1",protocol="openai",code="400"\} 1/);
  });
});
