import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { InferenceRequest, ModelVersionSpec, RequestResult, Tensor } from '@tessera/core';
import { isTesseraError } from '@tessera/core';
import { makeTempDir, testLoadContext, testModelSpec } from '@tessera/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  COUNT_PY,
  CRASH_PY,
  IDENTITY_PY,
  INIT_RAISES_PY,
  PER_REQUEST_ERROR_PY,
  RAISES_PY,
  RECORDER_PY,
  UPPER_PY,
  fp32,
  pythonMissing,
  writeModel,
} from '../test/models.js';
import { PythonBackend } from './backend.js';
import type { PythonModelInstance } from './instance.js';

const missing = pythonMissing();
const root = missing ? '' : await makeTempDir('tessera-python-backend-');
const loaded: PythonModelInstance[] = [];

afterAll(async () => {
  await Promise.all(loaded.map((i) => i.unload()));
});

async function load(name: string, source: string, config: Record<string, unknown>, extra: Partial<ModelVersionSpec> = {}): Promise<PythonModelInstance> {
  const dir = await writeModel(root, name, source);
  const instance = await new PythonBackend().load(testModelSpec({ name, path: dir, config }, extra), testLoadContext());
  loaded.push(instance);
  return instance;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function fp32Tensor(name: string, values: number[], shape = [1, values.length]): Tensor {
  return { name, datatype: 'FP32', shape, data: Float32Array.from(values) };
}

function run(instance: PythonModelInstance, requests: InferenceRequest[]): Promise<RequestResult[]> {
  return instance.execute({ requests }, new AbortController().signal);
}

function outputs(result: RequestResult | undefined): Tensor[] {
  if (!Array.isArray(result)) throw new Error(`expected outputs, got ${String(result)}`);
  return result;
}

/** Polls `check` every 50 ms, for at most `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const X = { inputs: [fp32('X')], outputs: [fp32('Y')] };

describe.skipIf(missing !== undefined)(`PythonBackend${missing ? ` (skipped: ${missing})` : ''}`, () => {
  describe('.load', () => {
    it('should fail with TESSERA_E_MODEL_LOAD and the traceback\'s last line when initialize raises', async () => {
      const err = await rejection(load('init-raises', INIT_RAISES_PY, X));
      expect(isTesseraError(err) && err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain('RuntimeError: weights.bin is missing');
      expect(err.message).toContain('in initialize');
      expect(err.message).not.toContain('Traceback (most recent call last)');
      expect(err.cause).toBeDefined();
    });

    it('should refuse a model without declared inputs and outputs, saying what to declare', async () => {
      const err = await rejection(load('undeclared', IDENTITY_PY, {}));
      expect(isTesseraError(err) && err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/declare its inputs and outputs in the model's config/);
    });

    it('should say so when the interpreter does not exist', async () => {
      const err = await rejection(load('no-interpreter', IDENTITY_PY, { ...X, python: { interpreter: '/nonexistent/python3' } }));
      expect(isTesseraError(err) && err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain("cannot start the interpreter '/nonexistent/python3'");
    });

    it('should load from the version folder or from model.py itself', async () => {
      const dir = await writeModel(root, 'layouts', IDENTITY_PY, '3');
      for (const p of [path.join(dir, '3'), path.join(dir, '3', 'model.py'), dir]) {
        const instance = await new PythonBackend().load(testModelSpec({ name: 'layouts', path: p, config: X }, { version: '3' }), testLoadContext());
        try {
          const [r] = await run(instance, [{ inputs: [fp32Tensor('X', [1, 2, 3, 4])] }]);
          expect(Array.from(outputs(r)[0]!.data as Float32Array)).toEqual([1, 2, 3, 4]);
        } finally {
          await instance.unload();
        }
      }
    });
  });

  describe('initialize and finalize', () => {
    it("should give initialize Triton's args, requests their ids and outputs, the worker its env, and call finalize on unload", async () => {
      const dir = await writeModel(root, 'recorder', RECORDER_PY);
      const config = { inputs: [fp32('X')], outputs: [fp32('Y'), { name: 'INFO', datatype: 'BYTES', shape: [-1, 1] }], python: { env: { TESSERA_TEST_ENV: 'from-config' } }, batching: { maxBatchSize: 4 } };
      const instance = await new PythonBackend().load(testModelSpec({ name: 'recorder', path: dir, config }, { instanceIndex: 1, instanceCount: 2 }), testLoadContext());
      const args = JSON.parse(readFileSync(path.join(dir, '1', 'args.json'), 'utf8')) as Record<string, string>;
      expect(args).toMatchObject({ model_instance_kind: 'CPU', model_instance_device_id: '0', model_instance_name: 'recorder_0_1', model_repository: dir, model_version: '1', model_name: 'recorder' });
      expect(JSON.parse(args['model_config']!)).toMatchObject({
        name: 'recorder',
        max_batch_size: 4,
        input: [{ name: 'X', data_type: 'TYPE_FP32', dims: [4] }],
        output: [{ name: 'Y', data_type: 'TYPE_FP32', dims: [4] }, { name: 'INFO', data_type: 'TYPE_STRING', dims: [1] }],
      });
      const [r] = await run(instance, [{ id: 'req-7', inputs: [fp32Tensor('X', [1, 2, 3, 4])], outputs: ['INFO'] }]);
      const info = outputs(r).find((t) => t.name === 'INFO')!;
      expect(JSON.parse((info.data as string[])[0]!)).toEqual({ id: 'req-7', requested: ['INFO'], inputs: ['X'], env: 'from-config' });
      const pid = instance.pid!;
      await instance.unload();
      expect(readFileSync(path.join(dir, '1', 'finalized'), 'utf8')).toBe('finalized\n');
      expect(() => process.kill(pid, 0)).toThrow();
    });
  });

  describe('.execute', () => {
    it('should pass BYTES as numpy object arrays of bytes, and back', async () => {
      const instance = await load('upper', UPPER_PY, { inputs: [{ name: 'TEXT', datatype: 'BYTES', shape: [-1] }], outputs: [{ name: 'UPPER', datatype: 'BYTES', shape: [-1] }, { name: 'LENGTH', datatype: 'INT32', shape: [-1] }] });
      const [a, b] = await run(instance, [
        { inputs: [{ name: 'TEXT', datatype: 'BYTES', shape: [3], data: ['hello', 'grüße', ''] }] },
        { inputs: [{ name: 'TEXT', datatype: 'BYTES', shape: [1], data: ['x'] }] },
      ]);
      expect(outputs(a)).toEqual([
        { name: 'UPPER', datatype: 'BYTES', shape: [3], data: ['HELLO', 'GRÜSSE', ''] },
        { name: 'LENGTH', datatype: 'INT32', shape: [3], data: Int32Array.from([5, 7, 0]) },
      ]);
      expect(outputs(b)[0]!.data).toEqual(['X']);
    });

    it('should fail the batch with the exception when execute raises, and serve on', async () => {
      const instance = await load('raises', RAISES_PY, X);
      const err = await rejection(run(instance, [{ inputs: [fp32Tensor('X', [1, 2, 3, 4])] }, { inputs: [fp32Tensor('X', [1, 2, 3, 4])] }]));
      expect(isTesseraError(err) && err.code).toBe('TESSERA_E_INFERENCE_FAILED');
      expect(err.message).toContain('ValueError: the model refuses to run');
      expect(err.message).toContain('in execute');
      expect(await instance.ready()).toBe(true);
    });

    it("should fail only the request whose response carries a TritonError", async () => {
      const instance = await load('per-request', PER_REQUEST_ERROR_PY, X);
      const results = await run(instance, [{ inputs: [fp32Tensor('X', [1, 2, 3, 4])] }, { inputs: [fp32Tensor('X', [-1, 0, 0, 0])] }, { inputs: [fp32Tensor('X', [5, 5, 5, 5])] }]);
      expect(Array.from(outputs(results[0])[0]!.data as Float32Array)).toEqual([2, 4, 6, 8]);
      expect(results[1]).toBeInstanceOf(Error);
      expect(isTesseraError(results[1]) && results[1].code).toBe('TESSERA_E_INFERENCE_FAILED');
      expect((results[1] as Error).message).toContain('negative values are not accepted');
      expect(Array.from(outputs(results[2])[0]!.data as Float32Array)).toEqual([10, 10, 10, 10]);
    });

    it('should hand execute the whole batch as a list, each request with its own tensors', async () => {
      const instance = await load('count', COUNT_PY, { inputs: [fp32('X')], outputs: [fp32('Y'), { name: 'COUNT', datatype: 'INT32', shape: [-1, 1] }] });
      const results = await run(instance, [{ inputs: [fp32Tensor('X', [1, 2, 3, 4])] }, { inputs: [fp32Tensor('X', [5, 6, 7, 8, 9, 10, 11, 12], [2, 4])] }]);
      expect(outputs(results[0])[1]!.data).toEqual(Int32Array.from([2]));
      expect(outputs(results[1])[0]!.shape).toEqual([2, 4]);
      expect(outputs(results[1])[1]!.data).toEqual(Int32Array.from([2, 2]));
    });

    it('should grow the shared file for a batch larger than it', async () => {
      const instance = await load('large', IDENTITY_PY, { inputs: [fp32('X', [-1, 4096])], outputs: [fp32('Y', [-1, 4096])], batching: { maxBatchSize: 512 } });
      const rows = 300; // 4.9 MB in, as much out: beyond the 1 MiB the file starts with
      const data = Float32Array.from({ length: rows * 4096 }, (_, i) => i % 1000);
      const [r] = await run(instance, [{ inputs: [{ name: 'X', datatype: 'FP32', shape: [rows, 4096], data }] }]);
      const out = outputs(r)[0]!;
      expect(out.shape).toEqual([rows, 4096]);
      // compared as bytes: a deep equal of 1.2 M elements takes seconds
      expect(Buffer.compare(Buffer.from((out.data as Float32Array).buffer), Buffer.from(data.buffer))).toBe(0);
    });

    it('should fail the batch with 503 when the worker dies, restart it, and serve the next request', async () => {
      const instance = await load('crash', CRASH_PY, { ...X, restart: { initialDelayMs: 50 } });
      const before = instance.pid;
      const err = await rejection(run(instance, [{ inputs: [fp32Tensor('X', [-1, 0, 0, 0])] }]));
      expect(isTesseraError(err) && err.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
      expect(isTesseraError(err) && err.status).toBe(503);
      expect(err.message).toContain('exited with code 3');
      await until(() => instance.ready());
      expect(instance.pid).not.toBe(before);
      const [r] = await run(instance, [{ inputs: [fp32Tensor('X', [1, 2, 3, 4])] }]);
      expect(Array.from(outputs(r)[0]!.data as Float32Array)).toEqual([2, 3, 4, 5]);
    });
  });

  describe('.unload', () => {
    it('should end the process and remove the shared file', async () => {
      const instance = await load('unload', IDENTITY_PY, X);
      const pid = instance.pid!;
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('tessera_python_worker.py');
      const shared = instance.sharedFileForTests!;
      expect(existsSync(shared)).toBe(true);
      await instance.unload();
      expect(() => process.kill(pid, 0)).toThrow();
      expect(existsSync(shared)).toBe(false);
    });
  });
});
