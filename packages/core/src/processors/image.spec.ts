/**
 * The built-in `image` pre step on small images made with sharp: the processor conformance suite,
 * then resize modes, padding, normalisation, channel order and layout checked pixel by pixel
 * against values worked out by hand, the ways an element may be sent, and every refusal.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ModelMetadata } from '../contracts/backend.js';
import type { ProcessorContext } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { halfToNumber, numberToHalf } from '../contracts/tensor.js';
import { validateAgainstSchema } from '../config/validate.js';
import { isTesseraError } from '../errors.js';
import { describeProcessorConformance, testProcessContext } from '../testing/processor-conformance.js';
import { pngClaiming } from '../testing/images.js';
import { silentLogger } from '../testing/silent-logger.js';
import { imageProcessorFactory, placement } from './image.js';

type RGB = [number, number, number];

/** An image of `h × w` pixels given by `pixel(y, x)`, encoded losslessly (PNG by default). */
async function picture(h: number, w: number, pixel: (y: number, x: number) => RGB, format: 'png' | 'webp' | 'tiff' | 'gif' = 'png'): Promise<Buffer> {
  const raw = Buffer.alloc(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(pixel(y, x), (y * w + x) * 3);
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  return (format === 'webp' ? img.webp({ lossless: true }) : format === 'tiff' ? img.tiff() : format === 'gif' ? img.gif() : img.png()).toBuffer();
}

const solid = (h: number, w: number, rgb: RGB): Promise<Buffer> => picture(h, w, () => rgb);

/** A model whose only input is `input` (and an output nobody reads here). */
function model(input: TensorSpec | TensorSpec[], maxBatchSize = 8): ModelMetadata {
  return { platform: 'test', inputs: Array.isArray(input) ? input : [input], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }], maxBatchSize };
}

const CLS = model({ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }, 32);
const PADDLE = { size: [48, 192], resize: 'pad', channels: 'bgr', mean: 0.5, std: 0.5 };

/** The step made as the server makes it: options validated (defaults filled in), for `metadata`'s inputs. */
async function step(options: Record<string, unknown>, metadata: ModelMetadata = CLS) {
  const validated = validateAgainstSchema<Record<string, unknown>>(imageProcessorFactory.optionsSchema, structuredClone(options), 'preprocess[0]');
  const ctx: ProcessorContext = { model: 'm', version: '1', stage: 'pre', options: validated, specs: metadata.inputs, metadata, logger: silentLogger() };
  return imageProcessorFactory.create(ctx);
}

async function creationError(options: Record<string, unknown>, metadata: ModelMetadata = CLS): Promise<{ code: string; message: string }> {
  try {
    await step(options, metadata);
  } catch (err) {
    if (isTesseraError(err)) return err;
    throw err;
  }
  throw new Error('expected the step to refuse the model');
}

const images = (...elements: (Buffer | string)[]): Tensor => ({ name: 'image', datatype: 'BYTES', shape: [elements.length], data: elements.map((e) => (typeof e === 'string' ? e : e.toString('base64'))) });
/** Binary tensor data keeps an element one character per byte. */
const raw = (b: Buffer): string => b.toString('latin1');

async function run(options: Record<string, unknown>, metadata: ModelMetadata, ...elements: (Buffer | string)[]): Promise<Tensor> {
  const out = await (await step(options, metadata)).process([images(...elements)], testProcessContext());
  expect(out).toHaveLength(1);
  return out[0]!;
}

async function refusal(options: Record<string, unknown>, ...elements: (Buffer | string)[]): Promise<{ code: string; message: string; status: number }> {
  const s = await step(options);
  try {
    await s.process([images(...elements)], testProcessContext());
  } catch (err) {
    if (isTesseraError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

const norm = (p: number, mean = 0, std = 1, scale = 255): number => Math.fround((p / scale - mean) / std);

const grey = await solid(24, 60, [128, 128, 128]);
const text = await picture(30, 90, (y, x) => (y > 8 && y < 22 && x % 9 < 5 ? [20, 20, 20] : [240, 240, 240]));
const jpeg = await sharp(text).jpeg().toBuffer();
const webp = await sharp(text).webp().toBuffer();

describeProcessorConformance({
  name: 'image (PaddleOCR cls preprocessing)',
  factory: imageProcessorFactory,
  stage: 'pre',
  options: PADDLE,
  metadata: CLS,
  samples: [[images(grey)], [images(raw(text), jpeg, `data:image/webp;base64,${webp.toString('base64')}`)]],
  invalid: [
    [images('')],
    [images('not an image at all!')],
    [images(await solid(4, 4, [1, 2, 3]).then((b) => b.subarray(0, 40)))],
    [images(await solid(4, 4, [1, 2, 3]).then((b) => sharp(b).gif().toBuffer()))],
    [images('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
    [{ ...images(grey), name: 'picture' }],
    [{ name: 'image', datatype: 'FP32', shape: [1], data: new Float32Array(1) }],
  ],
});

describe('image', () => {
  describe('having a model input of fixed size', () => {
    // x FP32 [-1, 3, 2, 4]: no size needed; the image is 2 × 4 already, so no resampling
    const fixed = model({ name: 'x', datatype: 'FP32', shape: [-1, 3, 2, 4] });
    const pixel = (y: number, x: number): RGB => [10 * (y * 4 + x) + 1, 10 * (y * 4 + x) + 2, 10 * (y * 4 + x) + 3];

    it('should serve image BYTES [-1] in place of the input it fills', async () => {
      expect((await step({}, fixed)).specs).toEqual([{ name: 'image', datatype: 'BYTES', shape: [-1], content: 'binary' }]);
      expect((await step({ name: 'photo' }, fixed)).specs).toEqual([{ name: 'photo', datatype: 'BYTES', shape: [-1], content: 'binary' }]);
    });

    it('should lay the pixels out channels first, RGB, each p / 255 by default', async () => {
      const out = await run({}, fixed, await picture(2, 4, pixel));
      expect(out).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 3, 2, 4] });
      const want: number[] = [];
      for (let c = 0; c < 3; c++) for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) want.push(norm(pixel(y, x)[c]!));
      expect([...(out.data as Float32Array)]).toEqual(want);
    });

    it('should reverse the channels for bgr and normalise per channel', async () => {
      const mean = [0.485, 0.456, 0.406];
      const std = [0.229, 0.224, 0.225];
      const out = await run({ channels: 'bgr', mean, std }, fixed, await picture(2, 4, pixel));
      const want: number[] = [];
      // model channel 0 is blue: source channel 2, normalised with mean[0] and std[0]
      for (let c = 0; c < 3; c++) for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) want.push(norm(pixel(y, x)[2 - c]!, mean[c], std[c]));
      expect([...(out.data as Float32Array)]).toEqual(want);
    });

    it('should lay the pixels out channels last for an NHWC input', async () => {
      const nhwc = model({ name: 'x', datatype: 'FP32', shape: [-1, 2, 4, 3] });
      const out = await run({ scale: 1 }, nhwc, await picture(2, 4, pixel));
      expect(out.shape).toEqual([1, 2, 4, 3]);
      expect([...(out.data as Float32Array)]).toEqual([...Array.from({ length: 8 }, (_, i) => pixel(Math.floor(i / 4), i % 4)).flat()]);
    });

    it('should give one channel for a one-channel input (gray)', async () => {
      const gray = model({ name: 'x', datatype: 'FP32', shape: [-1, 1, 2, 4] });
      // an 8-bit greyscale PNG: the grey values are the pixels
      const values = Buffer.from([0, 36, 72, 108, 144, 180, 216, 255]);
      const png = await sharp(values, { raw: { width: 4, height: 2, channels: 1 } }).png().toBuffer();
      const out = await run({}, gray, png);
      expect(out.shape).toEqual([1, 1, 2, 4]);
      expect([...(out.data as Float32Array)]).toEqual([...values].map((v) => norm(v)));
    });

    it('should write FP16 as half bits and UINT8 as the pixels themselves', async () => {
      const half = await run({ mean: 0.5, std: 0.5 }, model({ name: 'x', datatype: 'FP16', shape: [-1, 3, 2, 4] }), await picture(2, 4, pixel));
      expect(half.datatype).toBe('FP16');
      expect((half.data as Uint16Array)[0]).toBe(numberToHalf((1 / 255 - 0.5) / 0.5));
      expect(halfToNumber((half.data as Uint16Array)[7]!)).toBeCloseTo((71 / 255 - 0.5) / 0.5, 2);
      const bytes = await run({}, model({ name: 'x', datatype: 'UINT8', shape: [-1, 2, 4, 3] }), await picture(2, 4, pixel));
      expect(bytes.data).toEqual(Uint8Array.from(Array.from({ length: 8 }, (_, i) => pixel(Math.floor(i / 4), i % 4)).flat()));
    });

    it('should keep the elements in order, decoding them together (PNG, WebP, base64, raw, data: URL)', async () => {
      const colours: RGB[] = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 0],
      ];
      const [a, b, c, d] = await Promise.all(colours.map((rgb, i) => (i === 1 ? picture(2, 4, () => rgb, 'webp') : solid(2, 4, rgb))));
      const out = await run({ scale: 1 }, fixed, a!, raw(b!), `data:image/png;base64,${c!.toString('base64')}`, d!.toString('base64').replace(/(.{16})/g, '$1\n'));
      expect(out.shape).toEqual([4, 3, 2, 4]);
      const data = out.data as Float32Array;
      colours.forEach((rgb, i) => {
        for (let ch = 0; ch < 3; ch++) expect(data[i * 24 + ch * 8], `image ${i} channel ${ch}`).toBe(rgb[ch]);
      });
    });

    it('should read the URL-safe base64 alphabet', async () => {
      const png = await picture(2, 4, pixel);
      const urlSafe = png.toString('base64url');
      expect(urlSafe).toMatch(/[-_]|^[A-Za-z0-9]+$/);
      expect((await run({}, fixed, urlSafe)).data).toEqual((await run({}, fixed, png)).data);
    });

    it('should flatten transparency onto white', async () => {
      const rgba = Buffer.from([0, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 255, 9, 9, 9, 0, 9, 9, 9, 0, 9, 9, 9, 0, 9, 9, 9, 0]);
      const png = await sharp(rgba, { raw: { width: 4, height: 2, channels: 4 } }).png().toBuffer();
      const out = (await run({ scale: 1 }, fixed, png)).data as Float32Array;
      // red plane: white, red, white, blue, then a transparent row
      expect([...out.subarray(0, 8)]).toEqual([255, 255, 255, 0, 255, 255, 255, 255]);
      expect([...out.subarray(16, 24)]).toEqual([255, 0, 255, 255, 255, 255, 255, 255]);
    });
  });

  describe('resize', () => {
    const into = (h: number, w: number, channels = 3): ModelMetadata => model({ name: 'x', datatype: 'FP32', shape: [-1, channels, h, w] });
    /** Channel `c` of image `b` of `t`, as rows. */
    const planeOf = (t: Tensor, c: number, b = 0): number[][] => {
      const [, C, H, W] = t.shape as [number, number, number, number];
      const data = t.data as Float32Array;
      return Array.from({ length: H }, (_, y) => [...data.subarray(((b * C + c) * H + y) * W, ((b * C + c) * H + y + 1) * W)]);
    };

    it('pad: should scale to the height, keep the aspect ratio and pad on the right with 0 after normalisation (PaddleOCR)', async () => {
      // 10 × 20 red, into 4 × 16: width min(16, ceil(4 · 20 / 10)) = 8
      const out = await run({ resize: 'pad', mean: 0.5, std: 0.5 }, into(4, 16), await solid(10, 20, [255, 0, 0]));
      const row = [...new Array<number>(8).fill(1), ...new Array<number>(8).fill(0)];
      expect(planeOf(out, 0)).toEqual(new Array(4).fill(row));
      expect(planeOf(out, 1)).toEqual(new Array(4).fill([...new Array<number>(8).fill(-1), ...new Array<number>(8).fill(0)]));
    });

    it('pad: should round the width up as PaddleOCR does (math.ceil(H · w / h)), to at most the width', () => {
      const pad = (w: number, h: number): number => placement({ resize: 'pad', height: 48, width: 192 }, w, h).width;
      expect(pad(100, 30)).toBe(160);
      expect(pad(62, 30)).toBe(100); // 99.2
      expect(pad(61, 30)).toBe(98); // 97.6
      expect(pad(1000, 30)).toBe(192);
      expect(pad(1, 1000)).toBe(1);
      expect(placement({ resize: 'pad', height: 48, width: 192 }, 62, 30)).toEqual({ width: 100, height: 48, left: 0, top: 0 });
    });

    it('pad: should squeeze an image wider than the ratio to the width, without padding', async () => {
      const out = await run({ resize: 'pad', mean: 0.5, std: 0.5 }, into(4, 16), await solid(4, 100, [0, 0, 255]));
      expect(planeOf(out, 2)).toEqual(new Array(4).fill(new Array(16).fill(1)));
    });

    it('pad: should pad with padValue (a pixel value, normalised like the image) when given', async () => {
      const out = await run({ resize: 'pad', mean: 0.5, std: 0.5, padValue: [255, 0, 127.5] }, into(4, 16), await solid(10, 20, [0, 0, 0]));
      expect(planeOf(out, 0)[0]).toEqual([...new Array<number>(8).fill(-1), ...new Array<number>(8).fill(1)]);
      expect(planeOf(out, 1)[0]).toEqual([...new Array<number>(8).fill(-1), ...new Array<number>(8).fill(-1)]);
      expect(planeOf(out, 2)[0]).toEqual([...new Array<number>(8).fill(-1), ...new Array<number>(8).fill(0)]);
    });

    it('contain: should letterbox, centred', async () => {
      // 10 × 20 into 8 × 8: scale 0.4 → 4 × 8, rows 2..5
      const out = await run({ resize: 'contain', scale: 1 }, into(8, 8), await solid(10, 20, [200, 100, 50]));
      const plane = planeOf(out, 0);
      expect(plane.map((r) => r[0])).toEqual([0, 0, 200, 200, 200, 200, 0, 0]);
      expect(plane[3]).toEqual(new Array(8).fill(200));
    });

    it('cover: should fill and crop, centred', async () => {
      // 10 × 20, left half red, right half blue, into 10 × 10: the middle columns 5..14
      const out = await run({ resize: 'cover', scale: 1 }, into(10, 10), await picture(10, 20, (_, x) => (x < 10 ? [255, 0, 0] : [0, 0, 255])));
      expect(planeOf(out, 0)[4]).toEqual([255, 255, 255, 255, 255, 0, 0, 0, 0, 0]);
      expect(planeOf(out, 2)[9]).toEqual([0, 0, 0, 0, 0, 255, 255, 255, 255, 255]);
    });

    it('stretch: should fill the whole input, ignoring the aspect ratio', async () => {
      const out = await run({ resize: 'stretch', scale: 1 }, into(6, 6), await solid(3, 30, [7, 8, 9]));
      expect(planeOf(out, 1)).toEqual(new Array(6).fill(new Array(6).fill(8)));
    });

    it('should turn an image as its EXIF orientation says', async () => {
      // 8 × 16, left half black; orientation 6 shows it turned 90° clockwise: 16 × 8, top half black
      const png = await picture(8, 16, (_, x) => (x < 8 ? [0, 0, 0] : [255, 255, 255]));
      const rotated = await sharp(png).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
      const out = await run({ resize: 'stretch' }, into(16, 8, 1), rotated);
      const rows = planeOf(out, 0).map((r) => r.reduce((a, b) => a + b, 0) / r.length);
      expect(Math.max(...rows.slice(0, 6))).toBeLessThan(0.15);
      expect(Math.min(...rows.slice(10))).toBeGreaterThan(0.85);
    });
  });

  describe('refusals', () => {
    it('should refuse what is not an image, naming the element (TESSERA_E_IMAGE_INVALID)', async () => {
      expect(await refusal(PADDLE, grey, '')).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', status: 400, message: expect.stringContaining("input 'image': element 1 is empty") });
      expect(await refusal(PADDLE, 'hello, world!')).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', message: expect.stringContaining('neither an image (PNG, JPEG, WebP) nor base64 text of one') });
      expect(await refusal(PADDLE, Buffer.from('just some text, base64-encoded'))).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', message: expect.stringContaining('its base64 is not an image') });
      expect(await refusal(PADDLE, 'data:image/png,plain')).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', message: expect.stringContaining("without ';base64'") });
      // base64 of a real image with a stray character inside: still refused (the fast path takes no alphabet check)
      const b64 = text.toString('base64');
      for (const at of [8, Math.floor(b64.length / 2), b64.length - 6]) {
        const stray = `${b64.slice(0, at)}!${b64.slice(at + 1)}`;
        expect((await refusal(PADDLE, stray)).code, `a '!' at ${at}`).toBe('TESSERA_E_IMAGE_INVALID');
      }
      expect(await refusal(PADDLE, '====')).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID' });
    });

    it('should refuse a corrupt or truncated file (TESSERA_E_IMAGE_INVALID)', async () => {
      const png = await picture(40, 40, (y, x) => [x * 6, y * 6, (x * y) % 256]);
      expect(await refusal(PADDLE, png.subarray(0, png.length - 30))).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', message: expect.stringContaining('element 0') });
      expect(await refusal(PADDLE, grey, raw(Buffer.concat([png.subarray(0, 60), Buffer.alloc(200, 7)])))).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID', message: expect.stringContaining('element 1') });
      expect(await refusal(PADDLE, jpeg.subarray(0, 100))).toMatchObject({ code: 'TESSERA_E_IMAGE_INVALID' });
    });

    it('should refuse other formats by name, saying which are allowed (TESSERA_E_IMAGE_FORMAT)', async () => {
      const gif = await picture(4, 4, () => [1, 2, 3], 'gif');
      const tiff = await picture(4, 4, () => [1, 2, 3], 'tiff');
      expect(await refusal(PADDLE, gif)).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT', status: 400, message: "input 'image': element 0 is a GIF image; this model takes PNG, JPEG, WebP" });
      expect(await refusal(PADDLE, raw(gif))).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT' });
      expect(await refusal(PADDLE, tiff)).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT', message: expect.stringContaining('TIFF') });
      expect(await refusal(PADDLE, '  <svg xmlns="http://www.w3.org/2000/svg"/>')).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT', message: expect.stringContaining('SVG') });
      expect(await refusal(PADDLE, Buffer.from('<?xml version="1.0"?><svg/>'))).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT' });
      expect(await refusal({ ...PADDLE, formats: ['png'] }, grey, jpeg)).toMatchObject({ code: 'TESSERA_E_IMAGE_FORMAT', message: "input 'image': element 1 is a JPEG image; this model takes PNG" });
    });

    it('should take a format only when formats lists it', async () => {
      const gif = await picture(4, 4, () => [1, 2, 3], 'gif');
      const out = await (await step({ ...PADDLE, formats: ['png', 'gif'] })).process([images(gif)], testProcessContext());
      expect(out[0]!.shape).toEqual([1, 3, 48, 192]);
    });

    it('should refuse images over maxPixels from their header, and over maxBytes (TESSERA_E_IMAGE_TOO_LARGE)', async () => {
      expect(await refusal(PADDLE, pngClaiming(100_000, 100_000))).toMatchObject({
        code: 'TESSERA_E_IMAGE_TOO_LARGE',
        status: 400,
        message: "input 'image': element 0 is 100000 × 100000 pixels (10000000000), over the image step's maxPixels (40000000)",
      });
      expect(await refusal({ ...PADDLE, maxPixels: 1000 }, grey)).toMatchObject({ code: 'TESSERA_E_IMAGE_TOO_LARGE', message: expect.stringContaining('60 × 24 pixels') });
      expect(await refusal({ ...PADDLE, maxBytes: 100 }, grey)).toMatchObject({ code: 'TESSERA_E_IMAGE_TOO_LARGE', message: expect.stringMatching(/element 0 has \d+ bytes, over the image step's maxBytes \(100\)/) });
      expect(await refusal({ ...PADDLE, maxBytes: '1KiB' }, raw(await picture(64, 64, (y, x) => [x * 4, y * 4, (x ^ y) * 4])))).toMatchObject({ code: 'TESSERA_E_IMAGE_TOO_LARGE' });
    });

    it('should refuse an element of the wrong kind as the served signature does', async () => {
      const s = await step(PADDLE);
      await expect(s.process([], testProcessContext())).rejects.toMatchObject({ code: 'TESSERA_E_INPUT_MISSING' });
      await expect(s.process([{ name: 'image', datatype: 'BYTES', shape: [0], data: [] }], testProcessContext())).rejects.toMatchObject({ code: 'TESSERA_E_INPUT_SHAPE' });
      await expect(s.process([{ name: 'image', datatype: 'BYTES', shape: [], data: [grey.toString('base64')] }], testProcessContext())).rejects.toMatchObject({ code: 'TESSERA_E_INPUT_SHAPE' });
    });
  });

  describe('fitting the model', () => {
    it('should fill the input it is told to, and serve the others as they are', async () => {
      const two = model([
        { name: 'x', datatype: 'FP32', shape: [-1, 3, 4, 4] },
        { name: 'scale', datatype: 'FP32', shape: [-1, 1] },
      ]);
      const s = await step({ input: 'x' }, two);
      expect(s.specs).toEqual([{ name: 'image', datatype: 'BYTES', shape: [-1], content: 'binary' }, two.inputs[1]]);
      const scale: Tensor = { name: 'scale', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(2) };
      const out = await s.process([images(grey), scale], testProcessContext());
      expect(out.map((t) => t.name)).toEqual(['x', 'scale']);
      expect(out[1]).toBe(scale);
    });

    it('should serve one image for an input without an image count (rank 3), and [1] for a fixed one', async () => {
      const single = await step({}, model({ name: 'x', datatype: 'FP32', shape: [3, 4, 4] }, 0));
      expect(single.specs).toEqual([{ name: 'image', datatype: 'BYTES', shape: [], content: 'binary' }]);
      const out = await single.process([{ name: 'image', datatype: 'BYTES', shape: [], data: [grey.toString('base64')] }], testProcessContext());
      expect(out[0]!.shape).toEqual([3, 4, 4]);
      expect((await step({}, model({ name: 'x', datatype: 'FP32', shape: [1, 3, 4, 4] }, 0))).specs[0]!.shape).toEqual([1]);
    });

    it.each([
      ['the model has several inputs and input is not given', {}, model([{ name: 'a', datatype: 'FP32', shape: [-1, 3, 4, 4] }, { name: 'b', datatype: 'FP32', shape: [-1, 1] }]), 'the model has 2 inputs (a FP32 [-1, 3, 4, 4]; b FP32 [-1, 1]); say which one the image fills with input: <name>'],
      ['input names no input', { input: 'pixels' }, CLS, "input: the model has no input 'pixels' (its inputs: x)"],
      ['its height and width are dynamic and size is not given', {}, CLS, 'x FP32 [-1, 3, -1, -1] has a dynamic height or width: give size: [height, width]'],
      ['size differs from fixed dims', { size: [32, 100] }, model({ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }), 'size: [32, 100] does not fit x FP32 [-1, 3, 48, 192] (nchw: height 48, width 192)'],
      ['channels do not fit', { channels: 'gray', size: [4, 4] }, CLS, 'channels: gray makes 1 channel(s), x FP32 [-1, 3, -1, -1] has 3 (nchw)'],
      ['the datatype is not an image one', {}, model({ name: 'x', datatype: 'INT32', shape: [-1, 3, 4, 4] }), 'it fills FP32, FP16 or UINT8 inputs; x INT32 [-1, 3, 4, 4] is INT32'],
      ['the layout cannot be told', { size: [4, 4] }, model({ name: 'x', datatype: 'FP32', shape: [-1, -1, -1, -1] }), 'cannot tell from x FP32 [-1, -1, -1, -1] where its channels are; set layout: nchw or nhwc'],
      ['mean has the wrong length', { size: [4, 4], mean: [0.5, 0.5] }, CLS, 'mean has 2 values; give one, or one per channel (3)'],
      ['a UINT8 input gets a mean', { mean: 0.5 }, model({ name: 'x', datatype: 'UINT8', shape: [-1, 4, 4, 3] }), 'x UINT8 [-1, 4, 4, 3] takes pixels 0..255 as they are: mean and std do not apply (leave them out)'],
      ['name is another input', { input: 'a', name: 'b' }, model([{ name: 'a', datatype: 'FP32', shape: [-1, 3, 4, 4] }, { name: 'b', datatype: 'FP32', shape: [-1, 1] }]), "name: 'b' is another input of the model; choose another name"],
    ])('should refuse to start when %s', async (_label, options, metadata, message) => {
      expect(await creationError(options, metadata)).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message });
    });

    it('should refuse to be a postprocess step', async () => {
      const ctx: ProcessorContext = { model: 'm', version: '1', stage: 'post', options: { ...PADDLE }, specs: CLS.outputs, metadata: CLS, logger: silentLogger() };
      await expect(imageProcessorFactory.create(ctx)).rejects.toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message: 'it is a preprocess step (list it under preprocess)' });
    });

    it('should refuse options outside its schema', () => {
      for (const bad of [{ resize: 'crop' }, { channels: 'rgba' }, { formats: ['svg'] }, { size: [48] }, { std: 0 }, { padValue: 300 }, { colour: true }]) {
        expect(() => validateAgainstSchema(imageProcessorFactory.optionsSchema, bad, 'models.m.preprocess[0]'), JSON.stringify(bad)).toThrow(/models\.m\.preprocess\[0\]/);
      }
    });
  });
});
