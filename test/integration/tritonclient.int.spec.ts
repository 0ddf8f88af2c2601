/**
 * Triton's own Python HTTP client (`tritonclient.http`) against the real `tessera` CLI serving the
 * real PP-OCR text-orientation classifier: server and model metadata, the model configuration,
 * inference with numpy inputs (binary tensors, concurrent `async_infer`), and the inference
 * statistics, which must match the traffic the client sent. The client runs in
 * `tritonclient/check.py`, which prints what it read as JSON.
 *
 * Runs when a Python can import `tritonclient.http` (it needs numpy, geventhttpclient and
 * rapidjson): `TRITONCLIENT_PYTHON` (default `python3`, then `/usr/bin/python3`), with
 * `TRITONCLIENT_PYTHONPATH` added to PYTHONPATH — e.g. the client's source:
 *   git --git-dir=<triton-inference-server/client>.git archive HEAD src/python/library | tar -x -C /tmp/tc
 *   TRITONCLIENT_PYTHONPATH=/tmp/tc/src/python/library npx vitest run test/integration/tritonclient.int.spec.ts
 * or `pip install tritonclient[http]`. Otherwise it is skipped, saying so.
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';
import { CLS_MODEL, tempDir, writeConfig } from './helpers.js';

const SCRIPT = path.join(import.meta.dirname, 'tritonclient', 'check.py');

/** The environment the client runs with: `TRITONCLIENT_PYTHONPATH` in front of PYTHONPATH. */
function pythonEnv(): NodeJS.ProcessEnv {
  const extra = process.env['TRITONCLIENT_PYTHONPATH'];
  const current = process.env['PYTHONPATH'];
  return { ...process.env, ...(extra ? { PYTHONPATH: current ? `${extra}${path.delimiter}${current}` : extra } : {}) };
}

/** The first Python that imports `tritonclient.http`, or why none does. */
function findPython(): { python?: string; reason: string } {
  const candidates = [...new Set([process.env['TRITONCLIENT_PYTHON'], 'python3', '/usr/bin/python3'].filter((p): p is string => Boolean(p)))];
  const errors: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import tritonclient.http'], { env: pythonEnv(), encoding: 'utf8', timeout: 30_000 });
    if (probe.status === 0) return { python, reason: '' };
    const last = (probe.stderr ?? '').trim().split('\n').at(-1) ?? '';
    errors.push(`${python}: ${probe.error ? probe.error.message : last || `exit ${probe.status}`}`);
  }
  return {
    reason: `no Python imports tritonclient.http (${errors.join('; ')}); set TRITONCLIENT_PYTHONPATH to the client's src/python/library (or pip install tritonclient[http]), and TRITONCLIENT_PYTHON to a Python with numpy, geventhttpclient and rapidjson`,
  };
}

const found = findPython();
if (!found.python) console.warn(`tritonclient.int.spec.ts skipped: ${found.reason}`);

interface Duration {
  count: number;
  ns: number;
}

interface ClientReport {
  live: boolean;
  ready: boolean;
  server_metadata: { name: string; version: string; extensions: string[] };
  model_metadata: { name: string; platform: string; inputs: { name: string; datatype: string; shape: number[] }[] };
  model_config: Record<string, any>;
  model_config_v1: Record<string, any>;
  stats_before: { model_stats: Record<string, any>[] };
  answers: { shape: number[]; rows_sum_to_one: boolean }[];
  deadline: { status: string; message: string };
  bad_shape: { status: string; message: string };
  unknown_model: { status: string; message: string };
  stats: { model_stats: (Record<string, any> & { inference_stats: Record<string, Duration>; batch_stats: { batch_size: number; compute_infer: Duration }[] })[] };
  stats_model: { model_stats: Record<string, any>[] };
  stats_all: { model_stats: Record<string, any>[] };
  classes: { shape: number[]; data: string[] };
}

describe.skipIf(!found.python)(`Triton's Python client (tritonclient.http)${found.python ? '' : ` — skipped: ${found.reason}`}`, () => {
  let server: TesseraProcess;
  let report: ClientReport;

  beforeAll(async () => {
    const dir = await tempDir('tessera-tritonclient-');
    const config = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, logLevel: 'info' },
      models: {
        'text-orientation': {
          path: CLS_MODEL,
          batching: { batcher: 'dynamic', maxBatchSize: 4, preferredBatchSizes: [4], maxQueueDelayMs: '20s' },
          warmupShapes: { x: [1, 3, 48, 192] },
        },
      },
    });
    server = await startTessera({ args: ['serve', '-c', config, '--port', '0'] });
    const host = new URL(server.url).host;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(found.python!, [SCRIPT, host, 'text-orientation'], { env: pythonEnv(), timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (err, out) => (err ? reject(new Error(`check.py failed: ${err.message}`)) : resolve(out)));
    });
    report = JSON.parse(stdout) as ClientReport;
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('should read the server metadata with the statistics and model_configuration extensions', () => {
    expect(report.live).toBe(true);
    expect(report.ready).toBe(true);
    expect(report.server_metadata).toMatchObject({ name: 'tessera', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(report.server_metadata.extensions).toEqual(expect.arrayContaining(['statistics', 'model_configuration', 'binary_tensor_data', 'model_repository']));
    expect(report.model_metadata).toMatchObject({ name: 'text-orientation', platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32' }] });
  });

  it('should read the model configuration (get_model_config)', () => {
    expect(report.model_config).toMatchObject({
      name: 'text-orientation',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 4,
      version_policy: { specific: { versions: [1] } },
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: report.model_metadata.inputs[0]!.shape.slice(1) }],
      output: [{ name: 'softmax_0.tmp_0', data_type: 'TYPE_FP32', dims: [2] }],
      instance_group: [{ kind: 'KIND_CPU', count: 1 }],
      dynamic_batching: { preferred_batch_size: [4], max_queue_delay_microseconds: 20_000_000 },
      tessera: { batching: { batcher: 'dynamic', maxBatchSize: 4 } },
    });
    expect(report.model_config_v1).toEqual(report.model_config);
  });

  it('should infer with numpy inputs, alone and concurrently (async_infer)', () => {
    expect(report.answers.map((a) => a.shape)).toEqual([[1, 2], [1, 2], [1, 2], [1, 2], [4, 2], [2, 2], [2, 2]]);
    expect(report.answers.every((a) => a.rows_sum_to_one)).toBe(true);
    expect(report.deadline.status).toBe('504');
    expect(report.bad_shape.status).toBe('400');
    expect(report.unknown_model).toMatchObject({ status: '404', message: expect.stringContaining('no-such-model') });
  });

  it("should answer the classification extension (InferRequestedOutput class_count) in Triton's value:index form", () => {
    expect(report.classes.shape).toEqual([2, 2]);
    for (const row of [0, 1]) {
      const [best, second] = report.classes.data.slice(row * 2, row * 2 + 2).map((c) => c.split(':'));
      expect(best).toHaveLength(2);
      expect(best![0]).toMatch(/^\d\.\d{6}$/);
      expect(Number(best![0])).toBeGreaterThanOrEqual(Number(second![0]));
      expect([best![1], second![1]].sort()).toEqual(['0', '1']);
    }
  });

  it('should read statistics (get_inference_statistics) that match the traffic sent', () => {
    expect(report.stats_before.model_stats[0]).toMatchObject({ name: 'text-orientation', version: '1', inference_count: 0, execution_count: 0, batch_stats: [] });
    const [s] = report.stats.model_stats;
    // 7 answered requests of 12 images in 3 executions of 4 (4 × 1, 1 × 4, 2 × 2); the request past its
    // deadline failed after validation; the one of the wrong shape never reached the model
    expect(s).toMatchObject({ name: 'text-orientation', version: '1', inference_count: 12, execution_count: 3, memory_usage: [], response_stats: {} });
    const st = s!.inference_stats;
    expect(st['success']!.count).toBe(7);
    expect(st['fail']!.count).toBe(1);
    for (const phase of ['queue', 'compute_input', 'compute_infer', 'compute_output']) expect(st[phase]!.count, phase).toBe(7);
    expect(st['success']!.ns).toBeGreaterThan(0);
    expect(st['compute_infer']!.ns).toBeGreaterThan(0);
    expect(s!.batch_stats.map((b) => [b.batch_size, b.compute_infer.count])).toEqual([[4, 3]]);
    expect(s!.last_inference).toBeGreaterThan(0);
    // the model's and the server's listings carry the same version
    expect(report.stats_model.model_stats.map((m) => m['version'])).toEqual(['1']);
    expect(report.stats_all.model_stats.map((m) => `${m['name']}:${m['version']}`)).toEqual(['text-orientation:1']);
  });
});
