/**
 * `tessera serve` with several HTTP workers (`server.workers`, node:cluster), through the real CLI
 * in front of vLLM stand-ins (vLLM's protocol) with the official `openai` client: both workers
 * serve chat completions, `/metrics` on any worker counts the whole server, SIGHUP reaches every
 * worker, a killed worker is replaced, SIGTERM drains every worker and ends them all, a killed
 * primary leaves none behind, management operations that would change one worker are refused,
 * and prefix-affinity places a key on the same replica whichever worker serves it.
 */
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { runTesseraCli, startTessera } from '@tessera/core/testing';
import type { VllmStandIn } from '@tessera/vllm-stand-in';
import { startVllmStandIn } from '@tessera/vllm-stand-in';
import { tempDir, writeConfig } from './helpers.js';

const SERVED = 'org/llm';
const messages = [{ role: 'user' as const, content: 'Tell me about mosaics.' }];

let dir: string;
const standIns: VllmStandIn[] = [];
const gateways: TesseraProcess[] = [];

beforeAll(async () => {
  dir = await tempDir('tessera-cluster-');
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
  await Promise.all(standIns.map((s) => s.close()));
});

async function standIn(options: Parameters<typeof startVllmStandIn>[0] = {}): Promise<VllmStandIn> {
  const s = await startVllmStandIn({ servedModelName: SERVED, defaultMaxTokens: 4, keepRequests: 500, ...options });
  standIns.push(s);
  return s;
}

/** Pino JSON lines of a process's stdout (other lines left out). */
function logLines(proc: TesseraProcess): Record<string, unknown>[] {
  return proc.stdout.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Cluster {
  proc: TesseraProcess;
  url: string;
  /** Worker pids at start, by slot. */
  pids: number[];
}

/** The primary's "all N workers ready" line. */
function readyLine(proc: TesseraProcess): Record<string, unknown> | undefined {
  return logLines(proc).find((l) => l.role === 'primary' && typeof l.msg === 'string' && l.msg.startsWith('all ') && l.msg.includes('workers ready'));
}

async function startCluster(file: string, args: string[] = []): Promise<Cluster> {
  const proc = await startTessera({ args: ['serve', '-c', file, ...args], timeoutMs: 30_000 });
  gateways.push(proc);
  await waitFor('every worker ready', () => readyLine(proc) !== undefined);
  const line = readyLine(proc)!;
  return { proc, url: line.url as string, pids: line.pids as number[] };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One request on a connection of its own (`agent: false`): node:cluster hands each new connection to the next worker. */
function fresh(url: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, path, method: body === undefined ? 'GET' : 'POST', agent: false, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Which worker pid answered each request id (the access log: every line carries the process's pid). */
function servedBy(proc: TesseraProcess): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of logLines(proc)) if (l.msg === 'request' && typeof l.reqId === 'string') out.set(l.reqId, l.pid as number);
  return out;
}

/** `servedBy` once the access log has a line for each of `ids` (a line is written after its answer went out). */
async function servedByAll(proc: TesseraProcess, ids: string[]): Promise<Map<string, number>> {
  await waitFor(`access log lines of ${ids.join(', ')}`, () => {
    const by = servedBy(proc);
    return ids.every((id) => by.has(id));
  });
  return servedBy(proc);
}

/** A sample's value in Prometheus text, summed over the series that match `labels`. */
function sample(text: string, name: string, labels = ''): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  return found ? sum : Number.NaN;
}

describe('tessera serve with 2 workers', () => {
  let cluster: Cluster;
  let chat: VllmStandIn;
  let affine: VllmStandIn[];
  let file: string;
  let client: OpenAI;
  const config = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdownGracePeriod: '10s' },
    models: {
      chat: { backend: 'vllm', upstreams: [chat.url], servedModelName: SERVED, health: { interval: '200ms' } },
      affine: { backend: 'vllm', upstreams: affine.map((s) => s.url), servedModelName: SERVED, balance: { strategy: 'prefix-affinity' }, health: { interval: '200ms' } },
      ...extra,
    },
  });

  beforeAll(async () => {
    chat = await standIn({ tokenDelayMs: 2 });
    affine = [await standIn(), await standIn(), await standIn()];
    file = await writeConfig(dir, config(), 'two-workers.yaml');
    cluster = await startCluster(file);
    client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  it('should start two worker processes sharing one port', async () => {
    expect(cluster.pids).toHaveLength(2);
    expect(new Set(cluster.pids).size).toBe(2);
    for (const pid of cluster.pids) expect(alive(pid)).toBe(true);
    // each worker's own line (the processes write to one pipe: in no particular order)
    const readyPids = (): Set<unknown> => new Set(logLines(cluster.proc).filter((l) => l.msg === `server ready at ${cluster.url}`).map((l) => l.pid));
    await waitFor("each worker's ready line", () => readyPids().size === 2);
    expect(readyPids()).toEqual(new Set(cluster.pids));
  });

  it('should answer chat completions, streamed and not, from both workers, and count them all in /metrics on any worker', async () => {
    const before = sample((await fresh(cluster.url, '/metrics')).text, 'tessera_requests_total', 'model="chat"');
    const plain = await Promise.all(Array.from({ length: 4 }, () => client.chat.completions.create({ model: 'chat', messages, max_tokens: 3 })));
    for (const reply of plain) {
      expect(reply.model).toBe(SERVED);
      expect(reply.choices[0]!.message.content!.split(' ')).toHaveLength(3);
    }
    const streamed = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 5, stream: true });
        let pieces = 0;
        for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) pieces++;
        return pieces;
      }),
    );
    expect(streamed).toEqual([5, 5, 5, 5]);
    // and on connections of their own, which node:cluster hands to the workers in turn
    for (let i = 0; i < 4; i++) {
      const res = await fresh(cluster.url, '/v1/chat/completions', { model: 'chat', messages, max_tokens: 1 }, { 'x-request-id': `spread-${i}` });
      expect(res.status).toBe(200);
    }
    const by = await servedByAll(cluster.proc, [0, 1, 2, 3].map((i) => `spread-${i}`));
    const workers = new Set([0, 1, 2, 3].map((i) => by.get(`spread-${i}`)));
    expect(workers).toEqual(new Set(cluster.pids));
    await waitFor('the access log of every request', () => logLines(cluster.proc).filter((l) => l.msg === 'request' && l.model === 'chat' && l.url === '/v1/chat/completions').length >= 12);
    const chatPids = new Set(logLines(cluster.proc).filter((l) => l.msg === 'request' && l.model === 'chat' && l.url === '/v1/chat/completions').map((l) => l.pid));
    expect(chatPids).toEqual(new Set(cluster.pids));
    expect(chat.stats().completed).toBeGreaterThanOrEqual(12);
    // every scrape, whichever worker answers it, counts the 12 requests of both workers
    for (let i = 0; i < 4; i++) {
      const text = (await fresh(cluster.url, '/metrics')).text;
      expect(sample(text, 'tessera_requests_total', 'model="chat"') - (Number.isNaN(before) ? 0 : before)).toBe(12);
      expect(sample(text, 'tessera_requests_total', 'code="200"')).toBeGreaterThanOrEqual(12);
      expect(sample(text, 'tessera_cluster_workers')).toBe(2);
      expect(sample(text, 'tessera_cluster_workers_scraped')).toBe(2);
      // a state is not summed: ready in both workers reads 1, not 2
      expect(sample(text, 'tessera_model_ready', 'model="chat"')).toBe(1);
      expect(sample(text, 'tessera_upstream_healthy', `upstream="${chat.url}"`)).toBe(1);
      // histograms are summed per bucket: their count is every streamed request's
      expect(sample(text, 'tessera_llm_time_to_first_token_seconds_count', 'model="chat"')).toBe(4);
      expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    }
    await waitFor('the access log of every scrape', () => logLines(cluster.proc).filter((l) => l.msg === 'request' && l.url === '/metrics').length >= 5);
    const scrapers = new Set(logLines(cluster.proc).filter((l) => l.msg === 'request' && l.url === '/metrics').map((l) => l.pid));
    expect(scrapers).toEqual(new Set(cluster.pids));
  });

  it('should place a prefix-affinity key on the same replica whichever worker serves it', async () => {
    for (const s of affine) s.reset();
    // an odd number of prompts: with the workers taking turns, each prompt reaches both
    const prompts = Array.from({ length: 7 }, (_, i) => `prompt ${i}: the same prefix goes to the same replica's cache`);
    // one request at a time, each on a connection of its own: the workers take turns, and nothing
    // is in flight at a pick, so the bounded-load rule never moves a key
    for (let round = 0; round < 4; round++) {
      for (const [p, content] of prompts.entries()) {
        const res = await fresh(cluster.url, '/v1/chat/completions', { model: 'affine', messages: [{ role: 'user', content }], max_tokens: 1 }, { 'x-request-id': `affine-${p}-${round}` });
        expect(res.status, res.text).toBe(200);
      }
    }
    const by = await servedByAll(cluster.proc, prompts.flatMap((_, p) => [0, 1, 2, 3].map((round) => `affine-${p}-${round}`)));
    for (const [p, content] of prompts.entries()) {
      const replicas = affine.filter((s) => s.stats().requests.some((r) => JSON.stringify(r.body).includes(content)));
      expect(replicas, `prompt ${p}`).toHaveLength(1);
      expect(replicas[0]!.stats().requests.filter((r) => JSON.stringify(r.body).includes(content))).toHaveLength(4);
      // …and both workers served it
      expect(new Set([0, 1, 2, 3].map((round) => by.get(`affine-${p}-${round}`))), `prompt ${p}`).toEqual(new Set(cluster.pids));
    }
    // the 7 keys are not all on one replica
    expect(affine.filter((s) => s.stats().received > 0).length).toBeGreaterThan(1);
  });

  it('should refuse repository load/unload and routing actions with 409 TESSERA_E_SERVER_CLUSTERED, and serve the reads', async () => {
    for (const path of ['/v2/repository/models/chat/unload', '/v2/repository/models/chat/load', '/v1/routing/chat/rollback']) {
      for (let i = 0; i < 2; i++) {
        const res = await fresh(cluster.url, path, {});
        expect(res.status, `${path}: ${res.text}`).toBe(409);
        const body = JSON.parse(res.text) as { code: string; error: string };
        expect(body.code).toBe('TESSERA_E_SERVER_CLUSTERED');
        expect(body.error).toContain('send SIGHUP to the primary process');
      }
    }
    expect((await fresh(cluster.url, '/v2/repository/index', {})).status).toBe(200);
    expect((await fresh(cluster.url, '/v1/routing/chat')).status).toBe(200);
    // nothing was unloaded in either worker
    for (let i = 0; i < 2; i++) expect((await fresh(cluster.url, '/v2/models/chat/ready')).status).toBe(200);
  });

  it('should reload the config in every worker on SIGHUP to the primary, and log each outcome', async () => {
    await writeConfig(dir, config({ chat2: { backend: 'vllm', upstreams: [chat.url], servedModelName: SERVED } }), 'two-workers.yaml');
    const from = cluster.proc.stdout.length;
    cluster.proc.child.kill('SIGHUP');
    const outcomes = (): Record<string, unknown>[] => logLines({ ...cluster.proc, stdout: cluster.proc.stdout.slice(from) }).filter((l) => l.role === 'primary' && typeof l.msg === 'string' && l.msg.includes('config reloaded, generation 2 serving'));
    await waitFor('both workers reloaded', () => outcomes().length === 2);
    expect(new Set(outcomes().map((l) => l.worker))).toEqual(new Set([1, 2]));
    const workersLogged = (): Set<unknown> => new Set(logLines({ ...cluster.proc, stdout: cluster.proc.stdout.slice(from) }).filter((l) => l.msg === 'config reloaded: generation 2 serving').map((l) => l.pid));
    await waitFor("each worker's own reload line", () => workersLogged().size === 2);
    expect(workersLogged()).toEqual(new Set(cluster.pids));
    for (let i = 0; i < 4; i++) {
      const res = await fresh(cluster.url, '/v1/chat/completions', { model: 'chat2', messages, max_tokens: 1 });
      expect(res.status, res.text).toBe(200);
      expect(Number((await fresh(cluster.url, '/v2/repository/index')).text.match(/"generation":(\d+)/)?.[1])).toBe(2);
    }
    expect(sample((await fresh(cluster.url, '/metrics')).text, 'tessera_config_generation')).toBe(2);
  });

  it('should replace a worker that was killed, and keep serving', async () => {
    const [victim, survivor] = cluster.pids as [number, number];
    const from = cluster.proc.stdout.length;
    process.kill(victim, 'SIGKILL');
    const back = (): Record<string, unknown> | undefined =>
      logLines({ ...cluster.proc, stdout: cluster.proc.stdout.slice(from) }).find((l) => l.role === 'primary' && typeof l.msg === 'string' && l.msg.includes('is back: ready at'));
    await waitFor('a new worker', () => back() !== undefined);
    const died = logLines({ ...cluster.proc, stdout: cluster.proc.stdout.slice(from) }).find((l) => typeof l.msg === 'string' && l.msg.includes('exited unexpectedly'));
    expect(died).toMatchObject({ role: 'primary', worker: 1, pid: victim, signal: 'SIGKILL' });
    const replacement = back()!.pid as number;
    expect(replacement).not.toBe(victim);
    expect(alive(victim)).toBe(false);
    expect(alive(survivor)).toBe(true);
    cluster.pids = [replacement, survivor];
    for (let i = 0; i < 4; i++) {
      const res = await fresh(cluster.url, '/v1/chat/completions', { model: 'chat2', messages, max_tokens: 1 }, { 'x-request-id': `after-restart-${i}` });
      expect(res.status, res.text).toBe(200);
    }
    const by = await servedByAll(cluster.proc, [0, 1, 2, 3].map((i) => `after-restart-${i}`));
    expect(new Set([0, 1, 2, 3].map((i) => by.get(`after-restart-${i}`)))).toEqual(new Set(cluster.pids));
    const text = (await fresh(cluster.url, '/metrics')).text;
    expect(sample(text, 'tessera_cluster_worker_restarts_total')).toBe(1);
    expect(sample(text, 'tessera_cluster_workers')).toBe(2);
  });

  it('should drain every worker on SIGTERM (a stream in flight finishes) and exit 0 with none left', async () => {
    chat.setFaults({ tokenDelayMs: 40 });
    const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 20, stream: true });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    const exited = cluster.proc.stop('SIGTERM');
    let pieces = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) if (r.value.choices[0]?.delta?.content) pieces++;
    // the first chunk (role) came before the SIGTERM; every token still came
    expect(pieces).toBeGreaterThanOrEqual(19);
    expect(await exited).toBe(0);
    for (const pid of cluster.pids) expect(alive(pid)).toBe(false);
    const exits = logLines(cluster.proc).filter((l) => l.role === 'primary' && typeof l.msg === 'string' && / exited \(code 0\)$/.test(l.msg));
    expect(exits.length).toBeGreaterThanOrEqual(2);
    chat.setFaults({ tokenDelayMs: null });
  });
});

describe('tessera serve with workers: the primary', () => {
  it('should end every worker when the primary is killed', async () => {
    const s = await standIn();
    const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0 }, models: { chat: { backend: 'vllm', upstreams: [s.url], servedModelName: SERVED } } }, 'orphans.yaml');
    const cluster = await startCluster(file, ['--workers', '2']);
    expect(cluster.pids).toHaveLength(2);
    cluster.proc.child.kill('SIGKILL');
    await cluster.proc.exited;
    // node:cluster ends a worker whose primary is gone (its IPC channel closed)
    await waitFor('the workers to exit', () => cluster.pids.every((pid) => !alive(pid)), 10_000);
  });

  it('should watch the config in the primary with --watch and reload every worker when it changes', async () => {
    const s = await standIn();
    const model = { backend: 'vllm', upstreams: [s.url], servedModelName: SERVED };
    const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, workers: 2 }, models: { chat: model } }, 'watched.yaml');
    const cluster = await startCluster(file, ['--watch']);
    await waitFor('the primary to watch', () => logLines(cluster.proc).some((l) => l.role === 'primary' && typeof l.msg === 'string' && l.msg.startsWith('watching the config')));
    await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, workers: 2 }, models: { chat: model, other: model } }, 'watched.yaml');
    const reloaded = (): Record<string, unknown>[] => logLines(cluster.proc).filter((l) => l.role === 'primary' && typeof l.msg === 'string' && l.msg.includes('config reloaded, generation 2 serving'));
    await waitFor('both workers reloaded', () => reloaded().length === 2);
    expect(new Set(reloaded().map((l) => l.worker))).toEqual(new Set([1, 2]));
    // no worker watches on its own
    expect(logLines(cluster.proc).filter((l) => l.role !== 'primary' && typeof l.msg === 'string' && l.msg.startsWith('watching the config'))).toEqual([]);
    for (let i = 0; i < 2; i++) expect((await fresh(cluster.url, '/v1/chat/completions', { model: 'other', messages, max_tokens: 1 })).status).toBe(200);
    expect(await cluster.proc.stop('SIGTERM')).toBe(0);
  });

  it('should exit 1 without workers left when the workers cannot start', async () => {
    const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, workers: 2 }, models: { chat: { backend: 'no-such-backend' } } }, 'bad-backend.yaml');
    const res = await runTesseraCli({ args: ['serve', '-c', file], timeoutMs: 30_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain('tessera: TESSERA_E_BACKEND_UNKNOWN');
    expect(res.stdout).toContain('before the server was ready; stopping');
    // the primary names every worker it saw exit
    const exits = res.stdout
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { pid: number; role?: string; worker?: number; msg?: string }];
        } catch {
          return [];
        }
      })
      .filter((l) => l.role === 'primary' && l.worker !== undefined && l.msg?.includes('exited'));
    expect(new Set(exits.map((l) => l.worker))).toEqual(new Set([1, 2]));
    for (const { pid } of exits) expect(alive(pid)).toBe(false);
  });

  it('should refuse --workers that is not a positive integer or auto', async () => {
    const file = await writeConfig(dir, { models: {} }, 'workers-usage.yaml');
    const res = await runTesseraCli({ args: ['serve', '-c', file, '--workers', '0'] });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('tessera: TESSERA_E_CLI_USAGE: --workers 0: must be an integer ≥ 1 or auto');
  });
});
