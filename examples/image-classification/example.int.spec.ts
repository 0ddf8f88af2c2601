/**
 * The image-classification example, as its README runs it, from the repository root: render.mjs
 * draws the text lines (upright and turned 180°) into a temporary folder, `tessera serve` serves
 * the repository's own tessera.config.yaml, and classify.mjs sends every image to it through
 * /v1/predict, prints the table and writes results.html. Then the same images as one list and
 * through OIP v2 (JSON BYTES, binary tensor data), a mislabelled and a corrupt file through
 * classify.mjs (exit 1, marked on the page), and a corrupt image straight to /v1/predict.
 */
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { runNode, startTessera } from '@tessera/core/testing';
import { STYLES } from './render.mjs';
import type { RenderedImage } from './render.mjs';
import { resultsPage, summary } from './classify.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HERE = 'examples/image-classification';

/** Runs `node <script> ...args` from the repository root; resolves with its exit code and output. */
const node = (script: string, args: string[]) => runNode(script, args, { cwd: ROOT });

/** The rows of a results page: file, expected and predicted label, whether marked wrong, and the image's data URL. */
function pageRows(page: string): { file: string; expected: string; predicted: string; wrong: boolean; src: string }[] {
  const rows = [...page.matchAll(/<tr id="image-\d+"( class="wrong")? data-file="([^"]*)" data-expected="([^"]*)" data-predicted="([^"]*)"><td class="image"><img src="([^"]*)"/g)];
  return rows.map((m) => ({ wrong: m[1] !== undefined, file: m[2]!, expected: m[3]!, predicted: m[4]!, src: m[5]! }));
}

let tmp: string;
let imagesDir: string;
let images: RenderedImage[];
let server: TesseraProcess;

async function predict(body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const b64 = async (file: string): Promise<string> => (await readFile(path.join(imagesDir, file))).toString('base64');

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'tessera-image-classification-'));
  imagesDir = path.join(tmp, 'images');
  const rendered = await node(`${HERE}/render.mjs`, ['--out', imagesDir]);
  expect(rendered.code, rendered.stderr).toBe(0);
  images = JSON.parse(await readFile(path.join(imagesDir, 'images.json'), 'utf8'));
  // the repository's default config, as `npx tessera serve` runs it, on a free port of 127.0.0.1
  server = await startTessera({ args: ['serve', '-c', 'tessera.config.yaml', '--host', '127.0.0.1', '--port', '0'], cwd: ROOT, timeoutMs: 60_000 });
}, 90_000);

afterAll(async () => {
  if (server) expect(await server.stop()).toBe(0);
});

describe('render.mjs', () => {
  it('should draw every style upright and turned, in PNG, JPEG and WebP, listed in images.json', async () => {
    expect(images).toHaveLength(2 * STYLES.length);
    expect(images.map((i) => i.expected)).toEqual(STYLES.flatMap(() => ['0', '180']));
    expect(new Set(images.map((i) => i.format))).toEqual(new Set(['png', 'jpeg', 'webp']));
    const files = (await readdir(imagesDir)).filter((f) => f !== 'images.json').sort();
    expect(files).toEqual(images.map((i) => i.file).sort());
    for (const img of images) {
      expect(img.file).toMatch(new RegExp(`-${img.expected}\\.(png|jpg|webp)$`));
      const meta = await sharp(path.join(imagesDir, img.file)).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height }, img.file).toEqual({ format: img.format, width: img.width, height: img.height });
    }
  });

  it('should draw each turned PNG as its upright one rotated by 180°', async () => {
    // PNG only: lossless, so the pixels compare exactly
    const pngs = images.filter((i) => i.format === 'png');
    expect(pngs.length).toBeGreaterThan(0);
    for (let i = 0; i < pngs.length; i += 2) {
      const [up, down] = [pngs[i]!, pngs[i + 1]!];
      expect([up.style, up.expected, down.expected]).toEqual([down.style, '0', '180']);
      const a = await sharp(path.join(imagesDir, up.file)).rotate(180).raw().toBuffer();
      const b = await sharp(path.join(imagesDir, down.file)).raw().toBuffer();
      expect(a.equals(b), up.file).toBe(true);
    }
  });

  it('should draw the same bytes on a second run', async () => {
    const again = path.join(tmp, 'again');
    expect((await node(`${HERE}/render.mjs`, ['--out', again])).code).toBe(0);
    for (const img of images) expect((await readFile(path.join(again, img.file))).equals(await readFile(path.join(imagesDir, img.file))), img.file).toBe(true);
  });
});

describe('classify.mjs against the default config', () => {
  it('should classify every image correctly, print the table and write results.html', async () => {
    const out = path.join(tmp, 'results.html');
    const res = await node(`${HERE}/classify.mjs`, ['--url', server.url, '--dir', imagesDir, '--out', out]);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^file\s+expected\s+predicted\s+score\s+ok$/);
    for (const img of images) {
      // upright → 0, turned → 180
      const row = lines.find((l) => l.startsWith(`${img.file} `));
      expect(row?.split(/\s+/), img.file).toEqual([img.file, img.expected, img.expected, expect.stringMatching(/^(0|1)\.\d{4}$/), 'ok']);
    }
    expect(res.stdout).toContain(`${images.length} of ${images.length} correct (accuracy 100.0 %): text-orientation version 1 at ${server.url}`);

    const page = await readFile(out, 'utf8');
    const rows = pageRows(page);
    expect(rows.map((r) => r.file)).toEqual(images.map((i) => i.file));
    for (const [i, row] of rows.entries()) {
      const img = images[i]!;
      expect(row, img.file).toMatchObject({ expected: img.expected, predicted: img.expected, wrong: false });
      const mime = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' }[img.format];
      expect(row.src).toBe(`data:${mime};base64,${await b64(img.file)}`);
    }
    expect(page).toContain(`<p class="summary" id="summary">${images.length} of ${images.length} correct (accuracy 100.0 %)</p>`);
    expect(page).toContain('model <code>text-orientation</code> version <code>1</code>');
    // one file that works offline: nothing to fetch
    expect(page).not.toMatch(/<script|<link|@import|url\(|(src|href)="(https?:)?\/\//);
  });

  it('should mark a wrong answer and a failed request, and exit 1', async () => {
    const dir = path.join(tmp, 'mixed');
    await mkdir(dir);
    const turned = images.find((i) => i.expected === '180')!;
    await writeFile(path.join(dir, 'says-upright-0.png'), await readFile(path.join(imagesDir, turned.file)));
    await writeFile(path.join(dir, 'truncated-0.png'), (await readFile(path.join(imagesDir, images[0]!.file))).subarray(0, 300));
    await writeFile(path.join(dir, 'no-label.png'), await readFile(path.join(imagesDir, images[0]!.file)));
    await writeFile(path.join(dir, 'right-180.png'), await readFile(path.join(imagesDir, turned.file)));
    const out = path.join(dir, 'results.html');
    const res = await node(`${HERE}/classify.mjs`, ['--url', server.url, '--dir', dir, '--out', out]);
    expect(res.code, res.stdout).toBe(1);
    const lines = res.stdout.split('\n');
    expect(lines.find((l) => l.startsWith('says-upright-0.png'))?.split(/\s+/)).toEqual(['says-upright-0.png', '0', '180', expect.stringMatching(/^\d\.\d{4}$/), 'WRONG']);
    expect(lines.find((l) => l.startsWith('truncated-0.png'))).toMatch(/400 TESSERA_E_IMAGE_INVALID: .* WRONG$/);
    expect(lines.find((l) => l.startsWith('no-label.png'))?.split(/\s+/)).toEqual(['no-label.png', '-', '0', expect.stringMatching(/^\d\.\d{4}$/), '-']);
    expect(res.stdout).toContain('1 of 3 correct (accuracy 33.3 %), 1 without an expected label');

    const page = await readFile(out, 'utf8');
    expect(pageRows(page).map((r) => [r.file, r.predicted, r.wrong])).toEqual([
      ['no-label.png', '0', false],
      ['right-180.png', '180', false],
      ['says-upright-0.png', '180', true],
      ['truncated-0.png', '', true],
    ]);
    expect(page).toContain('<p class="summary failed" id="summary">1 of 3 correct (accuracy 33.3 %), 1 without an expected label — wrong: <a href="#image-3">says-upright-0.png</a>, <a href="#image-4">truncated-0.png</a></p>');
    expect(page).toContain(`<span class="error">400 TESSERA_E_IMAGE_INVALID: input 'image': element 0 cannot be decoded as PNG`);
  });

  it('should say so, and exit 2, when no server answers', async () => {
    const res = await node(`${HERE}/classify.mjs`, ['--url', 'http://127.0.0.1:9', '--dir', imagesDir, '--out', path.join(tmp, 'none.html')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('classify: cannot reach http://127.0.0.1:9');
  });
});

describe('the results page', () => {
  it('should escape file names and errors, and show an answer without a score', () => {
    const page = resultsPage(
      [
        { file: '<b>&"x"-0.png', expected: '0', predicted: '0', score: 0.5, mime: 'image/png', base64: 'AAAA' },
        { file: 'y-180.png', expected: '180', error: '400 TESSERA_E_IMAGE_INVALID: <bad>', mime: 'image/png', base64: 'AAAA' },
      ],
      { url: 'http://h', model: 'm<1>', at: 'now' },
    );
    expect(page).toContain('data-file="&lt;b&gt;&amp;&quot;x&quot;-0.png"');
    expect(page).toContain('<span class="error">400 TESSERA_E_IMAGE_INVALID: &lt;bad&gt;</span>');
    expect(page).toContain('<span style="width: 50.0%"></span><b>0.5000</b>');
    expect(page).toContain('model <code>m&lt;1&gt;</code> version <code>?</code>');
    expect(page).not.toContain('<b>&"x"');
    expect(summary([])).toBe('0 of 0 correct (accuracy -)');
  });
});

describe('the same images, straight to the server', () => {
  it('should answer a list of images with one list of predictions per image, in order', async () => {
    const res = await predict({ model: 'text-orientation', inputs: { image: await Promise.all(images.map((i) => b64(i.file))) } });
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
    expect(res.body.predictions.map((p: { label: string }[]) => p.map((x) => x.label))).toEqual(images.map((i) => [i.expected]));
    expect(res.body.outputs.label).toEqual(images.map((i) => [i.expected]));
    expect(res.body.predictions.flat().map((p: { score: number }) => p.score)).toEqual(res.body.outputs.score.flat());
  });

  it('should answer OIP v2 JSON (base64 BYTES) and binary tensor data (the files) as /v1/predict does', async () => {
    const up = images.find((i) => i.format === 'webp' && i.expected === '0')!;
    const down = images.find((i) => i.format === 'webp' && i.expected === '180')!;
    const single = await predict({ model: 'text-orientation', inputs: { image: await b64(down.file) } });
    expect(single.body.predictions).toEqual([{ label: '180', score: expect.any(Number) }]);

    const json = await fetch(`${server.url}/v2/models/text-orientation/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: [await b64(up.file), await b64(down.file)] }] }),
    });
    const jsonBody = (await json.json()) as any;
    expect(json.status, JSON.stringify(jsonBody)).toBe(200);
    expect(jsonBody.outputs[0]).toEqual({ name: 'label', datatype: 'BYTES', shape: [2, 1], data: ['0', '180'] });
    expect(jsonBody.outputs[1]).toMatchObject({ name: 'score', datatype: 'FP32', shape: [2, 1] });
    // one image alone or two in a batch: the same numbers, up to float rounding
    expect(jsonBody.outputs[1].data[1]).toBeCloseTo(single.body.predictions[0].score, 5);

    // the files' bytes, each after its uint32 little-endian length
    const files = await Promise.all([up, down].map((i) => readFile(path.join(imagesDir, i.file))));
    const elements = Buffer.concat(files.flatMap((f) => [Buffer.from(new Uint32Array([f.length]).buffer), f]));
    const header = JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: elements.length } }] });
    const binary = await fetch(`${server.url}/v2/models/text-orientation/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(Buffer.byteLength(header)) },
      body: Buffer.concat([Buffer.from(header), elements]),
    });
    const binaryBody = (await binary.json()) as any;
    expect(binary.status, JSON.stringify(binaryBody)).toBe(200);
    expect(binaryBody.outputs[0]).toEqual(jsonBody.outputs[0]);
    binaryBody.outputs[1].data.forEach((s: number, i: number) => expect(s).toBeCloseTo(jsonBody.outputs[1].data[i], 5));
  });

  it('should refuse a corrupt image with 400 TESSERA_E_IMAGE_INVALID', async () => {
    const png = await readFile(path.join(imagesDir, images[0]!.file));
    const truncated = png.subarray(0, Math.floor(png.length / 2)).toString('base64');
    const res = await predict({ model: 'text-orientation', inputs: { image: truncated } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_IMAGE_INVALID');
    expect(res.body.error).toMatch(/^input 'image': element 0 cannot be decoded as PNG/);
  });
});
