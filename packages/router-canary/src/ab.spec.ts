import { describe, expect, it } from 'vitest';
import type { RouteCandidate } from '@tessera/core';
import { MemoryStateStore, describeRouterConformance, testRouteOutcome, testRouteRequest, testRouterContext } from '@tessera/core/testing';
import type { AbRouter } from './ab.js';
import { abRouterFactory } from './ab.js';

const READY: RouteCandidate[] = ['1', '2', '3'].map((version) => ({ version, ready: true }));

async function ab(options: Record<string, unknown>, state = new MemoryStateStore()): Promise<{ router: AbRouter; ctx: ReturnType<typeof testRouterContext> }> {
  const ctx = testRouterContext({ versions: ['1', '2', '3'], state, options: { variants: { '1': 50, '2': 50 }, stickyHeader: 'x-user-id', interval: '1s', minRequests: 50, ...options } }, abRouterFactory);
  return { router: (await abRouterFactory.create(ctx)) as AbRouter, ctx };
}

function user(router: AbRouter, id: string, candidates = READY): string {
  return router.select(testRouteRequest({ id: `req-${Math.random()}`, headers: { 'x-user-id': id } }), candidates).version;
}

/** Requests of distinct users; `fails(version, i)` says which ones the variant answers with a 500. */
function traffic(router: AbRouter, n: number, fails: (version: string, i: number) => boolean, latency: (version: string) => number = () => 10): void {
  for (let i = 0; i < n; i++) {
    const version = user(router, `u${i}-${Math.floor(i / 7)}`);
    const failed = fails(version, i);
    router.observe(testRouteOutcome({ version, status: failed ? 500 : 200, statusClass: failed ? 'server_error' : 'ok', durationMs: latency(version) * (1 + 0.2 * Math.sin(i)) }));
  }
}

describeRouterConformance({ name: 'ab', factory: abRouterFactory, options: { variants: { '1': 30, '2': 70 } } });
describeRouterConformance({ name: 'ab (three variants, sticky)', factory: abRouterFactory, versions: ['1', '2', '3'], options: { variants: { '1': 1, '2': 1, '3': 1 }, stickyHeader: 'x-user' } });

describe('A/B router', () => {
  it('should give a user the same variant every time, across a restart and on another replica, and split users by the weights', async () => {
    const state = new MemoryStateStore();
    const { router } = await ab({ variants: { '1': 20, '2': 80 } }, state);
    const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const first = users.map((u) => user(router, u));
    expect(users.map((u) => user(router, u))).toEqual(first);
    const share = first.filter((v) => v === '2').length / users.length;
    expect(share).toBeGreaterThan(0.76);
    expect(share).toBeLessThan(0.84);
    await router.close();
    // a restart, and a second replica with its own (empty) state: the same assignment
    const { router: restarted } = await ab({ variants: { '1': 20, '2': 80 } }, state);
    const { router: replica } = await ab({ variants: { '1': 20, '2': 80 } });
    expect(users.map((u) => user(restarted, u))).toEqual(first);
    expect(users.map((u) => user(replica, u))).toEqual(first);
    // a variant that is not ready: its users go elsewhere for now, and come back
    const without2 = READY.map((c) => ({ ...c, ready: c.version !== '2' }));
    expect(new Set(users.slice(0, 100).map((u) => user(restarted, u, without2)))).toEqual(new Set(['1']));
    expect(users.map((u) => user(restarted, u))).toEqual(first);
    await restarted.close();
    await replica.close();
  });

  it('should report per-variant success rate and latency against the control with always-valid intervals, and conclude nothing on its own by default', async () => {
    const { router, ctx } = await ab({});
    traffic(router, 2000, (v, i) => v === '2' && i % 5 === 0);
    await ctx.clock.advance(5000);
    const status = router.status() as any;
    expect(status.state).toBe('running');
    expect(status.stats['1']).toMatchObject({ control: true, weight: 0.5, errors: 0 });
    const vs = status.stats['2'].vsControl;
    expect(vs.successRate.verdict).toBe('worse');
    expect(vs.successRate.estimate).toBeCloseTo(-0.2, 1);
    expect(vs.successRate.upper).toBeLessThan(0);
    expect(vs.latencyRatio.verdict).toBe('inconclusive');
    expect(vs.latencyRatio.lower).toBeLessThan(1);
    expect(vs.latencyRatio.upper).toBeGreaterThan(1);
    await router.close();
  });

  it('should drop a losing variant and conclude on a winner with autoConclude', async () => {
    const { router, ctx } = await ab({ variants: { '1': 1, '2': 1, '3': 1 }, autoConclude: true });
    // 3 fails a fifth of its requests: it loses; 2 and 1 alike so far
    traffic(router, 1500, (v, i) => v === '3' && i % 5 === 0);
    await ctx.clock.advance(1000);
    let status = router.status() as any;
    expect(status.stats['3']).toMatchObject({ dropped: true, weight: 0 });
    expect(status.stats['2'].weight).toBeCloseTo(0.5, 6);
    expect(router.weights(READY)).toEqual({ '1': 0.5, '2': 0.5, '3': 0 });
    expect(status.history.map((h: any) => h.event)).toEqual(['started', 'dropped']);
    // now the control degrades: 2 wins
    traffic(router, 3000, (v, i) => v === '1' && i % 4 === 0);
    await ctx.clock.advance(1000);
    status = router.status() as any;
    expect(status).toMatchObject({ state: 'concluded', winner: '2' });
    expect(router.weights(READY)).toEqual({ '1': 0, '2': 1, '3': 0 });
    expect(status.history.at(-1).reason).toMatch(/^2 beats the control 1 at 0.95: successRate/);
    expect(ctx.metrics.value('tessera_route_state', { model: 'model', strategy: 'ab', state: 'concluded' })).toBe(1);
    await router.close();
  });

  it('should take promote (with a version), rollback, pause, resume and restart', async () => {
    const { router } = await ab({});
    await expect(router.act('promote', {})).rejects.toMatchObject({ code: 'CANARY_E_ACTION_INVALID', status: 400 });
    await router.act('pause', {});
    await expect(router.act('pause', {})).rejects.toMatchObject({ code: 'CANARY_E_ACTION_CONFLICT', status: 409 });
    await router.act('resume', {});
    await router.act('promote', { version: '2', reason: 'the new ranking wins on revenue' });
    expect(router.status()).toMatchObject({ state: 'concluded', winner: '2' });
    expect(user(router, 'anyone')).toBe('2');
    await router.act('restart', {});
    await router.act('rollback', {});
    expect(router.status()).toMatchObject({ state: 'concluded', winner: '1' });
    await router.close();
  });
});
