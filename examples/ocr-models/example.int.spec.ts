/**
 * The ocr-models example, as its README runs it: `tessera serve` on the example's config, then a
 * synthetic page of text (dark strokes on white lines, normalised as PP-OCR expects) sent to the
 * classifier (both versions) and the detector.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/ocr-models/tessera.config.yaml';

/** Whether pixel (y, x) is inside a text line of the synthetic page: 12 px lines every 24 px, 16 px margins. */
function onTextLine(y: number, x: number, width: number): boolean {
  return Math.floor(y / 24) % 2 === 0 && y % 24 > 6 && y % 24 < 18 && x > 16 && x < width - 16;
}

/**
 * `n` copies of a synthetic page of text, [n, 3, height, width] as PP-OCR wants it: RGB scaled to
 * [-1, 1] by (v / 255 − 0.5) / 0.5. Glyphs are dark strokes of 7 px with gaps; `upsideDown` rotates
 * the page by 180°.
 */
function page(n: number, height: number, width: number, upsideDown = false): number[] {
  const data = new Array<number>(n * 3 * height * width);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const glyph = onTextLine(y, x, width) && x % 12 < 7 && !(x % 12 === 3 && y % 24 > 12);
        const value = ((glyph ? 20 : 235) / 255 - 0.5) / 0.5;
        const [py, px] = upsideDown ? [height - 1 - y, width - 1 - x] : [y, x];
        for (let c = 0; c < 3; c++) data[((b * 3 + c) * height + py) * width + px] = value;
      }
    }
  }
  return data;
}

let server: TesseraProcess;
let url: string;

async function infer(urlPath: string, shape: number[], data: number[]): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${urlPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape, data }] }),
  });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  server = await startTessera({ args: ['serve', '-c', CONFIG, '--port', '0', '--host', '127.0.0.1'], cwd: ROOT, timeoutMs: 60_000 });
  url = server.url;
}, 90_000);

afterAll(async () => {
  expect(await server?.stop()).toBe(0);
});

describe('examples/ocr-models', () => {
  it('should be ready with both classifier versions and the detector', async () => {
    const ready = await fetch(`${url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    const cls = (await (await fetch(`${url}/v2/models/text-orientation`)).json()) as any;
    expect(cls).toMatchObject({
      name: 'text-orientation',
      versions: ['1', '2'],
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
      parameters: { version: '2', max_batch_size: 32 },
    });
    const det = (await (await fetch(`${url}/v2/models/text-detection`)).json()) as any;
    expect(det).toMatchObject({ outputs: [{ name: 'sigmoid_0.tmp_0', datatype: 'FP32', shape: [-1, 1, -1, -1] }], parameters: { max_batch_size: 8 } });
  });

  it('should classify an upright and an upside-down crop, with softmax rows, on both versions', async () => {
    const upright = page(1, 48, 192);
    const rotated = page(1, 48, 192, true);
    const outputs: number[][] = [];
    for (const urlPath of ['/v2/models/text-orientation/infer', '/v2/models/text-orientation/versions/1/infer']) {
      const res = await infer(urlPath, [2, 3, 48, 192], [...upright, ...rotated]);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.model_version).toBe(urlPath.includes('/versions/1/') ? '1' : '2');
      const out = res.body.outputs[0];
      expect(out).toMatchObject({ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [2, 2] });
      const [p0, p180, q0, q180] = out.data as number[];
      // softmax: each row sums to 1
      expect(p0! + p180!).toBeCloseTo(1, 5);
      expect(q0! + q180!).toBeCloseTo(1, 5);
      // and the model is right: 0° for the upright crop, 180° for the rotated one
      expect(p0!).toBeGreaterThan(0.9);
      expect(q180!).toBeGreaterThan(0.9);
      outputs.push(out.data);
    }
    // the same file under different session options computes the same thing
    outputs[1]!.forEach((v, i) => expect(v).toBeCloseTo(outputs[0]![i]!, 4));
  });

  it('should find the text lines of a page with the detector', async () => {
    const [height, width] = [96, 160];
    const res = await infer('/v2/models/text-detection/infer', [1, 3, height, width], page(1, height, width));
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
    const out = res.body.outputs[0];
    expect(out).toMatchObject({ name: 'sigmoid_0.tmp_0', datatype: 'FP32', shape: [1, 1, height, width] });
    const probs = out.data as number[];
    expect(probs).toHaveLength(height * width);
    let text = 0;
    let textPixels = 0;
    let background = 0;
    probs.forEach((p, i) => {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      if (onTextLine(Math.floor(i / width), i % width, width)) {
        text += p;
        textPixels++;
      } else {
        background += p;
      }
    });
    expect(text / textPixels).toBeGreaterThan(0.3);
    expect(background / (probs.length - textPixels)).toBeLessThan(0.05);
  });

  it('should refuse a crop with the wrong number of channels', async () => {
    const res = await infer('/v2/models/text-orientation/infer', [1, 1, 48, 192], new Array(48 * 192).fill(0));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_INPUT_SHAPE');
  });
});
