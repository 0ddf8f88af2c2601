import { afterEach, describe, expect, it } from 'vitest';
import type { ModelConfigInput } from '../config/types.js';
import type { Backend } from '../contracts/backend.js';
import type { RequestEvent } from '../contracts/events.js';
import type { Processor, ProcessorFactory } from '../contracts/processor.js';
import type { Tensor } from '../contracts/tensor.js';
import type { InProcess } from '../pipeline/test-support.js';
import { startInProcess, testPlugin, until, xRequest } from '../pipeline/test-support.js';
import { FAKE_MODEL_METADATA, FakeBackend } from '../testing/fake-backend.js';
import { tritonDataType } from './triton-extensions.js';

let running: InProcess[] = [];
afterEach(async () => {
  await Promise.all(running.map((r) => r.close()));
  running = [];
});

/** `raw` FP32 [-1, 4] → the model's `x` (the same values): a step that renames the input. */
const rename: ProcessorFactory = {
  create(ctx): Processor {
    return {
      specs: [{ name: 'raw', datatype: 'FP32', shape: ctx.specs[0]!.shape }],
      process: (tensors) => [{ ...(tensors[0] as Tensor), name: 'x' }],
    };
  },
};

/** A backend whose instances only generate (an LLM gateway's shape): no batcher, no signature. */
const generative: Backend = {
  requiresPath: false,
  async load() {
    return {
      metadata: { platform: 'fake-llm', inputs: [], outputs: [], maxBatchSize: 0 },
      async *generate() {
        yield { data: { id: 'c', object: 'text_completion', created: 1, model: 'llm', choices: [{ index: 0, text: 'hi', logprobs: null, finish_reason: 'stop' }] } };
      },
      async unload() {},
    };
  },
};

async function start(models: Record<string, ModelConfigInput>): Promise<{ r: InProcess; requests: RequestEvent[] }> {
  const plugin = testPlugin('triton-ext-test', (ctx) => {
    ctx.registerBackend('fake', new FakeBackend());
    ctx.registerBackend('flat', new FakeBackend({ metadata: { ...FAKE_MODEL_METADATA, maxBatchSize: 0 } }));
    ctx.registerBackend('gen', generative);
    ctx.registerProcessor('rename', rename);
  });
  const r = await startInProcess({ models }, [plugin]);
  running.push(r);
  const requests: RequestEvent[] = [];
  r.server.events.on('request', (e) => void requests.push(e));
  return { r, requests };
}

const BATCHED = { backend: 'fake', warmup: false, versions: { '1': {}, '2': {} }, batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 5, preferredBatchSizes: [4, 2], timeoutMs: '2s', maxQueueSize: 64 } };

describe('registerTritonExtensions', () => {
  describe('GET /v2', () => {
    it('should list statistics and model_configuration among the extensions', async () => {
      const { r } = await start({ m: BATCHED });
      const res = await r.call('GET', '/v2');
      expect(res.body.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'model_repository', 'statistics', 'model_configuration']));
    });
  });

  describe('GET …/stats', () => {
    it('should count validated requests by outcome, and leave out the ones refused at validation', async () => {
      const { r, requests } = await start({ m: BATCHED, other: { backend: 'fake', warmup: false } });
      for (let i = 0; i < 3; i++) expect((await r.call('POST', '/v2/models/m/versions/1/infer', xRequest([[1, 2, 3, 4]]))).status).toBe(200);
      expect((await r.call('POST', '/v2/models/m/versions/1/infer', xRequest([[1, 2, 3, 4], [5, 6, 7, 8]]))).status).toBe(200);
      // bad input: refused by validation, not counted (as Triton: it never reaches the model)
      expect((await r.call('POST', '/v2/models/m/versions/1/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] })).status).toBe(400);
      // past its deadline once validated: a failed inference
      expect((await r.call('POST', '/v2/models/m/versions/1/infer', xRequest([[1, 2, 3, 4]], { parameters: { timeout: 0.000001 } }))).status).toBe(504);
      await until(() => requests.filter((e) => e.endpoint === 'infer').length === 6);
      const res = await r.call('GET', '/v2/models/m/versions/1/stats');
      expect(res.status).toBe(200);
      const [s] = res.body.model_stats;
      expect(res.body.model_stats).toHaveLength(1);
      expect(s).toMatchObject({ name: 'm', version: '1', inference_count: 5, execution_count: 4, response_stats: {}, memory_usage: [] });
      expect(s.inference_stats.success.count).toBe(4);
      expect(s.inference_stats.fail.count).toBe(1);
      for (const phase of ['queue', 'compute_input', 'compute_infer', 'compute_output']) expect(s.inference_stats[phase].count, phase).toBe(4);
      expect(s.inference_stats.success.ns).toBeGreaterThan(0);
      expect(s.batch_stats.map((b: { batch_size: number; compute_infer: { count: number } }) => [b.batch_size, b.compute_infer.count])).toEqual([
        [1, 3],
        [2, 1],
      ]);
      // the request events say what was validated
      const infers = requests.filter((e) => e.endpoint === 'infer');
      expect(infers.filter((e) => e.tensor).map((e) => e.status)).toEqual([200, 200, 200, 200, 504]);
      expect(infers.find((e) => e.status === 400)?.tensor).toBeUndefined();
      for (const e of infers.filter((x) => x.status === 200)) {
        expect(e.tensor!.inputMs).toBeGreaterThanOrEqual(0);
        expect(e.tensor!.outputMs).toBeGreaterThanOrEqual(0);
      }
    });

    it('should list every version of every model, and those of one model', async () => {
      const { r } = await start({ m: BATCHED, other: { backend: 'fake', warmup: false } });
      expect((await r.call('POST', '/v2/models/other/infer', xRequest([[1, 1, 1, 1]]))).status).toBe(200);
      const all = await r.call('GET', '/v2/models/stats');
      expect(all.body.model_stats.map((s: { name: string; version: string }) => `${s.name}:${s.version}`)).toEqual(['m:1', 'm:2', 'other:1']);
      const model = await r.call('GET', '/v2/models/m/stats');
      expect(model.body.model_stats.map((s: { version: string }) => s.version)).toEqual(['1', '2']);
    });

    it('should answer 404 for an unknown model or version', async () => {
      const { r } = await start({ m: BATCHED });
      expect(await r.call('GET', '/v2/models/nope/stats')).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_NOT_FOUND' } });
      expect(await r.call('GET', '/v2/models/m/versions/7/stats')).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_VERSION_NOT_FOUND' } });
    });

    it('should start from zero after the model was unloaded and loaded again', async () => {
      const { r, requests } = await start({ m: BATCHED });
      expect((await r.call('POST', '/v2/models/m/versions/1/infer', xRequest([[1, 2, 3, 4]]))).status).toBe(200);
      await until(() => requests.some((e) => e.endpoint === 'infer'));
      expect((await r.call('GET', '/v2/models/m/versions/1/stats')).body.model_stats[0].inference_stats.success.count).toBe(1);
      expect((await r.call('POST', '/v2/repository/models/m/unload', {})).status).toBe(200);
      expect((await r.call('GET', '/v2/models/m/versions/1/stats')).body.model_stats[0]).toMatchObject({ inference_count: 0, inference_stats: { success: { count: 0 } } });
      expect((await r.call('POST', '/v2/repository/models/m/load', {})).status).toBe(200);
      expect((await r.call('GET', '/v2/models/m/versions/1/stats')).body.model_stats[0].execution_count).toBe(0);
    });

    it('should show a generative model with zero counts', async () => {
      const { r } = await start({ llm: { backend: 'gen', warmup: false } });
      expect((await r.call('POST', '/v1/completions', { model: 'llm', prompt: 'x' })).status).toBe(200);
      const s = (await r.call('GET', '/v2/models/llm/stats')).body.model_stats[0];
      expect(s).toMatchObject({ inference_count: 0, execution_count: 0, inference_stats: { success: { count: 0 }, fail: { count: 0 } } });
    });
  });

  describe('GET …/config', () => {
    it('should describe a dynamically batched version in Triton\'s field names, with Tessera\'s settings beside', async () => {
      const { r } = await start({ m: { ...BATCHED, instances: 2, apiKey: 'sekret-123', upstream: 'https://user:pw@example.test/x', threads: 4 } });
      const res = await r.call('GET', '/v2/models/m/versions/2/config');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        name: 'm',
        platform: 'fake',
        backend: 'fake',
        version_policy: { specific: { versions: [1, 2] } },
        max_batch_size: 8,
        input: [{ name: 'x', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [4], is_shape_tensor: false, optional: false }],
        output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [4], label_filename: '' }],
        batch_input: [],
        batch_output: [],
        instance_group: [{ name: 'm_0', kind: 'KIND_MODEL', count: 2, gpus: [] }],
        dynamic_batching: {
          preferred_batch_size: [2, 4],
          max_queue_delay_microseconds: 5000,
          preserve_ordering: false,
          priority_levels: 0,
          default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: 2_000_000, allow_timeout_override: true, max_queue_size: 64 },
        },
        model_transaction_policy: { decoupled: false },
        tessera: {
          version: '2',
          state: 'ready',
          instances: 2,
          batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 5, preferredBatchSizes: [2, 4], timeoutMs: 2000, maxQueueSize: 64, priorityLevels: 1 },
          routing: { strategy: 'latest' },
          preprocess: [],
          postprocess: [],
          warmup: false,
        },
      });
      // backend options are Triton's string parameters; secrets are never sent
      expect(res.body.parameters).toEqual({ apiKey: { string_value: '[redacted]' }, upstream: { string_value: 'https://[redacted]@example.test/x' }, threads: { string_value: '4' } });
      expect(JSON.stringify(res.body)).not.toMatch(/sekret|user:pw/);
    });

    it('should describe the newest ready version when none is named, and the tensors its processors serve', async () => {
      const { r } = await start({ m: { backend: 'fake', warmup: false, versions: { '1': {}, '2': {} }, preprocess: ['rename'] } });
      const res = await r.call('GET', '/v2/models/m/config');
      expect(res.body.tessera.version).toBe('2');
      expect(res.body.input.map((i: { name: string }) => i.name)).toEqual(['raw']);
      expect(res.body.tessera).toMatchObject({ preprocess: [{ processor: 'rename' }], backendInputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }] });
      // a passthrough model has no dynamic_batching section
      expect(res.body).not.toHaveProperty('dynamic_batching');
    });

    it('should keep dim 0 in dims of a model that does not batch', async () => {
      const { r } = await start({ m: { backend: 'flat', warmup: false } });
      const res = await r.call('GET', '/v2/models/m/config');
      expect(res.body.max_batch_size).toBe(0);
      expect(res.body.input[0].dims).toEqual([-1, 4]);
    });

    it('should mark a generative model decoupled, without tensors or a batcher', async () => {
      const { r } = await start({ llm: { backend: 'gen', warmup: false } });
      const res = await r.call('GET', '/v2/models/llm/config');
      expect(res.body).toMatchObject({ platform: 'fake-llm', input: [], output: [], max_batch_size: 0, model_transaction_policy: { decoupled: true }, tessera: { batching: null, generation: { maxConcurrent: 1024 } } });
      expect(res.body).not.toHaveProperty('dynamic_batching');
    });

    it('should answer 404 for an unknown model or version, and 503 for an unloaded one', async () => {
      const { r } = await start({ m: BATCHED });
      expect(await r.call('GET', '/v2/models/nope/config')).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_NOT_FOUND' } });
      expect(await r.call('GET', '/v2/models/m/versions/9/config')).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_VERSION_NOT_FOUND' } });
      await r.call('POST', '/v2/repository/models/m/unload', {});
      expect(await r.call('GET', '/v2/models/m/versions/1/config')).toMatchObject({ status: 503, body: { code: 'TESSERA_E_MODEL_NOT_READY' } });
    });
  });

  describe(tritonDataType, () => {
    it('should write Triton\'s TYPE_ names, BYTES as TYPE_STRING', () => {
      expect(['FP32', 'INT64', 'BOOL', 'FP16', 'UINT8'].map((d) => tritonDataType(d as never))).toEqual(['TYPE_FP32', 'TYPE_INT64', 'TYPE_BOOL', 'TYPE_FP16', 'TYPE_UINT8']);
      expect(tritonDataType('BYTES')).toBe('TYPE_STRING');
    });
  });
});
