// The images of bench/images.mjs, rendered with sharp (libvips' Pango text, DejaVu Sans) and
// encoded as PNG: a fixed set, the same bytes on every run of one machine (fonts decide the glyphs,
// so another machine's may differ slightly). Three kinds, each upright and turned 180°:
//
//   line    48 × 160   a cropped text line, black on white (what the classifier is made for)
//   photo   200 × 800  a photo-like line: dark text on a lit gradient with sensor-like noise
//   page    1000 × 1000  a page of text, black on off-white (a whole document sent as is)
//
// Sizes are height × width. The noise comes from a seeded xorshift, so the pixels are fixed too.
import sharp from 'sharp';
import { prng } from './common.mjs';

/** The kinds, in the order the suite measures them. */
export const IMAGE_KINDS = {
  line: { height: 48, width: 160, describe: 'a cropped text line, black on white' },
  photo: { height: 200, width: 800, describe: 'a photo-like text line: dark text on a lit gradient with noise' },
  page: { height: 1000, width: 1000, describe: 'a page of 20 text lines, black on off-white' },
};

const PHRASES = ['Invoice 2026-117', 'Total due: 48.90', 'Kurfürstendamm 21', 'ORDER #A-55310'];
const PAGE = [
  'Tessera model server: benchmark page',
  'Every line of this page is rendered by sharp',
  'with DejaVu Sans, then encoded as a PNG file.',
  'The classifier sees it scaled to 48 pixels high',
  'and padded on the right to 192 pixels wide,',
  'so most of this text is lost: the image is here',
  'for the cost of decoding a large upload.',
];


const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `text` as an RGBA image (transparent background) fitted into `width` × `height` (Pango markup, one line unless it has newlines). */
async function textLayer(text, { width, height, colour = '#000000' }) {
  const markup = `<span foreground="${colour}">${escape(text)}</span>`;
  const { data, info } = await sharp({ text: { text: markup, font: 'DejaVu Sans', rgba: true, width, height, wrap: 'none' } })
    .png()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** A background of `width` × `height` RGB pixels: a flat colour, or a lit gradient with noise of ± `noise`. */
function background(width, height, { flat, noise = 0, seed = 1 }) {
  const rand = prng(seed);
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      // a warm light from the upper left, falling off towards the lower right
      const light = flat ?? [226 - (60 * x) / width - (40 * y) / height, 212 - (55 * x) / width - (45 * y) / height, 190 - (50 * x) / width - (50 * y) / height];
      for (let c = 0; c < 3; c++) px[i + c] = Math.max(0, Math.min(255, Math.round(light[c] + (noise ? (rand() * 2 - 1) * noise : 0))));
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } });
}

/** One image of `kind` with `text`, upright: PNG bytes (RGB, no alpha). */
async function renderOne(kind, text, seed) {
  const { width, height } = IMAGE_KINDS[kind];
  let base;
  let layer;
  let left;
  let top;
  if (kind === 'line') {
    base = background(width, height, { flat: [255, 255, 255] });
    layer = await textLayer(text, { width: width - 8, height: 34 });
    [left, top] = [4, Math.round((height - layer.height) / 2)];
  } else if (kind === 'photo') {
    base = background(width, height, { noise: 10, seed });
    layer = await textLayer(text, { width: width - 60, height: 120, colour: '#1c1a24' });
    [left, top] = [30, Math.round((height - layer.height) / 2)];
  } else {
    base = background(width, height, { flat: [250, 249, 245] });
    const lines = Array.from({ length: 20 }, (_, i) => (i === 0 ? text : PAGE[i % PAGE.length]));
    layer = await textLayer(lines.join('\n'), { width: width - 120, height: height - 120 });
    [left, top] = [60, 60];
  }
  // composite adds an alpha channel: drop it, so the PNG is plain RGB as a camera or scanner writes it
  const composed = await base.composite([{ input: layer.data, left, top }]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return sharp(composed.data, { raw: { width: composed.info.width, height: composed.info.height, channels: 3 } }).png().toBuffer();
}

/**
 * The set of one kind: every phrase upright and turned 180°, `[{ id, kind, upright, text, png }]`.
 * `count` phrases (at most 4).
 */
export async function renderKind(kind, count = PHRASES.length) {
  const out = [];
  for (const [i, text] of PHRASES.slice(0, count).entries()) {
    const png = await renderOne(kind, text, 1000 + i);
    out.push({ id: `${kind}-${i}-up`, kind, upright: true, text, png });
    out.push({ id: `${kind}-${i}-180`, kind, upright: false, text, png: await sharp(png).rotate(180).png().toBuffer() });
  }
  return out;
}

/**
 * Whether `png` has dark pixels (text): a machine without fonts renders the text layer empty, and
 * the run goes on with images that decode alike but carry no glyphs (the results file says so).
 */
export async function hasInk(png) {
  const { channels } = await sharp(png).stats();
  return channels.every((c) => c.min < 80);
}
