/**
 * The custom-backend example, as its README runs it: `tessera serve` on the example's config, over
 * HTTP (the backend against the conformance suite of `@tessera/core/testing` is plugin.spec.ts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { runTesseraCli, startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;
const CONFIG = 'examples/custom-backend/tessera.config.yaml';

describe('examples/custom-backend served by the CLI', () => {
  let server: TesseraProcess;
  let url: string;

  beforeAll(async () => {
    server = await startTessera({ args: ['serve', '-c', CONFIG, '--port', '0'], cwd: ROOT, env: { TESSERA_HOST: '127.0.0.1', TESSERA_LOG_LEVEL: 'info' } });
    url = server.url;
  });

  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  async function post(urlPath: string, body: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${url}${urlPath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }

  it('should describe the model with the metadata the backend reported', async () => {
    const res = await fetch(`${url}/v2/models/spam-flags`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: 'spam-flags',
      versions: ['1'],
      platform: 'js_threshold',
      inputs: [{ name: 'scores', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'labels', datatype: 'BOOL', shape: [-1, 4] },
        { name: 'count', datatype: 'INT32', shape: [-1] },
      ],
      parameters: { version: '1', max_batch_size: 16, state: 'ready' },
    });
  });

  it('should label the scores above the configured threshold', async () => {
    const res = await post('/v2/models/spam-flags/infer', {
      id: 'batch-7',
      inputs: [{ name: 'scores', datatype: 'FP32', shape: [2, 4], data: [0.1, 0.95, 0.8, 0.81, 'NaN', 0.2, 0.99, 0.3] }],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      model_name: 'spam-flags',
      model_version: '1',
      id: 'batch-7',
      outputs: [
        { name: 'labels', datatype: 'BOOL', shape: [2, 4], data: [false, true, false, true, false, false, true, false] },
        { name: 'count', datatype: 'INT32', shape: [2], data: [2, 1] },
      ],
    });
    const countOnly = await post('/v2/models/spam-flags/infer', { inputs: [{ name: 'scores', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 0] }], outputs: [{ name: 'count' }] });
    expect(countOnly.body.outputs).toEqual([{ name: 'count', datatype: 'INT32', shape: [1], data: [3] }]);
  });

  it('should refuse rows of the wrong width before the backend sees them', async () => {
    const res = await post('/v2/models/spam-flags/infer', { inputs: [{ name: 'scores', datatype: 'FP32', shape: [1, 3], data: [0.1, 0.2, 0.9] }] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_INPUT_SHAPE');
    expect(res.body.error).toContain('[-1, 4]');
  });

  it('should refuse more rows than batching.maxBatchSize', async () => {
    const res = await post('/v2/models/spam-flags/infer', { inputs: [{ name: 'scores', datatype: 'FP32', shape: [17, 4], data: new Array(68).fill(0.5) }] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_INPUT_SHAPE');
  });

  it('should refuse an input the model does not declare', async () => {
    const res = await post('/v2/models/spam-flags/infer', { inputs: [{ name: 'score', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] }] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_INPUT_UNKNOWN');
  });
});

describe('examples/custom-backend config errors', () => {
  it("should reject a model key of the wrong type with the backend's schema", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-example-'));
    const file = path.join(dir, 'tessera.config.yaml');
    await writeFile(file, `plugins: ['${path.join(HERE, 'plugin.js')}']\nmodels:\n  spam-flags: { backend: js-threshold, threshold: high }\n`);
    const res = await runTesseraCli({ args: ['validate', '-c', file] });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_INVALID');
    expect(res.stderr).toContain('models.spam-flags.threshold');
  });
});
