#!/usr/bin/env node
/**
 * Renders the example's text-line images with sharp: a fixed list of lines (STYLES), each drawn
 * upright and turned 180°, as a text detector would crop them from a page.
 *
 *   node examples/image-classification/render.mjs                 # into examples/image-classification/images/
 *   node examples/image-classification/render.mjs --out /tmp/lines
 *
 * Each image is `NN-name-0.ext` (upright) or `NN-name-180.ext` (turned), and `images.json` in the
 * same folder lists them with the label the model should answer, which `classify.mjs` reads. The
 * set is the same on every run on one machine (no randomness); the pixels depend on the fonts
 * fontconfig finds, so another machine may draw slightly different glyphs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

/** @typedef {'DejaVu Sans' | 'DejaVu Serif' | 'DejaVu Sans Mono'} Font */
/** @typedef {'png' | 'jpeg' | 'webp'} Format */

/**
 * One line of text as it is drawn.
 * @typedef {object} Style
 * @property {string} name short name, part of the file names
 * @property {string} text the line (plain text: escaped for Pango here)
 * @property {Font} font
 * @property {number} dpi size of the glyphs (72: about 12 px capitals, 200: about 33 px)
 * @property {string} ink text colour
 * @property {string} paper background colour
 * @property {[number, number]} margin [vertical, horizontal] pixels around the text
 * @property {Format} format
 */

/**
 * What the example renders: dark on light in most, two light on dark and three tinted; one word
 * to a 12:1 line (lines are scaled to 48 pixels high and squeezed into 192 wide, as PaddleOCR
 * does), 72 to 200 dpi, PNG, JPEG and WebP. Left out because the model cannot tell (README,
 * "What the model gets wrong"): words that read the same turned (NOON, SOS), and long lines of
 * mostly lower-case sans text, squeezed until b/q, d/p and n/u look alike.
 * @type {readonly Style[]}
 */
export const STYLES = [
  { name: 'sans-fox', text: 'The quick brown fox', font: 'DejaVu Sans', dpi: 110, ink: '#111111', paper: '#ffffff', margin: [6, 8], format: 'png' },
  { name: 'serif-invoice', text: 'Invoice 20417, due 31 March 2026', font: 'DejaVu Serif', dpi: 140, ink: '#1a1a1a', paper: '#ffffff', margin: [8, 10], format: 'png' },
  { name: 'mono-command', text: 'npx tessera serve -c tessera.config.yaml', font: 'DejaVu Sans Mono', dpi: 96, ink: '#000000', paper: '#ffffff', margin: [5, 6], format: 'png' },
  { name: 'sans-hello-large', text: 'Hello, world', font: 'DejaVu Sans', dpi: 200, ink: '#333333', paper: '#fafafa', margin: [10, 12], format: 'jpeg' },
  { name: 'serif-chapter-small', text: 'Chapter 3: Dynamic batching', font: 'DejaVu Serif', dpi: 72, ink: '#202020', paper: '#ffffff', margin: [4, 4], format: 'webp' },
  { name: 'sans-total', text: 'Total: 1,284.50 EUR', font: 'DejaVu Sans', dpi: 130, ink: '#0b0b0b', paper: '#f4f4f4', margin: [6, 8], format: 'jpeg' },
  { name: 'sans-word', text: 'Tessera', font: 'DejaVu Sans', dpi: 150, ink: '#111111', paper: '#ffffff', margin: [6, 8], format: 'png' },
  { name: 'mono-timestamp', text: '2026-12-03 05:54 UTC', font: 'DejaVu Sans Mono', dpi: 120, ink: '#222222', paper: '#ffffff', margin: [6, 8], format: 'webp' },
  { name: 'serif-long', text: 'Per-model statistics, in nanoseconds', font: 'DejaVu Serif', dpi: 100, ink: '#111111', paper: '#ffffff', margin: [6, 8], format: 'jpeg' },
  { name: 'sans-light-on-dark', text: 'Press START to continue', font: 'DejaVu Sans', dpi: 120, ink: '#f5f5f5', paper: '#1f2937', margin: [8, 10], format: 'png' },
  { name: 'mono-terminal', text: '$ curl -s localhost:8000/v2/health/ready', font: 'DejaVu Sans Mono', dpi: 100, ink: '#e5e7eb', paper: '#111827', margin: [6, 8], format: 'webp' },
  { name: 'serif-tinted-note', text: 'Received with thanks', font: 'DejaVu Serif', dpi: 130, ink: '#1e3a8a', paper: '#fff7cc', margin: [8, 10], format: 'jpeg' },
  { name: 'sans-tinted-label', text: 'Fragile: handle with care', font: 'DejaVu Sans', dpi: 120, ink: '#7f1d1d', paper: '#fde2e2', margin: [6, 8], format: 'webp' },
  { name: 'mono-tinted-code', text: 'maxBatchSize: 32', font: 'DejaVu Sans Mono', dpi: 140, ink: '#14532d', paper: '#dcfce7', margin: [6, 8], format: 'png' },
];

/**
 * One rendered image, as `images.json` lists it.
 * @typedef {object} RenderedImage
 * @property {string} file file name inside the folder
 * @property {'0' | '180'} expected the label the model should answer: 0 upright, 180 turned
 * @property {string} style the Style's name
 * @property {string} text
 * @property {Font} font
 * @property {Format} format
 * @property {number} width
 * @property {number} height
 * @property {number} bytes
 */

const EXTENSIONS = /** @type {const} */ ({ png: 'png', jpeg: 'jpg', webp: 'webp' });

/** @param {string} text */
function pangoEscape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The line upright, as raw RGB pixels: the text drawn in its ink on a transparent layer, composited
 * onto its paper with the margins.
 * @param {Style} style
 * @returns {Promise<{ data: Buffer, width: number, height: number }>}
 */
async function drawLine(style) {
  const layer = await sharp({ text: { text: `<span foreground="${style.ink}">${pangoEscape(style.text)}</span>`, font: style.font, dpi: style.dpi, rgba: true } })
    .png()
    .toBuffer({ resolveWithObject: true });
  const [my, mx] = style.margin;
  const width = layer.info.width + 2 * mx;
  const height = layer.info.height + 2 * my;
  const data = await sharp({ create: { width, height, channels: 3, background: style.paper } })
    .composite([{ input: layer.data, top: my, left: mx }])
    .removeAlpha()
    .raw()
    .toBuffer();
  return { data, width, height };
}

/**
 * @param {sharp.Sharp} image
 * @param {Format} format
 */
function encode(image, format) {
  // fixed settings, so that the bytes are the same on every run
  if (format === 'jpeg') return image.jpeg({ quality: 90 }).toBuffer();
  if (format === 'webp') return image.webp({ quality: 90 }).toBuffer();
  return image.png({ compressionLevel: 9 }).toBuffer();
}

/**
 * Renders every style upright and turned 180° into `dir` (created if needed), with `images.json`
 * listing them in order.
 * @param {string} dir
 * @param {readonly Style[]} [styles]
 * @returns {Promise<RenderedImage[]>}
 */
export async function renderImages(dir, styles = STYLES) {
  await mkdir(dir, { recursive: true });
  /** @type {RenderedImage[]} */
  const images = [];
  for (const [i, style] of styles.entries()) {
    const line = await drawLine(style);
    const raw = { raw: { width: line.width, height: line.height, channels: /** @type {const} */ (3) } };
    for (const expected of /** @type {const} */ (['0', '180'])) {
      const image = sharp(line.data, raw);
      const bytes = await encode(expected === '180' ? image.rotate(180) : image, style.format);
      const file = `${String(i + 1).padStart(2, '0')}-${style.name}-${expected}.${EXTENSIONS[style.format]}`;
      await writeFile(path.join(dir, file), bytes);
      images.push({ file, expected, style: style.name, text: style.text, font: style.font, format: style.format, width: line.width, height: line.height, bytes: bytes.length });
    }
  }
  await writeFile(path.join(dir, 'images.json'), `${JSON.stringify(images, null, 2)}\n`);
  return images;
}

const USAGE = 'usage: node examples/image-classification/render.mjs [--out DIR]';

/** The command line: render into --out (default: images/ next to this file) and list what was written. */
async function main() {
  let out;
  try {
    ({ out } = parseArgs({ options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values);
  } catch (err) {
    console.error(`render: ${/** @type {Error} */ (err).message}\n${USAGE}`);
    process.exit(1);
  }
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const dir = path.resolve(out ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'images'));
  const images = await renderImages(dir);
  const total = images.reduce((n, img) => n + img.bytes, 0);
  for (const img of images) console.log(`${img.file.padEnd(34)} ${`${img.width}x${img.height}`.padStart(8)}  ${String(img.bytes).padStart(6)} B  expected ${img.expected}`);
  const shown = path.relative(process.cwd(), dir);
  console.log(`${images.length} images, ${(total / 1024).toFixed(1)} KiB, in ${shown === '' ? '.' : shown.startsWith('..') ? dir : shown} (listed in images.json)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
