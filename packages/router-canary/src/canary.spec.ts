import { describe, expect, it } from 'vitest';
import type { RouteCandidate, RouteOutcome, Router, StateStore } from '@tessera/core';
import type { TestRouterContext } from '@tessera/core/testing';
import { MemoryStateStore, describeRouterConformance, mulberry32, recordingLogger, testRouteOutcome, testRouteRequest, testRouterContext } from '@tessera/core/testing';
import type { CanaryJudgement, CanaryRouter } from './canary.js';
import { CANARY_STATE_KEY, canaryRouterFactory } from './canary.js';

const READY: RouteCandidate[] = [
  { version: '1', ready: true },
  { version: '2', ready: true },
];

/** Seeded, so every run sends the same traffic. */
const rng = mulberry32;

interface VersionBehaviour {
  /** Share of requests answered 500. */
  errorRate?: number;
  /** Share answered 400 (the client's fault). */
  clientErrorRate?: number;
  /** Median latency, ms (lognormal with σ 0.3). */
  latencyMs?: number;
  ttftMs?: number;
}

/** Sends `n` requests through `select`, answering each as the chosen version behaves, and reports the outcomes. */
function traffic(router: Router, n: number, behaviour: Record<string, VersionBehaviour>, random: () => number, kind: 'tensor' | 'generate' = 'tensor', prefix = 'r'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}-${random()}`;
    const { version } = router.select(testRouteRequest({ id, kind }), READY);
    counts[version] = (counts[version] ?? 0) + 1;
    const b = behaviour[version] ?? {};
    const u = random();
    const gauss = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const status = u < (b.errorRate ?? 0) ? 500 : u < (b.errorRate ?? 0) + (b.clientErrorRate ?? 0) ? 400 : 200;
    const outcome: Partial<RouteOutcome> = {
      id,
      version,
      kind,
      status,
      statusClass: status === 200 ? 'ok' : status === 400 ? 'client_error' : 'server_error',
      durationMs: (b.latencyMs ?? 10) * Math.exp(0.3 * gauss),
      target: { version },
    };
    if (kind === 'generate') outcome.ttftMs = (b.ttftMs ?? 50) * Math.exp(0.3 * gauss);
    router.observe(testRouteOutcome(outcome));
  }
  return counts;
}

async function canary(options: Record<string, unknown>, ctx?: Partial<TestRouterContext<StateStore>>): Promise<{ router: CanaryRouter; ctx: TestRouterContext<StateStore> }> {
  const c = testRouterContext<StateStore>({ ...ctx, options: { baseline: '1', canary: '2', interval: '1s', minRequests: 50, threshold: 2, ...options } }, canaryRouterFactory);
  return { router: (await canaryRouterFactory.create(c)) as CanaryRouter, ctx: c };
}

const judgements = (router: Router): CanaryJudgement[] => (router.status().history as { kind: string }[]).filter((h): h is CanaryJudgement => h.kind === 'judgement');

describeRouterConformance({ name: 'canary', factory: canaryRouterFactory, options: { baseline: '1', canary: '2' } });
describeRouterConformance({ name: 'canary at 100 %', factory: canaryRouterFactory, options: { baseline: '1', canary: '2', steps: [100] } });

describe('canary router', () => {
  it('should promote a good canary step by step once each step shows it within the limits: weights follow the steps, then promoting, then succeeded', async () => {
    const { router, ctx } = await canary({ steps: [10, 50, 100] });
    const random = rng(1);
    const good = { '1': { latencyMs: 10 }, '2': { latencyMs: 10 } };
    expect(router.weights(READY)).toEqual({ '1': 0.9, '2': 0.1 });
    // per interval: [state, canary's share of the requests] until the rollout ends
    const seen: [string, number][] = [];
    for (let i = 0; i < 20 && router.status().state !== 'succeeded'; i++) {
      const counts = traffic(router, 2000, good, random);
      seen.push([router.status().state as string, (counts['2'] ?? 0) / 2000]);
      await ctx.clock.advance(1000);
    }
    expect(router.status()).toMatchObject({ state: 'succeeded', failures: 0, canaryWeight: 100 });
    expect(router.weights(READY)).toEqual({ '1': 0, '2': 1 });
    // the canary's share follows the step: ~10 %, then ~50 %, then all of it
    const shares = seen.map(([state, share]) => `${state}:${Math.round(share * 10) / 10}`);
    expect([...new Set(shares)]).toEqual(['progressing:0.1', 'progressing:0.5', 'promoting:1']);
    const verdicts = judgements(router).map((j) => j.verdict);
    expect(verdicts.filter((v) => v === 'pass')).toHaveLength(3);
    expect(verdicts).not.toContain('fail');
    // a step passes only once every test is shown within its limit; before, it holds
    const first = judgements(router)[0]!;
    expect(first.checks.map((c) => [c.metric, c.against, c.measure])).toEqual([
      ['errorRate', 'baseline', 'rateDifference'],
      ['latency', 'baseline', 'ratio'],
    ]);
    if (first.verdict === 'hold') expect(first.reason).toMatch(/^not yet shown to be within the limits/);
    const pass = judgements(router).find((j) => j.verdict === 'pass')!;
    expect(pass.checks.every((c) => c.result === 'pass')).toBe(true);
    expect(pass.checks[0]).toMatchObject({ limit: 0, passLimit: 0.01 });
    expect(pass.checks[0]!.upper).toBeLessThanOrEqual(0.01);
    expect(pass.checks[1]).toMatchObject({ limit: 1.2, samples: { baseline: expect.any(Number), canary: expect.any(Number) } });
    expect(pass.checks[1]!.upper).toBeLessThanOrEqual(1.2);
    expect(ctx.metrics.value('tessera_route_state', { model: 'model', strategy: 'canary', state: 'succeeded' })).toBe(1);
    expect(ctx.metrics.value('tessera_route_state', { model: 'model', strategy: 'canary', state: 'progressing' })).toBe(0);
    expect(ctx.metrics.value('tessera_route_rollbacks_total', { model: 'model', version: '2' })).toBe(0);
    expect(ctx.metrics.value('tessera_route_judgements_total', { model: 'model', version: '2', verdict: 'pass' })).toBe(3);
    await router.close();
  });

  it('should not pass a step on too little evidence: a canary twice as faulty as its baseline is held, then rolled back, never promoted', async () => {
    const { router, ctx } = await canary({ steps: [5, 25, 50] });
    const random = rng(11);
    const states: string[] = [];
    for (let i = 0; i < 100 && router.status().state === 'progressing'; i++) {
      traffic(router, 2000, { '1': { errorRate: 0.02 }, '2': { errorRate: 0.04 } }, random);
      await ctx.clock.advance(1000);
      states.push(`${router.status().state as string}@${router.status().step as number}`);
    }
    expect(router.status().state).toBe('failed');
    expect(states.filter((s) => s.startsWith('progressing')).every((s) => s === 'progressing@1')).toBe(true);
    await router.close();
  });

  it('should roll a faulty canary back after `threshold` failed judgements: weight 0, state failed, rollbacks counted', async () => {
    const { router, ctx } = await canary({ steps: [20, 50], threshold: 2 });
    const random = rng(2);
    const faulty = { '1': { errorRate: 0.01 }, '2': { errorRate: 0.3 } };
    traffic(router, 1000, faulty, random);
    await ctx.clock.advance(1000);
    expect(router.status()).toMatchObject({ state: 'progressing', failures: 1, step: 1 });
    traffic(router, 1000, faulty, random);
    await ctx.clock.advance(1000);
    expect(router.status()).toMatchObject({ state: 'failed', failures: 2, canaryWeight: 0 });
    const [first] = judgements(router);
    expect(first!.verdict).toBe('fail');
    const check = first!.checks.find((c) => c.metric === 'errorRate')!;
    // the canary's fault rate is ~29 points above the baseline's; the interval excludes 0
    expect(check.estimate).toBeGreaterThan(0.2);
    expect(check.lower).toBeGreaterThan(0);
    expect(check.failed).toBe(true);
    expect(first!.reason).toMatch(/^worse: errorRate vs baseline/);
    expect(router.weights(READY)).toEqual({ '1': 1, '2': 0 });
    expect(traffic(router, 200, faulty, random)).toEqual({ '1': 200 });
    expect(ctx.metrics.value('tessera_route_rollbacks_total', { model: 'model', version: '2' })).toBe(1);
    // nothing more is judged once failed
    await ctx.clock.advance(5000);
    expect(judgements(router)).toHaveLength(2);
    await router.close();
  });

  it('should roll a slow canary back on latency against the baseline, and on an absolute p99', async () => {
    const slow = { '1': { latencyMs: 10 }, '2': { latencyMs: 25 } };
    const { router, ctx } = await canary({ steps: [50], threshold: 1 });
    traffic(router, 400, slow, rng(3));
    await ctx.clock.advance(1000);
    expect(router.status().state).toBe('failed');
    const latency = judgements(router)[0]!.checks.find((c) => c.metric === 'latency')!;
    expect(latency.estimate).toBeGreaterThan(2);
    expect(latency.lower).toBeGreaterThan(1.2);
    await router.close();

    // same latency as the baseline, but above an absolute p99 limit
    const { router: p99, ctx: ctx2 } = await canary({ steps: [50], threshold: 1, maxP99: '15ms' });
    traffic(p99, 400, { '1': { latencyMs: 10 }, '2': { latencyMs: 10 } }, rng(4));
    await ctx2.clock.advance(1000);
    const limit = judgements(p99)[0]!.checks.find((c) => c.measure === 'p99Ms')!;
    expect(limit).toMatchObject({ against: 'limit', limit: 15, failed: true });
    expect(p99.status().state).toBe('failed');
    await p99.close();
  });

  it('should hold a step while an interval has fewer than minRequests canary requests: no data is never a pass', async () => {
    const { router, ctx } = await canary({ steps: [10, 50], minRequests: 50 });
    const random = rng(5);
    for (let i = 0; i < 3; i++) {
      traffic(router, 100, {}, random); // ~10 canary requests per interval
      await ctx.clock.advance(1000);
    }
    await ctx.clock.advance(1000); // and an interval with none at all
    expect(judgements(router).map((j) => j.verdict)).toEqual(['hold', 'hold', 'hold', 'hold']);
    expect(router.status()).toMatchObject({ state: 'progressing', step: 1, canaryWeight: 10 });
    // the window grows over the holds: every canary request of the four intervals, still short of 50
    expect(judgements(router)[3]!.reason).toMatch(/^\d+ canary requests since the last judgement, 50 needed/);
    expect(judgements(router)[3]!.window.canary).toBeGreaterThan(judgements(router)[0]!.window.canary);
    // once they have come, the step is judged on them
    traffic(router, 600, {}, random);
    await ctx.clock.advance(1000);
    expect(judgements(router)[4]!.checks.length).toBeGreaterThan(0);
    expect(ctx.metrics.value('tessera_route_judgements_total', { model: 'model', version: '2', verdict: 'hold' })).toBe(judgements(router).filter((j) => j.verdict === 'hold').length);
    await router.close();
  });

  it('should never count client errors (4xx) against the canary, nor requests that named their version or were shadows', async () => {
    const { router, ctx } = await canary({ steps: [50, 100], threshold: 1 });
    traffic(router, 1000, { '1': { clientErrorRate: 0 }, '2': { clientErrorRate: 0.5 } }, rng(6));
    // a client hammering the canary by name with server faults is not the rollout's traffic
    for (let i = 0; i < 200; i++) router.observe(testRouteOutcome({ version: '2', explicit: true, status: 500, statusClass: 'server_error' }));
    for (let i = 0; i < 200; i++) router.observe(testRouteOutcome({ version: '2', shadow: true, status: 500, statusClass: 'server_error' }));
    const stats = router.status().stats as { canary: { errors: number; clientErrors: number } };
    expect(stats.canary.errors).toBe(0);
    expect(stats.canary.clientErrors).toBeGreaterThan(150);
    await ctx.clock.advance(1000);
    const errorRate = judgements(router)[0]!.checks.find((c) => c.metric === 'errorRate')!;
    expect(errorRate.result).not.toBe('fail');
    expect(errorRate.estimate).toBeLessThanOrEqual(0);
    await router.close();
  });

  it('should resume a rollout after a restart: same step, failures and history; a changed config starts a new one', async () => {
    const state = new MemoryStateStore();
    const first = await canary({ steps: [10, 30, 60], threshold: 3 }, { state });
    const random = rng(7);
    traffic(first.router, 6000, {}, random);
    await first.ctx.clock.advance(1000);
    traffic(first.router, 1000, { '2': { errorRate: 0.4 } }, random);
    await first.ctx.clock.advance(1000);
    expect(first.router.status()).toMatchObject({ step: 2, failures: 1, state: 'progressing' });
    await first.router.close();
    const stored = await state.get<{ step: number; history: unknown[] }>(CANARY_STATE_KEY);
    expect(stored).toMatchObject({ format: 1, step: 1, state: 'progressing', failures: 1 });

    const again = await canary({ steps: [10, 30, 60], threshold: 3, interval: '2s' }, { state });
    expect(again.router.status()).toMatchObject({ step: 2, failures: 1, state: 'progressing', canaryWeight: 30 });
    expect(judgements(again.router).map((j) => j.verdict)).toEqual(['pass', 'fail']);
    expect(again.router.weights(READY)).toEqual({ '1': 0.7, '2': 0.3 });
    // the cumulative statistics of the step came back too: the next bad interval fails the judgement
    traffic(again.router, 1000, { '2': { errorRate: 0.4 } }, random);
    await again.ctx.clock.advance(2000);
    expect(again.router.status().failures).toBe(2);
    await again.router.close();

    const other = await canary({ canary: '2', steps: [25, 50] }, { state });
    expect(other.router.status()).toMatchObject({ step: 1, failures: 0, state: 'progressing', canaryWeight: 25 });
    expect((other.router.status().history as { reason: string }[])[0]!.reason).toMatch(/a new rollout: the stored one was of another config/);
    await other.router.close();
  });

  it('should take the operator actions that fit the state and refuse the others with 409', async () => {
    const { router, ctx } = await canary({ steps: [10, 50], minRequests: 10 });
    await router.act('pause', { reason: 'investigating' });
    expect(router.status()).toMatchObject({ state: 'paused', canaryWeight: 10 });
    traffic(router, 500, {}, rng(8));
    await ctx.clock.advance(3000);
    expect(judgements(router)).toHaveLength(0);
    await expect(router.act('pause', {})).rejects.toMatchObject({ code: 'CANARY_E_ACTION_CONFLICT', status: 409, message: expect.stringMatching(/it is paused; actions that fit now: promote, rollback, resume/) });
    await router.act('resume', {});
    expect(router.status().state).toBe('progressing');
    await router.act('rollback', { reason: 'bad vibes' });
    expect(router.status()).toMatchObject({ state: 'failed', canaryWeight: 0 });
    expect(ctx.metrics.value('tessera_route_rollbacks_total', { model: 'model', version: '2' })).toBe(1);
    await expect(router.act('rollback', {})).rejects.toMatchObject({ code: 'CANARY_E_ACTION_CONFLICT' });
    await router.act('restart', {});
    expect(router.status()).toMatchObject({ state: 'progressing', step: 1, failures: 0 });
    await router.act('promote', { reason: 'looks fine' });
    expect(router.status()).toMatchObject({ state: 'succeeded', canaryWeight: 100 });
    const transitions = (router.status().history as { kind: string; by?: string; to?: string; reason?: string }[]).filter((h) => h.kind === 'transition');
    expect(transitions.map((t) => [t.to, t.by])).toEqual([
      ['progressing', 'config'],
      ['paused', 'operator'],
      ['progressing', 'operator'],
      ['failed', 'operator'],
      ['progressing', 'operator'],
      ['succeeded', 'operator'],
    ]);
    expect(transitions[1]!.reason).toBe('pause by an operator: investigating');
    await router.close();
  });

  it('should roll an LLM canary back on time to first token when its request latency is no worse', async () => {
    const { router, ctx } = await canary({ steps: [50], threshold: 1, metrics: ['errorRate', 'ttft'] });
    traffic(router, 400, { '1': { latencyMs: 800, ttftMs: 40 }, '2': { latencyMs: 800, ttftMs: 90 } }, rng(9), 'generate');
    await ctx.clock.advance(1000);
    const j = judgements(router)[0]!;
    expect(j.checks.map((c) => [c.metric, c.failed])).toEqual([
      ['errorRate', false],
      ['ttft', true],
    ]);
    expect(router.status().state).toBe('failed');
    await router.close();
  });

  it('should keep every user on one side with a sticky header, and grow the canary side only by adding users', async () => {
    const { router, ctx } = await canary({ steps: [10, 50], stickyHeader: 'X-User-Id', minRequests: 10 });
    const pick = (user: string, id: string): string => router.select(testRouteRequest({ id, headers: { 'x-user-id': user } }), READY).version;
    const users = Array.from({ length: 500 }, (_, i) => `user-${i}`);
    const before = users.map((u) => pick(u, 'a'));
    expect(users.map((u) => pick(u, 'b'))).toEqual(before);
    const onCanary = before.filter((v) => v === '2').length;
    expect(onCanary).toBeGreaterThan(25);
    expect(onCanary).toBeLessThan(75);
    traffic(router, 6000, {}, rng(10));
    await ctx.clock.advance(1000);
    expect(router.status().canaryWeight).toBe(50);
    const after = users.map((u) => pick(u, 'c'));
    // users on the canary at 10 % stay there at 50 %
    expect(before.every((v, i) => v === '1' || after[i] === '2')).toBe(true);
    await router.close();
  });

  it('should start afresh on a state it cannot read, and keep routing when it cannot write', async () => {
    const logs = recordingLogger();
    const broken: StateStore = {
      get: () => Promise.reject(new Error('routers/model/canary-rollout.json is not valid JSON')),
      set: () => Promise.reject(new Error('disk full')),
      delete: () => Promise.resolve(),
    };
    const { router, ctx } = await canary({ steps: [10, 50] }, { state: broken, logger: logs });
    expect(router.status()).toMatchObject({ state: 'progressing', step: 1 });
    traffic(router, 6000, {}, rng(12));
    await ctx.clock.advance(1000);
    expect(router.status().step).toBe(2);
    await router.close();
    const errors = logs.records.filter((r) => r.level === 'error').map((r) => r.msg ?? '');
    expect(errors[0]).toMatch(/the canary rollout of model 'model' could not be read from the state store, so it starts afresh: .*not valid JSON/);
    expect(errors.some((m) => /could not be written to the state store .*disk full/.test(m))).toBe(true);
  });

  it('should refuse versions that are not configured and steps that do not increase', async () => {
    await expect(canary({ canary: '3' })).rejects.toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message: "models.model.routing.canary: version '3' is not configured (the model has '1', '2')" });
    await expect(canary({ steps: [50, 10] })).rejects.toThrow(/steps must increase/);
    await expect(canary({ canary: '1' })).rejects.toThrow(/must differ from the baseline/);
    const { router } = await canary({ stepWeight: 20, maxWeight: 60 });
    expect(router.status().steps).toEqual([20, 40, 60]);
    await router.close();
  });
});
