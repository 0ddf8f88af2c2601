/**
 * @tessera/router-canary through the real CLI: `tessera serve` on configs that load the plugin,
 * real ONNX models (examples/canary-rollout/models.mjs: good-v1, good-v2, faulty — fails inside
 * ONNX Runtime on a quarter of the inputs — and slow), real HTTP on loopback, intervals of a few
 * hundred ms. Canary rollouts rolled back (errors, latency) and promoted step by step, a low-traffic
 * hold, a restart in the middle of a rollout, the operator's actions, A/B stickiness, shadow
 * isolation, and an LLM canary between two pools of vLLM stand-ins rolled back on time to first token.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { startVllmStandInProcess } from '@tessera/vllm-stand-in';
import { isFaultyInput, randomRow, referenceScores, rng, writeCanaryModels } from '../../../examples/canary-rollout/models.mjs';
import type { Answer, RoutingSample } from './helpers.js';
import { Traffic, act, eventually, infer, maxAbsDiff, median, metricValue, metricsText, routing, sequenceOf, serveConfig, sleep, tempDir, watchRouting } from './helpers.js';

const INTERVAL_MS = 400;
const PLUGIN = '@tessera/router-canary';

let dir: string;
let files: Awaited<ReturnType<typeof writeCanaryModels>>;
const servers: TesseraProcess[] = [];

beforeAll(async () => {
  dir = await tempDir('tessera-canary-int-');
  files = await writeCanaryModels(path.join(dir, 'models'));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function serve(name: string, lines: readonly string[]): Promise<TesseraProcess> {
  const server = await serveConfig(dir, name, lines);
  servers.push(server);
  return server;
}

/** A model section: version 1 good-v1, version 2 `candidate`, routed by `routing` (a YAML flow mapping). */
function model(name: string, candidate: keyof typeof files, routingYaml: string): string[] {
  return [
    `  ${name}:`,
    `    versions: { '1': { path: '${files['good-v1']}' }, '2': { path: '${files[candidate]}' } }`,
    `    sessionOptions: { intraOpNumThreads: 1, logSeverityLevel: 4 }`,
    `    routing: ${routingYaml}`,
  ];
}

function canary(extra: string, intervalMs = INTERVAL_MS): string {
  return `{ strategy: canary, baseline: '1', canary: '2', interval: ${intervalMs}ms, ${extra} }`;
}

/**
 * The faulty model's rollout: judgements on windows of at least 100 canary requests. The sequential
 * test needs about that many to tell a quarter of requests failing from none at 95 % (with fewer
 * the step only holds), hence steps [50, 100] and a longer interval.
 */
const FAULTY_INTERVAL_MS = 1200;

// what a routing body says, in one place (GET /v1/routing/{model})
const canaryWeight = (body: any): number => body.weights['2'];
// the history holds judgements (`kind: 'judgement'`, with a verdict and its checks) and transitions between states
const judgements = (body: any): any[] => (body.history as any[]).filter((h) => h.kind === 'judgement');
const verdicts = (body: any): string[] => judgements(body).map((h) => h.verdict);
const failed = (body: any): any[] => judgements(body).filter((h) => h.verdict === 'fail');

/** Every answer a 200 from `version`. */
function expectAllFrom(answers: readonly Answer[], version: string): void {
  const other = answers.filter((a) => a.status !== 200 || a.version !== version);
  expect(other.map((a) => `${a.status} ${a.version ?? a.code}`), `of ${answers.length}`).toEqual([]);
}

describe('canary rollouts through the CLI', () => {
  let server: TesseraProcess;

  beforeAll(async () => {
    server = await serve('canary.yaml', [
      `server: { host: 127.0.0.1, port: 0, stateDir: '${path.join(dir, 'canary-state')}' }`,
      `plugins: ['${PLUGIN}']`,
      'models:',
      ...model('faulty', 'faulty', canary('steps: [50, 100], minRequests: 100, threshold: 2', FAULTY_INTERVAL_MS)),
      ...model('slow', 'slow', canary('steps: [20, 50, 100], minRequests: 10, threshold: 2, maxLatencyRatio: 1.2')),
      ...model('good', 'good-v2', canary('steps: [20, 50, 100], minRequests: 10, threshold: 2, maxLatencyRatio: 1.5')),
      ...model('quiet', 'good-v2', canary('steps: [20, 50, 100], minRequests: 50, threshold: 2')),
      ...model('manual', 'good-v2', canary('steps: [20, 30, 40, 50, 60, 70, 80, 90, 100], minRequests: 5, threshold: 2, maxLatencyRatio: 2')),
      ...model('manual-promote', 'good-v2', canary('steps: [10, 50, 100], minRequests: 30, threshold: 2, maxLatencyRatio: 2')),
    ]);
  });

  it('should roll a faulty version back: state failed, weight 0, one rollback on /metrics, then every request answered by the baseline', async () => {
    // 300 requests a second: about 180 for the canary in each window, room to spare on a busy machine
    const traffic = new Traffic(server.url, 'faulty', { rate: 300, concurrency: 4 }).start();
    const samples = await watchRouting(server.url, 'faulty', (b) => b.state === 'failed', 15_000);
    const answers = await traffic.stop();
    const body = await routing(server.url, 'faulty');

    expect(body).toMatchObject({ model: 'faulty', strategy: 'canary', state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(body.versions).toEqual([
      { version: '1', state: 'ready', ready: true, weight: 1 },
      { version: '2', state: 'ready', ready: true, weight: 0 },
    ]);
    // threshold 2: two failed judgements, and the second one rolled back
    expect(failed(body)).toHaveLength(2);
    // never a step further: from 50 % straight to 0
    expect(sequenceOf(samples, (b) => b.state)).toEqual(['progressing', 'failed']);
    expect(sequenceOf(samples, canaryWeight)).toEqual([0.5, 0]);
    for (const j of failed(body)) expect(j.checks.filter((c: any) => c.failed).map((c: any) => c.metric), j.reason).toContain('errorRate');

    // the only errors are the faulty model's own, on the inputs it fails on
    const errors = answers.filter((a) => a.status !== 200);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect([e.status, e.code, e.faultyRow]).toEqual([500, 'TESSERA_E_INFERENCE_FAILED', true]);
    expect(answers.filter((a) => a.version === '2').length).toBeGreaterThan(0);

    const text = await metricsText(server.url);
    expect(metricValue(text, 'tessera_route_rollbacks_total', { model: 'faulty', version: '2' })).toBe(1);
    expect(metricValue(text, 'tessera_route_weight', { model: 'faulty', version: '2' })).toBe(0);
    expect(metricValue(text, 'tessera_route_weight', { model: 'faulty', version: '1' })).toBe(1);
    expect(metricValue(text, 'tessera_route_state', { model: 'faulty', strategy: 'canary', state: 'failed' })).toBe(1);
    expect(metricValue(text, 'tessera_route_state', { model: 'faulty', strategy: 'canary', state: 'progressing' })).toBe(0);
    expect(metricValue(text, 'tessera_route_judgements_total', { model: 'faulty', version: '2', verdict: 'fail' })).toBe(2);

    // after the rollback: the baseline answers everything, the inputs the canary failed on included
    const after = new Traffic(server.url, 'faulty', { concurrency: 4, rows: 'faulty', seed: 9 }).start();
    await sleep(2 * FAULTY_INTERVAL_MS);
    expectAllFrom(await after.stop(), '1');
    expect((await routing(server.url, 'faulty')).state).toBe('failed');
  });

  it('should roll a slow version back on latency, with no request failing', async () => {
    const traffic = new Traffic(server.url, 'slow', { rate: 150, concurrency: 4, rows: 'clean' }).start();
    await watchRouting(server.url, 'slow', (b) => b.state === 'failed', 15_000);
    const answers = await traffic.stop();
    const body = await routing(server.url, 'slow');

    expect(body).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(failed(body)).toHaveLength(2);
    for (const j of failed(body)) expect(j.checks.filter((c: any) => c.failed).map((c: any) => c.metric), j.reason).toEqual(['latency']);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // the canary really was slower, as the client saw it
    const ms = (v: string): number => median(answers.filter((a) => a.version === v).map((a) => a.ms));
    expect(ms('2')).toBeGreaterThan(ms('1') + 3);
    expect(metricValue(await metricsText(server.url), 'tessera_route_rollbacks_total', { model: 'slow', version: '2' })).toBe(1);
  });

  it('should promote a good version step by step: the weights follow the steps, then state succeeded', async () => {
    const traffic = new Traffic(server.url, 'good', { rate: 200, concurrency: 4 }).start();
    const samples = await watchRouting(server.url, 'good', (b) => b.state === 'succeeded', 30_000);
    const answers = await traffic.stop();
    const body = await routing(server.url, 'good');

    expect(sequenceOf(samples, canaryWeight)).toEqual([0.2, 0.5, 1]);
    const states = sequenceOf(samples, (b) => b.state);
    expect(states[0]).toBe('progressing');
    expect(states.at(-1)).toBe('succeeded');
    expect(states.every((s) => ['progressing', 'promoting', 'succeeded'].includes(s))).toBe(true);
    expect(body).toMatchObject({ state: 'succeeded', weights: { '1': 0, '2': 1 } });
    expect(verdicts(body)).not.toContain('fail');
    expect(verdicts(body).filter((v) => v === 'pass').length).toBeGreaterThanOrEqual(3);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);

    // the traffic followed the weights: while the canary had 20 % or 50 %, about that share of answers came from it
    for (const weight of [0.2, 0.5]) {
      const window = stableWindow(samples, (b) => canaryWeight(b) === weight && b.state === 'progressing');
      const inside = answers.filter((a) => a.sentAt > window.from && a.at < window.to);
      if (inside.length < 40) continue; // a step passed too fast to judge the split
      const share = inside.filter((a) => a.version === '2').length / inside.length;
      expect(Math.abs(share - weight), `share ${share} of ${inside.length} at weight ${weight}`).toBeLessThan(4 * Math.sqrt((weight * (1 - weight)) / inside.length) + 0.05);
    }

    // succeeded: the canary answers everything, with good-v2's scores
    const after = new Traffic(server.url, 'good', { concurrency: 2, seed: 5 }).start();
    await sleep(2 * INTERVAL_MS);
    const late = await after.stop();
    expectAllFrom(late, '2');
    for (const a of late.slice(0, 20)) expect(maxAbsDiff(a.scores!, referenceScores('good-v2', [a.row])[0]!)).toBeLessThan(1e-5);
    expect(metricValue(await metricsText(server.url), 'tessera_route_state', { model: 'good', strategy: 'canary', state: 'succeeded' })).toBe(1);
  });

  it('having fewer canary requests than minRequests per interval, should hold the step with verdicts hold', async () => {
    const before = await routing(server.url, 'quiet');
    expect(before.state).toBe('progressing');
    const traffic = new Traffic(server.url, 'quiet', { rate: 5, concurrency: 1 }).start();
    await sleep(6 * INTERVAL_MS);
    await traffic.stop();
    const body = await routing(server.url, 'quiet');

    expect(body.state).toBe('progressing');
    expect(body.step).toEqual(before.step);
    expect(canaryWeight(body)).toBe(0.2);
    expect(body.history.length).toBeGreaterThanOrEqual(4);
    expect(new Set(verdicts(body))).toEqual(new Set(['hold']));
    const text = await metricsText(server.url);
    expect(metricValue(text, 'tessera_route_judgements_total', { model: 'quiet', version: '2', verdict: 'hold' })).toBeGreaterThanOrEqual(4);
    expect(metricValue(text, 'tessera_route_judgements_total', { model: 'quiet', version: '2', verdict: 'pass' }) ?? 0).toBe(0);
    expect(metricValue(text, 'tessera_route_judgements_total', { model: 'quiet', version: '2', verdict: 'fail' }) ?? 0).toBe(0);
  });

  it('should pause (the step holds under traffic), resume, roll back by hand, and answer 409 to an action that does not fit', async () => {
    const traffic = new Traffic(server.url, 'manual', { rate: 200, concurrency: 4, rows: 'clean' }).start();
    try {
      await watchRouting(server.url, 'manual', (b) => canaryWeight(b) >= 0.3, 10_000);

      const paused = await act(server.url, 'manual', 'pause', { reason: 'looking at the dashboards' });
      expect(paused.status, JSON.stringify(paused.body)).toBe(200);
      expect(paused.body).toMatchObject({ model: 'manual', strategy: 'canary', state: 'paused' });
      const held = canaryWeight(paused.body);
      await sleep(4 * INTERVAL_MS);
      const still = await routing(server.url, 'manual');
      expect([still.state, canaryWeight(still), still.step]).toEqual(['paused', held, paused.body.step]);

      const again = await act(server.url, 'manual', 'pause');
      expect(again.status, JSON.stringify(again.body)).toBe(409);
      expect(again.body.code).toBe('CANARY_E_ACTION_CONFLICT');

      const resumed = await act(server.url, 'manual', 'resume');
      expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
      expect(resumed.body.state).toBe('progressing');
      expect((await act(server.url, 'manual', 'resume')).status).toBe(409);
      await watchRouting(server.url, 'manual', (b) => canaryWeight(b) > held, 10_000);

      const rolledBack = await act(server.url, 'manual', 'rollback', { reason: 'manual test rollback' });
      expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
      expect(rolledBack.body).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
      expect(JSON.stringify(rolledBack.body.history)).toContain('manual test rollback');
      for (const action of ['rollback', 'resume', 'pause']) expect((await act(server.url, 'manual', action)).status, action).toBe(409);
      expect(metricValue(await metricsText(server.url), 'tessera_route_rollbacks_total', { model: 'manual', version: '2' })).toBe(1);
    } finally {
      await traffic.stop();
    }
    // after the rollback every request goes to the baseline
    const after = new Traffic(server.url, 'manual', { concurrency: 2 }).start();
    await sleep(2 * INTERVAL_MS);
    expectAllFrom(await after.stop(), '1');
  });

  it('should promote by hand to 100 %, then succeed; a second promote is a 409, an unknown action a 404', async () => {
    const traffic = new Traffic(server.url, 'manual-promote', { rate: 150, concurrency: 4 }).start();
    try {
      await sleep(2 * INTERVAL_MS);
      // 10 % of 60 requests an interval is fewer than minRequests 30: the rollout holds on its own
      expect(canaryWeight(await routing(server.url, 'manual-promote'))).toBe(0.1);
      const promoted = await act(server.url, 'manual-promote', 'promote', { reason: 'ship it' });
      expect(promoted.status, JSON.stringify(promoted.body)).toBe(200);
      expect(['promoting', 'succeeded']).toContain(promoted.body.state);
      expect(canaryWeight(promoted.body)).toBe(1);
      await watchRouting(server.url, 'manual-promote', (b) => b.state === 'succeeded', 10_000);
    } finally {
      await traffic.stop();
    }
    for (const action of ['promote', 'resume']) expect((await act(server.url, 'manual-promote', action)).status, action).toBe(409);
    const unknown = await act(server.url, 'manual-promote', 'launch');
    expect([unknown.status, unknown.body.code]).toEqual([404, 'TESSERA_E_ROUTING_ACTION_UNKNOWN']);
    expect(unknown.body.error).toContain('promote');
  });
});

/** The longest run of samples for which `holds(body)` is true: from its first sample to the sample after its last. */
function stableWindow(samples: readonly RoutingSample[], holds: (body: any) => boolean): { from: number; to: number } {
  let best = { from: 0, to: 0 };
  for (let i = 0; i < samples.length; i++) {
    if (!holds(samples[i]!.body)) continue;
    let j = i;
    while (j + 1 < samples.length && holds(samples[j + 1]!.body)) j++;
    // the weights changed somewhere between sample j and j + 1: trust only [i, j]
    const window = { from: samples[i]!.at, to: samples[j]!.at };
    if (window.to - window.from > best.to - best.from) best = window;
    i = j;
  }
  return best;
}

describe('a restart in the middle of a rollout', () => {
  const config = (): string[] => [
    `server: { host: 127.0.0.1, port: 0, stateDir: '${path.join(dir, 'restart-state')}' }`,
    `plugins: ['${PLUGIN}']`,
    'models:',
    ...model('resumable', 'good-v2', canary('steps: [20, 40, 60, 80, 100], minRequests: 10, threshold: 2, maxLatencyRatio: 2')),
  ];

  it('should resume on the same stateDir: the same state, step and weights, the history kept, then go on', async () => {
    let server = await serve('restart.yaml', config());
    const traffic = new Traffic(server.url, 'resumable', { rate: 200, concurrency: 4, rows: 'clean' }).start();
    await watchRouting(server.url, 'resumable', (b) => canaryWeight(b) >= 0.6, 20_000);
    await traffic.stop();
    // one more interval without traffic: the step can only hold from here
    await sleep(2 * INTERVAL_MS);
    const before = await routing(server.url, 'resumable');
    expect(before.state).toBe('progressing');
    expect(verdicts(before).filter((v) => v === 'pass').length).toBeGreaterThanOrEqual(2);

    expect(await server.stop()).toBe(0);
    server = await serve('restart.yaml', config());
    const after = await routing(server.url, 'resumable');
    expect([after.state, after.step, after.weights]).toEqual([before.state, before.step, before.weights]);
    expect(after.history.slice(0, before.history.length)).toEqual(before.history);

    const more = new Traffic(server.url, 'resumable', { rate: 200, concurrency: 4, rows: 'clean', seed: 3 }).start();
    const samples = await watchRouting(server.url, 'resumable', (b) => b.state === 'succeeded', 20_000);
    await more.stop();
    const weights = sequenceOf(samples, canaryWeight);
    expect(weights[0]).toBe(canaryWeight(before));
    expect(weights.at(-1)).toBe(1);
    const final = await routing(server.url, 'resumable');
    expect(final.history.slice(0, before.history.length)).toEqual(before.history);
  }, 60_000);
});

describe('an A/B test', () => {
  const config = (): string[] => [
    `server: { host: 127.0.0.1, port: 0, stateDir: '${path.join(dir, 'ab-state')}' }`,
    `plugins: ['${PLUGIN}']`,
    'models:',
    ...model('ab', 'good-v2', `{ strategy: ab, variants: { '1': 70, '2': 30 }, stickyHeader: x-user-id, confidence: 0.95, autoConclude: false, minRequests: 50 }`),
  ];
  const user = (n: number): Record<string, string> => ({ 'x-user-id': `user-${n}` });
  let server: TesseraProcess;
  const assigned = new Map<number, string>();

  beforeAll(async () => {
    server = await serve('ab.yaml', config());
  });

  it('should split 1000 distinct users near the weights, each answered by its variant', async () => {
    const traffic = new Traffic(server.url, 'ab', { concurrency: 8, headers: (n) => user(n) }).start();
    await eventually(async () => expect(traffic.answers.length).toBeGreaterThanOrEqual(1000), 30_000);
    const all = await traffic.stop();
    const answers = all.slice(0, 1000);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const share = answers.filter((a) => a.version === '1').length / answers.length;
    expect(share).toBeGreaterThan(0.65);
    expect(share).toBeLessThan(0.75);
    for (const a of answers) {
      assigned.set(Number(a.headers['x-user-id']!.slice('user-'.length)), a.version!);
      expect(maxAbsDiff(a.scores!, referenceScores(a.version === '1' ? 'good-v1' : 'good-v2', [a.row])[0]!)).toBeLessThan(1e-5);
    }
    const body = await routing(server.url, 'ab');
    expect(body).toMatchObject({ strategy: 'ab', state: 'running', control: '1', winner: null, stickyHeader: 'x-user-id' });
    expect(body.weights['1']).toBeCloseTo(0.7, 9);
    expect(body.weights['2']).toBeCloseTo(0.3, 9);
    // every answer counted for its variant
    await eventually(async () => {
      const { stats } = await routing(server.url, 'ab');
      expect([stats['1'].requests, stats['2'].requests]).toEqual(['1', '2'].map((v) => all.filter((a) => a.version === v).length));
    });
  });

  it('should answer the same x-user-id from the same version every time', async () => {
    const random = rng(11);
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 40 }, async (_, u) => {
          const answer = await infer(server.url, 'ab', randomRow(random), user(u));
          expect(answer.version, `user-${u}, round ${round}`).toBe(assigned.get(u));
        }),
      );
    }
  });

  it('should keep every user on its version across a restart', async () => {
    expect(await server.stop()).toBe(0);
    server = await serve('ab.yaml', config());
    const random = rng(12);
    const users = [...assigned.keys()].slice(0, 200);
    const answers = await Promise.all(users.map((u) => infer(server.url, 'ab', randomRow(random), user(u))));
    expect(answers.map((a) => a.version)).toEqual(users.map((u) => assigned.get(u)));
    expect((await routing(server.url, 'ab')).state).toBe('running');
  });
});

describe('shadow traffic', () => {
  let server: TesseraProcess;

  beforeAll(async () => {
    server = await serve('shadow.yaml', [
      `server: { host: 127.0.0.1, port: 0, stateDir: '${path.join(dir, 'shadow-state')}' }`,
      `plugins: ['${PLUGIN}']`,
      'models:',
      ...model('shadow-failing', 'faulty', `{ strategy: shadow, primary: '1', shadow: '2', percent: 100 }`),
      ...model('shadow-slow', 'slow', `{ strategy: shadow, primary: '1', shadow: '2', percent: 100 }`),
      '  control:',
      `    path: '${files['good-v1']}'`,
      `    sessionOptions: { intraOpNumThreads: 1 }`,
    ]);
  });

  it("should give clients the primary's answers at the primary's latency, with a failing and with a slow shadow, and count the shadow's errors", async () => {
    const random = rng(21);
    const rows = Array.from({ length: 120 }, () => randomRow(random));
    const faultyRows = rows.filter((r) => isFaultyInput([r])).length;
    expect(faultyRows).toBeGreaterThan(10);
    const answers: Record<string, Answer[]> = { control: [], 'shadow-failing': [], 'shadow-slow': [] };
    for (const row of rows) {
      // one row to each model in turn, so that whatever else the machine does weighs on all three alike
      for (const name of Object.keys(answers)) answers[name]!.push(await infer(server.url, name, row));
      await sleep(15); // the slow shadow's copy (about 9 ms) ends before the next row
    }

    const reference = referenceScores('good-v1', rows);
    for (const [name, list] of Object.entries(answers)) {
      expectAllFrom(list, '1');
      list.forEach((a, i) => expect(maxAbsDiff(a.scores!, reference[i]!), `${name} row ${i}`).toBeLessThan(1e-5));
    }
    const control = median(answers['control']!.map((a) => a.ms));
    for (const name of ['shadow-failing', 'shadow-slow']) {
      const ms = median(answers[name]!.map((a) => a.ms));
      expect(ms, `${name}: median ${ms.toFixed(2)} ms, control ${control.toFixed(2)} ms`).toBeLessThan(control + 2.5);
    }

    // the shadow's own record: every copy counted, the faulty one's failures as errors, its other answers identical
    const failing = await eventually(async () => {
      const body = await routing(server.url, 'shadow-failing');
      expect(body.stats.shadow).toMatchObject({ requests: rows.length, errors: faultyRows });
      return body;
    });
    expect(failing).toMatchObject({ strategy: 'shadow', state: 'mirroring', primary: '1', shadow: '2', percent: 100, weights: { '1': 1, '2': 0 } });
    expect(failing.stats.primary).toMatchObject({ requests: rows.length, errors: 0 });
    expect(failing.stats.shadow.agreement).toMatchObject({ compared: rows.length - faultyRows, maxAbsDiff: 0, identicalRate: 1, labelAgreement: 1 });
    const slow = await eventually(async () => {
      const body = await routing(server.url, 'shadow-slow');
      expect(body.stats.shadow).toMatchObject({ requests: rows.length, errors: 0 });
      return body;
    });
    expect(slow.stats.shadow.agreement).toMatchObject({ compared: rows.length, labelAgreement: 1 });
    expect(slow.stats.shadow.agreement.maxAbsDiff).toBeLessThan(1e-5);
    // the shadow was slow, and the status says so — the clients never saw it
    expect(slow.stats.shadow.latencyMs).toBeGreaterThan(slow.stats.primary.latencyMs + 3);
    const text = await metricsText(server.url);
    expect(metricValue(text, 'tessera_route_outcomes_total', { model: 'shadow-failing', version: '2', role: 'shadow', class: 'server_error' })).toBe(faultyRows);
    expect(metricValue(text, 'tessera_route_state', { model: 'shadow-slow', strategy: 'shadow', state: 'mirroring' })).toBe(1);
  });
});

describe('an LLM canary between two vLLM stand-in pools', () => {
  const standIns: VllmStandInProcess[] = [];
  let server: TesseraProcess;
  let canaryPool: VllmStandInProcess[];

  beforeAll(async () => {
    // the same time per request on both pools (about 125 ms for 6 tokens), but the canary's first
    // token comes 100 ms later: only its time to first token is worse
    const pool = (ttftMs: number, tokenDelayMs: number): Promise<VllmStandInProcess[]> =>
      Promise.all([0, 1].map(() => startVllmStandInProcess('stand-in/llm', { env: { VLLM_STAND_IN_TTFT_MS: String(ttftMs), VLLM_STAND_IN_TOKEN_DELAY_MS: String(tokenDelayMs) } })));
    const [baselinePool, canaryPool_] = await Promise.all([pool(5, 24), pool(105, 4)]);
    canaryPool = canaryPool_;
    standIns.push(...baselinePool, ...canaryPool);
    server = await serve('llm.yaml', [
      `server: { host: 127.0.0.1, port: 0, stateDir: '${path.join(dir, 'llm-state')}' }`,
      `plugins: ['@tessera/backend-vllm', '${PLUGIN}']`,
      'models:',
      '  chat:',
      '    backend: vllm',
      '    servedModelName: stand-in/llm',
      '    health: { interval: 200ms }',
      '    versions:',
      `      '1': { upstreams: '${baselinePool.map((s) => s.url).join(',')}' }`,
      `      '2': { upstreams: '${canaryPool.map((s) => s.url).join(',')}' }`,
      `    routing: { strategy: canary, baseline: '1', canary: '2', steps: [25, 50, 100], interval: 700ms, minRequests: 8, threshold: 2, maxLatencyRatio: 1.5 }`,
    ]);
  });

  afterAll(async () => {
    await server?.stop();
    await Promise.all(standIns.map((s) => s.stop()));
  });

  it('should roll the stand-in canary back on time to first token, then send every generation to the baseline pool', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    let stopped = false;
    const problems: string[] = [];
    const generate = async (i: number): Promise<void> => {
      const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `Tell me something, ${i}.` }], max_tokens: 6, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      if (!text) problems.push(`request ${i}: no text`);
    };
    let n = 0;
    const loops = Array.from({ length: 12 }, async () => {
      while (!stopped) await generate(n++).catch((err: Error) => problems.push(err.message));
    });
    try {
      await watchRouting(server.url, 'chat', (b) => b.state === 'failed', 30_000, 100);
    } finally {
      stopped = true;
      await Promise.all(loops);
    }
    expect(problems).toEqual([]);
    const body = await routing(server.url, 'chat');
    expect(body).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(failed(body).length).toBeGreaterThanOrEqual(1);
    for (const j of failed(body)) expect(j.checks.filter((c: any) => c.failed).map((c: any) => c.metric), j.reason).toEqual(['ttft']);
    expect(metricValue(await metricsText(server.url), 'tessera_route_rollbacks_total', { model: 'chat', version: '2' })).toBe(1);

    // rolled back: the canary pool gets nothing more
    const received = async (): Promise<number> => (await Promise.all(canaryPool.map((s) => s.stats()))).reduce((sum, s) => sum + s.received, 0);
    const before = await received();
    for (let i = 0; i < 20; i++) await generate(1000 + i);
    expect(await received()).toBe(before);
  }, 60_000);
});
