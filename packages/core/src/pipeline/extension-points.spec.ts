import { afterEach, describe, expect, it } from 'vitest';
import type { Exporter, ExporterFactory } from '../contracts/exporter.js';
import type { HookRequest, HookResponse, InferHookContext, RequestHookFactory } from '../contracts/hook.js';
import type { Processor, ProcessorFactory } from '../contracts/processor.js';
import type { RouterFactory } from '../contracts/router.js';
import type { Tensor } from '../contracts/tensor.js';
import { TesseraError, defineErrorCodes } from '../errors.js';
import { FakeBackend } from '../testing/fake-backend.js';
import { InMemoryExporter } from '../testing/in-memory-exporter.js';
import { MemoryStateStore } from '../testing/memory-state-store.js';
import type { InProcess } from './test-support.js';
import { startInProcess, testPlugin, until, xRequest } from './test-support.js';

let running: InProcess[] = [];
afterEach(async () => {
  await Promise.all(running.map((r) => r.close()));
  running = [];
});

async function start(...args: Parameters<typeof startInProcess>): Promise<InProcess> {
  const r = await startInProcess(...args);
  running.push(r);
  return r;
}

async function refusal(promise: Promise<unknown>): Promise<TesseraError> {
  try {
    await promise;
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('expected a rejection');
}

/** `raw` FP32 [-1, 4] → the model's `x` = raw × factor. */
const scale: ProcessorFactory = {
  optionsSchema: { type: 'object', properties: { factor: { type: 'number' } }, required: ['factor'], additionalProperties: false },
  create(ctx): Processor {
    const factor = ctx.options['factor'] as number;
    return {
      specs: [{ name: 'raw', datatype: 'FP32', shape: ctx.specs[0]!.shape }],
      process(tensors) {
        const raw = tensors[0] as Tensor<'FP32'>;
        if (raw.data.some((v) => v < 0)) throw new TesseraError('TESSERA_E_INPUT_DATA', "input 'raw': negative values are not allowed");
        return [{ name: 'x', datatype: 'FP32', shape: [...raw.shape], data: raw.data.map((v) => v * factor) }];
      },
    };
  },
};

/** The model's `y` [-1, 4] → `total` FP32 [-1] (row sums), keeping `y`. */
const rowSum: ProcessorFactory = {
  create(ctx): Processor {
    return {
      specs: [...ctx.specs, { name: 'total', datatype: 'FP32', shape: [-1] }],
      process(tensors) {
        const y = tensors.find((t) => t.name === 'y') as Tensor<'FP32'>;
        const rows = y.shape[0]!;
        const total = new Float32Array(rows);
        for (let r = 0; r < rows; r++) for (let c = 0; c < 4; c++) total[r]! += y.data[r * 4 + c]!;
        return [...tensors, { name: 'total', datatype: 'FP32', shape: [rows], data: total }];
      },
    };
  },
};

describe('extension points', () => {
  describe('processors', () => {
    const plugin = (backend: FakeBackend) =>
      testPlugin('procs', (ctx) => {
        ctx.registerBackend('fake', backend);
        ctx.registerProcessor('scale', scale);
        ctx.registerProcessor('row-sum', rowSum);
        ctx.registerProcessor('broken', { create: () => ({ process: () => [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }] }) });
      });

    it('should serve the signature the processors make, run pre → model → post, and select their outputs', async () => {
      const backend = new FakeBackend();
      const r = await start({ models: { m: { backend: 'fake', preprocess: [{ processor: 'scale', factor: 10 }], postprocess: ['row-sum'] } } }, [plugin(backend)]);
      const md = await r.call('GET', '/v2/models/m');
      expect(md.body.inputs).toEqual([{ name: 'raw', datatype: 'FP32', shape: [-1, 4] }]);
      expect(md.body.outputs.map((o: { name: string }) => o.name)).toEqual(['y', 'total']);
      const res = await r.call('POST', '/v2/models/m/infer', { inputs: [{ name: 'raw', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }], outputs: [{ name: 'total' }] });
      expect(res.status).toBe(200);
      expect(res.body.outputs).toEqual([{ name: 'total', datatype: 'FP32', shape: [1], data: [200] }]);
      const predicted = await r.call('POST', '/v1/predict', { model: 'm', inputs: { raw: [[0, 0, 0, 1]] } });
      expect(predicted.body.outputs).toEqual({ y: [[0, 0, 0, 20]], total: [20] });
      // the backend saw the pre-processed tensor under the model's own name
      const seen = backend.instancesOf('m')[0]!.requests.at(-1)!;
      expect(seen.inputs[0]!.name).toBe('x');
      expect([...(seen.inputs[0]!.data as Float32Array)]).toEqual([0, 0, 0, 10]);
    });

    it("should keep a step's 4xx refusal, and answer 500 TESSERA_E_PROCESSOR_FAILED when a step's output does not fit the model", async () => {
      const r = await start({ models: { m: { backend: 'fake', preprocess: [{ processor: 'scale', factor: 1 }] }, n: { backend: 'fake', preprocess: ['broken'] } } }, [plugin(new FakeBackend())]);
      const refused = await r.call('POST', '/v2/models/m/infer', { inputs: [{ name: 'raw', datatype: 'FP32', shape: [1, 4], data: [-1, 0, 0, 0] }] });
      expect([refused.status, refused.body.code]).toEqual([400, 'TESSERA_E_INPUT_DATA']);
      const broken = await r.call('POST', '/v2/models/n/infer', xRequest([[1, 2, 3, 4]]));
      expect([broken.status, broken.body.code]).toEqual([500, 'TESSERA_E_PROCESSOR_FAILED']);
      expect(broken.body.error).toContain("preprocess step 'broken'");
    });

    it('should refuse an unknown processor with a suggestion, and bad options with their path', async () => {
      const typo = await refusal(start({ models: { m: { backend: 'fake', preprocess: [{ processor: 'scael', factor: 1 }] } } }, [plugin(new FakeBackend())]));
      expect(typo.message).toMatch(/models\.m\.preprocess\[0\]: unknown processor 'scael'.*did you mean "scale"/);
      const bad = await refusal(start({ models: { m: { backend: 'fake', preprocess: [{ processor: 'scale' }] } } }, [plugin(new FakeBackend())]));
      expect(bad.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(bad.message).toContain('models.m.preprocess[0]');
    });
  });

  describe('request hooks', () => {
    const seen: { requests: HookRequest[]; infers: InferHookContext[]; responses: HookResponse[] } = { requests: [], infers: [], responses: [] };
    const codes = defineErrorCodes({ EXAMPLE_E_AUTH_MISSING: { status: 401, description: 'No token.' } });
    const tokenHook: RequestHookFactory = {
      optionsSchema: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] },
      create: ({ options }) => ({
        onRequest(req) {
          seen.requests.push(req);
          if (req.endpoint === 'health' || req.endpoint === 'metrics') return;
          if (req.headers['authorization'] !== `Bearer ${String(options['token'])}`) {
            throw codes.EXAMPLE_E_AUTH_MISSING('send Authorization: Bearer <token>', { headers: { 'www-authenticate': 'Bearer' } });
          }
          req.locals.set('principal', 'alice');
        },
        preInfer(ctx) {
          seen.infers.push(ctx);
          if (ctx.model === 'secret' && ctx.locals.get('principal') !== 'root') throw new TesseraError('TESSERA_E_MODEL_NOT_FOUND', `unknown model '${ctx.model}'`);
        },
        onResponse(res) {
          seen.responses.push(res);
          throw new Error('audit store down');
        },
      }),
    };
    const plugin = testPlugin(
      'hooks',
      (ctx) => {
        ctx.registerBackend('fake', new FakeBackend());
        ctx.registerHook('token', tokenHook);
        ctx.registerHook('crash', { create: () => ({ onRequest: () => Promise.reject(new Error('boom')) }) });
      },
      { errorCodes: codes },
    );

    it('should refuse at onRequest on every protocol, let probes through, share locals with preInfer and report every response', async () => {
      const r = await start({ hooks: [{ hook: 'token', token: 't0p' }], models: { m: { backend: 'fake', warmup: false }, secret: { backend: 'fake', warmup: false } } }, [plugin]);
      const auth = { authorization: 'Bearer t0p' };
      for (const [method, url, body] of [
        ['POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]])],
        ['POST', '/v1/predict', { model: 'm', inputs: { x: [[1, 2, 3, 4]] } }],
        ['GET', '/v2/models/m', undefined],
        ['GET', '/v1/routing', undefined],
        ['POST', '/v2/repository/index', {}],
      ] as const) {
        const refused = await r.call(method, url, body);
        expect([url, refused.status, refused.body.code]).toEqual([url, 401, 'EXAMPLE_E_AUTH_MISSING']);
        expect(refused.headers['www-authenticate']).toBe('Bearer');
        expect((await r.call(method, url, body, auth)).status, url).toBe(200);
      }
      expect((await r.call('GET', '/v2/health/ready')).status).toBe(200);
      expect((await r.call('GET', '/metrics')).status).toBe(200);
      const hidden = await r.call('POST', '/v2/models/secret/infer', xRequest([[1, 2, 3, 4]]), auth);
      expect(hidden.status).toBe(404);
      expect(seen.infers.map((c) => [c.model, c.version, c.protocol, c.kind, c.locals.get('principal')])).toEqual([
        ['m', '1', 'v2', 'tensor', 'alice'],
        ['m', '1', 'predict', 'tensor', 'alice'],
        ['secret', '1', 'v2', 'tensor', 'alice'],
      ]);
      await until(() => seen.responses.length === seen.requests.length);
      const last = seen.responses.at(-1)!;
      expect([last.status, last.code, last.model, last.endpoint]).toEqual([404, 'TESSERA_E_MODEL_NOT_FOUND', 'secret', 'infer']);
      expect(seen.requests.map((q) => q.endpoint)).toContain('health');
    });

    it('should give hooks the route params and the model of metadata requests, and run preInfer before telling what kind of model it is', async () => {
      const views: (HookRequest | HookResponse)[] = [];
      const hide: RequestHookFactory = {
        create: () => ({
          onRequest: (req) => void views.push(req),
          preInfer: (ctx) => {
            if (ctx.model === 'llm') throw new TesseraError('TESSERA_E_MODEL_NOT_FOUND', `unknown model '${ctx.model}'`);
          },
          onResponse: (res) => void views.push(res),
        }),
      };
      const generative = new FakeBackend({ metadata: { platform: 'fake', inputs: [], outputs: [], maxBatchSize: 0 }, generate: async function* () {} });
      const r = await start({ hooks: ['hide'], models: { m: { backend: 'fake', warmup: false, versions: { '1': {}, '2': {} } }, llm: { backend: 'gen', warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', new FakeBackend());
          ctx.registerBackend('gen', generative);
          ctx.registerHook('hide', hide);
        }),
      ]);
      await r.call('GET', '/v2/models/m/versions/2');
      const request = views[0] as HookRequest;
      expect(request.params).toEqual({ model: 'm', version: '2' });
      expect(request.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
      const response = views[1] as HookResponse;
      expect([response.model, response.version, response.endpoint]).toEqual(['m', '2', 'metadata']);
      // a tensor request to the generative model: the hook's 404, not "this is a generative model"
      const hidden = await r.call('POST', '/v2/models/llm/infer', xRequest([[1, 2, 3, 4]]));
      expect([hidden.status, hidden.body.code]).toEqual([404, 'TESSERA_E_MODEL_NOT_FOUND']);
    });

    it('should answer 500 TESSERA_E_HOOK_FAILED for a hook that throws a plain error, and warn about hooks not listed', async () => {
      const r = await start({ hooks: ['crash'], models: { m: { backend: 'fake', warmup: false } } }, [plugin]);
      const res = await r.call('GET', '/v2/models/m');
      expect([res.status, res.body.code]).toEqual([500, 'TESSERA_E_HOOK_FAILED']);
      expect(res.body.error).toContain("'crash'");
    });

    it('should refuse a plugin that declares a TESSERA_E_ code or a code another plugin declares', async () => {
      const mine = defineErrorCodes({ TESSERA_E_EXAMPLE_NOPE: { status: 400, description: 'x' } });
      const stolen = await refusal(start({}, [testPlugin('not-tessera', () => {}, { errorCodes: mine })]));
      expect(stolen.code).toBe('TESSERA_E_PLUGIN_INVALID');
      expect(stolen.message).toMatch(/TESSERA_E_ namespace/);
      const twice = await refusal(start({}, [testPlugin('one', () => {}, { errorCodes: codes }), testPlugin('two', () => {}, { errorCodes: codes })]));
      expect(twice.message).toMatch(/plugin one declares it too/);
    });
  });

  describe('exporters', () => {
    it('should create the exporters the config lists, with their options, flush them and shut them down once at close', async () => {
      const calls: string[] = [];
      const factory: ExporterFactory = {
        optionsSchema: { type: 'object', properties: { prefix: { type: 'string' } }, additionalProperties: false },
        create: ({ options }): Exporter => ({
          attach: (events) => void events.on('request', (e) => calls.push(`${String(options['prefix'])}:${e.path}`)),
          forceFlush: async () => void calls.push('flush'),
          shutdown: async () => void calls.push('shutdown'),
        }),
      };
      const unlisted = new InMemoryExporter();
      const r = await startInProcess({ exporters: [{ exporter: 'lines', prefix: 'L' }], models: { m: { backend: 'fake', warmup: false } } }, [
        testPlugin('ex', (ctx) => {
          ctx.registerBackend('fake', new FakeBackend());
          ctx.registerExporter('lines', factory);
          ctx.registerExporter('unlisted', unlisted);
        }),
      ]);
      await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      // prometheus was not listed: no /metrics
      expect((await r.call('GET', '/metrics')).status).toBe(404);
      await r.close();
      await r.close();
      // a 404 (no route) is not a request of the API: no event
      expect(calls).toEqual(['L:/v2/models/m/infer', 'flush', 'shutdown']);
      expect(unlisted.events.request).toEqual([]);
    });

    it('should refuse options for an exporter instance and an unknown exporter name', async () => {
      const plugin = testPlugin('ex', (ctx) => ctx.registerExporter('memory', new InMemoryExporter()));
      expect((await refusal(start({ exporters: [{ exporter: 'memory', x: 1 }] }, [plugin]))).message).toMatch(/exporters\[0\]: exporter 'memory' takes no options/);
      expect((await refusal(start({ exporters: ['promethues'] }, [plugin]))).message).toMatch(/did you mean "prometheus"/);
    });
  });

  describe('router context', () => {
    it('should give routers a clock, a logger, metrics served on /metrics and a state store that outlives the server', async () => {
      const store = new MemoryStateStore();
      const factory: RouterFactory = {
        async create(ctx) {
          const decisions = ctx.metrics.counter({ name: 'tessera_example_route_decisions_total', help: 'Decisions.', labelNames: ['model'] });
          let count = (await ctx.state.get<number>('count')) ?? 0;
          const startedAt = ctx.clock.now();
          return {
            select: (_req, candidates) => {
              decisions.inc({ model: ctx.model });
              return { version: candidates.at(-1)!.version };
            },
            observe: () => {
              count++;
              void ctx.state.set('count', count);
            },
            status: () => ({ strategy: 'counting', count, since: startedAt }),
          };
        },
      };
      const plugin = testPlugin('r', (ctx) => {
        ctx.registerBackend('fake', new FakeBackend());
        ctx.registerRouter('counting', factory);
      });
      const config = { models: { m: { backend: 'fake', warmup: false, versions: { '1': {}, '2': {} }, routing: { strategy: 'counting' } } } };
      const first = await startInProcess(config, [plugin], { stateStore: () => store });
      await first.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      await first.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      const metrics = await first.call('GET', '/metrics');
      expect(metrics.body).toContain('tessera_example_route_decisions_total{model="m"} 2');
      await until(() => store.writes.length === 2);
      await first.close();
      const second = await start(config, [plugin], { stateStore: () => store });
      const routing = await second.call('GET', '/v1/routing/m');
      expect(routing.body).toEqual({
        model: 'm',
        strategy: 'counting',
        // the router declares no weights(): the core does not guess them
        versions: [
          { version: '1', state: 'ready', ready: true, weight: null },
          { version: '2', state: 'ready', ready: true, weight: null },
        ],
        weights: null,
        actions: [],
        // the router's status() fields, at the top level
        count: 2,
        since: expect.any(Number),
      });
      expect((await second.call('GET', '/v1/routing')).body.models).toHaveLength(1);
      const missing = await second.call('GET', '/v1/routing/nope');
      expect([missing.status, missing.body.code]).toEqual([404, 'TESSERA_E_MODEL_NOT_FOUND']);
    });
  });

  describe('routing actions', () => {
    it('should carry out the actions a router declares on POST /v1/routing/{model}/{action}, answer the routing after them, and refuse others', async () => {
      const acted: unknown[] = [];
      let paused = false;
      const factory: RouterFactory = {
        create: () => ({
          actions: ['pause', 'resume', 'explode'],
          act(action, input) {
            if (action === 'explode') throw new Error('kaboom');
            if (action === 'resume' && !paused) throw new TesseraError('TESSERA_E_REQUEST_INVALID', 'not paused', { status: 409 });
            paused = action === 'pause';
            acted.push([action, input]);
          },
          select: (_req, candidates) => ({ version: candidates[0]!.version }),
          observe: () => {},
          status: () => ({ strategy: 'pausable', state: paused ? 'paused' : 'running', model: 'not overridable' }),
        }),
      };
      const plugin = testPlugin('r', (ctx) => {
        ctx.registerBackend('fake', new FakeBackend());
        ctx.registerRouter('pausable', factory);
      });
      const r = await start({ models: { m: { backend: 'fake', warmup: false, routing: { strategy: 'pausable' } }, plain: { backend: 'fake', warmup: false } } }, [plugin]);
      const paused1 = await r.call('POST', '/v1/routing/m/pause', { reason: 'looking into latency' });
      expect(paused1.status).toBe(200);
      expect(paused1.body).toMatchObject({ model: 'm', strategy: 'pausable', state: 'paused', actions: ['pause', 'resume', 'explode'] });
      expect(acted).toEqual([['pause', { reason: 'looking into latency' }]]);
      // no body at all is fine
      const resumed = await r.call('POST', '/v1/routing/m/resume');
      expect([resumed.status, resumed.body.state], JSON.stringify(resumed.body)).toEqual([200, 'running']);
      const again = await r.call('POST', '/v1/routing/m/resume');
      expect([again.status, again.body.error]).toEqual([409, 'not paused']);
      const unknown = await r.call('POST', '/v1/routing/m/promote');
      expect([unknown.status, unknown.body.code]).toEqual([404, 'TESSERA_E_ROUTING_ACTION_UNKNOWN']);
      expect(unknown.body.error).toMatch(/'pausable' router of model 'm' has no action 'promote': it takes 'pause', 'resume', 'explode'/);
      const latest = await r.call('POST', '/v1/routing/plain/pause');
      expect([latest.status, latest.body.error]).toEqual([404, "the 'latest' router of model 'plain' has no action 'pause': it takes none"]);
      const broken = await r.call('POST', '/v1/routing/m/explode');
      expect([broken.status, broken.body.code, broken.body.error]).toEqual([500, 'TESSERA_E_ROUTER_FAILED', "model 'm': routing strategy 'pausable' failed to explode: kaboom"]);
      const bad = await r.call('POST', '/v1/routing/m/pause', { reason: 5 });
      expect([bad.status, bad.body.code]).toEqual([400, 'TESSERA_E_REQUEST_INVALID']);
      expect((await r.call('POST', '/v1/routing/nope/pause')).status).toBe(404);
    });
  });

  describe('config selection', () => {
    it('should suggest the closest backend name', async () => {
      const err = await refusal(start({ models: { m: { backend: 'fkae' } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', new FakeBackend()))]));
      expect(err.code).toBe('TESSERA_E_BACKEND_UNKNOWN');
      expect(err.message).toMatch(/models\.m\.backend: unknown backend 'fkae'.*did you mean "fake"/);
    });

    it('should say which batcher takes a key the chosen one does not', async () => {
      const err = await refusal(start({ models: { m: { backend: 'fake', batching: { batcher: 'passthrough', maxQueueDelayMs: 2 } } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', new FakeBackend()))]));
      expect(err.message).toMatch(/maxQueueDelayMs is an option of the 'dynamic' batcher, not of 'passthrough': write `batcher: dynamic`/);
    });
  });
});
