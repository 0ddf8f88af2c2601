/** The OIP v2 model repository extension (index, unload, load) through the real CLI. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { http, tempDir, writeConfig } from './helpers.js';

let server: TesseraProcess;
const x = { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] };

beforeAll(async () => {
  const dir = await tempDir();
  const models = await writeTestModels(dir);
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, exitOnModelError: false },
    models: {
      affine: { versions: { '1': { path: models.affine.path }, '2': { path: models.affineV2.path } } },
      broken: { path: models.corrupt.path },
    },
  });
  server = await startTessera({ args: ['serve', '-c', config] });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('model repository extension', () => {
  it('should list every version with its state and the reason of a failure', async () => {
    const res = await http(`${server.url}/v2/repository/index`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { name: 'affine', version: '1', state: 'READY' },
      { name: 'affine', version: '2', state: 'READY' },
      { name: 'broken', version: '1', state: 'UNAVAILABLE', reason: expect.stringContaining('broken') },
    ]);
    const ready = await http(`${server.url}/v2/repository/index`, { json: { ready: true } });
    expect(ready.body).toHaveLength(2);
    expect((await http(`${server.url}/v2`)).body.extensions).toContain('model_repository');
  });

  it('should unload a model (503 until loaded again) and load it back', async () => {
    expect((await http(`${server.url}/v2/repository/models/affine/unload`, { method: 'POST' })).status).toBe(200);
    const gone = await http(`${server.url}/v2/models/affine/infer`, { json: { inputs: [x] } });
    expect(gone.status).toBe(503);
    expect(gone.body.code).toBe('TESSERA_E_MODEL_NOT_READY');
    expect(gone.headers.get('retry-after')).toBe('1');
    expect((await http(`${server.url}/v2/models/affine/ready`)).status).toBe(503);
    const index = await http(`${server.url}/v2/repository/index`, { method: 'POST' });
    expect(index.body.filter((r: any) => r.name === 'affine').map((r: any) => r.state)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);

    expect((await http(`${server.url}/v2/repository/models/affine/load`, { method: 'POST' })).status).toBe(200);
    const back = await http(`${server.url}/v2/models/affine/infer`, { json: { inputs: [x] } });
    expect(back.status).toBe(200);
    expect(back.body.outputs[0].data).toEqual([2, 5, 8, 11]);
  });

  it('should report a failed load with its reason, and 404 for a model not in the config', async () => {
    const failed = await http(`${server.url}/v2/repository/models/broken/load`, { method: 'POST' });
    expect(failed.status).toBe(500);
    expect(failed.body.code).toBe('TESSERA_E_MODEL_LOAD');
    expect(failed.body.error).toContain('broken');
    const unknown = await http(`${server.url}/v2/repository/models/nope/load`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('TESSERA_E_MODEL_NOT_FOUND');
  });

  it('should count a model an operator unloaded out of readiness', async () => {
    expect((await http(`${server.url}/v2/health/ready`)).status).toBe(503);
    await http(`${server.url}/v2/repository/models/broken/unload`, { method: 'POST' });
    expect((await http(`${server.url}/v2/health/ready`)).status).toBe(200);
  });
});
