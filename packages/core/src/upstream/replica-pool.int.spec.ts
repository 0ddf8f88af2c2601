/**
 * The pool against real HTTP replicas on 127.0.0.1, probed by a real probe function: `GET /health`,
 * then `GET /metrics` parsed with the Prometheus text parser, as a vLLM backend would. Real timers
 * with short intervals; assertions wait for states (`vi.waitFor`), never for a speed.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';
import type { ReplicaProbe } from './types.js';
import { ReplicaPool } from './replica-pool.js';

interface FakeReplica {
  url: string;
  server: Server;
  /** What `/health` does. */
  health: 'ok' | 'error' | 'hang';
  running: number;
  waiting: number;
  hung: ServerResponse[];
}

const replicas: FakeReplica[] = [];
const pools: ReplicaPool[] = [];

async function startReplica(): Promise<FakeReplica> {
  const replica: FakeReplica = { url: '', server: undefined as never, health: 'ok', running: 0, waiting: 0, hung: [] };
  replica.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') {
      if (replica.health === 'hang') {
        replica.hung.push(res);
        return;
      }
      res.statusCode = replica.health === 'ok' ? 200 : 503;
      res.end();
      return;
    }
    if (req.url === '/metrics') {
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(
        [
          '# HELP vllm:num_requests_running Number of requests in model execution batches.',
          '# TYPE vllm:num_requests_running gauge',
          `vllm:num_requests_running{engine="0",model_name="chat"} ${replica.running}.0`,
          '# TYPE vllm:num_requests_waiting gauge',
          `vllm:num_requests_waiting{engine="0",model_name="chat"} ${replica.waiting}.0`,
          '# TYPE vllm:gpu_cache_usage_perc gauge',
          'vllm:gpu_cache_usage_perc{engine="0",model_name="chat"} 0.1',
          '',
        ].join('\n'),
      );
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => replica.server.listen(0, '127.0.0.1', resolve));
  replica.url = `http://127.0.0.1:${(replica.server.address() as AddressInfo).port}`;
  replicas.push(replica);
  return replica;
}

let probeCalls = 0;

/** What a vLLM backend's probe looks like. */
const probe: ReplicaProbe = async (replica, signal) => {
  probeCalls++;
  const health = await fetch(`${replica.url}/health`, { signal });
  await health.arrayBuffer();
  if (!health.ok) return { healthy: false, reason: `GET /health: HTTP ${health.status}` };
  const metrics = await fetch(`${replica.url}/metrics`, { signal });
  const samples = parsePrometheusText(await metrics.text());
  const labels = { model_name: 'chat' };
  return {
    healthy: true,
    load: {
      running: sampleValue(samples, ['vllm:num_requests_running'], labels),
      waiting: sampleValue(samples, ['vllm:num_requests_waiting'], labels),
      kvCacheUsage: sampleValue(samples, ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'], labels),
    },
  };
};

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  for (const r of replicas.splice(0)) {
    for (const res of r.hung) res.destroy();
    r.server.closeAllConnections();
    await new Promise<void>((resolve) => r.server.close(() => resolve()));
  }
});

describe('ReplicaPool over HTTP', () => {
  it('probes real replicas: health, load from /metrics, ejection, re-admission, timeouts', async () => {
    const [a, b, c] = await Promise.all([startReplica(), startReplica(), startReplica()]);
    a.running = 16; // scores (running·0.25 + waiting + kv): a 4.1, b 0.35, c 2.85
    b.running = 1;
    c.running = 3;
    c.waiting = 2;
    const changes: Array<[string, boolean]> = [];
    const pool = new ReplicaPool({
      name: 'chat',
      probe,
      probeIntervalMs: 20,
      probeTimeoutMs: 1000, // generous: a loaded CI machine must not time out a healthy replica
      ejectAfterFailures: 2,
      readmitAfterSuccesses: 1,
      onHealthChange: (replica, healthy) => changes.push([replica.url, healthy]),
    });
    pools.push(pool);
    for (const r of [a, b, c]) pool.add(r.url);
    await pool.start();

    expect(pool.snapshot().map((s) => s.state)).toEqual(['healthy', 'healthy', 'healthy']);
    expect(pool.get(c.url)?.load).toEqual({ running: 3, waiting: 2, kvCacheUsage: 0.1 });
    expect(pool.pick()?.url).toBe(b.url);

    // b gets busy: the pick follows once a probe has seen it
    b.running = 20; // 5.1
    await vi.waitFor(() => expect(pool.pick()?.url).toBe(c.url), { timeout: 10_000, interval: 10 });

    // b's /health fails: ejected after two failed probes, re-admitted when it recovers
    b.health = 'error';
    await vi.waitFor(() => expect(pool.get(b.url)?.state).toBe('ejected'), { timeout: 10_000, interval: 10 });
    expect(pool.get(b.url)?.lastError).toBe('probe reported unhealthy: GET /health: HTTP 503');
    b.health = 'ok';
    await vi.waitFor(() => expect(pool.get(b.url)?.state).toBe('healthy'), { timeout: 10_000, interval: 10 });

    // a's /health hangs: the probe times out and counts as a failure
    a.health = 'hang';
    await vi.waitFor(() => expect(pool.get(a.url)?.state).toBe('ejected'), { timeout: 10_000, interval: 10 });
    expect(pool.get(a.url)?.lastError).toBe('probe timed out after 1000 ms');
    // the first round's probes run concurrently: any order
    expect(changes.slice(0, 3).sort()).toEqual([[a.url, true], [b.url, true], [c.url, true]].sort());
    expect(changes.slice(3)).toEqual([
      [b.url, false],
      [b.url, true],
      [a.url, false],
    ]);
    for (let i = 0; i < 10; i++) expect(pool.pick()?.url).not.toBe(a.url);

    // a replica that refuses connections: ejected on its first probe
    const closed = await startReplica();
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    pool.add(closed.url);
    await vi.waitFor(() => expect(pool.get(closed.url)?.state).toBe('ejected'), { timeout: 10_000, interval: 10 });

    await pool.close();
    // nothing is scheduled any more: no probe starts after close (a request aborted by close may
    // still reach a server, so count probe calls, not server requests)
    const calls = probeCalls;
    await new Promise((resolve) => setTimeout(resolve, 100)); // five intervals
    expect(probeCalls).toBe(calls);
  });
});
