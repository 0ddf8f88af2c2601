/**
 * The shadow-router example's router, in process: the router conformance suite of
 * `@tessera/core/testing`, then what the README says it does — sampling, shadows for explicit
 * requests, counters, metrics and durable state (example.int.spec.ts then serves it with the CLI).
 */
import { describe, expect, it } from 'vitest';
import type { RouteCandidate, Router, StateStore } from '@tessera/core';
import { isTesseraError, validateAgainstSchema } from '@tessera/core';
import { FakeClock, InMemoryMetrics, MemoryStateStore, describeRouterConformance, registerTestPlugins, testRouteOutcome, testRouteRequest, testRouterContext } from '@tessera/core/testing';
import plugin, { OPTIONS_SCHEMA, OUTCOMES_METRIC, STATE_KEY, STRATEGY, isMirrored, shadowMirrorRouterFactory } from './plugin.js';

const READY: RouteCandidate[] = [
  { version: '1', ready: true },
  { version: '2', ready: true },
];

describeRouterConformance({ name: 'shadow-mirror (examples/shadow-router)', factory: shadowMirrorRouterFactory, options: { primary: '1', shadow: '2', shadowPercent: 30 } });
describeRouterConformance({ name: 'shadow-mirror, three versions, no mirroring', factory: shadowMirrorRouterFactory, options: { primary: '2', shadow: '3', shadowPercent: 0 }, versions: ['1', '2', '3'] });

async function create(options: Record<string, unknown>, parts: { state?: StateStore; clock?: FakeClock; metrics?: InMemoryMetrics } = {}): Promise<Router> {
  return shadowMirrorRouterFactory.create(testRouterContext({ options: { primary: '1', shadow: '2', ...options }, ...parts }));
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return undefined;
}

describe(STRATEGY, () => {
  describe('.select', () => {
    it('should send every request to the primary and mirror about shadowPercent % of them', async () => {
      const router = await create({ shadowPercent: 25 });
      let mirrored = 0;
      for (let i = 0; i < 4000; i++) {
        const target = router.select(testRouteRequest({ id: `req-${i}` }), READY);
        expect(target.version).toBe('1');
        if (target.shadow) {
          expect(target.shadow).toEqual(['2']);
          mirrored++;
        }
      }
      expect(mirrored / 4000).toBeGreaterThan(0.22);
      expect(mirrored / 4000).toBeLessThan(0.28);
    });

    it('should sample by request id: the same id is mirrored the same way every time, in any router', async () => {
      const [a, b] = [await create({ shadowPercent: 50 }), await create({ shadowPercent: 50 })];
      for (let i = 0; i < 100; i++) {
        const request = testRouteRequest({ id: `client-${i}` });
        expect(a.select(request, READY)).toEqual(b.select(request, READY));
        expect(a.select(request, READY).shadow !== undefined).toBe(isMirrored(`client-${i}`, 50));
      }
    });

    it('should mirror nothing at 0 % and everything at 100 %', async () => {
      const [none, all] = [await create({ shadowPercent: 0 }), await create({ shadowPercent: 100 })];
      for (let i = 0; i < 200; i++) {
        expect(none.select(testRouteRequest({ id: `r${i}` }), READY)).toEqual({ version: '1' });
        expect(all.select(testRouteRequest({ id: `r${i}` }), READY)).toEqual({ version: '1', shadow: ['2'] });
      }
    });

    it('having the primary not ready, should refuse with 503 rather than send traffic to the shadow', async () => {
      const router = await create({ shadowPercent: 100 });
      const err = thrown(() => router.select(testRouteRequest(), [{ version: '1', ready: false }, { version: '2', ready: true }]));
      expect(isTesseraError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'TESSERA_E_MODEL_NOT_READY', status: 503 });
      expect((err as Error).message).toContain('primary version 1 is not ready');
    });
  });

  describe('.shadowsFor', () => {
    it('should mirror requests that name the primary, sampled like the others', async () => {
      const router = await create({ shadowPercent: 100 });
      expect(router.shadowsFor!(testRouteRequest({ version: '1' }), READY)).toEqual(['2']);
      const half = await create({ shadowPercent: 50 });
      for (let i = 0; i < 50; i++) {
        const request = testRouteRequest({ id: `e${i}`, version: '1' });
        expect(half.shadowsFor!(request, READY)).toEqual(half.select(request, READY).shadow);
      }
    });

    it('should not mirror requests that name the shadow itself, nor any with mirrorExplicit: false', async () => {
      expect((await create({ shadowPercent: 100 })).shadowsFor!(testRouteRequest({ version: '2' }), READY)).toBeUndefined();
      expect((await create({ shadowPercent: 100, mirrorExplicit: false })).shadowsFor!(testRouteRequest({ version: '1' }), READY)).toBeUndefined();
    });
  });

  describe('.observe and .status', () => {
    it('should count outcomes per version and role, leaving client errors out of the error rate', async () => {
      const metrics = new InMemoryMetrics();
      const router = await create({ shadowPercent: 40 }, { metrics });
      router.observe(testRouteOutcome({ version: '1', durationMs: 10 }));
      router.observe(testRouteOutcome({ version: '1', durationMs: 30 }));
      router.observe(testRouteOutcome({ version: '1', status: 400, statusClass: 'client_error', code: 'TESSERA_E_INPUT_SHAPE', durationMs: 2 }));
      router.observe(testRouteOutcome({ version: '2', shadow: true, durationMs: 20 }));
      router.observe(testRouteOutcome({ version: '2', shadow: true, status: 500, statusClass: 'server_error', durationMs: 40 }));
      router.observe(testRouteOutcome({ version: '2', shadow: true, status: 499, statusClass: 'client_error', durationMs: 0 }));
      // a version that is not configured is ignored (bounded labels)
      router.observe(testRouteOutcome({ version: '9' }));

      const status = router.status();
      expect(status).toMatchObject({ strategy: STRATEGY, primary: '1', shadow: '2', shadowPercent: 40, mirrorExplicit: true });
      const counters = status['counters'] as Record<string, Record<string, unknown>>;
      expect(counters['1']!['primary']).toEqual({ requests: 3, ok: 2, clientError: 1, serverError: 0, errorRate: 0, meanMs: 14 });
      expect(counters['2']!['shadow']).toEqual({ requests: 3, ok: 1, clientError: 1, serverError: 1, errorRate: 0.5, meanMs: 20 });
      expect(counters['2']!['primary']).toMatchObject({ requests: 0 });
      expect(Object.keys(counters)).toEqual(['1', '2']);

      expect(metrics.value(OUTCOMES_METRIC, { model: 'model', version: '1', role: 'primary', class: 'ok' })).toBe(2);
      expect(metrics.value(OUTCOMES_METRIC, { model: 'model', version: '1', role: 'primary', class: 'client_error' })).toBe(1);
      expect(metrics.value(OUTCOMES_METRIC, { model: 'model', version: '2', role: 'shadow', class: 'server_error' })).toBe(1);
      expect(metrics.series().filter((s) => s.labels['version'] === '9')).toEqual([]);
    });
  });

  describe('.weights', () => {
    it('should give the primary 1 while it is ready, and nothing otherwise', async () => {
      const router = await create({ shadowPercent: 100 });
      expect(router.weights!(READY)).toEqual({ '1': 1, '2': 0 });
      expect(router.weights!([{ version: '1', ready: false }, { version: '2', ready: true }])).toEqual({ '1': 0, '2': 0 });
    });
  });

  describe('durable counters', () => {
    it('should write the counters once per persistIntervalMs, not per request, and at close', async () => {
      const [state, clock] = [new MemoryStateStore(), new FakeClock()];
      const router = await create({ persistIntervalMs: 1000 }, { state, clock });
      for (let i = 0; i < 5; i++) router.observe(testRouteOutcome({ version: '1' }));
      expect(state.writes).toHaveLength(0);
      await clock.advance(1000);
      expect(state.writes).toHaveLength(1);
      router.observe(testRouteOutcome({ version: '2', shadow: true }));
      await router.close!();
      await router.close!();
      expect(state.writes).toHaveLength(2);
      expect(await state.get(STATE_KEY)).toMatchObject({ '1': { primary: { ok: 5 } }, '2': { shadow: { ok: 1 } } });
      // closed: nothing more is counted or written
      router.observe(testRouteOutcome({ version: '1' }));
      await clock.advance(5000);
      expect(state.writes).toHaveLength(2);
    });

    it('should start from the counters a previous router left in the state store (a restart)', async () => {
      const state = new MemoryStateStore();
      const first = await create({}, { state });
      first.observe(testRouteOutcome({ version: '1', durationMs: 8 }));
      first.observe(testRouteOutcome({ version: '2', shadow: true, status: 503, statusClass: 'server_error' }));
      await first.close!();
      const second = await create({}, { state });
      second.observe(testRouteOutcome({ version: '1', durationMs: 12 }));
      const counters = second.status()['counters'] as any;
      expect(counters['1'].primary).toMatchObject({ requests: 2, ok: 2, meanMs: 10 });
      expect(counters['2'].shadow).toMatchObject({ requests: 1, serverError: 1, errorRate: 1 });
    });

    it('should ignore saved counters it cannot use, and a state store that fails', async () => {
      const state = new MemoryStateStore();
      await state.set(STATE_KEY, { '1': { primary: { ok: 'many', serverError: -3, clientError: 2 } }, '7': { primary: { ok: 100 } } });
      const router = await create({}, { state });
      expect((router.status()['counters'] as any)['1'].primary).toMatchObject({ ok: 0, serverError: 0, clientError: 2 });
      expect(Object.keys(router.status()['counters'] as object)).toEqual(['1', '2']);

      const broken: StateStore = { get: () => Promise.reject(new Error('disk gone')), set: () => Promise.reject(new Error('disk gone')), delete: async () => {} };
      const survivor = await create({ persistIntervalMs: 0 }, { state: broken });
      expect(() => survivor.observe(testRouteOutcome({ version: '1' }))).not.toThrow();
      await expect(survivor.close!()).resolves.toBeUndefined();
    });
  });

  describe('options', () => {
    it('should refuse versions that are not configured, or a shadow equal to the primary', async () => {
      const unknown = await rejection(create({ shadow: '5' }));
      expect(unknown).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID' });
      expect((unknown as Error).message).toBe("models.model.routing.shadow: version '5' is not configured (versions: 1, 2)");
      const same = await rejection(create({ primary: '2', shadow: '2' }));
      expect((same as Error).message).toContain('primary and shadow are both version');
    });

    it('should validate with its schema as the server does: versions as strings or integers, defaults filled in, typos refused', () => {
      const options = validateAgainstSchema<Record<string, unknown>>(OPTIONS_SCHEMA, { primary: 1, shadow: '2' }, 'models.m.routing');
      expect(options).toEqual({ primary: 1, shadow: '2', shadowPercent: 10, mirrorExplicit: true, persistIntervalMs: 1000 });
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { primary: '1', shadow: '2', shadowPercent: 150 }, 'models.m.routing')).toThrow(/models\.m\.routing\.shadowPercent/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { primary: '1', shadow: '2', shadowPrecent: 5 }, 'models.m.routing')).toThrow(/shadowPrecent/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { primary: '1' }, 'models.m.routing')).toThrow(/shadow/);
    });
  });

  describe('the plugin', () => {
    it('should register the router under its strategy name', async () => {
      const regs = await registerTestPlugins([plugin]);
      expect(regs.names('router')).toEqual([STRATEGY]);
      expect(regs.get('router', STRATEGY)).toBe(shadowMirrorRouterFactory);
    });
  });
});
