/**
 * Overload protection over real HTTP on 127.0.0.1: a real ONNX model made slow on purpose (one
 * instance, one thread, ~25 ms a run) and a generative stand-in, each behind small caps, hit with
 * ten times more concurrent clients than they can hold (queue + in flight) for a few seconds.
 * Every answer is a 200 or a 503 with `Retry-After` — no socket error, no timeout, no hang — the
 * caps hold (never more generations at once than `generation.maxConcurrent`), the server's memory
 * (sampled in-process) stays within a generous bound even when every refused request carries a
 * 2 MiB body (refused before it is read), and the server answers normally afterwards.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import autocannon from 'autocannon';
import { FakeBackend, encodeBinaryInferRequest } from '@tessera/core/testing';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../integration/helpers.js';
import type { Started, TickStats } from './support.js';
import { backendsPlugin, inferBody, slowOnnxModel, sseData, startServer, tickingGenerate } from './support.js';

const MIB = 1024 * 1024;
/** Seconds each load runs. */
const LOAD_SECONDS = 3;
/** Queue and in-flight caps (capacity N = queue + in flight; clients = 10 × N). */
const QUEUE = 8;
const DYN_BATCH = 4;
const GEN = { maxConcurrent: 4, maxQueued: 4 };

const streams: TickStats = { running: 0, maxRunning: 0, aborted: 0, started: 0 };
let s: Started;

/** Samples the server's memory (this process) every 25 ms until stopped: the peaks over the baseline. */
function sampleMemory(): { stop(): { heapMiB: number; rssMiB: number; externalMiB: number } } {
  const base = process.memoryUsage();
  let heap = 0;
  let rss = 0;
  let external = 0;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    heap = Math.max(heap, m.heapUsed - base.heapUsed);
    rss = Math.max(rss, m.rss - base.rss);
    external = Math.max(external, m.external - base.external);
  }, 25);
  return {
    stop() {
      clearInterval(timer);
      return { heapMiB: heap / MIB, rssMiB: rss / MIB, externalMiB: external / MIB };
    },
  };
}

/** `clients` loops of `send` until `seconds` passed; every status counted, every thrown error kept. */
async function swarm(clients: number, seconds: number, send: (agent: Agent) => Promise<number>): Promise<{ statuses: Map<number, number>; errors: unknown[] }> {
  const agent = new Agent({ connections: clients, keepAliveTimeout: 10_000 });
  const statuses = new Map<number, number>();
  const errors: unknown[] = [];
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        try {
          const status = await send(agent);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        } catch (err) {
          errors.push(err);
          if (errors.length > 50) return;
        }
      }
    }),
  );
  await agent.close();
  return { statuses, errors };
}

beforeAll(async () => {
  const dir = await tempDir('tessera-overload-');
  const file = path.join(dir, 'slow.onnx');
  await writeFile(file, slowOnnxModel(1024));
  const llm = new FakeBackend({ generate: tickingGenerate(streams, 20, 5) });
  const onnx = { path: file, sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } };
  s = await startServer(
    {
      models: {
        // capacity 1 running + 8 queued = 9
        'slow-pt': { ...onnx, batching: { batcher: 'passthrough', maxBatchSize: 0, maxQueueSize: QUEUE } },
        // capacity one batch of 4 running + 8 queued = 12
        'slow-dyn': { ...onnx, batching: { batcher: 'dynamic', maxBatchSize: DYN_BATCH, maxQueueSize: QUEUE } },
        // capacity 4 running + 4 waiting = 8
        llm: { backend: 'llm', generation: GEN },
      },
    },
    [backendsPlugin({ llm })],
    dir,
  );
}, 60_000);

afterAll(async () => {
  await s?.close();
});

/** A swarm's outcome under overload: no socket error, only 200/429/503, and both some served and some refused. */
function expectLoadSignalsOnly(statuses: Map<number, number>, errors: unknown[]): void {
  expect(errors.map(String)).toEqual([]);
  expect([...statuses.keys()].every((code) => code === 200 || code === 429 || code === 503), `statuses ${JSON.stringify([...statuses])}`).toBe(true);
  expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
  expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
}

describe('tensor requests at 10× capacity', () => {
  it('should answer every request of autocannon 200 or 503 with Retry-After, without errors or timeouts, then serve normally', async () => {
    const connections = 10 * (QUEUE + DYN_BATCH);
    let missingRetryAfter = 0;
    const memory = sampleMemory();
    const result = await autocannon({
      url: s.url,
      connections,
      duration: LOAD_SECONDS,
      timeout: 10,
      requests: [
        {
          method: 'POST',
          path: '/v2/models/slow-dyn/infer',
          headers: { 'content-type': 'application/json' },
          body: inferBody(1),
          onResponse: (status, _body, _context, headers) => {
            if (status === 503 && headers['retry-after'] !== '1') missingRetryAfter++;
          },
        },
      ],
    });
    const peak = memory.stop();
    const statuses = Object.keys(result.statusCodeStats).map(Number);
    expect(statuses.every((code) => code === 200 || code === 429 || code === 503), `statuses ${JSON.stringify(result.statusCodeStats)}`).toBe(true);
    // the model cannot keep up with 120 clients: most are refused, some are served
    expect(result.statusCodeStats['503']?.count ?? 0).toBeGreaterThan(0);
    expect(result.statusCodeStats['200']?.count ?? 0).toBeGreaterThan(0);
    expect({ errors: result.errors, timeouts: result.timeouts, resets: result.resets, missingRetryAfter }).toEqual({ errors: 0, timeouts: 0, resets: 0, missingRetryAfter: 0 });
    expect(peak.heapMiB).toBeLessThan(256);
    // requests admitted before the clients left are still worked off (each gets its answer): until
    // the queue has room a new request is refused with 503, then it is served (within a few runs of ~25 ms)
    const deadline = Date.now() + 5000;
    let after = await fetch(`${s.url}/v2/models/slow-dyn/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody(1) });
    while (after.status === 503 && Date.now() < deadline) {
      expect(((await after.json()) as { code: string }).code).toBe('TESSERA_E_QUEUE_FULL');
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await fetch(`${s.url}/v2/models/slow-dyn/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody(1) });
    }
    expect(after.status, await after.clone().text()).toBe(200);
  });

  it('should refuse 2 MiB bodies beyond capacity before reading them: memory stays bounded, no socket error', async () => {
    const clients = 10 * (QUEUE + 1);
    const rows = (2 * MIB) / 16;
    const data = new Float32Array(rows * 4).fill(0.5);
    const req = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [rows, 4], data }], { outputs: [{ name: 'y', binary: true }] });
    let missingRetryAfter = 0;
    let late = 0;
    const memory = sampleMemory();
    const { statuses, errors } = await swarm(clients, LOAD_SECONDS, async (dispatcher) => {
      const res = await request(`${s.url}/v2/models/slow-pt/infer`, { method: 'POST', headers: req.headers, body: req.body, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
      if (res.statusCode === 503 && res.headers['retry-after'] !== '1') missingRetryAfter++;
      const answer = Buffer.from(await res.body.arrayBuffer());
      if (res.statusCode === 503 && !answer.toString('utf8', 0, 400).includes('refused before the body was read')) late++;
      return res.statusCode;
    });
    const peak = memory.stop();
    expectLoadSignalsOnly(statuses, errors);
    expect(missingRetryAfter).toBe(0);
    // 90 clients × 2 MiB in flight would be 180 MiB of bodies alone if the server read what it
    // refuses (measured: a peak of ~186 MiB when admission did not count bodies still arriving);
    // it holds only the 9 it admits, their copies and outputs (measured: ~86 MiB)
    // every refusal came before the body was read: requests whose bodies are still arriving hold
    // their queue places, so no admitted body is refused later
    expect(late).toBe(0);
    // the peak includes buffers freed but not yet collected: with the refusals as they should be it
    // ranged 120–161 MiB over 17 runs on a faster 2-core machine (2026-12-06: 150 failed a third of
    // the runs, before and after that day's changes alike); reading the 90 refused bodies would
    // add up to 180 MiB on top of what is admitted
    expect(peak.externalMiB).toBeLessThan(175);
    expect(peak.heapMiB).toBeLessThan(256);
    const after = await fetch(`${s.url}/v2/models/slow-pt/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody(2) });
    expect(after.status).toBe(200);
  });
});

describe('generations at 10× capacity', () => {
  it('should answer every stream 200 (ending in [DONE]) or 503 with Retry-After, never run more than maxConcurrent at once, then serve normally', async () => {
    const clients = 10 * (GEN.maxConcurrent + GEN.maxQueued);
    const body = JSON.stringify({ model: 'llm', messages: [{ role: 'user', content: 'count' }], stream: true });
    let unfinished = 0;
    let missingRetryAfter = 0;
    streams.maxRunning = 0;
    const memory = sampleMemory();
    const { statuses, errors } = await swarm(clients, LOAD_SECONDS, async (dispatcher) => {
      const res = await request(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
      const text = await res.body.text();
      if (res.statusCode === 200 && sseData(text).at(-1) !== '[DONE]') unfinished++;
      if (res.statusCode === 503 && res.headers['retry-after'] !== '1') missingRetryAfter++;
      return res.statusCode;
    });
    const peak = memory.stop();
    expectLoadSignalsOnly(statuses, errors);
    expect({ unfinished, missingRetryAfter }).toEqual({ unfinished: 0, missingRetryAfter: 0 });
    expect(streams.maxRunning).toBe(GEN.maxConcurrent);
    expect(peak.heapMiB).toBeLessThan(256);
    const after = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(after.status).toBe(200);
    expect(sseData(await after.text()).at(-1)).toBe('[DONE]');
  });
});
