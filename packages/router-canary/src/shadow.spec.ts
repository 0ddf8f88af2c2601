import { describe, expect, it } from 'vitest';
import type { RouteCandidate } from '@tessera/core';
import { MemoryStateStore, describeRouterConformance, testRouteOutcome, testRouteRequest, testRouterContext } from '@tessera/core/testing';
import type { ShadowRouter } from './shadow.js';
import { SHADOW_STATE_KEY, shadowRouterFactory } from './shadow.js';

const READY: RouteCandidate[] = [
  { version: '1', ready: true },
  { version: '2', ready: true },
];

async function shadow(options: Record<string, unknown> = {}, state = new MemoryStateStore()): Promise<{ router: ShadowRouter; ctx: ReturnType<typeof testRouterContext> }> {
  const ctx = testRouterContext({ state, options: { primary: '1', shadow: '2', percent: 25, ...options } }, shadowRouterFactory);
  return { router: (await shadowRouterFactory.create(ctx)) as ShadowRouter, ctx };
}

describeRouterConformance({ name: 'shadow', factory: shadowRouterFactory, options: { primary: '1', shadow: '2', percent: 50 } });

describe('shadow router', () => {
  it('should answer from the primary only and mirror about `percent` % of the requests, the same ones again for the same request id', async () => {
    const { router } = await shadow();
    const targets = Array.from({ length: 4000 }, (_, i) => router.select(testRouteRequest({ id: `id-${i}` }), READY));
    expect(new Set(targets.map((t) => t.version))).toEqual(new Set(['1']));
    const mirrored = targets.filter((t) => t.shadow?.[0] === '2').length / targets.length;
    expect(mirrored).toBeGreaterThan(0.22);
    expect(mirrored).toBeLessThan(0.28);
    expect(router.select(testRouteRequest({ id: 'id-7' }), READY)).toEqual(targets[7]);
    // explicit requests for the primary are mirrored too (mirrorExplicit), never those for the shadow
    const explicit = Array.from({ length: 400 }, (_, i) => router.shadowsFor(testRouteRequest({ id: `id-${i}`, version: '1' }))).filter(Boolean).length;
    expect(explicit).toBeGreaterThan(60);
    expect(router.shadowsFor(testRouteRequest({ id: 'id-1', version: '2' }))).toBeUndefined();
    // the shadow never answers a client, even when the primary is down
    expect(() => router.select(testRouteRequest(), [{ version: '1', ready: false }, { version: '2', ready: true }])).toThrow(/primary version '1' is not ready/);
    expect(router.weights(READY)).toEqual({ '1': 1, '2': 0 });
    await router.close();
  });

  it("should record the shadow's errors, latency against the primary and how its answers differ, and keep them across a restart", async () => {
    const state = new MemoryStateStore();
    const { router } = await shadow({}, state);
    for (let i = 0; i < 200; i++) {
      router.observe(testRouteOutcome({ id: `r${i}`, version: '1', durationMs: 10 + (i % 3) }));
      const failed = i % 10 === 0;
      router.observe(
        testRouteOutcome({
          id: `r${i}`,
          version: '2',
          shadow: true,
          status: failed ? 500 : 200,
          statusClass: failed ? 'server_error' : 'ok',
          durationMs: 30 + (i % 3),
          ...(failed ? {} : { comparison: { maxAbsDiff: i % 2 === 0 ? 0 : 0.5, labelAgreement: i % 4 === 1 ? 0 : 1 } }),
        }),
      );
    }
    router.observe(testRouteOutcome({ version: '2', shadow: true, kind: 'generate', comparison: { exactMatch: true } }));
    const stats = router.status().stats as any;
    expect(stats.primary).toMatchObject({ requests: 200, errors: 0 });
    expect(stats.shadow).toMatchObject({ requests: 201, errors: 20 });
    expect(stats.shadow.vsPrimary.successRate.verdict).toBe('worse');
    expect(stats.shadow.vsPrimary.latencyRatio.verdict).toBe('worse');
    expect(stats.shadow.vsPrimary.latencyRatio.estimate).toBeGreaterThan(2.5);
    // 180 tensor answers compared (every tenth failed): 80 even i identical, 100 odd i off by 0.5; the
    // 50 with i % 4 = 1 disagree on the label; plus one generation, the same text
    expect(stats.shadow.agreement).toEqual({ compared: 181, maxAbsDiff: 0.5, meanMaxAbsDiff: 0.277777778, identicalRate: 0.444444, labelAgreement: 0.722222, exactMatchRate: 1 });
    await router.close();
    expect(await state.get(SHADOW_STATE_KEY)).toMatchObject({ format: 1, agreement: { compared: 181 } });
    const { router: again } = await shadow({}, state);
    expect((again.status().stats as any).shadow.agreement.compared).toBe(181);
    await again.close();
  });

  it('should stop mirroring while paused', async () => {
    const { router } = await shadow({ percent: 100 });
    await router.act('pause');
    expect(router.select(testRouteRequest(), READY)).toEqual({ version: '1' });
    await expect(router.act('pause')).rejects.toMatchObject({ code: 'CANARY_E_ACTION_CONFLICT' });
    await router.act('resume');
    expect(router.select(testRouteRequest(), READY)).toEqual({ version: '1', shadow: ['2'] });
    await router.close();
  });
});
