import type { JSONSchema } from '../contracts/backend.js';
import type { ProcessorContext } from '../contracts/processor.js';
import type { TensorSpec } from '../contracts/tensor.js';
import { numberToHalf } from '../contracts/tensor.js';
import { SIZE_FORMAT } from '../config/schema.js';
import { parseSize } from '../config/units.js';
import { TesseraError } from '../errors.js';
import type { ImageFormat } from './image-bytes.js';
import { DEFAULT_IMAGE_FORMATS, IMAGE_FORMATS } from './image-bytes.js';

export type ResizeMode = 'pad' | 'stretch' | 'cover' | 'contain';
export type ChannelOrder = 'rgb' | 'bgr' | 'gray';
export type ImageLayout = 'nchw' | 'nhwc';
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
type ImageDatatype = 'FP32' | 'FP16' | 'UINT8';

const perChannel = (description: string, defaultValue: number, min?: { exclusiveMinimum?: number; minimum?: number }): JSONSchema => ({
  anyOf: [
    { type: 'number', ...min },
    { type: 'array', items: { type: 'number', ...min }, minItems: 1, maxItems: 3 },
  ],
  default: defaultValue,
  description,
});

/** The `image` step's options (docs/processors.md lists them with their defaults). */
export const IMAGE_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    input: { type: 'string', minLength: 1, description: "The model input the step fills. Default: the model's only input." },
    name: { type: 'string', minLength: 1, default: 'image', description: 'The name of the served input clients send images in (BYTES, one encoded image per element).' },
    size: {
      type: 'array',
      items: { type: 'integer', minimum: 1, maximum: 16384 },
      minItems: 2,
      maxItems: 2,
      description: "[height, width] the model gets. Default: the model input's fixed dims; required when they are dynamic.",
    },
    resize: {
      enum: ['pad', 'stretch', 'cover', 'contain'],
      default: 'stretch',
      description:
        'pad: keep the aspect ratio, scale to the height, squeeze to the width when wider, pad on the right (PaddleOCR); contain: letterbox, centred; cover: fill and crop, centred; stretch: ignore the aspect ratio.',
    },
    kernel: { enum: ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'], default: 'linear', description: 'Interpolation of the resize (sharp kernels; linear is close to cv2.INTER_LINEAR).' },
    padValue: {
      anyOf: [
        { type: 'number', minimum: 0, maximum: 255 },
        { type: 'array', items: { type: 'number', minimum: 0, maximum: 255 }, minItems: 1, maxItems: 3 },
      ],
      description: 'Pixel value (0..255, per channel or one for all) of the padding, normalised like the image. Default: 0 in the model input, after normalisation (what PaddleOCR pads with).',
    },
    channels: { enum: ['rgb', 'bgr', 'gray'], description: 'Channel order the model expects. Default: gray when the input has one channel, else rgb.' },
    layout: { enum: ['nchw', 'nhwc'], description: "Where the channels are. Default: from the input's shape (channels-first when dim 1 is 1 or 3, channels-last when the last dim is)." },
    scale: { type: 'number', exclusiveMinimum: 0, default: 255, description: 'Pixels (0..255) are divided by it first.' },
    mean: perChannel('Subtracted after scaling: one value for every channel, or one per channel (in the order of `channels`).', 0),
    std: perChannel('Divides after the mean: one value, or one per channel.', 1, { exclusiveMinimum: 0 }),
    formats: {
      type: 'array',
      items: { enum: [...IMAGE_FORMATS] },
      minItems: 1,
      uniqueItems: true,
      default: [...DEFAULT_IMAGE_FORMATS],
      description: 'Image formats accepted; anything else is 400 TESSERA_E_IMAGE_FORMAT (SVG never is).',
    },
    maxPixels: { type: 'integer', minimum: 1, default: 40_000_000, description: "Largest width × height, read from the image's header before it is decoded (sharp's limitInputPixels)." },
    maxBytes: { type: ['integer', 'string'], minimum: 1, format: SIZE_FORMAT, default: '16MiB', description: 'Largest encoded image (bytes, after base64 decoding).' },
  },
};

/** The options as the registry validated them (defaults filled in). */
interface ImageOptions {
  input?: string;
  name: string;
  size?: [number, number];
  resize: ResizeMode;
  kernel: ResizeKernel;
  padValue?: number | number[];
  channels?: ChannelOrder;
  layout?: ImageLayout;
  scale: number;
  mean: number | number[];
  std: number | number[];
  formats: ImageFormat[];
  maxPixels: number;
  maxBytes: number | string;
}

/** What the step does, worked out once when the version loads. */
export interface ImagePlan {
  /** The model input filled. */
  target: TensorSpec;
  /** What clients send: BYTES, one image per element. */
  served: TensorSpec;
  datatype: ImageDatatype;
  /** Whether the model input has a leading dim counting images (rank 4); else one image (rank 3). */
  counted: boolean;
  height: number;
  width: number;
  channels: ChannelOrder;
  /** 1 or 3. */
  channelCount: number;
  layout: ImageLayout;
  resize: ResizeMode;
  kernel: ResizeKernel;
  /** Per channel (of `channels`), the model value of each pixel value 0..255 (FP16: half bits). */
  lut: (Float32Array | Uint16Array | Uint8Array)[];
  /** Per channel, the model value of the padding. */
  pad: number[];
  formats: ReadonlySet<ImageFormat>;
  maxPixels: number;
  maxBytes: number;
}

/** The step does not fit the model (found when the version loads; the core names the model, version and step in front). */
function misfit(_ctx: ProcessorContext, why: string): TesseraError {
  return new TesseraError('TESSERA_E_CONFIG_INVALID', why);
}

const dims = (spec: TensorSpec): string => `${spec.name} ${spec.datatype} [${spec.shape.join(', ')}]`;
const isChannelDim = (d: number | undefined): boolean => d === 1 || d === 3;
const fits = (dim: number | undefined, size: number): boolean => dim === -1 || dim === size;

function channelValues(ctx: ProcessorContext, key: string, value: number | number[], count: number): number[] {
  const list = typeof value === 'number' ? [value] : value;
  if (list.length === 1) return new Array<number>(count).fill(list[0]!);
  if (list.length !== count) throw misfit(ctx, `${key} has ${list.length} values; give one, or one per channel (${count})`);
  return list;
}

function layoutOf(ctx: ProcessorContext, image: readonly number[], target: TensorSpec, asked: ImageLayout | undefined): ImageLayout {
  if (asked) return asked;
  const first = isChannelDim(image[0]);
  const last = isChannelDim(image[2]);
  if (first !== last) return first ? 'nchw' : 'nhwc';
  throw misfit(ctx, `cannot tell from ${dims(target)} where its channels are; set layout: nchw or nhwc`);
}

/**
 * Works out the step for the model input it fills: which input, its size, layout, channels and
 * datatype, and the served `image` input. A step that cannot fit the model is a config error.
 */
export function imagePlan(ctx: ProcessorContext): ImagePlan {
  const o = ctx.options as unknown as ImageOptions;
  if (ctx.stage !== 'pre') throw misfit(ctx, 'it is a preprocess step (list it under preprocess)');
  let target: TensorSpec | undefined;
  if (o.input !== undefined) {
    target = ctx.specs.find((s) => s.name === o.input);
    if (!target) throw misfit(ctx, `input: the model has no input '${o.input}' (its inputs: ${ctx.specs.map((s) => s.name).join(', ')})`);
  } else {
    if (ctx.specs.length !== 1) throw misfit(ctx, `the model has ${ctx.specs.length} inputs (${ctx.specs.map(dims).join('; ')}); say which one the image fills with input: <name>`);
    target = ctx.specs[0]!;
  }
  if (o.name !== target.name && ctx.specs.some((s) => s.name === o.name)) throw misfit(ctx, `name: '${o.name}' is another input of the model; choose another name`);
  const datatype = target.datatype;
  if (datatype !== 'FP32' && datatype !== 'FP16' && datatype !== 'UINT8') throw misfit(ctx, `it fills FP32, FP16 or UINT8 inputs; ${dims(target)} is ${datatype}`);
  const rank = target.shape.length;
  if (rank !== 3 && rank !== 4) throw misfit(ctx, `it fills an image input of rank 4 ([N, C, H, W] or [N, H, W, C]) or 3 (one image); ${dims(target)} has rank ${rank}`);
  const counted = rank === 4;
  const image = counted ? target.shape.slice(1) : target.shape;
  const layout = layoutOf(ctx, image, target, o.layout);
  const [c, h, w] = layout === 'nchw' ? [image[0]!, image[1]!, image[2]!] : [image[2]!, image[0]!, image[1]!];
  const channels: ChannelOrder = o.channels ?? (c === 1 ? 'gray' : 'rgb');
  const channelCount = channels === 'gray' ? 1 : 3;
  if (!fits(c, channelCount)) throw misfit(ctx, `channels: ${channels} makes ${channelCount} channel(s), ${dims(target)} has ${c} (${layout})`);
  let height: number;
  let width: number;
  if (o.size) {
    [height, width] = o.size;
    if (!fits(h, height) || !fits(w, width)) throw misfit(ctx, `size: [${height}, ${width}] does not fit ${dims(target)} (${layout}: height ${h}, width ${w})`);
  } else {
    if (h === -1 || w === -1) throw misfit(ctx, `${dims(target)} has a dynamic height or width: give size: [height, width]`);
    [height, width] = [h, w];
  }
  const mean = channelValues(ctx, 'mean', o.mean, channelCount);
  const std = channelValues(ctx, 'std', o.std, channelCount);
  if (std.some((s) => s <= 0)) throw misfit(ctx, 'std: every value must be > 0');
  const pads = o.padValue === undefined ? undefined : channelValues(ctx, 'padValue', o.padValue, channelCount);
  let lut: ImagePlan['lut'];
  let pad: number[];
  if (datatype === 'UINT8') {
    // the pixels as they are: a UINT8 model normalises inside
    if (mean.some((m) => m !== 0) || std.some((s) => s !== 1)) throw misfit(ctx, `${dims(target)} takes pixels 0..255 as they are: mean and std do not apply (leave them out)`);
    const identity = Uint8Array.from({ length: 256 }, (_, i) => i);
    lut = mean.map(() => identity);
    pad = pads ? pads.map((p) => Math.round(p)) : mean.map(() => 0);
  } else {
    // (p / scale − mean) / std, in double precision, rounded once to the datatype
    const value = (p: number, ch: number): number => (p / o.scale - mean[ch]!) / std[ch]!;
    const half = datatype === 'FP16';
    lut = mean.map((_, ch) => (half ? Uint16Array.from({ length: 256 }, (_, p) => numberToHalf(value(p, ch))) : Float32Array.from({ length: 256 }, (_, p) => value(p, ch))));
    pad = mean.map((_, ch) => {
      const v = pads ? value(pads[ch]!, ch) : 0;
      return half ? numberToHalf(v) : Math.fround(v);
    });
  }
  const served: TensorSpec = { name: o.name, datatype: 'BYTES', shape: counted ? [target.shape[0]!] : [], content: 'binary' };
  return {
    target,
    served,
    datatype,
    counted,
    height,
    width,
    channels,
    channelCount,
    layout,
    resize: o.resize,
    kernel: o.kernel,
    lut,
    pad,
    formats: new Set(o.formats),
    maxPixels: o.maxPixels,
    maxBytes: parseSize(o.maxBytes, 'maxBytes'),
  };
}
