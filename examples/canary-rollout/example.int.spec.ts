/**
 * The canary-rollout example, as its README runs it, from the repository root: make-models.mjs
 * writes the models, `tessera serve` serves the example's config (intervals shortened through the
 * environment), drive.mjs sends traffic and prints the rollouts until both are over — `classifier`
 * promoted to good-v2, `classifier-faulty` rolled back — and a restart on the same state folder
 * finds both where they ended. Then the README's operator commands (GET and POST /v1/routing).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { runNode, runTesseraCli, startTessera } from '@tessera/core/testing';
import { referenceScores } from './models.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/canary-rollout/tessera.config.yaml';

/** Runs `node <script> ...args` from the repository root; resolves with its exit code and output. */
const node = (script: string, args: string[], env: Record<string, string>) => runNode(script, args, { cwd: ROOT, env });

async function routing(url: string, model: string): Promise<any> {
  return (await fetch(`${url}/v1/routing/${model}`)).json();
}

async function post(url: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${urlPath}`, { method: 'POST', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: res.status, body: await res.json() };
}

describe('examples/canary-rollout, as the README runs it', () => {
  let modelsDir: string;
  let stateDir: string;
  let env: Record<string, string>;
  let server: TesseraProcess;

  const serve = (): Promise<TesseraProcess> => startTessera({ args: ['serve', '-c', CONFIG, '--port', '0'], cwd: ROOT, env, timeoutMs: 60_000 });

  beforeAll(async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'tessera-canary-example-'));
    modelsDir = path.join(tmp, 'models');
    stateDir = path.join(tmp, 'state');
    // judgements every 1.5 s instead of every 5 s, and drive.mjs at 300 requests a second instead of 100:
    // windows as large as the README's (225 canary requests for classifier-faulty, 90 for classifier)
    env = { TESSERA_HOST: '127.0.0.1', CANARY_MODELS_DIR: modelsDir, TESSERA_STATE_DIR: stateDir, CANARY_INTERVAL: '1.5s' };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('should write the four models with make-models.mjs', async () => {
    const res = await node('examples/canary-rollout/make-models.mjs', [], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n').map((l) => l.split(/\s+/))).toEqual(['good-v1', 'good-v2', 'faulty', 'slow'].map((m) => [m, path.join(modelsDir, `${m}.onnx`)]));
    for (const m of ['good-v1', 'good-v2', 'faulty', 'slow']) expect(existsSync(path.join(modelsDir, `${m}.onnx`))).toBe(true);
  });

  it('should validate the config', async () => {
    const res = await runTesseraCli({ args: ['validate', '-c', CONFIG], cwd: ROOT, env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${path.join(ROOT, CONFIG)}: OK — 2 model(s): classifier (onnxruntime, v1, v2); classifier-faulty (onnxruntime, v1, v2)\n`);
  });

  it('should start both rollouts at the first step', async () => {
    server = await serve();
    expect(await routing(server.url, 'classifier')).toMatchObject({ strategy: 'canary', state: 'progressing', step: 1, steps: [20, 50, 100], weights: { '1': 0.8, '2': 0.2 } });
    expect(await routing(server.url, 'classifier-faulty')).toMatchObject({ strategy: 'canary', state: 'progressing', step: 1, steps: [50, 100], weights: { '1': 0.5, '2': 0.5 } });
  });

  it('should drive both rollouts to their end with drive.mjs, which stops by itself', async () => {
    const driven = await node('examples/canary-rollout/drive.mjs', ['--url', server.url, '--seconds', '40', '--rate', '300'], env);
    expect(driven.code, driven.stderr).toBe(0);
    const lines = driven.stdout.trim().split('\n');
    // a line every interval, as the router reports it
    expect(lines[0]).toBe(`drive: ${server.url}, classifier, classifier-faulty: 300 requests/s each for at most 40 s, a line every 1.5 s`);
    const progress = lines.filter((l) => /^\s+\d+\.\ds /.test(l));
    const of = (model: string): string[] => progress.filter((l) => l.split(/\s+/)[2] === model);
    expect(of('classifier').length).toBeGreaterThanOrEqual(3);
    for (const l of [...of('classifier'), ...of('classifier-faulty')]) expect(l).toMatch(/^\s+\d+\.\ds \S+\s+canary {2}(progressing {2}step \d|promoting|succeeded|failed) {2}1:\s*\d+% 2:\s*\d+% {2}(last judgement: (pass|fail|hold) \(\d+ canary, \d+ baseline requests\) {2})?\| answered .*, errors \d+$/);
    // the good one's share only grows, to 100 % (a line a second may miss a step: the history below has them all)
    const shares = of('classifier').map((l) => Number(/2:\s*(\d+)%/.exec(l)![1]));
    expect(shares).toEqual([...shares].sort((a, b) => a - b));
    expect(shares.at(-1)).toBe(100);
    expect(of('classifier').at(-1)).toMatch(/canary {2}succeeded {2}1: {2}0% 2:100%/);
    expect(of('classifier-faulty').at(-1)).toMatch(/canary {2}failed {2}1:100% 2: {2}0% {2}last judgement: fail/);
    expect(of('classifier').some((l) => / 2:100% {2}.*answered v2 \d+, errors 0$/.test(l))).toBe(true);

    const end = lines.slice(lines.findIndex((l) => l.startsWith('drive: stopped')));
    expect(end[0]).toMatch(/^drive: stopped \(every rollout is over\) after \d+\.\d s$/);
    expect(end[1]).toMatch(/^classifier\s+succeeded, 1: {2}0% 2:100% {2}\| sent \d+, answered v1 \d+, v2 \d+, errors: none$/);
    expect(end[2]).toMatch(/^\s+why: passed at 100 %: promoted$/);
    expect(end[3]).toMatch(/^classifier-faulty {2}failed, 1:100% 2: {2}0% {2}\| sent \d+, answered v1 \d+, v2 \d+, errors: \d+× 500 TESSERA_E_INFERENCE_FAILED$/);
    expect(end[4]).toMatch(/^\s+why: rolled back: 2 failed judgements \(threshold 2\); last: worse: errorRate vs baseline: rateDifference /);
    expect(end).toHaveLength(5);
  }, 60_000);

  it('should show where each rollout ended in GET /v1/routing and on /metrics', async () => {
    const good = await routing(server.url, 'classifier');
    expect(good).toMatchObject({ state: 'succeeded', weights: { '1': 0, '2': 1 } });
    const bad = await routing(server.url, 'classifier-faulty');
    expect(bad).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(bad.history.filter((h: any) => h.verdict === 'fail')).toHaveLength(2);
    // every state each rollout went through, with the canary's share: 20 → 50 → 100 → succeeded, and 50 → failed
    const transitions = (body: any): unknown[] => body.history.filter((h: any) => h.kind === 'transition').map((h: any) => [h.to, h.weight, h.by]);
    expect(transitions(good)).toEqual([
      ['progressing', 20, 'config'],
      ['progressing', 50, 'judgement'],
      ['promoting', 100, 'judgement'],
      ['succeeded', 100, 'judgement'],
    ]);
    expect(transitions(bad)).toEqual([
      ['progressing', 50, 'config'],
      ['failed', 0, 'judgement'],
    ]);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('tessera_route_rollbacks_total{model="classifier-faulty",version="2"} 1');
    expect(text).toContain('tessera_route_state{model="classifier",strategy="canary",state="succeeded"} 1');
    expect(text).toContain('tessera_route_weight{model="classifier-faulty",version="2"} 0');
  });

  it('should find both rollouts where they ended after a restart on the same state folder', async () => {
    const before = { good: await routing(server.url, 'classifier'), bad: await routing(server.url, 'classifier-faulty') };
    expect(await server.stop()).toBe(0);
    server = await serve();
    const after = { good: await routing(server.url, 'classifier'), bad: await routing(server.url, 'classifier-faulty') };
    for (const key of ['good', 'bad'] as const) {
      expect([after[key].state, after[key].step, after[key].weights]).toEqual([before[key].state, before[key].step, before[key].weights]);
      expect(after[key].history).toEqual(before[key].history);
    }
    expect(existsSync(path.join(stateDir, 'routers/classifier-faulty/canary-rollout.json'))).toBe(true);
  }, 60_000);

  it("should answer the README's requests: the faulty row by version 1 now, by version 2 when named", async () => {
    const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: [0.9, ...new Array<number>(15).fill(0)] }] };
    const routed = await post(server.url, '/v2/models/classifier-faulty/infer', body);
    expect([routed.status, routed.body.model_version, routed.body.outputs[0].shape]).toEqual([200, '1', [1, 4]]);
    // good-v1's scores, as the README shows them (cut after four decimals)
    const scores = routed.body.outputs[0].data as number[];
    const reference = referenceScores('good-v1', [body.inputs[0]!.data])[0]!;
    scores.forEach((v, i) => expect(Math.abs(v - reference[i]!)).toBeLessThan(1e-6));
    expect(scores.map((v) => Math.trunc(v * 1e4) / 1e4)).toEqual([0.2576, 0.0771, 0.1968, 0.4684]);
    const named = await post(server.url, '/v2/models/classifier-faulty/versions/2/infer', body);
    expect(named.status).toBe(500);
    expect(named.body).toEqual({
      error: "classifier-faulty v2: inference failed: Non-zero status code returned while running Gather node. Name:'Gather_7' Status Message: indices element out of data bounds, idx=10 must be within the inclusive range [-4,3]",
      code: 'TESSERA_E_INFERENCE_FAILED',
    });
  });

  it("should take the README's operator actions, and answer 409 to one that does not fit", async () => {
    const resume = await post(server.url, '/v1/routing/classifier-faulty/resume');
    expect(resume.status).toBe(409);
    expect(resume.body).toEqual({ error: "cannot resume the canary rollout of model 'classifier-faulty': it is failed; actions that fit now: promote, restart", code: 'CANARY_E_ACTION_CONFLICT' });

    const restarted = await post(server.url, '/v1/routing/classifier-faulty/restart', { reason: 'fixed build' });
    expect(restarted.status).toBe(200);
    expect(restarted.body).toMatchObject({ state: 'progressing', step: 1, failures: 0, weights: { '1': 0.5, '2': 0.5 } });
    const paused = await post(server.url, '/v1/routing/classifier-faulty/pause');
    expect(paused.body).toMatchObject({ state: 'paused', step: 1, canaryWeight: 50 });
    const rolledBack = await post(server.url, '/v1/routing/classifier-faulty/rollback', { reason: 'not today' });
    expect(rolledBack.body).toMatchObject({ state: 'failed', weights: { '1': 1, '2': 0 } });
    expect(rolledBack.body.history.slice(-3).map((h: any) => [h.from, h.to, h.by, h.reason])).toEqual([
      ['failed', 'progressing', 'operator', 'restart by an operator: fixed build'],
      ['progressing', 'paused', 'operator', 'pause by an operator'],
      ['paused', 'failed', 'operator', 'rolled back: rollback by an operator: not today'],
    ]);
  });

  it('should document in the README the commands it runs', async () => {
    const readme = await readFile(path.join(ROOT, 'examples/canary-rollout/README.md'), 'utf8');
    for (const command of ['node examples/canary-rollout/make-models.mjs', `npx tessera serve -c ${CONFIG}`, 'node examples/canary-rollout/drive.mjs', 'npx vitest run examples/canary-rollout']) {
      expect(readme).toContain(command);
    }
  });
});
