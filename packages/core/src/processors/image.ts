import type { Metadata, Sharp, SharpOptions } from 'sharp';
import type { ProcessContext, Processor, ProcessorContext, ProcessorFactory } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import type { ImageBytes, ImageElement } from './image-bytes.js';
import { formatName, imageBytes } from './image-bytes.js';
import type { ImagePlan } from './image-options.js';
import { IMAGE_OPTIONS_SCHEMA, imagePlan } from './image-options.js';

type SharpFactory = (input: Buffer, options?: SharpOptions) => Sharp;

let sharpModule: Promise<SharpFactory> | undefined;

/** sharp (and libvips with it) is loaded the first time a model with an image step loads, never before. */
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => {
    // a server decodes each image once: libvips' operation cache would only hold memory
    m.default.cache(false);
    return m.default;
  });
  return sharpModule;
}

/** Decoded pixels: `height` rows of `width` pixels of `channels` bytes (sharp's raw output). */
interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  /** Where the pixels go in the model's `height × width` image (the rest is padding). */
  left: number;
  top: number;
}

/** Sharp's names of the formats `formats` allows (it reports AVIF as `heif`). */
const SHARP_FORMAT: Record<string, string> = { png: 'png', jpeg: 'jpeg', webp: 'webp', gif: 'gif', tiff: 'tiff', avif: 'heif' };

/**
 * The built-in `image` pre step: BYTES elements holding encoded images (PNG, JPEG, WebP: raw
 * bytes, base64 or `data:` URLs) → the model's image input, decoded with sharp, oriented by EXIF,
 * flattened onto white, resized (`resize`), converted to the channel order, normalised
 * ((p / scale − mean) / std) and laid out (NCHW or NHWC). Images of one request are decoded
 * concurrently (sharp works on libuv's thread pool). See docs/processors.md.
 */
export class ImageProcessor implements Processor {
  readonly specs: readonly TensorSpec[];
  readonly #plan: ImagePlan;
  readonly #sharp: SharpFactory;

  constructor(plan: ImagePlan, sharp: SharpFactory, next: readonly TensorSpec[]) {
    this.#plan = plan;
    this.#sharp = sharp;
    // the served signature: the image input in place of the one it fills, the others as they are
    this.specs = next.map((s) => (s.name === plan.target.name ? plan.served : s));
  }

  async process(tensors: readonly Tensor[], ctx: ProcessContext): Promise<Tensor[]> {
    const plan = this.#plan;
    const name = plan.served.name;
    const given = tensors.find((t) => t.name === name);
    if (!given) throw new TesseraError('TESSERA_E_INPUT_MISSING', `missing input '${name}': send the image (BYTES: its bytes, base64 or a data: URL)`);
    if (given.datatype !== 'BYTES' || !Array.isArray(given.data)) throw new TesseraError('TESSERA_E_INPUT_DATATYPE', `input '${name}': datatype ${given.datatype} does not match BYTES (one encoded image per element)`);
    const expectedRank = plan.counted ? 1 : 0;
    if (given.shape.length !== expectedRank) throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': shape [${given.shape.join(', ')}]; expected [${plan.served.shape.join(', ')}] (one image per element)`);
    const elements = given.data;
    if (elements.length === 0) throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${name}': no image`);
    if (ctx.signal.aborted) throw new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client went away before its images were decoded');
    const settled = await Promise.allSettled(elements.map((element, index) => this.#decode(element, { input: name, index, formats: plan.formats, maxBytes: plan.maxBytes })));
    // the first element that failed, whichever finished first
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const images = settled.map((r) => (r as PromiseFulfilledResult<Pixels>).value);
    const shape = plan.layout === 'nchw' ? [plan.channelCount, plan.height, plan.width] : [plan.height, plan.width, plan.channelCount];
    const made: Tensor = { name: plan.target.name, datatype: plan.datatype, shape: plan.counted ? [images.length, ...shape] : shape, data: this.#write(images) };
    return tensors.map((t) => (t === given ? made : t));
  }

  async close(): Promise<void> {}

  /** One element: its bytes (signature, base64, limits), its header (format, pixels), then the decode and resize. */
  async #decode(element: string, el: ImageElement): Promise<Pixels> {
    const plan = this.#plan;
    const { bytes, format }: ImageBytes = imageBytes(element, el);
    const at = `input '${el.input}': element ${el.index}`;
    let meta: Metadata;
    try {
      // the header only: sizes and format before any pixel is decoded
      meta = await this.#sharp(bytes, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw new TesseraError('TESSERA_E_IMAGE_INVALID', `${at} is not a readable ${formatName(format)} image: ${errorMessage(err)}`, { cause: err });
    }
    if (meta.format === undefined || ![...plan.formats].some((f) => SHARP_FORMAT[f] === meta.format)) {
      throw new TesseraError('TESSERA_E_IMAGE_FORMAT', `${at} decodes as ${meta.format ?? 'an unknown format'}; this model takes ${[...plan.formats].map(formatName).join(', ')}`);
    }
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!(width > 0 && height > 0)) throw new TesseraError('TESSERA_E_IMAGE_INVALID', `${at}: its header gives no size`);
    if (width * height > plan.maxPixels) {
      throw new TesseraError('TESSERA_E_IMAGE_TOO_LARGE', `${at} is ${width} × ${height} pixels (${width * height}), over the image step's maxPixels (${plan.maxPixels})`);
    }
    const box = placement(plan, width, height);
    try {
      let img = this.#sharp(bytes, { limitInputPixels: plan.maxPixels, autoOrient: true });
      if (meta.hasAlpha) img = img.flatten({ background: '#ffffff' });
      img = img.toColourspace(plan.channels === 'gray' ? 'b-w' : 'srgb');
      img = plan.resize === 'cover' ? img.resize(plan.width, plan.height, { fit: 'cover', position: 'centre', kernel: plan.kernel }) : img.resize(box.width, box.height, { fit: 'fill', kernel: plan.kernel });
      const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.width !== box.width || info.height !== box.height || info.channels !== plan.channelCount) {
        throw new Error(`sharp made ${info.width} × ${info.height} × ${info.channels}, not ${box.width} × ${box.height} × ${plan.channelCount}`);
      }
      return { data, ...box };
    } catch (err) {
      if (isTesseraError(err)) throw err;
      const message = errorMessage(err);
      if (/pixel limit/i.test(message)) throw new TesseraError('TESSERA_E_IMAGE_TOO_LARGE', `${at} is over the image step's maxPixels (${plan.maxPixels}): ${message}`, { cause: err });
      // a corrupt or truncated file fails here (sharp's failOn: 'warning'), not in the header
      throw new TesseraError('TESSERA_E_IMAGE_INVALID', `${at} cannot be decoded as ${formatName(format)}: ${message}`, { cause: err });
    }
  }

  /** The images, padded, normalised and laid out, in one buffer of the model's datatype. */
  #write(images: readonly Pixels[]): Float32Array | Uint16Array | Uint8Array {
    const { height: H, width: W, channelCount: C, layout, lut, pad } = this.#plan;
    const plane = H * W;
    const size = C * plane;
    const out = this.#plan.datatype === 'FP32' ? new Float32Array(images.length * size) : this.#plan.datatype === 'FP16' ? new Uint16Array(images.length * size) : new Uint8Array(images.length * size);
    // sharp gives RGB (or grey); channel k of the model reads source channel `source[k]`
    const source = this.#plan.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2];
    for (let b = 0; b < images.length; b++) {
      const img = images[b]!;
      const base = b * size;
      const covered = img.width === W && img.height === H;
      for (let c = 0; c < C; c++) {
        const table = lut[c]!;
        const src = source[c]!;
        if (!covered && pad[c] !== 0) {
          if (layout === 'nchw') out.fill(pad[c]!, base + c * plane, base + (c + 1) * plane);
          else for (let p = 0; p < plane; p++) out[base + p * C + c] = pad[c]!;
        }
        for (let y = 0; y < img.height; y++) {
          const row = y * img.width;
          const dstRow = (img.top + y) * W + img.left;
          if (layout === 'nchw') {
            const dst = base + c * plane + dstRow;
            for (let x = 0; x < img.width; x++) out[dst + x] = table[img.data[(row + x) * C + src]!]!;
          } else {
            const dst = base + dstRow * C + c;
            for (let x = 0; x < img.width; x++) out[dst + x * C] = table[img.data[(row + x) * C + src]!]!;
          }
        }
      }
    }
    return out;
  }
}

/**
 * Where an image of `width × height` goes in the model's `plan.width × plan.height`: its size
 * after the resize and its offset (the rest is padding). `pad` is PaddleOCR's resize_norm_img:
 * the height scaled to the model's, the width `ceil(H · w / h)` up to the model's, on the left.
 */
export function placement(plan: Pick<ImagePlan, 'resize' | 'width' | 'height'>, width: number, height: number): { width: number; height: number; left: number; top: number } {
  const { width: W, height: H } = plan;
  switch (plan.resize) {
    case 'pad': {
      // PaddleOCR's math.ceil(imgH * (w / float(h))), in the same order of operations
      const w = Math.min(W, Math.max(1, Math.ceil(H * (width / height))));
      return { width: w, height: H, left: 0, top: 0 };
    }
    case 'contain': {
      const s = Math.min(W / width, H / height);
      const w = Math.min(W, Math.max(1, Math.round(width * s)));
      const h = Math.min(H, Math.max(1, Math.round(height * s)));
      return { width: w, height: h, left: (W - w) >> 1, top: (H - h) >> 1 };
    }
    default:
      return { width: W, height: H, left: 0, top: 0 };
  }
}

/** The `image` processor's factory (registered by the core under `image`). */
export const imageProcessorFactory = {
  optionsSchema: IMAGE_OPTIONS_SCHEMA,
  async create(ctx: ProcessorContext): Promise<ImageProcessor> {
    const plan = imagePlan(ctx);
    return new ImageProcessor(plan, await loadSharp(), ctx.specs);
  },
} satisfies ProcessorFactory;
