/**
 * Hot reload through the real CLI over loopback, with real ONNX Runtime sessions: SIGHUP (and
 * `serve --watch`) re-reads the config and applies the difference under concurrent keep-alive
 * traffic — a model added, a version added, batching changed, a model removed — with no request
 * lost or failed; an invalid config, or one whose model fails to load, is refused as a whole (the
 * error logged with the config's path, the old generation serving on, the metrics and
 * `GET /v2/repository/index` saying which generation is live).
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { CLS_MODEL, http, tempDir, writeConfig } from './helpers.js';

let dir: string;
let models: TestModelCatalog;
const started: TesseraProcess[] = [];

const AFFINE = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
const CLS = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0.25) }] });

beforeAll(async () => {
  dir = await tempDir('tessera-reload-');
  models = await writeTestModels(dir);
});

afterAll(async () => {
  for (const p of started) await p.stop('SIGKILL');
});

async function serve(file: string, extraArgs: string[] = []): Promise<TesseraProcess> {
  const p = await startTessera({ args: ['serve', '-c', file, '--port', '0', '--host', '127.0.0.1', ...extraArgs] });
  started.push(p);
  return p;
}

/** `GET /v2/repository/index`: the generation serving and the models. */
async function index(url: string) {
  return (await http(`${url}/v2/repository/index`)).body as { generation: number; config_file: string; last_reload?: { ok: boolean; error?: string; code?: string }; models: { name: string; version: string; state: string; reason?: string }[] };
}

async function waitForGeneration(url: string, generation: number, p: TesseraProcess): Promise<void> {
  await expect.poll(async () => (await index(url)).generation, { timeout: 30_000, interval: 50 }).toBe(generation);
  expect(p.child.exitCode).toBeNull();
}

/** Waits until the server logged a line containing `text` (its n-th occurrence). */
async function waitForLog(p: TesseraProcess, text: string, occurrence = 1): Promise<string> {
  await expect.poll(() => p.stdout.filter((l) => l.includes(text)).length, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(occurrence);
  return p.stdout.filter((l) => l.includes(text))[occurrence - 1]!;
}

const model = (file: string, extra: Record<string, unknown> = {}) => ({ path: file, ...extra });

describe('SIGHUP reload under traffic', () => {
  let file: string;
  let p: TesseraProcess;
  const base = () => ({ server: { logLevel: 'info' } });

  beforeAll(async () => {
    file = await writeConfig(dir, { ...base(), models: { affine: model(models.affine.path), 'text-orientation': model(CLS_MODEL, { batching: { maxBatchSize: 8, maxQueueDelayMs: 2 }, warmupShapes: { x: [1, 3, 48, 192] } }) } }, 'sighup.yaml');
    p = await serve(file);
  });

  it('adds, changes and removes models and versions without losing or failing a request', async () => {
    const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
    let stop = false;
    const outcomes: { model: string; status: number; body: string }[] = [];
    const client = async (name: string, body: string): Promise<void> => {
      while (!stop) {
        const res = await request(`${p.url}/v2/models/${name}/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: agent });
        outcomes.push({ model: name, status: res.statusCode, body: await res.body.text() });
      }
    };
    const clients = [client('affine', AFFINE), client('affine', AFFINE), client('affine', AFFINE), client('text-orientation', CLS), client('text-orientation', CLS)];

    // 1. a new model, and version 2 of affine (the latest router sends traffic to it once it is ready)
    const v2 = path.join(dir, 'affine-v2.onnx');
    await copyFile(models.affineV2.path, v2);
    await writeConfig(dir, { ...base(), models: { affine: { versions: { '1': { path: models.affine.path }, '2': { path: v2 } } }, 'text-orientation': model(CLS_MODEL, { batching: { maxBatchSize: 8, maxQueueDelayMs: 2 }, warmupShapes: { x: [1, 3, 48, 192] } }), sum: model(models.affine.path) } }, 'sighup.yaml');
    p.child.kill('SIGHUP');
    await waitForGeneration(p.url, 2, p);
    expect((await http(`${p.url}/v2/models/sum/ready`)).status).toBe(200);
    const y = (await http(`${p.url}/v2/models/affine/infer`, { method: 'POST', body: AFFINE, headers: { 'content-type': 'application/json' } })).body;
    expect(y).toMatchObject({ model_version: '2' });
    expect(y.outputs.find((o: { name: string }) => o.name === 'y').data).toEqual([2, 5, 8, 11]);

    // 2. batching of the real classifier changes: new sessions load and warm, the old ones drain
    await writeConfig(dir, { ...base(), models: { affine: { versions: { '1': { path: models.affine.path }, '2': { path: v2 } } }, 'text-orientation': model(CLS_MODEL, { batching: { maxBatchSize: 4, maxQueueDelayMs: 1 }, warmupShapes: { x: [1, 3, 48, 192] } }), sum: model(models.affine.path) } }, 'sighup.yaml');
    p.child.kill('SIGHUP');
    await waitForGeneration(p.url, 3, p);
    expect((await http(`${p.url}/v2/models/text-orientation`)).body.parameters).toMatchObject({ max_batch_size: 4 });

    // 3. the model and the version leave again
    await writeConfig(dir, { ...base(), models: { affine: model(models.affine.path), 'text-orientation': model(CLS_MODEL, { batching: { maxBatchSize: 4, maxQueueDelayMs: 1 }, warmupShapes: { x: [1, 3, 48, 192] } }) } }, 'sighup.yaml');
    p.child.kill('SIGHUP');
    await waitForGeneration(p.url, 4, p);
    expect((await http(`${p.url}/v2/models/sum`)).status).toBe(404);
    expect((await http(`${p.url}/v2/models/affine/versions/2`)).status).toBe(404);

    stop = true;
    await Promise.all(clients);
    await agent.close();
    const failed = outcomes.filter((o) => o.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    expect(outcomes.filter((o) => o.model === 'affine').length).toBeGreaterThan(30);
    expect(outcomes.filter((o) => o.model === 'text-orientation').length).toBeGreaterThan(10);
    const line = JSON.parse(await waitForLog(p, 'config reloaded: generation 2')) as { added: string[]; changed: string[] };
    expect(line).toMatchObject({ added: ['sum'], changed: ['affine'] });
  });

  it('refuses an invalid config as a whole: the error names the file, the old generation serves on', async () => {
    const before = (await index(p.url)).generation;
    await writeFile(file, 'models:\n  affine:\n    path: [unclosed\n');
    p.child.kill('SIGHUP');
    const line = await waitForLog(p, 'config reload refused');
    expect(line).toContain(file);
    expect(line).toContain('TESSERA_E_CONFIG_PARSE');
    const status = await index(p.url);
    expect(status).toMatchObject({ generation: before, last_reload: { ok: false, code: 'TESSERA_E_CONFIG_PARSE' } });
    expect((await http(`${p.url}/v2/models/affine/infer`, { method: 'POST', body: AFFINE, headers: { 'content-type': 'application/json' } })).status).toBe(200);
    const metrics = (await http(`${p.url}/metrics`)).text;
    expect(metrics).toMatch(new RegExp(`^tessera_config_generation ${before}$`, 'm'));
    expect(metrics).toMatch(/^tessera_config_last_reload_successful 0$/m);
    expect(metrics).toMatch(/^tessera_config_reloads_total\{result="refused"\} 1$/m);
  });

  it('refuses a misspelt model key, naming the key it resembles', async () => {
    const before = (await index(p.url)).generation;
    await writeConfig(dir, { ...base(), models: { affine: model(models.affine.path, { batchng: { maxBatchSize: 4 } }), 'text-orientation': model(CLS_MODEL) } }, 'sighup.yaml');
    const refusals = p.stdout.filter((l) => l.includes('config reload refused')).length;
    p.child.kill('SIGHUP');
    const line = await waitForLog(p, 'config reload refused', refusals + 1);
    expect(line).toContain('unknown key \\"batchng\\"');
    expect(line).toContain('did you mean \\"batching\\" (a model key of the core)?');
    expect((await index(p.url)).generation).toBe(before);
  });

  it('refuses a config whose new model fails to load, without serving the other models it added', async () => {
    const before = (await index(p.url)).generation;
    await writeConfig(dir, { ...base(), models: { affine: model(models.affine.path), 'text-orientation': model(CLS_MODEL, { batching: { maxBatchSize: 4, maxQueueDelayMs: 1 } }), fresh: model(models.affineV2.path), broken: model(models.corrupt.path) } }, 'sighup.yaml');
    const refusals = p.stdout.filter((l) => l.includes('config reload refused')).length;
    p.child.kill('SIGHUP');
    const line = await waitForLog(p, 'config reload refused', refusals + 1);
    expect(line).toContain('broken v1');
    expect((await index(p.url)).generation).toBe(before);
    expect((await http(`${p.url}/v2/models/fresh`)).status).toBe(404);
    expect((await http(`${p.url}/v2/health/ready`)).status).toBe(200);
  });
});

describe('serve --watch', () => {
  it('reloads when the config file changes, and when a model file is replaced in place', async () => {
    const served = path.join(dir, 'watched-model.onnx');
    await copyFile(models.affine.path, served);
    const file = await writeConfig(dir, { server: { logLevel: 'info' }, models: { affine: model(served) } }, 'watch.yaml');
    const p = await serve(file, ['--watch']);
    await waitForLog(p, 'watching the config');
    await writeConfig(dir, { server: { logLevel: 'info' }, models: { affine: model(served), other: model(models.affineV2.path) } }, 'watch.yaml');
    await waitForGeneration(p.url, 2, p);
    expect((await http(`${p.url}/v2/models/other/ready`)).status).toBe(200);
    // the same path, new bytes (y = 3x − 1): the version loads again
    await copyFile(models.affineV2.path, served);
    await waitForGeneration(p.url, 3, p);
    const y = (await http(`${p.url}/v2/models/affine/infer`, { method: 'POST', body: AFFINE, headers: { 'content-type': 'application/json' } })).body;
    expect(y.outputs.find((o: { name: string }) => o.name === 'y').data).toEqual([2, 5, 8, 11]);
    const line = JSON.parse(await waitForLog(p, 'config reloaded: generation 3')) as { changed: string[]; unchanged: string[] };
    expect(line).toMatchObject({ changed: ['affine'], unchanged: ['other'] });
  });
});

describe('a repository folder: rescanned on index, on load and on reload', () => {
  it('lists a new model folder as not loaded, loads it on request, and a reload applies the version policy to a new version', async () => {
    const repo = path.join(dir, 'repo');
    const place = async (model: string, version: string, from: string): Promise<void> => {
      await mkdir(path.join(repo, model, version), { recursive: true });
      await copyFile(from, path.join(repo, model, version, 'model.onnx'));
    };
    await place('affine', '1', models.affine.path);
    const file = await writeConfig(dir, { server: { logLevel: 'info' }, repository: './repo' }, 'repo.yaml');
    const p = await serve(file);
    expect((await http(`${p.url}/v2/models/affine/config`)).body.version_policy).toEqual({ latest: { num_versions: 1 } });

    // a new model folder and a new version appear: nothing changes until asked
    await place('newbie', '1', models.affineV2.path);
    await place('affine', '2', models.affineV2.path);
    await mkdir(path.join(repo, 'broken'), { recursive: true });
    await writeFile(path.join(repo, 'broken', 'config.pbtxt'), 'max_batch_size: [\n');
    const rows = (await http(`${p.url}/v2/repository/index`, { method: 'POST', json: {} })).body as { name: string; version?: string; state: string; reason?: string }[];
    expect(rows.filter((r) => r.name === 'affine').map((r) => `${r.version}:${r.state}`)).toEqual(['1:READY']);
    expect(rows.find((r) => r.name === 'newbie')).toMatchObject({ version: '1', state: 'UNAVAILABLE', reason: expect.stringContaining('not loaded') });
    expect(rows.find((r) => r.name === 'broken')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringContaining('config.pbtxt') });

    // the broken folder refuses a whole reload …
    p.child.kill('SIGHUP');
    await waitForLog(p, 'config reload refused');
    expect((await index(p.url)).generation).toBe(1);
    await rm(path.join(repo, 'broken'), { recursive: true });

    // … and once it is gone, loading the new model touches nothing else
    const load = await http(`${p.url}/v2/repository/models/newbie/load`, { method: 'POST', json: {} });
    expect(load.status, load.text).toBe(200);
    expect(load.headers.get('tessera-config-generation')).toBe('2');
    expect((await http(`${p.url}/v2/models/newbie/ready`)).status).toBe(200);
    expect((await http(`${p.url}/v2/models/affine`)).body.versions).toEqual(['1']);

    // a reload applies the folder's `latest: 1` to affine: v2 serves, v1 leaves
    p.child.kill('SIGHUP');
    await waitForGeneration(p.url, 3, p);
    expect((await http(`${p.url}/v2/models/affine`)).body.versions).toEqual(['2']);
    const y = (await http(`${p.url}/v2/models/affine/infer`, { method: 'POST', body: AFFINE, headers: { 'content-type': 'application/json' } })).body;
    expect(y).toMatchObject({ model_version: '2' });
    expect((await http(`${p.url}/v2/repository/models/nowhere/load`, { method: 'POST', json: {} })).status).toBe(404);
  });
});
