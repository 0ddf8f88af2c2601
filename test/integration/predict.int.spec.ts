/** `POST /v1/predict` (simple predict) through the real CLI on real ONNX Runtime sessions. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { http, tempDir, writeConfig } from './helpers.js';

let server: TesseraProcess;

beforeAll(async () => {
  const dir = await tempDir();
  const models = await writeTestModels(dir);
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0 },
    models: {
      affine: { versions: { '1': { path: models.affine.path }, '2': { path: models.affineV2.path } } },
      'multi-io': { path: models.multiIo.path },
      'id-int64': { path: models.identity.INT64.path },
      'id-bool': { path: models.identity.BOOL.path },
    },
  });
  server = await startTessera({ args: ['serve', '-c', config] });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('POST /v1/predict', () => {
  it('should take nested inputs and answer nested outputs', async () => {
    const res = await http(`${server.url}/v1/predict`, { json: { model: 'affine', version: '1', inputs: { x: [[1, 2, 3, 4], [0, 0, 0, 0]] } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ model_name: 'affine', model_version: '1', outputs: { y: [[3, 5, 7, 9], [1, 1, 1, 1]], sum: [24, 4] } });
  });

  it('should route to the newest version and select outputs', async () => {
    const res = await http(`${server.url}/v1/predict`, { json: { model: 'affine', inputs: { x: [[1, 1, 1, 1]] }, outputs: ['sum'] } });
    expect(res.body).toEqual({ model_name: 'affine', model_version: '2', outputs: { sum: [8] } });
  });

  it('should pass parameters on (parameters.timeout bounds the request)', async () => {
    const res = await http(`${server.url}/v1/predict`, { json: { model: 'affine', version: '1', inputs: { x: [[1, 1, 1, 1]] }, outputs: ['sum'], parameters: { timeout: 30_000_000 } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ model_name: 'affine', model_version: '1', outputs: { sum: [12] } });
  });

  it('should take datatypes from the model', async () => {
    const res = await http(`${server.url}/v1/predict`, { json: { model: 'multi-io', inputs: { a: [[1.5, 2]], b: [[3, -4]] } } });
    expect(res.body.outputs).toEqual({ a_plus_1: [[2.5, 3]], b_times_2: [[6, -8]] });
    const big = await http(`${server.url}/v1/predict`, { json: { model: 'id-int64', inputs: { input: [[1, '9007199254740993', -3]] } } });
    expect(big.body.outputs.output).toEqual([[1, '9007199254740993', -3]]);
    const bool = await http(`${server.url}/v1/predict`, { json: { model: 'id-bool', inputs: { input: [[true, false, true]] } } });
    expect(bool.body.outputs.output).toEqual([[true, false, true]]);
  });

  it.each([
    ['unknown model', { model: 'nope', inputs: { x: [[1, 2, 3, 4]] } }, 404, 'TESSERA_E_MODEL_NOT_FOUND'],
    ['unknown input', { model: 'affine', inputs: { z: [[1, 2, 3, 4]] } }, 400, 'TESSERA_E_INPUT_UNKNOWN'],
    ['missing input', { model: 'multi-io', inputs: { a: [[1, 2]] } }, 400, 'TESSERA_E_INPUT_MISSING'],
    ['ragged rows', { model: 'affine', inputs: { x: [[1, 2, 3, 4], [1, 2]] } }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['wrong width', { model: 'affine', inputs: { x: [[1, 2, 3]] } }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['string value', { model: 'affine', inputs: { x: [[1, 2, 3, 'a']] } }, 400, 'TESSERA_E_INPUT_DATA'],
    ['no inputs', { model: 'affine' }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['unknown output', { model: 'affine', inputs: { x: [[1, 2, 3, 4]] }, outputs: ['nope'] }, 400, 'TESSERA_E_OUTPUT_UNKNOWN'],
    ['parameters that are not an object', { model: 'affine', inputs: { x: [[1, 2, 3, 4]] }, parameters: [1] }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['an unreadable parameters.timeout', { model: 'affine', inputs: { x: [[1, 2, 3, 4]] }, parameters: { timeout: 'soon' } }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['a string for a numeric input', { model: 'affine', inputs: { x: 'aGVsbG8=' } }, 400, 'TESSERA_E_INPUT_SHAPE'],
  ])('should answer %s with %i', async (_label, body, status, code) => {
    const res = await http(`${server.url}/v1/predict`, { json: body });
    expect(res.status, res.text).toBe(status);
    expect(res.body).toEqual({ error: expect.any(String), code });
  });
});
