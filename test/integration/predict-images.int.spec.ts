/**
 * Images through the real `tessera` CLI and the real PP-OCR text-orientation classifier, served as
 * the default config (tessera.config.yaml) serves it: text lines rendered here with sharp (DejaVu
 * Sans, Serif and Mono at two sizes and two widths, several words, as PNG, JPEG and WebP), upright
 * → `0` and turned 180° → `180`, over `/v1/predict` (base64, one image and a list) and OIP v2 (JSON
 * BYTES base64, and binary tensor data with the files' raw bytes). Then hostile images (random
 * bytes, truncated files, headers claiming 100000 × 100000 pixels, GIF, SVG, empty and non-base64
 * strings) as a fast-check property: always a 400 with an image code, and the server still answers.
 * The fonts come from Debian's fonts-dejavu-core.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { TesseraProcess } from '@tessera/core/testing';
import { pngClaiming, startTessera, within } from '@tessera/core/testing';
import { CLS_MODEL, ROOT, http, tempDir, writeConfig } from './helpers.js';

const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'] as const;
const TEXTS = ['hi there', 'model server', 'ABC def GHI', 'Invoice total 42.50'] as const;
const DPIS = [120, 200] as const;
/**
 * Margins around the text: crops as a text detector makes them, tight above and below (the
 * classifier was trained on such crops), one close at the sides and one wide: the shorter lines
 * are padded on the right to 192 (PaddleOCR's resize), the longer ones squeezed.
 */
const MARGINS = [
  { top: 6, bottom: 6, left: 8, right: 8 },
  { top: 4, bottom: 4, left: 40, right: 40 },
] as const;
const FORMATS = ['png', 'jpeg', 'webp'] as const;
const IMAGE_CODES = ['TESSERA_E_IMAGE_INVALID', 'TESSERA_E_IMAGE_FORMAT', 'TESSERA_E_IMAGE_TOO_LARGE'];

interface Crop {
  name: string;
  bytes: Buffer;
  /** What the classifier must answer. */
  want: '0' | '180';
}

/** A text line, dark on light: sharp renders white text on black, so it is negated, then framed. */
async function textLine(text: string, font: string, dpi: number, margin: (typeof MARGINS)[number]): Promise<Buffer> {
  return sharp({ text: { text, font, dpi } })
    .negate({ alpha: false })
    .extend({ ...margin, background: '#ffffff' })
    .png()
    .toBuffer();
}

async function crops(): Promise<Crop[]> {
  const out: Crop[] = [];
  let i = 0;
  for (const font of FONTS)
    for (const text of TEXTS)
      for (const dpi of DPIS)
        for (const [m, margin] of MARGINS.entries()) {
          const line = await textLine(text, font, dpi, margin);
          // each line in one of the three formats, in turn
          const format = FORMATS[i++ % FORMATS.length]!;
          for (const angle of [0, 180] as const) {
            const bytes = await sharp(line).rotate(angle)[format]().toBuffer();
            out.push({ name: `${font} ${dpi}dpi margin${m} "${text}" ${format} ${angle}°`, bytes, want: angle === 0 ? '0' : '180' });
          }
        }
  return out;
}

let server: TesseraProcess;
let all: Crop[];

beforeAll(async () => {
  // the default config's text-orientation section, as it is, with the model's path made absolute
  const defaults = parse(await readFile(path.join(ROOT, 'tessera.config.yaml'), 'utf8')) as { models: Record<string, Record<string, unknown>> };
  const section = defaults.models['text-orientation']!;
  expect(section['preprocess']).toBeDefined();
  const dir = await tempDir('tessera-images-');
  const config = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0 }, models: { 'text-orientation': { ...section, path: CLS_MODEL } } });
  [server, all] = await Promise.all([startTessera({ args: ['serve', '-c', config] }), crops()]);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

async function predict(body: unknown): Promise<{ status: number; body: any }> {
  return within(http(`${server.url}/v1/predict`, { json: body }), 20_000, '/v1/predict');
}

describe('the default text-orientation model on images', () => {
  it('should serve image BYTES [-1] → label and score BYTES/FP32 [-1, 1]', async () => {
    const res = await http(`${server.url}/v2/models/text-orientation`);
    expect(res.body).toMatchObject({
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
        { name: 'score', datatype: 'FP32', shape: [-1, 1] },
      ],
    });
  });

  it(`should classify every rendered text line, one image per /v1/predict (${FONTS.length * TEXTS.length * DPIS.length * MARGINS.length * 2} images)`, async () => {
    const wrong: string[] = [];
    for (const crop of all) {
      const res = await predict({ model: 'text-orientation', inputs: { image: crop.bytes.toString('base64') } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.predictions).toEqual([{ label: expect.any(String), score: expect.any(Number) }]);
      const [{ label, score }] = res.body.predictions as [{ label: string; score: number }];
      expect(res.body.outputs).toEqual({ label: [[label]], score: [[score]] });
      if (label !== crop.want) wrong.push(`${crop.name}: ${label} (${score.toFixed(3)})`);
    }
    expect(wrong).toEqual([]);
  });

  it('should classify a list of images in one /v1/predict, one list of predictions per image, in order', async () => {
    const batch = all.slice(0, 16);
    const res = await predict({ model: 'text-orientation', inputs: { image: batch.map((c, i) => (i % 2 ? `data:image/${c.name.split(' ').at(-2)};base64,${c.bytes.toString('base64')}` : c.bytes.toString('base64'))) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.predictions).toHaveLength(batch.length);
    expect((res.body.predictions as { label: string }[][]).map((p) => p[0]!.label)).toEqual(batch.map((c) => c.want));
    expect(res.body.outputs.label).toEqual(batch.map((c) => [c.want]));
  });

  it('should classify the same images over OIP v2, JSON BYTES base64', async () => {
    const batch = all.slice(16, 40);
    const res = await http(`${server.url}/v2/models/text-orientation/infer`, { json: { inputs: [{ name: 'image', datatype: 'BYTES', shape: [batch.length], data: batch.map((c) => c.bytes.toString('base64')) }] } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.outputs[0]).toEqual({ name: 'label', datatype: 'BYTES', shape: [batch.length, 1], data: batch.map((c) => c.want) });
  });

  it("should classify the same images over OIP v2, binary tensor data with the files' raw bytes", async () => {
    const batch = all.slice(40, 72);
    const blob = Buffer.concat(batch.flatMap((c) => [Buffer.from(Uint32Array.of(c.bytes.length).buffer), c.bytes]));
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [batch.length], parameters: { binary_data_size: blob.length } }], outputs: [{ name: 'label', parameters: { binary_data: false } }] }));
    const res = await fetch(`${server.url}/v2/models/text-orientation/infer`, { method: 'POST', body: Buffer.concat([header, blob]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(JSON.parse(text).outputs[0]).toEqual({ name: 'label', datatype: 'BYTES', shape: [batch.length, 1], data: batch.map((c) => c.want) });
  });

  it('should answer what it answers for one image alone when the image comes in a batch (concurrent requests)', async () => {
    const picked = all.filter((_, i) => i % 5 === 0);
    const answers = await Promise.all(picked.map((c) => predict({ model: 'text-orientation', inputs: { image: c.bytes.toString('base64') } })));
    expect(answers.map((a) => a.body.predictions?.[0]?.label)).toEqual(picked.map((c) => c.want));
  });
});

describe('hostile images (properties)', () => {
  /** Elements that are never an acceptable image, as raw bytes (sent as binary data, or base64 in JSON). */
  const badBytes = (): fc.Arbitrary<{ kind: string; bytes: Buffer }> => {
    const sample = all[0]!.bytes; // a real PNG
    const jpeg = all.find((c) => c.name.includes(' jpeg '))!.bytes;
    return fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => ({ kind: 'random bytes', bytes: Buffer.from(a) })),
      fc.integer({ min: 1, max: sample.length - 20 }).map((n) => ({ kind: `PNG cut at ${n}`, bytes: sample.subarray(0, n) })),
      fc.integer({ min: 3, max: jpeg.length - 20 }).map((n) => ({ kind: `JPEG cut at ${n}`, bytes: jpeg.subarray(0, n) })),
      fc.tuple(fc.integer({ min: 10_000, max: 2 ** 31 - 1 }), fc.integer({ min: 10_000, max: 2 ** 31 - 1 })).map(([w, h]) => ({ kind: `PNG header ${w} × ${h}`, bytes: pngClaiming(w, h) })),
      fc.constantFrom(
        { kind: 'PNG header 100000 × 100000', bytes: pngClaiming(100_000, 100_000) },
        { kind: 'SVG', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><text>hi</text></svg>') },
        { kind: 'XML', bytes: Buffer.from('<?xml version="1.0"?><!DOCTYPE svg><svg/>') },
        { kind: 'PDF', bytes: Buffer.from('%PDF-1.4\n%âãÏÓ\n') },
      ),
      fc.uint8Array({ minLength: 0, maxLength: 200 }).map((a) => ({ kind: 'GIF header + bytes', bytes: Buffer.concat([Buffer.from('GIF89a'), Buffer.from(a)]) })),
    );
  };
  /** Strings a JSON client might send that are no image at all. */
  const badText = fc.oneof(
    fc.constant(''),
    fc.string({ maxLength: 200 }),
    fc.constantFrom('data:image/png,notbase64', 'data:,', 'data:image/png;base64,!!!!', '====', 'iVBORw0KGgo'),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a).toString('base64')),
  );

  const isImageRefusal = (status: number, body: any): boolean => status === 400 && IMAGE_CODES.includes(body?.code);

  it('/v1/predict: base64 of hostile bytes and hostile strings are a 400 with an image code, alone or among good images', async () => {
    const good = all[0]!.bytes.toString('base64');
    await fc.assert(
      fc.asyncProperty(fc.oneof(badBytes().map((b) => ({ kind: b.kind, text: b.bytes.toString('base64') })), badText.map((t) => ({ kind: 'text', text: t }))), fc.nat(2), async ({ kind, text }, among) => {
        const image = among === 0 ? text : among === 1 ? [good, text] : [text, good, good];
        const res = await predict({ model: 'text-orientation', inputs: { image } });
        expect(isImageRefusal(res.status, res.body), `${kind}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`).toBe(true);
        expect(res.body.error).toContain(`element ${among === 1 ? 1 : 0}`);
      }),
      { numRuns: 120 },
    );
  });

  it('OIP v2 binary: hostile raw bytes are a 400 with an image code', async () => {
    await fc.assert(
      fc.asyncProperty(badBytes(), async ({ kind, bytes }) => {
        const blob = Buffer.concat([Buffer.from(Uint32Array.of(bytes.length).buffer), bytes]);
        const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: blob.length } }] }));
        const res = await within(
          fetch(`${server.url}/v2/models/text-orientation/infer`, { method: 'POST', body: Buffer.concat([header, blob]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } }),
          20_000,
          'binary infer',
        );
        const body = (await res.json()) as { code?: string };
        expect(isImageRefusal(res.status, body), `${kind}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`).toBe(true);
      }),
      { numRuns: 80 },
    );
  });

  it('should still classify images afterwards', async () => {
    const crop = all.find((c) => c.want === '180')!;
    const res = await predict({ model: 'text-orientation', inputs: { image: crop.bytes.toString('base64') } });
    expect(res.body.predictions?.[0]?.label).toBe('180');
    expect((await http(`${server.url}/v2/health/ready`)).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });
});

describe('loading sharp', () => {
  it('should load sharp (libvips) only once a model with an image step loads', async () => {
    // a fresh process: the core serving a model without image steps, then one with
    const script = `
      import { createRequire } from 'node:module';
      import { TesseraServer, definePlugin, resolveConfig } from '@tessera/core';
      import { FakeBackend } from '@tessera/core/testing';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/sharp/'));
      const plugin = definePlugin({ name: 'fake', version: '1.0.0', core: '^0.1.0', register: (ctx) => ctx.registerBackend('fake', new FakeBackend({ metadata: { platform: 'fake', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 4, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }], maxBatchSize: 2 } })) });
      const serve = async (model) => {
        const server = new TesseraServer({ config: resolveConfig({ server: { logLevel: 'silent' }, models: { m: { backend: 'fake', ...model } } }, { configDir: '/', env: {} }), plugins: [plugin] });
        await server.start({ listen: false });
        await server.close();
      };
      await serve({});
      const before = loaded();
      await serve({ preprocess: [{ processor: 'image' }] });
      console.log(JSON.stringify({ before, after: loaded() }));
    `;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 30_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out))),
    );
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ before: false, after: true });
  });
});
