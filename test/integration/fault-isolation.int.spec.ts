/**
 * Fault isolation over real HTTP (a TesseraServer in this process, listening on 127.0.0.1, so the
 * test can reach an instance's worker thread):
 *
 * 1. an ONNX Runtime worker thread killed with a batch posted to it and unanswered: every request
 *    of that batch gets exactly one answer, 503 TESSERA_E_INSTANCE_RESTARTING with Retry-After; none
 *    hangs; readiness says `restarting` (the server-level body naming the model) while another model
 *    keeps serving; the worker comes back, later requests succeed, and the restart is in the log and
 *    in `tessera_backend_restarts_total`;
 * 2. with `exitOnModelError: false`, a model whose load throws, backends whose `execute` throws
 *    synchronously, rejects, or returns garbage, and one whose `ready()` throws, next to a real ONNX
 *    model and a healthy fake one:
 *    the others keep serving, `/v2/health/ready` says which model is not ready and why.
 *
 * Throughout, an `unhandledRejection` listener fails the test: no fault path leaves a rejected
 * promise nobody awaits.
 */
import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Backend, InferenceBatch, ModelInstance, Tensor, TesseraConfigInput } from '@tessera/core';
import { TesseraServer, definePlugin, resolveConfig } from '@tessera/core';
import type { TestModelCatalog } from '@tessera/core/testing';
import { FAKE_MODEL_METADATA, FakeBackend, MemoryStateStore, diffTensorLists, writeTestModels, within } from '@tessera/core/testing';
import type { OnnxRuntimeModelInstance } from '@tessera/backend-onnxruntime';
import onnxRuntimePlugin from '@tessera/backend-onnxruntime';
import { http, tempDir } from './helpers.js';

let models: TestModelCatalog;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

interface Running {
  server: TesseraServer;
  url: string;
  logs: Record<string, unknown>[];
}

const servers: TesseraServer[] = [];

async function start(config: TesseraConfigInput, plugins: ReturnType<typeof definePlugin>[] = []): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const server = new TesseraServer({
    config: resolveConfig({ ...config, server: { host: '127.0.0.1', port: 0, exitOnModelError: false, ...config.server } }, { configDir: '/', env: {} }),
    plugins: [onnxRuntimePlugin, ...plugins],
    logger,
    stateStore: () => new MemoryStateStore(),
  });
  servers.push(server);
  const { url } = await server.start();
  return { server, url, logs };
}

/** An OIP v2 JSON body for the affine test model (`x` FP32 [rows, 4]). */
function affineBody(inputs: Tensor[]): Record<string, unknown> {
  return { inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: Array.from(t.data as Float32Array) })) };
}

/** The response's outputs as tensors, to compare with the model's expected ones. */
function outputsOf(body: { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }): Tensor[] {
  return body.outputs.map((o) => ({ name: o.name, datatype: 'FP32', shape: o.shape, data: Float32Array.from(o.data) }));
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  models = await writeTestModels(await tempDir('tessera-fault-'));
});

beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});

afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('an ONNX Runtime worker killed mid-batch', () => {
  let s: Running;
  const ROWS = 4;

  beforeAll(async () => {
    const fake = definePlugin({ name: 'fake-side', version: '1.0.0', core: '^0.1.0', register: (ctx) => ctx.registerBackend('fake', new FakeBackend()) });
    s = await start(
      {
        models: {
          // four concurrent requests form one batch (preferred size 4; the delay only bounds the wait)
          affine: { path: models.affine.path, instances: 1, batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 2000, preferredBatchSizes: [ROWS] }, restart: { initialDelayMs: 3000 } },
          other: { backend: 'fake' },
        },
      },
      [fake],
    );
  });

  it('should answer every request of the batch once with 503 TESSERA_E_INSTANCE_RESTARTING, say restarting, keep the other model serving, then serve again', { timeout: 60_000 }, async () => {
    const version = s.server.registry.get('affine')!.versions.get('1')!;
    const instance = version.instances[0] as OnnxRuntimeModelInstance;
    const worker: Worker = instance.workerForTests!;
    // The kill: when the host hands the batch to the worker, the worker's thread exits (process.exit
    // inside it, as a crash would end it) before it answers; the batch is in flight in the worker,
    // and its queue dies with it. Not terminate(): inside a native run that aborts the process.
    const killedBatches: number[] = [];
    const post = worker.postMessage.bind(worker);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    worker.postMessage = ((message: { op: string; feeds?: { dims: number[] }[] }, transfer?: readonly ArrayBuffer[]) => {
      if (message.op === 'run' && killedBatches.length === 0) {
        killedBatches.push(message.feeds![0]!.dims[0]!);
        post({ op: 'exit', code: 70 });
      }
      post(message, transfer as ArrayBuffer[]);
    }) as Worker['postMessage'];

    const inputs = Array.from({ length: ROWS }, (_, i) => models.affine.makeInputs(1, 100 + i));
    const answers = await within(Promise.all(inputs.map((x) => http(`${s.url}/v2/models/affine/infer`, { json: affineBody(x) }))), 20_000, 'the requests of the killed batch');
    expect(await exited).toBe(70);
    expect(killedBatches).toEqual([ROWS]);
    // one answer each (one HTTP response per request), every one the 503 with its code and Retry-After
    expect(answers).toHaveLength(ROWS);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
      expect(a.body.error).toMatch(/^affine v1: its worker thread died while running the request \(the worker thread running its ONNX Runtime session exited \(code 70\)\)/);
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }

    // restarting (the first attempt waits 3 s): the model says so, the server lists it, new requests get the 503 at once
    const ready = await http(`${s.url}/v2/models/affine/versions/1/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ name: 'affine', version: '1', ready: false, state: 'ready' });
    expect(ready.body.reason).toMatch(/^restarting: the worker thread running its ONNX Runtime session exited \(code 70\) \(1 failure in a row, next attempt in /);
    const modelReady = await http(`${s.url}/v2/models/affine/ready`);
    expect(modelReady.status).toBe(503);
    expect(modelReady.body.reasons['1']).toMatch(/^restarting: /);
    const health = await http(`${s.url}/v2/health/ready`);
    expect(health.status).toBe(503);
    expect(health.body.ready).toBe(false);
    expect(health.body.models).toEqual([{ name: 'affine', version: '1', state: 'ready', reason: expect.stringMatching(/^restarting: .*exited \(code 70\)/) }]);
    const meta = await http(`${s.url}/v2/models/affine`);
    expect(meta.status).toBe(200);
    expect(meta.body.parameters).toMatchObject({ state: 'ready', serving: false, reason: expect.stringMatching(/^restarting: /) });
    const during = await http(`${s.url}/v2/models/affine/infer`, { json: affineBody(inputs[0]!) });
    expect(during.status).toBe(503);
    expect(during.body.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
    expect(Number(during.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const other = await http(`${s.url}/v2/models/other/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] } });
    expect(other.status).toBe(200);
    expect(other.body.outputs[0].data).toEqual([2, 4, 6, 8]);

    // back: ready again, and the same requests succeed with the right values
    await waitFor(async () => (await http(`${s.url}/v2/health/ready`)).status === 200, 30_000, 'ready after the restart');
    expect((await http(`${s.url}/v2/health/ready`)).body).toEqual({ ready: true });
    const later = await Promise.all(inputs.map((x) => http(`${s.url}/v2/models/affine/infer`, { json: affineBody(x) })));
    later.forEach((a, i) => {
      expect(a.status).toBe(200);
      const out = outputsOf(a.body).filter((t) => t.name === 'y' || t.name === 'sum');
      expect(diffTensorLists(out, models.affine.expected(inputs[i]!), { tolerance: models.affine.tolerance })).toBeUndefined();
    });

    // visible: counted once, logged with the reason, and the new worker's coming back
    const metrics = (await http(`${s.url}/metrics`)).text;
    expect(metricValue(metrics, 'tessera_backend_restarts_total{model="affine",version="1"}')).toBe(1);
    const died = s.logs.find((l) => l['level'] === 50 && typeof l['msg'] === 'string' && /exited \(code 70\)/.test(l['msg']));
    expect(died).toMatchObject({ model: 'affine', version: '1', retryInMs: 3000, failuresInARow: 1 });
    expect(died!['msg']).toMatch(/^affine v1 \(instance 1 of 1\): the worker thread running its ONNX Runtime session exited \(code 70\); its requests get 503 TESSERA_E_INSTANCE_RESTARTING/);
    expect(s.logs.some((l) => typeof l['msg'] === 'string' && /affine v1 \(instance 1 of 1\): the new worker thread serves again/.test(l['msg']))).toBe(true);
    expect(instance.workerForTests).not.toBe(worker);
  });
});

describe('faulty backends and models next to healthy ones (exitOnModelError: false)', () => {
  let s: Running;
  const loadFailure = new Error('cannot open /models/broken.bin: permission denied');

  /** A backend whose instances' `execute` misbehaves as `execute` says. */
  function faulty(execute: (batch: InferenceBatch) => Promise<unknown>, extra: Partial<ModelInstance> = {}): Backend {
    return {
      requiresPath: false,
      async load(): Promise<ModelInstance> {
        return { metadata: FAKE_MODEL_METADATA, execute: execute as ModelInstance['execute'], unload: async () => undefined, ...extra };
      },
    };
  }

  beforeAll(async () => {
    const plugin = definePlugin({
      name: 'faulty-backends',
      version: '1.0.0',
      core: '^0.1.0',
      register(ctx) {
        ctx.registerBackend('fake', new FakeBackend());
        ctx.registerBackend('broken-load', new FakeBackend({ loadError: loadFailure }));
        ctx.registerBackend('sync-throw', faulty(() => {
          throw new Error('execute threw synchronously');
        }));
        ctx.registerBackend('rejects', faulty(() => Promise.reject(new Error('execute rejected'))));
        ctx.registerBackend('garbage-shape', faulty(async () => ({ not: 'a list' })));
        // a readiness probe that throws synchronously (not even a rejected promise)
        const readyThrows = (): Promise<boolean> => {
          throw new Error('probe exploded');
        };
        ctx.registerBackend('ready-throws', faulty(async (batch) => batch.requests.map(() => new Error('unused')), { ready: readyThrows }));
        ctx.registerBackend('garbage-slot', faulty(async (batch) => batch.requests.map(() => 42)));
      },
    });
    s = await start(
      {
        models: {
          affine: { path: models.affine.path },
          good: { backend: 'fake' },
          'broken-load': { backend: 'broken-load' },
          'sync-throw': { backend: 'sync-throw', warmup: false },
          rejects: { backend: 'rejects', warmup: false },
          'garbage-shape': { backend: 'garbage-shape', warmup: false },
          'garbage-slot': { backend: 'garbage-slot', warmup: false },
          'ready-throws': { backend: 'ready-throws', warmup: false },
        },
      },
      [plugin],
    );
  });

  const x = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

  async function healthyStillServe(): Promise<void> {
    const input = models.affine.makeInputs(2, 7);
    const a = await http(`${s.url}/v2/models/affine/infer`, { json: affineBody(input) });
    expect(a.status).toBe(200);
    expect(diffTensorLists(outputsOf(a.body), models.affine.expected(input), { tolerance: models.affine.tolerance })).toBeUndefined();
    const g = await http(`${s.url}/v2/models/good/infer`, { json: x });
    expect(g.status).toBe(200);
    expect(g.body.outputs[0].data).toEqual([2, 4, 6, 8]);
  }

  it('should start and serve the others, and say in /v2/health/ready which model is not ready and why', async () => {
    await healthyStillServe();
    const health = await http(`${s.url}/v2/health/ready`);
    expect(health.status).toBe(503);
    expect(health.body).toEqual({
      ready: false,
      models: [
        { name: 'broken-load', version: '1', state: 'failed', reason: 'cannot open /models/broken.bin: permission denied' },
        { name: 'ready-throws', version: '1', state: 'ready', reason: 'its ready() failed: probe exploded' },
      ],
    });
    expect((await http(`${s.url}/v2/models/ready-throws/ready`)).body).toMatchObject({ ready: false, reasons: { 1: 'its ready() failed: probe exploded' } });
    const one = await http(`${s.url}/v2/models/broken-load/versions/1/ready`);
    expect(one.status).toBe(503);
    expect(one.body).toEqual({ name: 'broken-load', version: '1', ready: false, state: 'failed', reason: 'cannot open /models/broken.bin: permission denied' });
    expect((await http(`${s.url}/v2/models/affine/ready`)).status).toBe(200);
    expect((await http(`${s.url}/v2/models/broken-load/infer`, { json: x })).body.code).toBe('TESSERA_E_MODEL_NOT_READY');
  });

  it.each([
    ['sync-throw', /execute threw synchronously/],
    ['rejects', /execute rejected/],
    ['garbage-shape', /returned no output lists for a batch of 1/],
    ['garbage-slot', /returned number for request 1 of the batch/],
  ])('should answer a request to %s with a 500 of its own, and the others keep serving', async (model, message) => {
    const answer = await within(http(`${s.url}/v2/models/${model}/infer`, { json: x }), 10_000, `a request to ${model}`);
    expect(answer.status).toBe(500);
    expect(answer.body.code).toMatch(/^TESSERA_E_(INFERENCE_FAILED|SERVER_INTERNAL)$/);
    expect(answer.body.error).toMatch(message);
    // the faulty model is loaded (its fault is per request), and the process, the others and readiness are unharmed
    expect((await http(`${s.url}/v2/models/${model}/ready`)).status).toBe(200);
    await healthyStillServe();
    expect((await http(`${s.url}/v2/health/live`)).status).toBe(200);
    expect((await http(`${s.url}/v2/health/ready`)).body.models.map((m: { name: string }) => m.name)).toEqual(['broken-load', 'ready-throws']);
  });
});
