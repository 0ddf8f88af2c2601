/**
 * The Python backend behind the real CLI, over HTTP: Triton's add_sub example (the README's),
 * BYTES, errors of every kind, a worker that crashes and is restarted, dynamic batching that hands
 * execute several requests, and a shutdown that leaves no Python process behind. The models are
 * written into a temp folder outside the repository.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TesseraProcess } from '@tessera/core/testing';
import { processAlive, startTessera } from '@tessera/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNT_PY, CRASH_PY, INIT_RAISES_PY, PER_REQUEST_ERROR_PY, RAISES_PY, UPPER_PY, fp32, pythonMissing, readmeExample, writeModel } from './models.js';

const missing = pythonMissing();

/** Worker processes (their pids) whose parent is `parent`, read from /proc. */
function workersOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('tessera_python_worker.py')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}


/** One HTTP call; the body parsed as JSON. */
async function http(url: string, init: { json?: unknown } = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, init.json === undefined ? {} : { method: 'POST', body: JSON.stringify(init.json), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

const X = { inputs: [fp32('X')], outputs: [fp32('Y')] };

describe.skipIf(missing !== undefined)(`@tessera/backend-python over HTTP${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let server: TesseraProcess;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-python-int-'));
    const models = path.join(dir, 'models');
    const config = {
      server: { host: '127.0.0.1', port: 0, exitOnModelError: false },
      plugins: ['@tessera/backend-python'],
      models: {
        add_sub: {
          backend: 'python',
          path: await writeModel(models, 'add_sub', readmeExample()),
          inputs: [fp32('INPUT0'), fp32('INPUT1')],
          outputs: [fp32('OUTPUT0'), fp32('OUTPUT1')],
          batching: { maxBatchSize: 8, maxQueueDelayMs: 2 },
          instances: 2,
        },
        upper: {
          backend: 'python',
          path: await writeModel(models, 'upper', UPPER_PY),
          inputs: [{ name: 'TEXT', datatype: 'BYTES', shape: [-1] }],
          outputs: [{ name: 'UPPER', datatype: 'BYTES', shape: [-1] }, { name: 'LENGTH', datatype: 'INT32', shape: [-1] }],
        },
        raises: { backend: 'python', path: await writeModel(models, 'raises', RAISES_PY), ...X },
        per_request: { backend: 'python', path: await writeModel(models, 'per_request', PER_REQUEST_ERROR_PY), ...X, batching: { maxBatchSize: 8, maxQueueDelayMs: 20 } },
        crash: { backend: 'python', path: await writeModel(models, 'crash', CRASH_PY), ...X, restart: { initialDelayMs: 50 } },
        broken: { backend: 'python', path: await writeModel(models, 'broken', INIT_RAISES_PY), ...X },
        count: {
          backend: 'python',
          path: await writeModel(models, 'count', COUNT_PY),
          inputs: [fp32('X')],
          outputs: [fp32('Y'), { name: 'COUNT', datatype: 'INT32', shape: [-1, 1] }],
          batching: { maxBatchSize: 16, maxQueueDelayMs: 50 },
        },
      },
    };
    const file = path.join(dir, 'tessera.config.json');
    await writeFile(file, JSON.stringify(config, null, 2));
    server = await startTessera({ args: ['serve', '-c', file], timeoutMs: 60_000 });
    url = server.url;
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const infer = (model: string, inputs: unknown[], outputs?: unknown[]) => http(`${url}/v2/models/${model}/infer`, { json: { inputs, ...(outputs ? { outputs } : {}) } });
  const x = (values: number[]) => ({ name: 'X', datatype: 'FP32', shape: [1, values.length], data: values });

  it("should serve Triton's add_sub example (the README's model.py) over OIP v2", async () => {
    const res = await infer('add_sub', [
      { name: 'INPUT0', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] },
      { name: 'INPUT1', datatype: 'FP32', shape: [2, 4], data: [10, 20, 30, 40, 50, 60, 70, 80] },
    ]);
    expect(res.status).toBe(200);
    const out = Object.fromEntries((res.body.outputs as { name: string; data: number[]; shape: number[] }[]).map((o) => [o.name, o]));
    expect(out['OUTPUT0']).toMatchObject({ shape: [2, 4], data: [11, 22, 33, 44, 55, 66, 77, 88] });
    expect(out['OUTPUT1']).toMatchObject({ shape: [2, 4], data: [-9, -18, -27, -36, -45, -54, -63, -72] });
    const meta = await http(`${url}/v2/models/add_sub`);
    expect(meta.body.platform).toBe('python');
  });

  it('should pass BYTES tensors as bytes and back', async () => {
    const res = await infer('upper', [{ name: 'TEXT', datatype: 'BYTES', shape: [2], data: ['tessera', 'ünï'] }]);
    expect(res.status).toBe(200);
    const out = Object.fromEntries((res.body.outputs as { name: string; data: unknown[] }[]).map((o) => [o.name, o.data]));
    expect(out).toEqual({ UPPER: ['TESSERA', 'ÜNÏ'], LENGTH: [7, 5] });
  });

  it('should answer 500 with the exception when execute raises', async () => {
    const res = await infer('raises', [x([1, 2, 3, 4])]);
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('TESSERA_E_INFERENCE_FAILED');
    expect(res.body.error).toContain('ValueError: the model refuses to run');
    expect(res.body.error).not.toContain('Traceback');
  });

  it('should fail only the request whose response carries a TritonError', async () => {
    const [good, bad] = await Promise.all([infer('per_request', [x([1, 2, 3, 4])]), infer('per_request', [x([-1, 2, 3, 4])])]);
    expect(good.status).toBe(200);
    expect(good.body.outputs[0].data).toEqual([2, 4, 6, 8]);
    expect(bad.status).toBe(500);
    expect(bad.body.error).toContain('negative values are not accepted');
  });

  it('should answer 503 for the request that crashed the worker, restart it, and serve the next request', async () => {
    const crashed = await infer('crash', [x([-1, 0, 0, 0])]);
    expect(crashed.status).toBe(503);
    expect(crashed.body.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
    expect(crashed.body.error).toContain('exited with code 3');
    expect(crashed.headers.get('retry-after')).toMatch(/^\d+$/);
    let next = await infer('crash', [x([1, 2, 3, 4])]);
    for (let i = 0; i < 100 && next.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 100));
      next = await infer('crash', [x([1, 2, 3, 4])]);
    }
    expect(next.status).toBe(200);
    expect(next.body.outputs[0].data).toEqual([2, 3, 4, 5]);
  });

  it("should report a model whose initialize raised as failed, with the traceback's last line and no stack dump", async () => {
    const ready = await http(`${url}/v2/models/broken/ready`);
    expect(ready.status).toBe(503);
    const index = await http(`${url}/v2/repository/index`, { json: {} });
    const row = (index.body as { name: string; reason?: string }[]).find((r) => r.name === 'broken');
    expect(row?.reason).toContain('RuntimeError: weights.bin is missing');
    expect(row?.reason).not.toContain('Traceback');
  });

  it('should hand execute more than one request at once under the dynamic batcher', async () => {
    let most = 0;
    for (let round = 0; round < 5 && most < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => infer('count', [x([i, i, i, i])])));
      for (const [i, a] of answers.entries()) {
        expect(a.status).toBe(200);
        const outs = Object.fromEntries((a.body.outputs as { name: string; data: number[] }[]).map((o) => [o.name, o.data]));
        expect(outs['Y']).toEqual([i, i, i, i]); // each request its own answer, whatever the batch
        most = Math.max(most, outs['COUNT']![0]!);
      }
    }
    expect(most).toBeGreaterThan(1);
  });

  it('should leave no Python process behind on shutdown', async () => {
    const pid = server.child.pid!;
    const workers = workersOf(pid);
    // add_sub ×2, upper, raises, per_request, crash (restarted), count
    expect(workers.length).toBeGreaterThanOrEqual(7);
    expect(await server.stop()).toBe(0);
    for (let i = 0; i < 50 && workers.some(processAlive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(workers.filter(processAlive)).toEqual([]);
  });
});
