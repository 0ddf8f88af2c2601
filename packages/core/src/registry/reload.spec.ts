import { afterEach, describe, expect, it } from 'vitest';
import type { LoadContext, ModelVersionSpec } from '../contracts/backend.js';
import type { Processor, ProcessorFactory } from '../contracts/processor.js';
import type { Router, RouterFactory } from '../contracts/router.js';
import type { Tensor } from '../contracts/tensor.js';
import type { TesseraConfigInput } from '../config/types.js';
import { resolveConfig } from '../config/resolve.js';
import type { InProcess } from '../pipeline/test-support.js';
import { startInProcess, testPlugin, xRequest } from '../pipeline/test-support.js';
import { FakeBackend } from '../testing/fake-backend.js';
import type { FakeModelInstance } from '../testing/fake-backend.js';

/** A fake backend whose loads of chosen specs wait until the test opens the gate. */
class GatedBackend extends FakeBackend {
  gate: Promise<void> | undefined;
  readonly waiting: ModelVersionSpec[] = [];
  fail: ((spec: ModelVersionSpec) => boolean) | undefined;

  override async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<FakeModelInstance> {
    if (this.gate) {
      this.waiting.push(spec);
      await this.gate;
    }
    if (this.fail?.(spec)) throw new Error(`${spec.model} v${spec.version}: the file is corrupt`);
    return super.load(spec, ctx);
  }
}

/** `raw` → `x` = raw + `add` (the served input becomes `raw`). */
const shift: ProcessorFactory = {
  optionsSchema: { type: 'object', properties: { add: { type: 'number' } }, required: ['add'], additionalProperties: false },
  create(ctx): Processor {
    const add = ctx.options['add'] as number;
    return {
      specs: [{ name: 'raw', datatype: 'FP32', shape: ctx.specs[0]!.shape }],
      process: (tensors) => {
        const raw = tensors[0] as Tensor<'FP32'>;
        return [{ name: 'x', datatype: 'FP32', shape: [...raw.shape], data: raw.data.map((v) => v + add) }];
      },
    };
  },
};

/** Records the routers it made and which were closed. */
function recordingRouters(): { factory: RouterFactory; made: { model: string; closed: boolean }[] } {
  const made: { model: string; closed: boolean }[] = [];
  const factory: RouterFactory = {
    optionsSchema: { type: 'object', properties: { pick: { type: 'string' } }, additionalProperties: false },
    create(ctx): Router {
      const record = { model: ctx.model, closed: false };
      made.push(record);
      const pick = ctx.options['pick'] as string | undefined;
      return {
        select: (_req, candidates) => ({ version: pick ?? candidates.filter((c) => c.ready).at(-1)!.version }),
        observe: () => {
          if (record.closed) throw new Error('observe after close');
        },
        status: () => ({ strategy: 'recording' }),
        close: async () => {
          record.closed = true;
        },
      };
    },
  };
  return { factory, made };
}

let running: InProcess[] = [];
afterEach(async () => {
  await Promise.all(running.map((r) => r.close()));
  running = [];
});

interface Setup {
  app: InProcess;
  backend: GatedBackend;
  routers: ReturnType<typeof recordingRouters>;
  /** The config the next reload reads. */
  next: { config: TesseraConfigInput };
}

async function setup(config: TesseraConfigInput, delayMs = 0): Promise<Setup> {
  const backend = new GatedBackend((spec) => ({ delayMs, compute: (req) => [{ name: 'y', datatype: 'FP32', shape: [...req.inputs[0]!.shape], data: (req.inputs[0]!.data as Float32Array).map((v) => v * Number(spec.version)) }] }));
  const routers = recordingRouters();
  const plugin = testPlugin('reload-test', (ctx) => {
    ctx.registerBackend('gated', backend);
    ctx.registerProcessor('shift', shift);
    ctx.registerRouter('recording', routers.factory);
  });
  const next = { config };
  const resolve = (input: TesseraConfigInput) => resolveConfig({ ...input, server: { logLevel: 'silent', ...input.server } }, { configDir: '/', env: {} });
  const app = await startInProcess(config, [plugin], { readConfig: async () => resolve(next.config) });
  running.push(app);
  return { app, backend, routers, next };
}

const model = (versions: string[], extra: Record<string, unknown> = {}) => ({ backend: 'gated', versions: Object.fromEntries(versions.map((v) => [v, {}])), ...extra });

async function infer(app: InProcess, name: string, version?: string) {
  const url = version ? `/v2/models/${name}/versions/${version}/infer` : `/v2/models/${name}/infer`;
  return app.call('POST', url, xRequest([[1, 2, 3, 4]]));
}

describe('ModelRegistry.reconfigure (reload)', () => {
  it('should load a new version and a new model before they take traffic, then serve them, in one new generation', async () => {
    const s = await setup({ models: { a: model(['1']) } });
    s.next.config = { models: { a: model(['1', '2']), b: model(['1']) } };
    let open!: () => void;
    s.backend.gate = new Promise((resolve) => (open = resolve));
    const reloading = s.app.server.reload('test');
    while (s.backend.waiting.length < 2) await new Promise((r) => setTimeout(r, 2));
    // loading: the old set serves, the new model is unknown, the index still says generation 1
    expect((await infer(s.app, 'a')).body.outputs[0].data).toEqual([1, 2, 3, 4]);
    expect((await infer(s.app, 'b')).status).toBe(404);
    expect((await s.app.call('GET', '/v2/repository/index')).body.generation).toBe(1);
    open();
    s.backend.gate = undefined;
    const outcome = await reloading;
    expect(outcome).toMatchObject({ ok: true, generation: 2, summary: { added: ['b'], changed: ['a'], removed: [], unchanged: [] } });
    // the latest router now picks v2 (y = 2x); b serves
    expect((await infer(s.app, 'a')).body.outputs[0].data).toEqual([2, 4, 6, 8]);
    expect((await infer(s.app, 'b')).status).toBe(200);
    const index = await s.app.call('GET', '/v2/repository/index');
    expect(index.headers['tessera-config-generation']).toBe('2');
    expect(index.body).toMatchObject({ generation: 2, last_reload: { ok: true, generation: 2 } });
    expect(index.body.models.map((r: { name: string; version: string; state: string }) => `${r.name}:${r.version}:${r.state}`)).toEqual(['a:1:READY', 'a:2:READY', 'b:1:READY']);
    // v1 of a was not reloaded: its one instance serves on
    expect(s.backend.instancesOf('a', '1')).toHaveLength(1);
    const metrics = await s.app.call('GET', '/metrics');
    expect(metrics.body).toMatch(/^tessera_config_generation 2$/m);
    expect(metrics.body).toMatch(/^tessera_config_reloads_total\{result="applied"\} 1$/m);
    expect(metrics.body).toMatch(/^tessera_config_last_reload_successful 1$/m);
  });

  it('should answer a request in flight on a removed model, then unload it; new requests get 404', async () => {
    const s = await setup({ models: { a: model(['1']), gone: model(['1']) } }, 150);
    const inflight = infer(s.app, 'gone');
    await new Promise((r) => setTimeout(r, 20));
    s.next.config = { models: { a: model(['1']) } };
    const outcome = await s.app.server.reload('test');
    expect(outcome).toMatchObject({ ok: true, summary: { removed: ['gone'], unchanged: ['a'] } });
    expect((await infer(s.app, 'gone')).status).toBe(404);
    const answered = await inflight;
    expect(answered.status).toBe(200);
    expect(answered.body.outputs[0].data).toEqual([1, 2, 3, 4]);
    await expect.poll(() => s.backend.instancesOf('gone')[0]!.unloaded).toBe(true);
    expect(s.backend.instancesOf('a')[0]!.unloaded).toBe(false);
  });

  it('should load new instances when batching changes, answer the requests on the old ones, then unload those', async () => {
    const s = await setup({ models: { a: model(['1'], { batching: { maxBatchSize: 4 } }) } }, 100);
    const inflight = infer(s.app, 'a');
    await new Promise((r) => setTimeout(r, 20));
    s.next.config = { models: { a: model(['1'], { batching: { maxBatchSize: 2 } }) } };
    expect(await s.app.server.reload('test')).toMatchObject({ ok: true, summary: { changed: ['a'] } });
    const [before, after] = s.backend.instancesOf('a');
    expect(after!.spec.config['batching']).toMatchObject({ maxBatchSize: 2 });
    // each instance ran the core's warm-up (a batch of zeros) once, then served
    expect((await inflight).status).toBe(200);
    expect(before!.batches).toHaveLength(2);
    await expect.poll(() => before!.unloaded).toBe(true);
    expect((await infer(s.app, 'a')).status).toBe(200);
    expect(after!.batches).toHaveLength(2);
  });

  it('should apply changed processors on the same instances (no new load)', async () => {
    const s = await setup({ models: { a: model(['1'], { preprocess: [{ processor: 'shift', add: 1 }] }) } });
    const body = { inputs: [{ name: 'raw', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] }] };
    expect((await s.app.call('POST', '/v2/models/a/infer', body)).body.outputs[0].data).toEqual([1, 1, 1, 1]);
    s.next.config = { models: { a: model(['1'], { preprocess: [{ processor: 'shift', add: 5 }] }) } };
    expect(await s.app.server.reload('test')).toMatchObject({ ok: true, summary: { changed: ['a'] } });
    expect((await s.app.call('POST', '/v2/models/a/infer', body)).body.outputs[0].data).toEqual([5, 5, 5, 5]);
    expect(s.backend.instancesOf('a')).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.backend.instancesOf('a')[0]!.unloaded).toBe(false);
  });

  it('should keep an unchanged model untouched: same instances, same router, nothing logged as changed', async () => {
    const s = await setup({ models: { a: model(['1'], { routing: { strategy: 'recording' } }), b: model(['1']) } });
    s.next.config = { models: { a: model(['1'], { routing: { strategy: 'recording' } }), b: model(['1', '2']) } };
    expect(await s.app.server.reload('test')).toMatchObject({ ok: true, summary: { changed: ['b'], unchanged: ['a'] } });
    expect(s.routers.made).toEqual([{ model: 'a', closed: false }]);
    expect(s.backend.instancesOf('a')).toHaveLength(1);
  });

  it('should make a new router when routing changes and close the old one only after its requests were answered', async () => {
    const s = await setup({ models: { a: model(['1', '2'], { routing: { strategy: 'recording', pick: '1' } }) } }, 120);
    const inflight = infer(s.app, 'a');
    await new Promise((r) => setTimeout(r, 20));
    s.next.config = { models: { a: model(['1', '2'], { routing: { strategy: 'recording', pick: '2' } }) } };
    expect(await s.app.server.reload('test')).toMatchObject({ ok: true });
    expect(s.routers.made).toEqual([{ model: 'a', closed: false }, { model: 'a', closed: false }]);
    expect((await inflight).body.outputs[0].data).toEqual([1, 2, 3, 4]);
    await expect.poll(() => s.routers.made[0]!.closed).toBe(true);
    expect((await infer(s.app, 'a')).body.outputs[0].data).toEqual([2, 4, 6, 8]);
    expect(s.routers.made[1]!.closed).toBe(false);
  });

  it('should refuse a config with an unknown backend as a whole: generation 1 serves on, counted and reported', async () => {
    const s = await setup({ models: { a: model(['1']) } });
    s.next.config = { models: { a: model(['1', '2']), b: { backend: 'nonesuch', path: '/x.onnx' } } };
    const outcome = await s.app.server.reload('test');
    expect(outcome).toMatchObject({ ok: false, generation: 1, code: 'TESSERA_E_BACKEND_UNKNOWN' });
    expect(outcome.error).toContain('models.b.backend');
    expect(s.backend.instancesOf('a', '2')).toHaveLength(0);
    expect((await infer(s.app, 'a', '2')).status).toBe(404);
    const index = await s.app.call('GET', '/v2/repository/index');
    expect(index.body).toMatchObject({ generation: 1, last_reload: { ok: false, code: 'TESSERA_E_BACKEND_UNKNOWN' } });
    const metrics = await s.app.call('GET', '/metrics');
    expect(metrics.body).toMatch(/^tessera_config_reloads_total\{result="refused"\} 1$/m);
    expect(metrics.body).toMatch(/^tessera_config_last_reload_successful 0$/m);
    expect(metrics.body).toMatch(/^tessera_config_generation 1$/m);
  });

  it('should refuse a config whose new version fails to load, and release what the refused reload had loaded', async () => {
    const s = await setup({ models: { a: model(['1']) } });
    s.backend.fail = (spec) => spec.model === 'a' && spec.version === '2';
    s.next.config = { models: { a: model(['1', '2']), b: model(['1']) } };
    const outcome = await s.app.server.reload('test');
    expect(outcome).toMatchObject({ ok: false, generation: 1, code: 'TESSERA_E_MODEL_LOAD' });
    expect(outcome.error).toContain('a v2: the file is corrupt');
    // b loaded in the refused reload: released again, never served
    expect(s.backend.instancesOf('b')).toHaveLength(1);
    expect(s.backend.instancesOf('b')[0]!.unloaded).toBe(true);
    expect((await infer(s.app, 'b')).status).toBe(404);
    expect((await infer(s.app, 'a')).body.outputs[0].data).toEqual([1, 2, 3, 4]);
    // fixed: the next reload applies
    s.backend.fail = undefined;
    expect(await s.app.server.reload('test')).toMatchObject({ ok: true, generation: 2 });
    expect((await infer(s.app, 'a')).body.outputs[0].data).toEqual([2, 4, 6, 8]);
  });

  it('should answer every request of concurrent traffic while reloads add, change and remove models and versions', async () => {
    const s = await setup({ models: { a: model(['1']), b: model(['1']) } }, 5);
    const configs: TesseraConfigInput[] = [
      { models: { a: model(['1', '2']), b: model(['1']) } },
      { models: { a: model(['1', '2'], { batching: { maxBatchSize: 2 } }), b: model(['1']), c: model(['1']) } },
      { models: { a: model(['2'], { preprocess: [] }), b: model(['1', '2']) } },
      { models: { a: model(['2', '3']), b: model(['2']) } },
    ];
    let stop = false;
    const statuses: number[] = [];
    const client = async (name: string): Promise<void> => {
      while (!stop) statuses.push((await infer(s.app, name)).status);
    };
    const clients = [client('a'), client('a'), client('b'), client('b')];
    for (const config of configs) {
      s.next.config = config;
      expect(await s.app.server.reload('test')).toMatchObject({ ok: true });
      await new Promise((r) => setTimeout(r, 30));
    }
    stop = true;
    await Promise.all(clients);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    expect(s.app.server.generation.generation).toBe(5);
    // everything that left was unloaded; what serves was not
    const servedNow = new Set(['a:2', 'a:3', 'b:2']);
    await expect.poll(() => s.backend.instances.filter((i) => !i.unloaded).map((i) => `${i.spec.model}:${i.spec.version}`).sort()).toEqual([...servedNow].sort());
  });

  it('should refuse a reload while the server is not ready, and a server given its config as an object has nothing to reload from', async () => {
    const app = await startInProcess({ models: { a: { backend: 'gated', versions: { '1': {} } } } }, [testPlugin('p', (ctx) => ctx.registerBackend('gated', new FakeBackend()))]);
    running.push(app);
    const outcome = await app.server.reload('test');
    expect(outcome).toMatchObject({ ok: false, code: 'TESSERA_E_CONFIG_NOT_FOUND', generation: 1 });
  });
});
