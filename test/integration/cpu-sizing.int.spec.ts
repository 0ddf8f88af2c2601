/**
 * `instances: auto` and the ONNX Runtime backend's thread sizing end to end: the real CLI serving
 * the real PP-OCR classifier, told how many cores it has (`TESSERA_CPUS`, as a cgroup quota would
 * tell it), shows what it chose in Triton's model configuration (`instance_group.count`) and in
 * `tessera.instanceSettings`, logs it when the model is ready, answers correctly on every instance,
 * and an explicit `instances` or `intraOpNumThreads` wins over the rule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { encodeBinaryInferRequest, startTessera } from '@tessera/core/testing';
import { CLS_MODEL, http, tempDir, writeConfig } from './helpers.js';

const servers: TesseraProcess[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function serve(model: Record<string, unknown>, cores: string, server: Record<string, unknown> = { workers: 1 }): Promise<{ base: string; server: TesseraProcess }> {
  const dir = await tempDir('tessera-sizing-');
  const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, logLevel: 'info', ...server }, models: { cls: { path: CLS_MODEL, warmupShapes: { x: [1, 3, 48, 192] }, ...model } } });
  const proc = await startTessera({ args: ['serve', '-c', file], env: { TESSERA_CPUS: cores }, timeoutMs: 60_000 });
  servers.push(proc);
  return { base: proc.url, server: proc };
}

interface ModelConfigBody {
  instance_group: { count: number }[];
  tessera: { instances: number | string; instancesLoaded: number; instanceSettings: Record<string, unknown>[] };
}

describe('instances: auto (ONNX Runtime)', { timeout: 120_000 }, () => {
  it('should load one single-threaded instance per core left to the model, say so, and serve on all of them', async () => {
    const { base, server } = await serve({ batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 0 } }, '16');
    const res = await http<ModelConfigBody>(`${base}/v2/models/cls/config`);
    expect(res.status).toBe(200);
    // 16 cores in one process (workers: 1): 4 left to the server, 12 single-threaded sessions for a 0.5 MB model
    expect(res.body.instance_group[0]!.count).toBe(12);
    expect(res.body.tessera.instances).toBe('auto');
    expect(res.body.tessera.instancesLoaded).toBe(12);
    expect(res.body.tessera.instanceSettings).toHaveLength(12);
    expect(res.body.tessera.instanceSettings[0]).toEqual({ intraOpNumThreads: 1, allowSpinning: true, executionProvider: 'cpu', executionProviders: ['cpu'], runInWorker: true, workerSpinMs: 1, nextBatchInWorker: false });
    const ready = server.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'model ready');
    expect(ready).toMatchObject({ model: 'cls', instances: 12, instancesAuto: true, settings: { intraOpNumThreads: 1 } });
    // 24 requests at once keep several instances busy; every answer is a softmax over 2 classes
    const answers = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const data = new Float32Array(3 * 48 * 192).fill((i % 5) / 5 - 0.5);
        const { body, headers } = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data }], { binaryOutput: false });
        const r = await fetch(`${base}/v2/models/cls/infer`, { method: 'POST', body, headers });
        expect(r.status).toBe(200);
        return ((await r.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
      }),
    );
    for (const probs of answers) expect(probs[0]! + probs[1]!).toBeCloseTo(1, 4);
  });

  it('should start a worker per 4 cores by default (server.workers: auto), each sized for its share', async () => {
    const { base, server } = await serve({}, '16', {});
    const lines = server.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
    const start = lines.find((l) => String(l['msg']).startsWith('starting 4 workers'));
    expect(start, server.stdout.join('\n')).toMatchObject({ workers: 4, coresPerWorker: [4, 4, 4, 4] });
    // the first worker's ready line started the test: wait for the primary to count all 4 ready
    const deadline = Date.now() + 60_000;
    while (!/^tessera_cluster_workers\{state="ready"\} 4$/m.test(await (await fetch(`${base}/metrics`)).text())) {
      if (Date.now() > deadline) throw new Error(`not all 4 workers became ready:\n${server.stdout.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // a worker's share of 4 cores: nothing reserved, 4 single-threaded instances, polling 1 ms
    // (from 4 cores on: a 4-core worker had never polled, bench/sizing-followup.sh)
    const res = await http<ModelConfigBody>(`${base}/v2/models/cls/config`);
    expect(res.body.instance_group[0]!.count).toBe(4);
    expect(res.body.tessera.instanceSettings[0]).toMatchObject({ intraOpNumThreads: 1, workerSpinMs: 1 });
  });

  it('should size for 2 cores as it would on a laptop: one process, two instances, no polling', async () => {
    const { base, server } = await serve({}, '2', {});
    expect(server.stdout.some((l) => l.includes('starting') && l.includes('workers'))).toBe(false);
    const res = await http<ModelConfigBody>(`${base}/v2/models/cls/config`);
    expect(res.body.instance_group[0]!.count).toBe(2);
    expect(res.body.tessera.instanceSettings[0]).toMatchObject({ intraOpNumThreads: 1, workerSpinMs: 0 });
  });

  it('should keep an explicit instances (dividing the cores) and an explicit intraOpNumThreads (fitting instances to it)', async () => {
    const explicit = await serve({ instances: 2 }, '16');
    const a = (await http<ModelConfigBody>(`${explicit.base}/v2/models/cls/config`)).body;
    expect(a.tessera.instances).toBe(2);
    expect(a.instance_group[0]!.count).toBe(2);
    expect(a.tessera.instanceSettings.map((s) => s['intraOpNumThreads'])).toEqual([6, 6]);
    const threads = await serve({ sessionOptions: { intraOpNumThreads: 4, allowSpinning: false }, workerSpinMs: 0 }, '16');
    const b = (await http<ModelConfigBody>(`${threads.base}/v2/models/cls/config`)).body;
    expect(b.instance_group[0]!.count).toBe(3);
    expect(b.tessera.instanceSettings[0]).toMatchObject({ intraOpNumThreads: 4, allowSpinning: false, workerSpinMs: 0 });
  });
});
