/**
 * `server.rateLimit` end to end through the real CLI over loopback: the count per client address
 * (and per forwarded address behind a trusted proxy), 429 with `Retry-After` and the `RateLimit-*`
 * headers on every protocol (OpenAI's error shape under /v1), probes and scrapes never counted;
 * and limits shared by two servers through a real `redis-server` started by the test, including
 * what each `onStoreError` does while Redis is down and that counting resumes when it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { http, tempDir, writeConfig } from './helpers.js';
import type { RedisProcess } from './redis.js';
import { REDIS_MISSING, redisServerPath, startRedis } from './redis.js';

let dir: string;
let models: TestModelCatalog;
const servers: TesseraProcess[] = [];

const INFER = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

async function serve(name: string, rateLimit: Record<string, unknown>, server: Record<string, unknown> = {}): Promise<TesseraProcess> {
  const config = await writeConfig(dir, { server: { logLevel: 'info', rateLimit, ...server }, models: { affine: { path: models.affine.path } } }, `${name}.yaml`);
  const p = await startTessera({ args: ['serve', '-c', config, '--port', '0', '--host', '127.0.0.1'] });
  servers.push(p);
  return p;
}

const infer = (base: string, headers: Record<string, string> = {}) => http(`${base}/v2/models/affine/infer`, { json: INFER, headers });

beforeAll(async () => {
  dir = await tempDir('tessera-rate-limit-');
  models = await writeTestModels(dir);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

describe('server.rateLimit (in-memory store)', () => {
  let s: TesseraProcess;
  beforeAll(async () => {
    s = await serve('memory', { max: 3, timeWindow: '1m' });
  });

  it('counts every request of a client and refuses the one past max with 429, Retry-After and the RateLimit headers', async () => {
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await infer(s.url);
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('3');
      expect(r.headers.get('ratelimit-policy')).toBe('3;w=60');
      remaining.push(r.headers.get('ratelimit-remaining'));
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await infer(s.url);
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('TESSERA_E_RATE_LIMITED');
    expect(refused.body.error).toMatch(/at most 3 requests per 1 min/);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('ratelimit-reset')).toBe(String(retryAfter));
  });

  it('refuses on every endpoint once the client is over its limit: metadata, unknown routes, and OpenAI\'s shape under /v1', async () => {
    expect((await http(`${s.url}/v2/models/affine`)).status).toBe(429);
    expect((await http(`${s.url}/v2/no/such/route`)).status).toBe(429);
    const openai = await http(`${s.url}/v1/models`);
    expect(openai.status).toBe(429);
    expect(openai.body.error.type).toBe('rate_limit_error');
    expect(openai.body.error.code).toBe('TESSERA_E_RATE_LIMITED');
  });

  it('never counts health probes and metric scrapes, nor refuses them', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await http(`${s.url}/v2/health/ready`)).status).toBe(200);
      expect((await http(`${s.url}/v2/health/live`)).status).toBe(200);
      expect((await http(`${s.url}/health`)).status).toBe(200);
    }
    const metrics = await http(`${s.url}/metrics`);
    expect(metrics.status).toBe(200);
    // the 4 refusals above (infer, metadata, unknown route, /v1/models), counted per client kind
    expect(metrics.text).toMatch(/tessera_rate_limited_total\{client="address"\} 4\n/);
  });
});

describe('server.rateLimit with authentication', () => {
  it('counts per credential, whatever address it comes from, and a key\'s own rateLimit overrides the server\'s', async () => {
    const strict = 'strict-key-0123456789abcdef';
    const normal = 'normal-key-0123456789abcdef';
    const config = await writeConfig(
      dir,
      {
        server: { logLevel: 'info', trustProxy: true, rateLimit: { max: 3, timeWindow: '1m' } },
        auth: { apiKeys: [{ name: 'strict', key: strict, scopes: ['infer', 'metrics'], rateLimit: { max: 1, timeWindow: '1m' } }, { name: 'normal', key: normal, scopes: ['infer'] }] },
        models: { affine: { path: models.affine.path } },
      },
      'auth.yaml',
    );
    const s = await startTessera({ args: ['serve', '-c', config, '--port', '0', '--host', '127.0.0.1'] });
    servers.push(s);
    const first = await infer(s.url, { 'x-api-key': strict, 'x-forwarded-for': '198.51.100.1' });
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-limit')).toBe('1');
    // another address, the same key: the same budget
    const second = await infer(s.url, { 'x-api-key': strict, 'x-forwarded-for': '198.51.100.2' });
    expect(second.status).toBe(429);
    expect(second.body.error).toMatch(/for this credential/);
    expect(second.body.error).not.toContain(strict);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await infer(s.url, { authorization: `Bearer ${normal}`, 'x-forwarded-for': '198.51.100.1' })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const metrics = await http(`${s.url}/metrics`);
    expect(metrics.text).toMatch(/tessera_rate_limited_total\{client="principal"\} 2\n/);
  });
});

describe('server.rateLimit behind a trusted proxy', () => {
  it('counts per forwarded client address (X-Forwarded-For) when server.trustProxy is set', async () => {
    const s = await serve('proxy', { max: 2, timeWindow: '1m' }, { trustProxy: true });
    const a = { 'x-forwarded-for': '203.0.113.7' };
    const b = { 'x-forwarded-for': '203.0.113.8' };
    expect((await infer(s.url, a)).status).toBe(200);
    expect((await infer(s.url, a)).status).toBe(200);
    expect((await infer(s.url, a)).status).toBe(429);
    // another client behind the same proxy has its own count
    expect((await infer(s.url, b)).status).toBe(200);
  });
});

const redisBin = redisServerPath();

describe.skipIf(!redisBin)(`server.rateLimit.redis: limits shared by replicas through a real redis-server${redisBin ? '' : ` (skipped: ${REDIS_MISSING})`}`, () => {
  let redis: RedisProcess;
  let a: TesseraProcess;
  let b: TesseraProcess;
  beforeAll(async () => {
    redis = await startRedis();
    const limit = { max: 4, timeWindow: '1m', redis: redis.url, redisNamespace: 'tessera-test-' };
    [a, b] = await Promise.all([serve('redis-a', limit), serve('redis-b', limit)]);
  }, 60_000);
  afterAll(async () => {
    await redis?.kill();
  });

  it('two servers enforce one limit together', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await infer(i % 2 === 0 ? a.url : b.url)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    const fromA = await infer(a.url);
    const fromB = await infer(b.url);
    expect([fromA.status, fromB.status]).toEqual([429, 429]);
    expect(fromB.body.code).toBe('TESSERA_E_RATE_LIMITED');
    expect(Number(fromB.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('with Redis down: onStoreError allow lets requests through uncounted and says so once; deny answers 503; counting resumes when Redis is back', async () => {
    const port = redis.port;
    await redis.kill();
    // a fresh server whose Redis is down at start still starts (bounded wait), and denies
    const denying = await serve('redis-deny', { max: 4, timeWindow: '1m', redis: `redis://127.0.0.1:${port}`, onStoreError: 'deny' });
    const allowing = await serve('redis-allow', { max: 1, timeWindow: '1m', redis: `redis://127.0.0.1:${port}`, redisNamespace: 'tessera-allow-' });
    for (let i = 0; i < 3; i++) expect((await infer(allowing.url)).status).toBe(200);
    const denied = await infer(denying.url);
    expect(denied.status).toBe(503);
    expect(denied.body.code).toBe('TESSERA_E_RATE_LIMIT_UNAVAILABLE');
    expect(denied.headers.get('retry-after')).toBe('1');
    const metrics = await http(`${allowing.url}/metrics`);
    expect(metrics.text).toMatch(/tessera_rate_limit_store_errors_total [3-9]/);
    // the server's log is buffered (written within 100 ms): wait for the line, then check it came once
    const outageLine = (l: string): boolean => l.includes('the rate-limit store (server.rateLimit.redis) failed');
    for (let i = 0; i < 40 && !allowing.stdout.some(outageLine); i++) await new Promise((r) => setTimeout(r, 50));
    expect(allowing.stdout.filter(outageLine)).toHaveLength(1);

    redis = await startRedis(port);
    // ioredis reconnects in the background; the allowing server counts again (max 1: the second is refused)
    const deadline = Date.now() + 15_000;
    let status = 200;
    while (status !== 429 && Date.now() < deadline) {
      status = (await infer(allowing.url)).status;
      if (status !== 429) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(429);
    // the denying server, started while Redis was down, connects too and serves again
    let denyingStatus = 503;
    while (denyingStatus === 503 && Date.now() < deadline) {
      denyingStatus = (await infer(denying.url)).status;
      if (denyingStatus === 503) await new Promise((r) => setTimeout(r, 200));
    }
    expect(denyingStatus).toBe(200);
    for (let i = 0; i < 40 && !allowing.stdout.some((l) => l.includes('answers again')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(allowing.stdout.some((l) => l.includes('answers again'))).toBe(true);
  }, 60_000);
});
