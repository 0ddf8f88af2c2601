/**
 * Tessera as the gateway in front of several vLLM replicas — here vLLM stand-ins (vLLM cannot run
 * on this machine; the stand-in follows vLLM's OpenAI-compatible protocol), over real HTTP on
 * 127.0.0.1, with the official `openai` client. Faults: a replica killed mid-traffic, one that
 * drops a stream, one that fails before the first byte, one whose /health fails; client aborts;
 * each balancing strategy's distribution; a slow client's backpressure.
 */
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { TesseraConfigInput } from '@tessera/core';
import { TesseraServer, resolveConfig } from '@tessera/core';
import type { VllmStandIn, VllmStandInOptions } from '@tessera/vllm-stand-in';
import { startVllmStandIn } from '@tessera/vllm-stand-in';
import plugin from './index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function replicas(n: number, options: VllmStandInOptions = {}): Promise<VllmStandIn[]> {
  const out: VllmStandIn[] = [];
  for (let i = 0; i < n; i++) {
    const r = await startVllmStandIn({ servedModelName: 'org/llm-7b', defaultMaxTokens: 8, ...options });
    cleanup.push(() => r.close());
    out.push(r);
  }
  return out;
}

interface Gateway {
  server: TesseraServer;
  url: string;
  client: OpenAI;
}

async function gateway(upstreams: VllmStandIn[], model: Record<string, unknown> = {}): Promise<Gateway> {
  const input: TesseraConfigInput = {
    server: { host: '127.0.0.1', port: 0, shutdownGracePeriod: '2s' },
    models: {
      chat: {
        backend: 'vllm',
        upstreams: upstreams.map((u) => u.url),
        servedModelName: 'org/llm-7b',
        health: { interval: '100ms', timeout: '500ms', ejectAfterFailures: 2 },
        ...model,
      },
    },
  };
  const server = new TesseraServer({ config: resolveConfig(input, { configDir: '/', env: {} }), plugins: [plugin], logger: pino({ level: 'silent' }) });
  const { url } = await server.start();
  cleanup.push(() => server.close());
  return { server, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'client-key', maxRetries: 0 }) };
}

const messages = [{ role: 'user' as const, content: 'Tell me a story about a tessera.' }];

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<{ text: string; chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] }> {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return { text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), chunks };
}

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('the OpenAI API through the gateway', () => {
  it('should answer chat and completions, streaming and not, as the replica does', async () => {
    const [r] = await replicas(1);
    const { client } = await gateway([r!]);
    const direct = new OpenAI({ baseURL: `${r!.url}/v1`, apiKey: 'x', maxRetries: 0 });

    const viaGateway = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 6 });
    const viaDirect = await direct.chat.completions.create({ model: 'org/llm-7b', messages, max_tokens: 6 });
    expect(viaGateway.object).toBe('chat.completion');
    expect(viaGateway.choices[0]!.message).toEqual(viaDirect.choices[0]!.message);
    expect(viaGateway.usage).toEqual(viaDirect.usage);
    expect(viaGateway.choices[0]!.finish_reason).toBe('length');

    const streamed = await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 6, stream: true }));
    expect(streamed.text).toBe(viaGateway.choices[0]!.message.content);
    expect(streamed.chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(streamed.chunks.every((c) => !c.usage)).toBe(true);

    const completion = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 5 });
    expect(completion.object).toBe('text_completion');
    expect(completion.usage?.completion_tokens).toBe(5);
    let text = '';
    let usage: unknown;
    for await (const c of await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 5, stream: true, stream_options: { include_usage: true } })) {
      text += c.choices[0]?.text ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(completion.choices[0]!.text);
    expect(usage).toMatchObject({ completion_tokens: 5, prompt_tokens: completion.usage!.prompt_tokens });

    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['chat']);
    // an endpoint the gateway does not serve answers in OpenAI's shape too
    const missing = (await client.embeddings.create({ model: 'chat', input: 'x' }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(missing.status).toBe(404);
    expect(missing.error).toMatchObject({ code: 'TESSERA_E_ROUTE_NOT_FOUND', type: 'not_found_error' });
  });

  it('should pass unknown fields through untouched, with the upstream model name', async () => {
    const [r] = await replicas(1);
    const { client } = await gateway([r!]);
    const extra = { top_k: 20, min_p: 0.05, repetition_penalty: 1.1, structured_outputs: { choice: ['yes', 'no'] }, chat_template_kwargs: { enable_thinking: false } };
    await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2, ...extra } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming);
    expect(r!.stats().lastRequest!.body).toEqual({ model: 'org/llm-7b', messages, max_tokens: 2, ...extra });
    await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2, stream: true, ...extra } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming));
    // the one change on streams: usage is always asked for (token metrics); the client does not see it
    expect(r!.stats().lastRequest!.body).toEqual({ model: 'org/llm-7b', messages, max_tokens: 2, stream: true, stream_options: { include_usage: true }, ...extra });
  });

  it("should pass the engine's 400 through with its message, type and param", async () => {
    const [r] = await replicas(1, { maxModelLen: 64 });
    const { client } = await gateway([r!]);
    const err = (await client.chat.completions.create({ model: 'chat', messages, max_tokens: 1000 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    const direct = (await new OpenAI({ baseURL: `${r!.url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'org/llm-7b', messages, max_tokens: 1000 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(direct.status);
    expect(err.error).toEqual(direct.error);
  });

  it('should send the configured api key upstream, never the client\'s', async () => {
    const [r] = await replicas(1, { apiKey: 'upstream-secret' });
    const { client } = await gateway([r!], { apiKey: 'upstream-secret' });
    await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2 });
    expect(r!.stats().lastRequest!.headers.authorization).toBe('Bearer upstream-secret');
  });

  it('should record time to first token, tokens and upstream health on /metrics', async () => {
    const [r] = await replicas(1, { tokenDelayMs: 2 });
    const { client, url } = await gateway([r!]);
    await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 5, stream: true }));
    const text = await metrics(url);
    expect(text).toMatch(/tessera_llm_time_to_first_token_seconds_count\{model="chat",version="1"\} 1/);
    expect(text).toMatch(/tessera_llm_time_per_output_token_seconds_count\{model="chat",version="1"\} 1/);
    expect(text).toMatch(/tessera_llm_tokens_total\{model="chat",version="1",kind="completion"\} 5/);
    expect(text).toMatch(/tessera_llm_tokens_total\{model="chat",version="1",kind="prompt"\} [1-9]/);
    expect(text).toContain(`tessera_upstream_healthy{model="chat",upstream="${r!.url}"} 1`);
    expect(text).toMatch(/tessera_requests_total\{model="chat",version="1",protocol="openai",code="200"\} 1/);
  });
});

describe('faults', () => {
  it('should retry on another replica when one fails before the first byte', async () => {
    const rs = await replicas(2);
    const { client } = await gateway(rs, { balance: { strategy: 'round-robin' } });
    // one replica answers 500, then the other resets the connection: each time the other one serves
    rs[0]!.setFaults({ failNext: 2 });
    for (let i = 0; i < 4; i++) {
      const out = await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 3, stream: true }));
      expect(out.text.length).toBeGreaterThan(0);
    }
    expect(rs[1]!.stats().completed).toBe(4);
    expect(rs[0]!.stats().failed).toBe(2);
    rs[0]!.setFaults({ resetNext: 1 });
    const res = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 3 });
    expect(res.choices[0]!.message.content?.length).toBeGreaterThan(0);
  });

  it('should end a stream the replica drops midway with an error event, never hang', async () => {
    const [r] = await replicas(1);
    const { client, url } = await gateway([r!]);
    r!.setFaults({ dropStreams: 1, dropAfterTokens: 2 });
    const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 8, stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toMatch(/the stream broke/);
    expect(seen.join('').length).toBeGreaterThan(0);
    expect(await metrics(url)).toMatch(/tessera_requests_total\{model="chat",version="1",protocol="openai",code="200"\} 1/);
  });

  it('should keep serving when a replica is killed mid-traffic, and eject it', async () => {
    const rs = await replicas(3, { tokenDelayMs: 5 });
    const { client, url } = await gateway(rs, { balance: { strategy: 'round-robin' } });
    const outcomes: string[] = [];
    const one = async (): Promise<void> => {
      try {
        const out = await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 20, stream: true }));
        outcomes.push(out.text.length > 0 ? 'ok' : 'empty');
      } catch (err) {
        outcomes.push(err instanceof OpenAI.APIError ? `error:${String(err.status ?? 'stream')}` : `other:${String(err)}`);
      }
    };
    const traffic = Array.from({ length: 30 }, (_, i) => new Promise<void>((resolve) => setTimeout(() => void one().then(resolve), i * 10)));
    setTimeout(() => void rs[1]!.close(), 60);
    await Promise.all(traffic);
    // every request got exactly one answer; only streams already running on the dead replica failed
    expect(outcomes).toHaveLength(30);
    expect(outcomes.filter((o) => o.startsWith('other'))).toEqual([]);
    const failed = outcomes.filter((o) => o !== 'ok').length;
    expect(failed).toBeLessThanOrEqual(rs[1]!.stats().received);
    await expect.poll(async () => metrics(url), { timeout: 5000 }).toContain(`tessera_upstream_healthy{model="chat",upstream="${rs[1]!.url}"} 0`);
    // after the ejection nothing fails
    for (let i = 0; i < 6; i++) await collect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2, stream: true }));
  });

  it('should eject a replica whose /health fails and re-admit it when it recovers', async () => {
    const rs = await replicas(2);
    const { client, url } = await gateway(rs, { balance: { strategy: 'round-robin' } });
    rs[0]!.setFaults({ unhealthy: true });
    await expect.poll(async () => metrics(url), { timeout: 5000 }).toContain(`tessera_upstream_healthy{model="chat",upstream="${rs[0]!.url}"} 0`);
    const before = rs[0]!.stats().received;
    for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: 'chat', messages, max_tokens: 1 });
    expect(rs[0]!.stats().received).toBe(before);
    rs[0]!.setFaults({ unhealthy: false });
    await expect.poll(async () => metrics(url), { timeout: 5000 }).toContain(`tessera_upstream_healthy{model="chat",upstream="${rs[0]!.url}"} 1`);
  });

  it('should answer 503 with Retry-After, and turn unready, when no replica is healthy', async () => {
    const rs = await replicas(1);
    const gw = await gateway(rs);
    const { client } = gw;
    expect((await fetch(`${gw.url}/v2/health/ready`)).status).toBe(200);
    await rs[0]!.close();
    const errors: InstanceType<typeof OpenAI.APIError>[] = [];
    for (let i = 0; i < 4; i++) errors.push((await client.chat.completions.create({ model: 'chat', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>);
    // first a connection failure (502), then, once ejected, 503 without trying
    expect(errors.map((e) => e.status).every((s) => s === 502 || s === 503)).toBe(true);
    await expect
      .poll(async () => ((await client.chat.completions.create({ model: 'chat', messages }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>).status, { timeout: 5000 })
      .toBe(503);
    const e = (await client.chat.completions.create({ model: 'chat', messages }).catch((x: unknown) => x)) as InstanceType<typeof OpenAI.APIError>;
    expect(e.error).toMatchObject({ code: 'TESSERA_E_UPSTREAM_UNAVAILABLE', type: 'server_error' });
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThan(0);
    // readiness follows the replicas: a load balancer stops sending traffic here
    const { url } = gw;
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(503);
    const model = await fetch(`${url}/v2/models/chat/versions/1/ready`);
    expect(model.status).toBe(503);
    expect(await model.json()).toMatchObject({ ready: false, state: 'ready', reason: expect.stringContaining('no healthy upstream') });
    expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);
  });
});

describe('cancellation and backpressure', () => {
  it('should abort the upstream request as soon as the client goes away', async () => {
    const [r] = await replicas(1, { tokenDelayMs: 20 });
    const { client } = await gateway([r!]);
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 500, stream: true }, { signal: controller.signal });
    let n = 0;
    await (async () => {
      for await (const _ of stream) if (++n === 3) controller.abort();
    })().catch(() => undefined);
    await expect.poll(() => r!.stats().aborted, { timeout: 3000 }).toBe(1);
    expect(r!.stats().running).toBe(0);
    expect(r!.stats().generationTokens).toBeLessThan(100);
  });

  it('should not buffer a whole generation for a client that does not read', async () => {
    const [r] = await replicas(1, { tokenDelayMs: 0, maxModelLen: 1_000_000 });
    const { url } = await gateway([r!]);
    // a raw client that reads the head and then stops reading
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages, max_tokens: 200_000, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    // wait until the stand-in stops making progress: socket buffers on both hops are full
    let last = -1;
    await expect
      .poll(
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 200));
          const now = r!.stats().generationTokens;
          const stalled = now === last;
          last = now;
          return stalled;
        },
        { timeout: 15_000, interval: 1 },
      )
      .toBe(true);
    // ~200k tokens would be several MB of SSE; the pipeline holds only socket and stream buffers
    expect(r!.stats().generationTokens).toBeLessThan(100_000);
    await reader.cancel();
    await expect.poll(() => r!.stats().aborted, { timeout: 3000 }).toBe(1);
  });
});

describe('balancing across replicas', () => {
  it('round-robin: spreads requests evenly', async () => {
    const rs = await replicas(3);
    const { client } = await gateway(rs, { balance: { strategy: 'round-robin' } });
    for (let i = 0; i < 30; i++) await client.completions.create({ model: 'chat', prompt: `p${i}`, max_tokens: 1 });
    expect(rs.map((r) => r.stats().received)).toEqual([10, 10, 10]);
  });

  it('least-loaded: spreads in-flight streams, and avoids a replica that other clients keep busy', async () => {
    const rs = await replicas(2, { tokenDelayMs: 50, maxNumSeqs: 2 });
    const { client } = await gateway(rs, { balance: { strategy: 'least-loaded' } });
    const controller = new AbortController();
    const drain = (s: AsyncIterable<unknown>) =>
      (async () => {
        for await (const _ of s) void _;
      })().catch(() => undefined);
    const long = await Promise.all(Array.from({ length: 4 }, () => client.chat.completions.create({ model: 'chat', messages, max_tokens: 1000, stream: true }, { signal: controller.signal })));
    const drains = long.map(drain);
    expect(rs.map((r) => r.stats().running)).toEqual([2, 2]);
    controller.abort();
    await Promise.all(drains);
    await expect.poll(() => rs.map((r) => r.stats().running + r.stats().waiting), { timeout: 3000 }).toEqual([0, 0]);

    // another client, not through this gateway, fills replica 0 (2 running + 3 waiting): only its /metrics shows it
    const other = new OpenAI({ baseURL: `${rs[0]!.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const busy = new AbortController();
    const direct = Array.from({ length: 5 }, () => other.chat.completions.create({ model: 'org/llm-7b', messages, max_tokens: 1000, stream: true }, { signal: busy.signal }).then(drain, () => undefined));
    await expect.poll(() => rs[0]!.stats().waiting, { timeout: 3000 }).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a probe round has scraped it
    const before = rs[1]!.stats().received;
    for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: 'chat', messages, max_tokens: 1 });
    expect(rs[1]!.stats().received - before).toBe(6);
    busy.abort();
    await Promise.all(direct);
  });

  it('prefix-affinity: keeps a session or a prompt prefix on one replica and spreads distinct ones', async () => {
    const rs = await replicas(4);
    const { client } = await gateway(rs, { balance: { strategy: 'prefix-affinity', prefixChars: 64 } });
    const counts = () => rs.map((r) => r.stats().received);
    for (let i = 0; i < 10; i++) await client.chat.completions.create({ model: 'chat', messages, max_tokens: 1 }, { headers: { 'x-session-id': 'conversation-42' } });
    expect(counts().filter((c) => c > 0)).toEqual([10]);
    const before = counts();
    const system = { role: 'system' as const, content: 'You are a helpful assistant that answers in one short sentence, always.' };
    for (let i = 0; i < 10; i++) await client.chat.completions.create({ model: 'chat', messages: [system, { role: 'user', content: `question ${i}` }], max_tokens: 1 });
    // the first 64 characters are the shared system prompt: one replica holds its KV cache
    expect(counts().map((c, i) => c - before[i]!).filter((c) => c > 0)).toEqual([10]);
    for (let i = 0; i < 200; i++) await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `distinct conversation number ${i} ${'x'.repeat(i % 7)}` }], max_tokens: 1 });
    const spread = counts();
    expect(spread.every((c) => c >= 25)).toBe(true);
  });

  it('prefix-affinity: a session header other than the default reaches the backend (issue 9: it fell back to the prompt prefix)', async () => {
    const rs = await replicas(4);
    const { client } = await gateway(rs, { balance: { strategy: 'prefix-affinity', sessionHeader: 'X-Conversation', prefixChars: 40 } });
    const counts = () => rs.map((r) => r.stats().received);
    // distinct prompts (distinct prefixes) of one conversation: only the header can keep them together
    for (let i = 0; i < 12; i++) {
      await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `${i} question number ${i}` }], max_tokens: 1 }, { headers: { 'x-conversation': 'c-7' } });
    }
    expect(counts().filter((c) => c > 0)).toEqual([12]);
    // the same prompts without the header spread by their prefixes (so the header is what held them)
    const before = counts();
    for (let i = 0; i < 12; i++) await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `${i} question number ${i}` }], max_tokens: 1 });
    expect(counts().filter((c, i) => c - before[i]! > 0).length).toBeGreaterThan(1);
  });

  it('prefix-affinity: a hot replica sheds keys beyond the load bound', async () => {
    const rs = await replicas(2, { tokenDelayMs: 20 });
    const { client } = await gateway(rs, { balance: { strategy: 'prefix-affinity', loadFactor: 1.25 } });
    const controller = new AbortController();
    // eight concurrent long streams of ONE session: affinity alone would put all on one replica
    const streams = await Promise.all(
      Array.from({ length: 8 }, () =>
        client.chat.completions.create({ model: 'chat', messages, max_tokens: 1000, stream: true }, { signal: controller.signal, headers: { 'x-session-id': 'hot' } }),
      ),
    );
    const running = rs.map((r) => r.stats().running);
    expect(Math.max(...running)).toBeLessThanOrEqual(5);
    expect(running.reduce((a, b) => a + b)).toBe(8);
    controller.abort();
    await Promise.all(streams.map((s) => (async () => {
      for await (const _ of s) void _;
    })().catch(() => undefined)));
  });
});
