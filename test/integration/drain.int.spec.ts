/**
 * Signals and graceful drain, through the real CLI over loopback: SIGTERM under load (keep-alive
 * clients, requests queued in the dynamic batcher) loses no request that arrived before it,
 * answers later ones 503 with `Connection: close`, turns readiness 503 at once and exits 0; a
 * stream in flight finishes, or — past `server.shutdownGracePeriod` — ends with an error event and
 * `[DONE]`; a second signal forces the exit; SIGHUP reloads the config; an unhandled rejection is
 * logged and survived.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import type { VllmStandIn } from '@tessera/vllm-stand-in';
import { startVllmStandIn } from '@tessera/vllm-stand-in';
import { ROOT, http, tempDir, writeConfig } from './helpers.js';

let dir: string;
let models: TestModelCatalog;
let standIn: VllmStandIn;
const started: TesseraProcess[] = [];

const INFER = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

async function serve(name: string, config: Record<string, unknown>): Promise<TesseraProcess> {
  const file = await writeConfig(dir, { ...config, server: { logLevel: 'info', ...(config.server as object) } }, `${name}.yaml`);
  const p = await startTessera({ args: ['serve', '-c', file, '--port', '0', '--host', '127.0.0.1'] });
  started.push(p);
  return p;
}

/** Reads a server-sent-event stream to its end; resolves with the `data:` payloads. */
async function readStream(url: string, body: unknown): Promise<string[]> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

const chat = (maxTokens: number) => ({ model: 'chat', messages: [{ role: 'user', content: 'count' }], max_tokens: maxTokens, stream: true });

beforeAll(async () => {
  dir = await tempDir('tessera-drain-');
  models = await writeTestModels(dir);
  standIn = await startVllmStandIn({ model: 'chat', tokenDelayMs: 50 });
});

afterAll(async () => {
  for (const p of started) await p.stop('SIGKILL');
  await standIn?.close();
});

describe('SIGTERM under load', () => {
  it('finishes every request that arrived before the signal, answers later ones 503 with Connection: close, and exits 0', async () => {
    // one connection per worker (24), so that a request is on the wire when the worker sends it;
    // a batch waits up to 150 ms for 64 requests that never come: at any moment ~all requests are queued
    const s = await serve('load', { models: { affine: { path: models.affine.path, batching: { maxBatchSize: 64, maxQueueDelayMs: 150 } } } });
    const agent = new Agent({ connections: 24, keepAliveTimeout: 30_000, pipelining: 1 });
    type Outcome = { sentAt: number; status?: number; code?: string; connection?: string; retryAfter?: string; error?: string };
    const outcomes: Outcome[] = [];
    let signalAt = Infinity;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const o: Outcome = { sentAt: performance.now() };
        outcomes.push(o);
        try {
          const res = await request(`${s.url}/v2/models/affine/infer`, { method: 'POST', body: INFER, headers: { 'content-type': 'application/json' }, dispatcher: agent });
          const body = (await res.body.json()) as { code?: string };
          o.status = res.statusCode;
          if (body.code) o.code = body.code;
          o.connection = String(res.headers.connection ?? '');
          o.retryAfter = String(res.headers['retry-after'] ?? '');
        } catch (err) {
          o.error = (err as { code?: string }).code ?? (err as Error).message;
          // the listener is gone: nothing more will be accepted
          if (o.error === 'ECONNREFUSED') return;
        }
      }
    };
    const workers = Array.from({ length: 24 }, worker);
    await new Promise((r) => setTimeout(r, 600));
    signalAt = performance.now();
    s.child.kill('SIGTERM');
    // readiness turns 503 at once, and a new request is refused, while the queued requests are still being served
    const [ready, late] = await Promise.all([
      http(`${s.url}/v2/health/ready`).catch(() => undefined),
      http(`${s.url}/v2/models/affine/infer`, { method: 'POST', body: INFER, headers: { 'content-type': 'application/json' } }).catch(() => undefined),
    ]);
    const code = await s.exited;
    stop = true;
    await Promise.all(workers);
    await agent.close();

    expect(code).toBe(0);
    expect(ready?.status).toBe(503);
    expect(late?.status).toBe(503);
    expect(late?.body.code).toBe('TESSERA_E_SERVER_DRAINING');
    expect(late?.headers.get('connection')).toBe('close');
    const before = outcomes.filter((o) => o.sentAt < signalAt - 5);
    expect(before.length).toBeGreaterThan(48);
    // every request sent before the signal was answered 200: none lost, none refused
    expect(before.filter((o) => o.status !== 200), `signal at ${signalAt}, first sent at ${outcomes[0]?.sentAt}`).toEqual([]);
    const after = outcomes.filter((o) => o.sentAt >= signalAt - 5);
    for (const o of after) {
      if (o.status === 200) {
        // answered during the drain: the client must not reuse the connection
        if (o.sentAt < signalAt) expect(o.connection).toBe('close');
        continue;
      }
      if (o.status === 503) {
        expect(o.code).toBe('TESSERA_E_SERVER_DRAINING');
        expect(o.connection).toBe('close');
        expect(o.retryAfter).toBe('1');
        continue;
      }
      // after the drain the listener is closed: a refused connection was never accepted; a
      // connection opened just before it closed, whose request was not read yet, is reset (never
      // accepted either) — at most once per client, which then finds the listener gone
      expect(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'], JSON.stringify(o)).toContain(o.error);
    }
    expect(after.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED').length).toBeLessThanOrEqual(24);
    const log = s.stdout.map((l) => JSON.parse(l) as { msg: string });
    expect(log.some((l) => l.msg === 'closed')).toBe(true);
  });
});

describe('streams at shutdown', () => {
  it('a stream in flight at SIGTERM runs to [DONE] within the grace period, and the server exits 0', async () => {
    const s = await serve('stream-finishes', { server: { shutdownGracePeriod: '10s' }, models: { chat: { backend: 'vllm', upstreams: [standIn.url] } } });
    const events = readStream(s.url, chat(12));
    await new Promise((r) => setTimeout(r, 200));
    s.child.kill('SIGTERM');
    const data = await events;
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.filter((d) => d !== '[DONE]').every((d) => !('error' in (JSON.parse(d) as object)))).toBe(true);
    expect(await s.exited).toBe(0);
  });

  it('a stream still running when the grace period ends gets an error event and [DONE], and the server exits 0', async () => {
    const s = await serve('stream-cut', { server: { shutdownGracePeriod: '300ms' }, models: { chat: { backend: 'vllm', upstreams: [standIn.url] } } });
    const events = readStream(s.url, chat(200));
    await new Promise((r) => setTimeout(r, 200));
    s.child.kill('SIGTERM');
    const data = await events;
    expect(data.at(-1)).toBe('[DONE]');
    const error = JSON.parse(data.at(-2)!) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('TESSERA_E_SERVER_DRAINING');
    expect(data.length).toBeLessThan(100);
    expect(await s.exited).toBe(0);
  });

  it('a second signal during the drain exits at once, non-zero', async () => {
    const s = await serve('second-signal', { server: { shutdownGracePeriod: '30s' }, models: { chat: { backend: 'vllm', upstreams: [standIn.url] } } });
    const events = readStream(s.url, chat(400)).catch(() => []);
    await new Promise((r) => setTimeout(r, 200));
    s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    expect(s.child.exitCode).toBeNull();
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(1);
    await events;
    expect(s.stdout.some((l) => l.includes('exiting now without finishing the drain'))).toBe(true);
  });
});

describe('signals and faults the server survives', () => {
  let s: TesseraProcess;
  beforeAll(async () => {
    // a plugin route that leaves a rejected promise behind (a bug in a plugin, say)
    const plugin = path.join(dir, 'leaky-plugin.mjs');
    const core = pathToFileURL(path.join(ROOT, 'packages/core/dist/index.js')).href;
    await writeFile(
      plugin,
      `import { definePlugin } from ${JSON.stringify(core)};
export default definePlugin({ name: 'leaky', version: '1.0.0', core: '^0.1.0', register(ctx) {
  ctx.addRoutes((app) => app.get('/leak', async () => { void Promise.reject(new Error('nobody awaited me')); return { ok: true }; }));
} });
`,
    );
    s = await serve('survivor', { plugins: [plugin], models: { affine: { path: models.affine.path } } });
  });

  it('SIGHUP reloads the config (unchanged here) and the server keeps serving', async () => {
    s.child.kill('SIGHUP');
    await expect.poll(() => s.stdout.some((l) => l.includes('config reloaded: generation 2')), { timeout: 10_000 }).toBe(true);
    expect(s.child.exitCode).toBeNull();
    expect((await http(`${s.url}/v2/models/affine/infer`, { method: 'POST', body: INFER, headers: { 'content-type': 'application/json' } })).status).toBe(200);
    expect(JSON.parse(s.stdout.find((l) => l.includes('config reloaded'))!)).toMatchObject({ unchanged: ['affine'], changed: [], added: [], removed: [] });
  });

  it('an unhandled rejection is logged, not fatal', async () => {
    expect((await http(`${s.url}/leak`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(s.child.exitCode).toBeNull();
    expect(s.stdout.some((l) => l.includes('unhandled promise rejection') && l.includes('nobody awaited me'))).toBe(true);
    expect((await http(`${s.url}/v2/health/ready`)).status).toBe(200);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });
});
