/**
 * Triton's statistics and model-configuration extensions end to end: the real `tessera` CLI, the
 * real PP-OCR text-orientation classifier in ONNX Runtime, traffic over loopback on OIP v2 (JSON
 * and binary) and /v1/predict, then `GET …/stats` and `GET …/config` checked against the shapes
 * Triton documents (docs/protocol/extension_statistics.md, model_config.proto) and the numbers
 * against the traffic sent. The dynamic batcher is set so that batches form deterministically: it
 * holds a batch (up to 20 s) until it has 4 samples, its preferred and largest size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { encodeBinaryInferRequest, mulberry32, startTessera } from '@tessera/core/testing';
import { CLS_MODEL, http, tempDir, writeConfig } from './helpers.js';

const SAMPLE = 3 * 48 * 192;

let server: TesseraProcess;
let base: string;
let started: number;
const random = mulberry32(12);

function pixels(samples: number): Float32Array {
  const data = new Float32Array(samples * SAMPLE);
  for (let i = 0; i < data.length; i++) data[i] = random() - 0.5;
  return data;
}

/** An OIP v2 request of `samples` images: JSON for one, binary for more. */
function infer(model: string, samples: number, extra: Record<string, unknown> = {}): Promise<number> {
  if (samples === 1) {
    return http(`${base}/v2/models/${model}/versions/1/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: Array.from(pixels(1)) }], ...extra } }).then((r) => r.status);
  }
  const { body, headers } = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [samples, 3, 48, 192], data: pixels(samples) }], { binaryOutput: true, ...extra });
  return fetch(`${base}/v2/models/${model}/versions/1/infer`, { method: 'POST', body, headers }).then(async (r) => (await r.arrayBuffer(), r.status));
}

/** /v1/predict with one image as a nested array. */
async function predict(model: string): Promise<number> {
  const flat = pixels(1);
  const nested = [Array.from({ length: 3 }, (_, c) => Array.from({ length: 48 }, (_, y) => Array.from(flat.subarray((c * 48 + y) * 192, (c * 48 + y + 1) * 192))))];
  return (await http(`${base}/v1/predict`, { json: { model, inputs: { x: nested } } })).status;
}

interface Duration {
  count: number;
  ns: number;
}
type Stat = Record<string, unknown> & { name: string; version: string; inference_stats: Record<string, Duration>; batch_stats: ({ batch_size: number } & Record<string, Duration>)[] };

async function statsOf(path: string): Promise<Stat[]> {
  const res = await http(`${base}${path}`);
  expect(res.status, res.text).toBe(200);
  expect(Object.keys(res.body)).toEqual(['model_stats']);
  for (const s of res.body.model_stats as Stat[]) checkShape(s);
  return res.body.model_stats as Stat[];
}

/** Triton's documented `$model_stat`: these keys, these types, nothing else. */
function checkShape(s: Stat): void {
  expect(Object.keys(s).sort()).toEqual(['batch_stats', 'execution_count', 'inference_count', 'inference_stats', 'last_inference', 'memory_usage', 'name', 'response_stats', 'version']);
  expect(s).toMatchObject({ name: expect.any(String), version: expect.any(String), last_inference: expect.any(Number), inference_count: expect.any(Number), execution_count: expect.any(Number), response_stats: {}, memory_usage: [] });
  const duration = { count: expect.any(Number), ns: expect.any(Number) };
  expect(Object.keys(s.inference_stats).sort()).toEqual(['cache_hit', 'cache_miss', 'compute_infer', 'compute_input', 'compute_output', 'fail', 'queue', 'success']);
  for (const d of Object.values(s.inference_stats)) {
    expect(d).toEqual(duration);
    expect(Number.isInteger(d.ns) && Number.isInteger(d.count)).toBe(true);
  }
  for (const b of s.batch_stats) {
    expect(Object.keys(b).sort()).toEqual(['batch_size', 'compute_infer', 'compute_input', 'compute_output']);
    for (const phase of ['compute_input', 'compute_infer', 'compute_output']) expect(b[phase]).toEqual(duration);
  }
}

/** Waits until the version has counted `n` requests (a request is counted once its answer was sent). */
async function counted(path: string, n: number): Promise<Stat> {
  const end = Date.now() + 10_000;
  for (;;) {
    const [s] = await statsOf(path);
    const seen = s!.inference_stats['success']!.count + s!.inference_stats['fail']!.count;
    if (seen >= n || Date.now() > end) return s!;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeAll(async () => {
  const dir = await tempDir('tessera-triton-ext-');
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, logLevel: 'info' },
    models: {
      cls: {
        path: CLS_MODEL,
        // one instance, so that the statistics below count batches deterministically
        instances: 1,
        batching: { batcher: 'dynamic', maxBatchSize: 4, preferredBatchSizes: [4], maxQueueDelayMs: '20s' },
        warmupShapes: { x: [1, 3, 48, 192] },
      },
      plain: { path: CLS_MODEL, batching: { maxBatchSize: 4 }, warmupShapes: { x: [1, 3, 48, 192] } },
    },
  });
  server = await startTessera({ args: ['serve', '-c', config, '--port', '0'] });
  base = server.url;
  started = Date.now();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('GET /v2', () => {
  it('should list the statistics and model_configuration extensions', async () => {
    const res = await http(`${base}/v2`);
    expect(res.body.extensions).toEqual(expect.arrayContaining(['statistics', 'model_configuration', 'binary_tensor_data', 'model_repository']));
  });
});

describe('GET /v2/models/{m}/versions/{v}/stats', () => {
  it('should match the traffic sent: requests, samples, executions and batch sizes', async () => {
    const before = await statsOf('/v2/models/cls/versions/1/stats');
    expect(before[0]).toMatchObject({ name: 'cls', version: '1', inference_count: 0, execution_count: 0, last_inference: 0, batch_stats: [] });
    // one batch of 4 from four concurrent requests on both protocols (JSON, binary, /v1/predict)
    expect(await Promise.all([infer('cls', 1), infer('cls', 1), predict('cls'), infer('cls', 1)])).toEqual([200, 200, 200, 200]);
    // a request that fills a batch alone; two of 2 samples; one of 2 and two of 1
    expect(await infer('cls', 4)).toBe(200);
    expect(await Promise.all([infer('cls', 2), infer('cls', 2)])).toEqual([200, 200]);
    expect(await Promise.all([infer('cls', 2), infer('cls', 1), infer('cls', 1)])).toEqual([200, 200, 200]);
    // refused by validation (wrong shape) and an unknown version: not the version's inferences
    expect(await http(`${base}/v2/models/cls/versions/1/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48], data: new Array(3 * 48).fill(0) }] } }).then((r) => r.status)).toBe(400);
    expect(await http(`${base}/v2/models/cls/versions/9/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0] }] } }).then((r) => r.status)).toBe(404);
    // validated, then past its deadline before its work started: a failed inference
    expect(await infer('cls', 1, { parameters: { timeout: 0.000001 } })).toBe(504);

    const s = await counted('/v2/models/cls/versions/1/stats', 11);
    const st = s.inference_stats;
    expect(st['success']!.count).toBe(10);
    expect(st['fail']!.count).toBe(1);
    expect(s.inference_count).toBe(16);
    expect(s.execution_count).toBe(4);
    for (const phase of ['queue', 'compute_input', 'compute_infer', 'compute_output']) expect(st[phase]!.count, phase).toBe(10);
    expect(st['cache_hit']).toEqual({ count: 0, ns: 0 });
    expect(st['cache_miss']).toEqual({ count: 0, ns: 0 });
    expect(s.batch_stats.map((b) => [b.batch_size, b['compute_infer']!.count])).toEqual([[4, 4]]);
    expect(s.batch_stats[0]!['compute_infer']!.ns).toBeGreaterThan(0);
    // the phases are parts of each request's time from arrival to answer
    for (const phase of ['success', 'fail', 'queue', 'compute_input', 'compute_infer']) expect(st[phase]!.ns, phase).toBeGreaterThan(0);
    expect(st['success']!.ns).toBeGreaterThanOrEqual(st['queue']!.ns + st['compute_input']!.ns + st['compute_infer']!.ns + st['compute_output']!.ns - 4);
    // every request of a batch is charged the whole execution: 10 requests over executions of 4 samples
    expect(st['compute_infer']!.ns).toBeGreaterThanOrEqual(s.batch_stats[0]!['compute_infer']!.ns);
    expect(s.last_inference).toBeGreaterThanOrEqual(started);
    expect(s.last_inference).toBeLessThanOrEqual(Date.now());
  });

  it('should record each batch size of a model without a dynamic batcher', async () => {
    expect(await infer('plain', 3)).toBe(200);
    expect(await infer('plain', 1)).toBe(200);
    expect(await infer('plain', 3)).toBe(200);
    const s = await counted('/v2/models/plain/stats', 3);
    expect(s).toMatchObject({ name: 'plain', version: '1', inference_count: 7, execution_count: 3 });
    expect(s.batch_stats.map((b) => [b.batch_size, b['compute_infer']!.count])).toEqual([
      [1, 1],
      [3, 2],
    ]);
  });

  it('should list every model version in /v2/models/stats, and answer 404 for unknown ones', async () => {
    const all = await statsOf('/v2/models/stats');
    expect(all.map((s) => `${s.name}:${s.version}`)).toEqual(['cls:1', 'plain:1']);
    expect(await http(`${base}/v2/models/nope/stats`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_NOT_FOUND', error: expect.any(String) } });
    expect(await http(`${base}/v2/models/cls/versions/3/stats`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_VERSION_NOT_FOUND' } });
  });
});

describe('GET /v2/models/{m}[/versions/{v}]/config', () => {
  it('should give the effective configuration in model_config.proto\'s JSON names', async () => {
    const metadata = (await http(`${base}/v2/models/cls`)).body as { inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[] };
    const res = await http(`${base}/v2/models/cls/versions/1/config`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'cls',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      version_policy: { specific: { versions: [1] } },
      max_batch_size: 4,
      // dims without the batch dim, as Triton writes them when max_batch_size > 0
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: metadata.inputs[0]!.shape.slice(1) }],
      output: [{ name: 'softmax_0.tmp_0', data_type: 'TYPE_FP32', dims: [2] }],
      instance_group: [{ name: 'cls_0', kind: 'KIND_CPU', count: 1 }],
      default_model_filename: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
      dynamic_batching: { preferred_batch_size: [4], max_queue_delay_microseconds: 20_000_000, default_queue_policy: { max_queue_size: 1024 } },
      parameters: { warmupShapes: { string_value: '{"x":[1,3,48,192]}' } },
      tessera: { version: '1', state: 'ready', batching: { batcher: 'dynamic', maxBatchSize: 4, maxQueueDelayMs: 20_000, preferredBatchSizes: [4] }, instances: 1, routing: { strategy: 'latest' } },
    });
    expect(metadata.inputs[0]!.shape.slice(1)).toEqual([3, -1, -1]);
    // the newest version when none is named; a model without the dynamic batcher has no dynamic_batching
    expect((await http(`${base}/v2/models/cls/config`)).body).toEqual(res.body);
    const plain = await http(`${base}/v2/models/plain/config`);
    expect(plain.body).toMatchObject({ name: 'plain', max_batch_size: 4, tessera: { batching: { batcher: 'passthrough' } } });
    expect(plain.body).not.toHaveProperty('dynamic_batching');
  });

  it('should answer 404 for an unknown model or version', async () => {
    expect(await http(`${base}/v2/models/nope/config`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_NOT_FOUND' } });
    expect(await http(`${base}/v2/models/cls/versions/2/config`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_VERSION_NOT_FOUND' } });
  });
});
