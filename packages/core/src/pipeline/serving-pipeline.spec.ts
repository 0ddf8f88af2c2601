import { afterEach, describe, expect, it } from 'vitest';
import type { RouteOutcome, Router, RouterFactory } from '../contracts/router.js';
import { TesseraError } from '../errors.js';
import { FakeBackend } from '../testing/fake-backend.js';
import { InMemoryExporter } from '../testing/in-memory-exporter.js';
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

/** A router whose choice a test scripts, recording every outcome. */
function scriptedRouter(choose: () => { version: string; shadow?: string[] }, extra: Partial<Router> = {}): { factory: RouterFactory; outcomes: RouteOutcome[] } {
  const outcomes: RouteOutcome[] = [];
  const factory: RouterFactory = {
    create: () => ({
      select: () => choose(),
      observe: (o) => void outcomes.push(o),
      status: () => ({ strategy: 'scripted' }),
      ...extra,
    }),
  };
  return { factory, outcomes };
}

describe('ServingPipeline', () => {
  describe('validation', () => {
    it('should hand the backend the inputs in the metadata order, validated once', async () => {
      const backend = new FakeBackend({
        metadata: {
          platform: 'fake',
          inputs: [
            { name: 'a', datatype: 'FP32', shape: [-1, 2] },
            { name: 'b', datatype: 'INT32', shape: [-1, 2] },
          ],
          outputs: [{ name: 'out', datatype: 'FP32', shape: [-1, 2] }],
          maxBatchSize: 4,
        },
      });
      const r = await start({ models: { m: { backend: 'fake' } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', backend))]);
      const res = await r.call('POST', '/v2/models/m/infer', {
        inputs: [
          { name: 'b', datatype: 'INT32', shape: [1, 2], data: [1, 2] },
          { name: 'a', datatype: 'FP32', shape: [1, 2], data: [0.5, 1.5] },
        ],
      });
      expect(res.status).toBe(200);
      const seen = backend.instancesOf('m')[0]!.requests.at(-1)!;
      expect(seen.inputs.map((t) => t.name)).toEqual(['a', 'b']);
      expect(seen.inputs[1]!.data).toBeInstanceOf(Int32Array);
    });

    it('should refuse a bad request with a 400 before any backend sees it', async () => {
      const backend = new FakeBackend();
      const r = await start({ models: { m: { backend: 'fake', warmup: false } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', backend))]);
      const cases: [unknown, string][] = [
        [{ inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'TESSERA_E_INPUT_DATATYPE'],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, 'TESSERA_E_INPUT_SHAPE'],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [9, 4], data: new Array(36).fill(0) }] }, 'TESSERA_E_INPUT_SHAPE'],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] }] }, 'TESSERA_E_INPUT_DATA'],
        [{ inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'TESSERA_E_INPUT_UNKNOWN'],
        [xRequest([[1, 2, 3, 4]], { outputs: [{ name: 'nope' }] }), 'TESSERA_E_OUTPUT_UNKNOWN'],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }] }, 'TESSERA_E_REQUEST_INVALID'],
      ];
      for (const [body, code] of cases) {
        const res = await r.call('POST', '/v2/models/m/infer', body);
        expect(res.status, code).toBe(400);
        expect(res.body.code).toBe(code);
      }
      expect(backend.instancesOf('m')[0]!.batches).toHaveLength(0);
    });
  });

  describe('routing', () => {
    it('should serve an explicitly asked version even when the router would pick another', async () => {
      const backend = new FakeBackend();
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1' }));
      const r = await start({ models: { m: { backend: 'fake', versions: { '1': {}, '2': {} }, routing: { strategy: 'scripted' } } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      const res = await r.call('POST', '/v2/models/m/versions/2/infer', xRequest([[1, 2, 3, 4]]));
      expect(res.status).toBe(200);
      expect(res.body.model_version).toBe('2');
      const predicted = await r.call('POST', '/v1/predict', { model: 'm', version: '2', inputs: { x: [[1, 2, 3, 4]] } });
      expect(predicted.body.model_version).toBe('2');
      const routed = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      expect(routed.body.model_version).toBe('1');
      await until(() => outcomes.length === 3);
      expect(outcomes.map((o) => [o.version, o.explicit, o.statusClass])).toEqual([
        ['2', true, 'ok'],
        ['2', true, 'ok'],
        ['1', false, 'ok'],
      ]);
    });

    it('should answer 503 with Retry-After when the router picks a version that is not ready, and never run it', async () => {
      const backend = new FakeBackend((spec) => (spec.version === '2' ? { loadError: new TesseraError('TESSERA_E_MODEL_LOAD', 'broken v2') } : {}));
      const { factory } = scriptedRouter(() => ({ version: '2' }));
      const r = await start({ server: { exitOnModelError: false }, models: { m: { backend: 'fake', versions: { '1': {}, '2': {} }, routing: { strategy: 'scripted' } } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      const res = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('TESSERA_E_MODEL_NOT_READY');
      expect(res.headers['retry-after']).toBe('1');
      expect(backend.instancesOf('m', '2')).toHaveLength(0);
    });

    it('should answer 500 TESSERA_E_ROUTER_FAILED for a router that picks an unknown version or throws a plain error', async () => {
      let choice: () => { version: string } = () => ({ version: '7' });
      const { factory } = scriptedRouter(() => choice());
      const r = await start({ models: { m: { backend: 'fake', routing: { strategy: 'scripted' } } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', new FakeBackend());
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      const unknown = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      expect([unknown.status, unknown.body.code]).toEqual([500, 'TESSERA_E_ROUTER_FAILED']);
      expect(unknown.body.error).toContain("'7'");
      choice = () => {
        throw new RangeError('bad weights');
      };
      const thrown = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      expect([thrown.status, thrown.body.code]).toEqual([500, 'TESSERA_E_ROUTER_FAILED']);
      expect(thrown.body.error).toContain('bad weights');
    });

    it('should report each outcome with its status class: ok, client error, server error', async () => {
      const backend = new FakeBackend({ compute: (req) => ((req.inputs[0]!.data as Float32Array)[0] === 13 ? new Error('unlucky') : [{ name: 'y', datatype: 'FP32', shape: [1, 4], data: new Float32Array(4) }]) });
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1' }));
      const r = await start({ models: { m: { backend: 'fake', routing: { strategy: 'scripted' }, warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      await r.call('POST', '/v2/models/m/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
      const failed = await r.call('POST', '/v2/models/m/infer', xRequest([[13, 2, 3, 4]]));
      expect(failed.status).toBe(500);
      await until(() => outcomes.length === 3);
      expect(outcomes.map((o) => [o.status, o.statusClass, o.code])).toEqual([
        [200, 'ok', undefined],
        [400, 'client_error', 'TESSERA_E_INPUT_SHAPE'],
        [500, 'server_error', 'TESSERA_E_INFERENCE_FAILED'],
      ]);
      for (const o of outcomes) {
        expect(o.kind).toBe('tensor');
        expect(o.durationMs).toBeGreaterThan(0);
        expect(o.target).toEqual({ version: '1' });
      }
    });
  });

  describe('shadow copies', () => {
    it('should mirror a request to the shadow version after the primary answered, discard its answer and report its outcome', async () => {
      const backend = new FakeBackend((spec) => (spec.version === '2' ? { delayMs: 300, compute: () => new Error('shadow breaks') } : {}));
      const exporter = new InMemoryExporter();
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1', shadow: ['2'] }));
      const r = await start({ exporters: ['prometheus', 'memory'], models: { m: { backend: 'fake', versions: { '1': {}, '2': {} }, routing: { strategy: 'scripted' }, warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
          ctx.registerExporter('memory', exporter);
        }),
      ]);
      const started = performance.now();
      const res = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      // the primary does not wait for the slow, failing shadow
      expect(res.status).toBe(200);
      expect(res.body.model_version).toBe('1');
      expect(performance.now() - started).toBeLessThan(300);
      expect(res.body.outputs[0].data).toEqual([2, 4, 6, 8]);
      await until(() => outcomes.some((o) => o.shadow));
      const shadow = outcomes.find((o) => o.shadow)!;
      expect([shadow.version, shadow.status, shadow.statusClass]).toEqual(['2', 500, 'server_error']);
      // the copy's outcome carries its primary's request id, so the two can be matched
      expect(shadow.id).toBe(outcomes.find((o) => !o.shadow)!.id);
      expect(backend.instancesOf('m', '2')[0]!.requests).toHaveLength(1);
      expect(exporter.events.shadow).toEqual([expect.objectContaining({ model: 'm', version: '2', status: 500, code: 'TESSERA_E_INFERENCE_FAILED' })]);
      // the request itself is counted once, for version 1
      expect(exporter.events.request.filter((e) => e.endpoint === 'infer').map((e) => e.version)).toEqual(['1']);
    });

    it('should skip shadows that are not ready or equal to the primary', async () => {
      const backend = new FakeBackend((spec) => (spec.version === '3' ? { loadError: new TesseraError('TESSERA_E_MODEL_LOAD', 'v3 broken') } : {}));
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1', shadow: ['1', '3', '2'] }));
      const r = await start({ server: { exitOnModelError: false }, models: { m: { backend: 'fake', versions: { '1': {}, '2': {}, '3': {} }, routing: { strategy: 'scripted' }, warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      await until(() => outcomes.filter((o) => o.shadow).length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(outcomes.filter((o) => o.shadow).map((o) => o.version)).toEqual(['2']);
      expect(backend.instancesOf('m', '1')[0]!.requests).toHaveLength(1);
    });
  });

    it("should compare a shadow's answer with the primary's: max abs diff and label agreement per output", async () => {
      // version 2 computes y = 2x + 0.25 except that it swaps the first two columns: for rows whose
      // largest value is in column 0 or 1 the label changes
      const backend = new FakeBackend((spec) =>
        spec.version === '2'
          ? {
              compute: (req) => {
                const x = req.inputs[0]!.data as Float32Array;
                const y = Float32Array.from(x, (v) => 2 * v + 0.25);
                for (let r = 0; r < y.length / 4; r++) [y[r * 4], y[r * 4 + 1]] = [y[r * 4 + 1]!, y[r * 4]!];
                return [{ name: 'y', datatype: 'FP32', shape: [...req.inputs[0]!.shape], data: y }];
              },
            }
          : {},
      );
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1', shadow: ['2'] }));
      const r = await start({ models: { m: { backend: 'fake', versions: { '1': {}, '2': {} }, routing: { strategy: 'scripted' }, warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      // rows: label 3 (kept by the swap), label 0 (becomes 1), label 2 (kept), label 1 (becomes 0)
      const rows = [
        [1, 2, 3, 4],
        [9, 1, 2, 3],
        [0, 0, 5, 1],
        [1, 7, 2, 2],
      ];
      expect((await r.call('POST', '/v2/models/m/infer', xRequest(rows))).status).toBe(200);
      await until(() => outcomes.some((o) => o.shadow));
      const shadow = outcomes.find((o) => o.shadow)!;
      // the largest difference is in a swapped pair: |2·1 − (2·9 + 0.25)| = 16.25 (row 2)
      expect(shadow.comparison).toEqual({ outputs: { y: { sameShape: true, maxAbsDiff: 16.25, labelAgreement: 0.5 } }, maxAbsDiff: 16.25, labelAgreement: 0.5 });
      expect(outcomes.find((o) => !o.shadow)!.comparison).toBeUndefined();
    });

    it("should say whether a shadow generated the primary's text, streamed or not, and compare nothing when the shadow failed", async () => {
      const words = (version: string): string[] => (version === '2' ? ['Hello', ' there'] : ['Hello', ' world']);
      const backend = new FakeBackend((spec) => ({
        async *generate(req) {
          if (spec.version === '3') throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', 'v3 down');
          if (!req.stream) {
            yield { data: { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: words(spec.version).join('') } }] } };
            return;
          }
          for (const w of words(spec.version)) yield { json: JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: w } }] }) };
        },
      }));
      let shadowOf = '2';
      const { factory, outcomes } = scriptedRouter(() => ({ version: '1', shadow: [shadowOf] }));
      const r = await start({ models: { m: { backend: 'fake', versions: { '1': {}, '2': {}, '3': {}, '4': {} }, routing: { strategy: 'scripted' }, warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', backend);
          ctx.registerRouter('scripted', factory);
        }),
      ]);
      const chat = (stream: boolean): Record<string, unknown> => ({ model: 'm', stream, messages: [{ role: 'user', content: 'hi' }] });
      const shadows = (): RouteOutcome[] => outcomes.filter((o) => o.shadow);
      expect((await r.call('POST', '/v1/chat/completions', chat(false))).status).toBe(200);
      await until(() => shadows().length === 1);
      expect(shadows()[0]!.comparison).toEqual({ exactMatch: false });
      expect((await r.call('POST', '/v1/chat/completions', chat(true))).status).toBe(200);
      await until(() => shadows().length === 2);
      expect(shadows()[1]!.comparison).toEqual({ exactMatch: false });
      // version 4 generates what version 1 does
      shadowOf = '4';
      expect((await r.call('POST', '/v1/chat/completions', chat(true))).status).toBe(200);
      await until(() => shadows().length === 3);
      expect(shadows()[2]!.comparison).toEqual({ exactMatch: true });
      shadowOf = '3';
      expect((await r.call('POST', '/v1/chat/completions', chat(true))).status).toBe(200);
      await until(() => shadows().length === 4);
      expect([shadows()[3]!.statusClass, shadows()[3]!.comparison]).toEqual(['server_error', undefined]);
    });

  describe('request headers', () => {
    it('should give a tensor backend the headers its instance declared, and no others', async () => {
      const backend = new FakeBackend({ requestHeaders: ['X-Tenant'] });
      const r = await start({ models: { m: { backend: 'fake', warmup: false } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', backend))]);
      await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]), { 'x-tenant': 'acme', 'x-other': 'no', authorization: 'Bearer s' });
      expect(backend.instancesOf('m')[0]!.requests[0]!.headers).toEqual({ 'x-tenant': 'acme' });
    });
  });

  describe('warm-up', () => {
    it('should run one inference of zeros for a tensor instance without warmup(), and use warmup() when there is one', async () => {
      const plain = new FakeBackend();
      const own = new FakeBackend({ warmup: true });
      await start({ models: { a: { backend: 'plain' }, b: { backend: 'own' } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('plain', plain);
          ctx.registerBackend('own', own);
        }),
      ]);
      const warmed = plain.instancesOf('a')[0]!;
      expect(warmed.batches).toHaveLength(1);
      expect(warmed.batches[0]!.requests[0]!.inputs[0]!.shape).toEqual([1, 4]);
      expect(own.instancesOf('b')[0]!.warmups).toBe(1);
      expect(own.instancesOf('b')[0]!.batches).toHaveLength(0);
    });

    it('should fail the version with TESSERA_E_MODEL_WARMUP when that inference fails', async () => {
      const backend = new FakeBackend({ compute: () => new Error('zeros are not welcome') });
      const r = await start({ server: { exitOnModelError: false }, models: { m: { backend: 'fake' } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', backend))]);
      const ready = await r.call('GET', '/v2/models/m/versions/1/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.state).toBe('failed');
      expect(ready.body.reason).toMatch(/warm-up failed.*zeros are not welcome.*warmup: false/);
    });
  });

  describe('accounting', () => {
    it('should emit one request event per answered API request, with id, method, path and route, and none for probes, scrapes or unknown routes', async () => {
      const exporter = new InMemoryExporter();
      const r = await start({ exporters: ['prometheus', 'memory'], models: { m: { backend: 'fake', warmup: false } } }, [
        testPlugin('p', (ctx) => {
          ctx.registerBackend('fake', new FakeBackend());
          ctx.registerExporter('memory', exporter);
        }),
      ]);
      await r.call('GET', '/v2/health/ready');
      await r.call('GET', '/health');
      await r.call('GET', '/metrics');
      await r.call('GET', '/nope');
      await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]), { 'x-request-id': 'client-7' });
      await r.call('GET', '/v2/models/m');
      expect(exporter.events.request.map((e) => [e.id, e.method, e.path, e.route, e.endpoint, e.protocol, e.status])).toEqual([
        ['client-7', 'POST', '/v2/models/m/infer', '/v2/models/:model/infer', 'infer', 'v2', 200],
        [expect.any(String), 'GET', '/v2/models/m', '/v2/models/:model', 'metadata', 'http', 200],
      ]);
    });

    it('should put Retry-After on every 503, whatever raised it', async () => {
      const r = await start({ models: { m: { backend: 'fake', warmup: false, batching: { batcher: 'dynamic', maxQueueSize: 1 } } } }, [
        testPlugin('p', (ctx) => ctx.registerBackend('fake', new FakeBackend({ delayMs: 100 }))),
      ]);
      const answers = await Promise.all(Array.from({ length: 4 }, () => r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]))));
      const full = answers.filter((a) => a.status === 503);
      expect(full.length).toBeGreaterThan(0);
      for (const a of full) {
        expect(a.body.code).toBe('TESSERA_E_QUEUE_FULL');
        expect(a.headers['retry-after']).toBe('1');
      }
      const closing = r.close();
      const draining = await r.call('POST', '/v2/models/m/infer', xRequest([[1, 2, 3, 4]]));
      await closing;
      running = running.filter((x) => x !== r);
      expect([draining.status, draining.body.code, draining.headers['retry-after']]).toEqual([503, 'TESSERA_E_SERVER_DRAINING', '1']);
    });
  });

  describe('failing one request of a batch', () => {
    it('should fail only the request whose slot is an error, the others of its batch answered', async () => {
      const backend = new FakeBackend({
        delayMs: 20,
        compute: (req) => {
          const x = req.inputs[0]!.data as Float32Array;
          if (x.some(Number.isNaN)) return new TesseraError('TESSERA_E_INPUT_DATA', "input 'x': NaN is not a score");
          return [{ name: 'y', datatype: 'FP32', shape: [...req.inputs[0]!.shape], data: x.map((v) => v * 2) }];
        },
      });
      const r = await start({ models: { m: { backend: 'fake', warmup: false, batching: { maxQueueDelayMs: 50 } } } }, [testPlugin('p', (ctx) => ctx.registerBackend('fake', backend))]);
      const answers = await Promise.all([
        r.call('POST', '/v2/models/m/infer', xRequest([[1, 1, 1, 1]])),
        r.call('POST', '/v2/models/m/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: ['NaN', 1, 1, 1] }] }),
        r.call('POST', '/v2/models/m/infer', xRequest([[3, 3, 3, 3]])),
      ]);
      expect(answers.map((a) => a.status)).toEqual([200, 400, 200]);
      expect(answers[1].body.code).toBe('TESSERA_E_INPUT_DATA');
      expect(answers[2].body.outputs[0].data).toEqual([6, 6, 6, 6]);
      // the three went in one batch
      expect(backend.instancesOf('m')[0]!.batches.map((b) => b.requests.length)).toEqual([3]);
    });
  });
});
