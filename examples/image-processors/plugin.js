// @ts-check
/**
 * A Tessera plugin with two processors, in plain ESM JavaScript, for the PP-OCR text-orientation
 * classifier (`x` FP32 [N, 3, 48, 192] → `softmax_0.tmp_0` FP32 [N, 2]):
 *
 * - `pixels` (pre): accepts `image` UINT8 [N, 48, 192, 3] — pixels 0..255, rows of RGB, as image
 *   libraries hand them out — and produces the model's `x`, channels first, normalised as PP-OCR
 *   expects: (v / 255 − 0.5) / 0.5.
 * - `orientation-label` (post): turns the softmax into `label` BYTES [N] (`0` or `180`) and `score`
 *   FP32 [N], the winning probability; the raw softmax is dropped unless `keepRaw: true`.
 *
 *   models:
 *     text-orientation:
 *       path: ./cls.onnx
 *       preprocess: [pixels]
 *       postprocess: [orientation-label]
 *
 * The server then serves the model as `image` → `label`, `score`: that is what
 * `GET /v2/models/text-orientation` shows and what every request is checked against.
 */
import { TesseraError, definePlugin } from '@tessera/core';

/**
 * @typedef {import('@tessera/core').JSONSchema} JSONSchema
 * @typedef {import('@tessera/core').Processor} Processor
 * @typedef {import('@tessera/core').ProcessorContext} ProcessorContext
 * @typedef {import('@tessera/core').ProcessorFactory} ProcessorFactory
 * @typedef {import('@tessera/core').ProcessContext} ProcessContext
 * @typedef {import('@tessera/core').Tensor} Tensor
 * @typedef {import('@tessera/core').TensorSpec} TensorSpec
 */

/** The size of PP-OCR's classifier crops, and its normalisation. */
export const PIXELS_DEFAULTS = Object.freeze({ name: 'image', height: 48, width: 192, mean: 0.5, std: 0.5 });
/** What the classifier's two classes mean: the text is upright (0°) or upside down (180°). */
export const DEFAULT_LABELS = Object.freeze(['0', '180']);

/** @type {JSONSchema} */
export const PIXELS_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, default: PIXELS_DEFAULTS.name, description: 'Name of the input clients send.' },
    height: { type: 'integer', minimum: 1, maximum: 4096, default: PIXELS_DEFAULTS.height, description: 'Image height the step accepts (and the model gets).' },
    width: { type: 'integer', minimum: 1, maximum: 4096, default: PIXELS_DEFAULTS.width, description: 'Image width the step accepts.' },
    mean: { type: 'number', default: PIXELS_DEFAULTS.mean, description: 'Subtracted from v / 255.' },
    std: { type: 'number', exclusiveMinimum: 0, default: PIXELS_DEFAULTS.std, description: 'Divides (v / 255 − mean).' },
  },
};

/** @type {JSONSchema} */
export const LABEL_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    labels: {
      type: 'array',
      items: { type: 'string' },
      minItems: 2,
      default: [...DEFAULT_LABELS],
      description: 'One label per class, in the order of the softmax columns.',
    },
    keepRaw: { type: 'boolean', default: false, description: 'Also return the model\'s own output (the softmax) next to label and score.' },
  },
};

/**
 * The step does not fit the model it is listed for (a config mistake found when the version
 * loads). The server reports it as the version's load failure, prefixed with the model, the
 * version and the step: `m v1: postprocess step 'orientation-label' failed to start: …`.
 * @param {string} message
 */
function misfit(message) {
  return new TesseraError('TESSERA_E_MODEL_LOAD', message);
}

/**
 * @param {number | undefined} dim a dim of the model's spec (-1: any size)
 * @param {number} size what the step produces
 */
const fits = (dim, size) => dim === -1 || dim === size;

/**
 * `pixels`: HWC UINT8 images → the model's CHW FP32 input.
 * @implements {Processor}
 */
export class PixelsProcessor {
  /** @type {readonly TensorSpec[]} */
  specs;
  #input;
  #output;
  #h;
  #w;
  #scale;
  #offset;

  /**
   * @param {{ input: string, output: string, height: number, width: number, mean: number, std: number }} o
   */
  constructor(o) {
    this.#input = o.input;
    this.#output = o.output;
    this.#h = o.height;
    this.#w = o.width;
    // (v / 255 − mean) / std as one multiply-add per value
    this.#scale = 1 / (255 * o.std);
    this.#offset = -o.mean / o.std;
    this.specs = [{ name: o.input, datatype: 'UINT8', shape: [-1, o.height, o.width, 3] }];
  }

  /**
   * The core has checked the request against `specs` already; the checks here keep the step safe
   * when it is used on its own (and are what the conformance suite's invalid samples hit).
   * @param {readonly Tensor[]} tensors
   * @param {ProcessContext} _ctx
   * @returns {Tensor[]}
   */
  process(tensors, _ctx) {
    const image = tensors.find((t) => t.name === this.#input);
    if (!image) throw new TesseraError('TESSERA_E_INPUT_MISSING', `input '${this.#input}' is missing: send the image as UINT8 [N, ${this.#h}, ${this.#w}, 3]`);
    if (image.datatype !== 'UINT8') throw new TesseraError('TESSERA_E_INPUT_DATATYPE', `input '${this.#input}': expected UINT8 pixels 0..255, got ${image.datatype}`);
    const [n = 0, h, w, c] = image.shape;
    if (image.shape.length !== 4 || h !== this.#h || w !== this.#w || c !== 3) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `input '${this.#input}': expected [N, ${this.#h}, ${this.#w}, 3] (height, width, RGB), got [${image.shape.join(', ')}]; resize the crop first`);
    }
    const pixels = /** @type {Uint8Array} */ (image.data);
    const plane = h * w;
    const out = new Float32Array(n * 3 * plane);
    // HWC → CHW: out[b][ch][y][x] = in[b][y][x][ch]
    for (let b = 0; b < n; b++) {
      const src = b * plane * 3;
      const dst = b * plane * 3;
      for (let p = 0; p < plane; p++) {
        for (let ch = 0; ch < 3; ch++) out[dst + ch * plane + p] = /** @type {number} */ (pixels[src + p * 3 + ch]) * this.#scale + this.#offset;
      }
    }
    return [{ name: this.#output, datatype: 'FP32', shape: [n, 3, h, w], data: out }];
  }

  async close() {}
}

/** @type {ProcessorFactory} */
export const pixelsFactory = {
  optionsSchema: PIXELS_OPTIONS_SCHEMA,
  create(ctx) {
    const o = { ...PIXELS_DEFAULTS, ...ctx.options };
    const { height, width, mean, std } = /** @type {typeof PIXELS_DEFAULTS} */ (o);
    if (ctx.stage !== 'pre') throw misfit('it is a preprocess step');
    if (ctx.specs.length !== 1) throw misfit(`it produces one tensor, the model takes ${ctx.specs.length}`);
    const target = /** @type {TensorSpec} */ (ctx.specs[0]);
    const [, c, h, w] = target.shape;
    if (target.datatype !== 'FP32' || target.shape.length !== 4 || !fits(c, 3) || !fits(h, height) || !fits(w, width)) {
      throw misfit(`it produces FP32 [N, 3, ${height}, ${width}], the model takes ${target.datatype} [${target.shape.join(', ')}]`);
    }
    return new PixelsProcessor({ input: /** @type {string} */ (o.name), output: target.name, height, width, mean, std });
  },
};

/**
 * `orientation-label`: the softmax → `label` and `score` (and the softmax, with `keepRaw`).
 * @implements {Processor}
 */
export class OrientationLabelProcessor {
  /** @type {readonly TensorSpec[]} */
  specs;
  #raw;
  #labels;
  #keepRaw;

  /** @param {{ raw: TensorSpec, labels: readonly string[], keepRaw: boolean }} o */
  constructor(o) {
    this.#raw = o.raw.name;
    this.#labels = o.labels;
    this.#keepRaw = o.keepRaw;
    /** @type {TensorSpec[]} */
    const made = [
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'score', datatype: 'FP32', shape: [-1] },
    ];
    this.specs = o.keepRaw ? [...made, o.raw] : made;
  }

  /**
   * @param {readonly Tensor[]} tensors
   * @param {ProcessContext} _ctx
   * @returns {Tensor[]}
   */
  process(tensors, _ctx) {
    const raw = tensors.find((t) => t.name === this.#raw);
    const classes = this.#labels.length;
    // the model's output, not the client's input: a mismatch is the model's fault (500)
    if (!raw || raw.datatype !== 'FP32' || raw.shape.length !== 2 || raw.shape[1] !== classes) {
      throw new Error(`expected '${this.#raw}' FP32 [N, ${classes}] from the model, got ${raw ? `${raw.datatype} [${raw.shape.join(', ')}]` : 'nothing'}`);
    }
    const probs = /** @type {Float32Array} */ (raw.data);
    const n = raw.shape[0] ?? 0;
    /** @type {string[]} */
    const label = new Array(n);
    const score = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (/** @type {number} */ (probs[r * classes + k]) > /** @type {number} */ (probs[r * classes + best])) best = k;
      label[r] = /** @type {string} */ (this.#labels[best]);
      score[r] = /** @type {number} */ (probs[r * classes + best]);
    }
    /** @type {Tensor[]} */
    const out = [
      { name: 'label', datatype: 'BYTES', shape: [n], data: label },
      { name: 'score', datatype: 'FP32', shape: [n], data: score },
    ];
    return this.#keepRaw ? [...out, raw] : out;
  }

  async close() {}
}

/** @type {ProcessorFactory} */
export const orientationLabelFactory = {
  optionsSchema: LABEL_OPTIONS_SCHEMA,
  create(ctx) {
    const labels = /** @type {string[]} */ (ctx.options['labels'] ?? DEFAULT_LABELS);
    const keepRaw = ctx.options['keepRaw'] === true;
    if (ctx.stage !== 'post') throw misfit('it is a postprocess step');
    // the softmax: the one FP32 output whose last dim is the number of labels
    const raw = ctx.specs.filter((s) => s.datatype === 'FP32' && s.shape.length === 2 && fits(s.shape[1], labels.length));
    if (raw.length !== 1) {
      throw misfit(`it needs one FP32 [N, ${labels.length}] output, the model has ${ctx.specs.map((s) => `${s.name} ${s.datatype} [${s.shape.join(', ')}]`).join(', ')}`);
    }
    return new OrientationLabelProcessor({ raw: /** @type {TensorSpec} */ (raw[0]), labels, keepRaw });
  },
};

/** The plugin: what `plugins: [./plugin.js]` loads. */
export default definePlugin({
  name: 'tessera-example-image-processors',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerProcessor('pixels', pixelsFactory);
    ctx.registerProcessor('orientation-label', orientationLabelFactory);
  },
});
