/**
 * `/v1/predict` and OIP v2 with images, in process: a fake model behind the built-in `image` and
 * `classification` steps (the real PP-OCR classifier is in test/integration/predict-images.int.spec.ts).
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceRequest } from '../contracts/backend.js';
import type { Tensor } from '../contracts/tensor.js';
import type { InProcess } from '../pipeline/test-support.js';
import { startInProcess, testPlugin } from '../pipeline/test-support.js';
import { FakeBackend } from '../testing/fake-backend.js';
import type { TensorResult } from '../pipeline/types.js';
import { decodePredictRequest, predictionsOf } from './predict.js';

/** p = [mean brightness, 1 − mean, 0] of each image: white → class 0, black → class 1. */
function brightness(request: InferenceRequest): Tensor[] {
  const x = request.inputs[0]!;
  const n = x.shape[0]!;
  const size = x.data.length / n;
  const p = new Float32Array(n * 3);
  for (let b = 0; b < n; b++) {
    let sum = 0;
    for (let i = 0; i < size; i++) sum += (x.data as Float32Array)[b * size + i]!;
    p[b * 3] = sum / size;
    p[b * 3 + 1] = 1 - sum / size;
  }
  return [{ name: 'p', datatype: 'FP32', shape: [n, 3], data: p }];
}

const solid = (v: number): Promise<Buffer> => sharp({ create: { width: 8, height: 4, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();

let s: InProcess;
let white: Buffer;
let black: Buffer;

beforeAll(async () => {
  [white, black] = await Promise.all([solid(255), solid(0)]);
  const backend = new FakeBackend({
    metadata: { platform: 'fake', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 4, 8] }], outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 3] }], maxBatchSize: 8 },
    compute: brightness,
  });
  s = await startInProcess(
    {
      models: {
        shade: {
          backend: 'fake',
          preprocess: [{ processor: 'image' }],
          postprocess: [{ processor: 'classification', labels: ['light', 'dark', 'none'], topK: 2, maxTopK: 3 }],
        },
        raw: { backend: 'plain' },
        text: { backend: 'text' },
      },
    },
    [
      testPlugin('fake', (ctx) => {
        ctx.registerBackend('fake', backend);
        ctx.registerBackend('plain', new FakeBackend());
        // a model of text: BYTES [-1] in, BYTES [-1] out
        const bytes = { name: 'words', datatype: 'BYTES' as const, shape: [-1] };
        ctx.registerBackend('text', new FakeBackend({ metadata: { platform: 'fake', inputs: [bytes], outputs: [{ ...bytes, name: 'same' }], maxBatchSize: 8 }, compute: (r) => [{ ...r.inputs[0]!, name: 'same' }] }));
      }),
    ],
  );
}, 30_000);

afterAll(async () => {
  await s?.close();
});

describe('POST /v1/predict with images', () => {
  it('should take one base64 image as a string and answer its top k as predictions', async () => {
    const res = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: white.toString('base64') } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      model_name: 'shade',
      model_version: '1',
      outputs: { label: [['light', 'dark']], score: [[1, 0]] },
      predictions: [
        { label: 'light', score: 1 },
        { label: 'dark', score: 0 },
      ],
    });
  });

  it('should take a list of images and answer one list of predictions per image, in order', async () => {
    const res = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: [black.toString('base64'), `data:image/png;base64,${white.toString('base64')}`] } });
    expect(res.status).toBe(200);
    expect(res.body.outputs.label).toEqual([
      ['dark', 'light'],
      ['light', 'dark'],
    ]);
    expect(res.body.predictions).toEqual([
      [
        { label: 'dark', score: 1 },
        { label: 'light', score: 0 },
      ],
      [
        { label: 'light', score: 1 },
        { label: 'dark', score: 0 },
      ],
    ]);
    // a list of one is still a list
    const one = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: [white.toString('base64')] } });
    expect(one.body.predictions).toEqual([[{ label: 'light', score: 1 }, { label: 'dark', score: 0 }]]);
  });

  it('should pass parameters to the steps (top_k)', async () => {
    const res = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: white.toString('base64') }, parameters: { top_k: 1 } });
    expect(res.body.predictions).toEqual([{ label: 'light', score: 1 }]);
    const bad = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: white.toString('base64') }, parameters: { top_k: 9 } });
    expect(bad).toMatchObject({ status: 400, body: { code: 'TESSERA_E_REQUEST_INVALID' } });
  });

  it('should leave predictions out when the outputs asked for leave out the label or the score', async () => {
    const res = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: white.toString('base64') }, outputs: ['label'] });
    expect(res.body).toEqual({ model_name: 'shade', model_version: '1', outputs: { label: [['light', 'dark']] } });
  });

  it('should answer image errors with their codes', async () => {
    const gif = await sharp(white).gif().toBuffer();
    for (const [image, code] of [
      ['', 'TESSERA_E_IMAGE_INVALID'],
      ['%%%', 'TESSERA_E_IMAGE_INVALID'],
      [gif.toString('base64'), 'TESSERA_E_IMAGE_FORMAT'],
      [[white.toString('base64'), white.subarray(0, 30).toString('base64')], 'TESSERA_E_IMAGE_INVALID'],
    ] as const) {
      const res = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image } });
      expect(res, JSON.stringify(image).slice(0, 40)).toMatchObject({ status: 400, body: { code } });
    }
    const nested = await s.call('POST', '/v1/predict', { model: 'shade', inputs: { image: [[white.toString('base64')]] } });
    expect(nested).toMatchObject({ status: 400, body: { code: 'TESSERA_E_INPUT_SHAPE' } });
  });

  it('should keep nested arrays for models without processors (no predictions)', async () => {
    const res = await s.call('POST', '/v1/predict', { model: 'raw', inputs: { x: [[1, 2, 3, 4]] }, parameters: { anything: true } });
    expect(res.body).toEqual({ model_name: 'raw', model_version: '1', outputs: { y: [[2, 4, 6, 8]] } });
  });
});

describe('OIP v2 with images', () => {
  it('should take BYTES images as base64 in JSON', async () => {
    const res = await s.call('POST', '/v2/models/shade/infer', { inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: [white.toString('base64'), black.toString('base64')] }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [2, 2], data: ['light', 'dark', 'dark', 'light'] },
      { name: 'score', datatype: 'FP32', shape: [2, 2], data: [1, 0, 1, 0] },
    ]);
  });

  it('should take raw image bytes in binary tensor data (not UTF-8), and refuse them for a text BYTES input', async () => {
    const element = (b: Buffer): Buffer => Buffer.concat([Buffer.from(Uint32Array.of(b.length).buffer), b]);
    const blob = Buffer.concat([element(black), element(white)]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: blob.length } }], outputs: [{ name: 'label' }] }));
    const res = await s.server.app.inject({ method: 'POST', url: '/v2/models/shade/infer', payload: Buffer.concat([header, blob]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).outputs).toEqual([{ name: 'label', datatype: 'BYTES', shape: [2, 2], data: ['dark', 'light', 'light', 'dark'] }]);
    // Triton's raw binary request: the whole body is the one image
    const rawBody = await s.server.app.inject({ method: 'POST', url: '/v2/models/shade/infer', payload: white, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' } });
    expect(rawBody.statusCode, rawBody.body).toBe(200);
    const text = Buffer.from(JSON.stringify({ inputs: [{ name: 'words', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: blob.length } }] }));
    const refused = await s.server.app.inject({ method: 'POST', url: '/v2/models/text/infer', payload: Buffer.concat([text, blob]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(text.length) } });
    expect(refused.statusCode).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'TESSERA_E_INPUT_DATA', error: expect.stringContaining('not valid UTF-8') });
  });
});

describe(decodePredictRequest, () => {
  const signature = { inputs: [{ name: 'image', datatype: 'BYTES' as const, shape: [-1] }, { name: 'prompt', datatype: 'BYTES' as const, shape: [] }, { name: 'x', datatype: 'FP32' as const, shape: [-1, 2] }], outputs: [], maxBatchSize: 4 };

  it('should make a string for a BYTES input one element, shaped for the input', () => {
    const decoded = decodePredictRequest({ model: 'm', inputs: { image: 'aGk=', prompt: 'hello', x: [[1, 2]] }, parameters: { top_k: 2 } }, signature);
    expect(decoded).toEqual({
      inputs: [
        { name: 'image', shape: [1], json: ['aGk='] },
        { name: 'prompt', shape: [], json: ['hello'] },
        { name: 'x', shape: [1, 2], json: [[1, 2]] },
      ],
      parameters: { top_k: 2 },
    });
    expect(decodePredictRequest({ model: 'm', inputs: { image: ['a', 'b', 'c'] } }, signature).inputs[0]).toEqual({ name: 'image', shape: [3], json: ['a', 'b', 'c'] });
  });
});

describe(predictionsOf, () => {
  const result = (shape: number[], labels: string[], scores: number[]): TensorResult => ({
    model: 'm',
    version: '1',
    id: undefined,
    outputs: [
      { name: 'label', datatype: 'BYTES', shape, data: labels },
      { name: 'score', datatype: 'FP32', shape, data: Float32Array.from(scores) },
    ],
    predictions: { label: 'label', score: 'score' },
  });

  it('should give one list per row, or the list alone for a single image or a rank-1 answer', () => {
    const two = result([2, 1], ['a', 'b'], [0.5, 0.25]);
    expect(predictionsOf(two, false)).toEqual([[{ label: 'a', score: 0.5 }], [{ label: 'b', score: 0.25 }]]);
    expect(predictionsOf(result([1, 2], ['a', 'b'], [0.5, 0.25]), true)).toEqual([
      { label: 'a', score: 0.5 },
      { label: 'b', score: 0.25 },
    ]);
    expect(predictionsOf(result([2], ['a', 'b'], [0.5, 0.25]), false)).toEqual([
      { label: 'a', score: 0.5 },
      { label: 'b', score: 0.25 },
    ]);
    expect(predictionsOf({ model: 'm', version: '1', id: undefined, outputs: two.outputs }, false)).toBeUndefined();
  });
});
