/**
 * The image-processors example's two steps, in process: the processor conformance suite of
 * `@tessera/core/testing` on each, then the normalisation, the labels and the options (the
 * example.int.spec.ts then serves them with the CLI and compares with onnxruntime-node).
 */
import { describe, expect, it } from 'vitest';
import type { ModelMetadata, ProcessorContext, ProcessorFactory, Tensor } from '@tessera/core';
import { validateAgainstSchema } from '@tessera/core';
import { describeProcessorConformance, diffTensorLists, registerTestPlugins, silentLogger, testProcessContext } from '@tessera/core/testing';
import plugin, { LABEL_OPTIONS_SCHEMA, PIXELS_OPTIONS_SCHEMA, orientationLabelFactory, pixelsFactory } from './plugin.js';

/** The PP-OCR classifier as the backend reports it. */
const CLS: ModelMetadata = {
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
  outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
  maxBatchSize: 16,
};

/** `n` HWC images with pixels that differ per position, channel and seed. */
function image(n: number, h = 48, w = 192, seed = 0, name = 'image'): Tensor<'UINT8'> {
  const data = new Uint8Array(n * h * w * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 7 + (i % 3) * 85) % 256;
  return { name, datatype: 'UINT8', shape: [n, h, w, 3], data };
}

/** The reference, written the slow way: x[b][c][y][x] = (img[b][y][x][c] / 255 − mean) / std. */
function normalise(img: Tensor, mean = 0.5, std = 0.5): Tensor {
  const [n, h, w] = img.shape as [number, number, number, number];
  const x = new Float32Array(n * 3 * h * w);
  for (let b = 0; b < n; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++)
        for (let col = 0; col < w; col++) x[((b * 3 + c) * h + y) * w + col] = ((img.data[((b * h + y) * w + col) * 3 + c] as number) / 255 - mean) / std;
  return { name: 'x', datatype: 'FP32', shape: [n, 3, h, w], data: x };
}

function softmax(rows: number[][]): Tensor<'FP32'> {
  return { name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) };
}

function context(factory: 'pre' | 'post', options: Record<string, unknown> = {}, metadata: ModelMetadata = CLS): ProcessorContext {
  return { model: 'cls', version: '1', stage: factory, options, specs: factory === 'pre' ? metadata.inputs : metadata.outputs, metadata, logger: silentLogger() };
}

async function creationError(factory: ProcessorFactory, ctx: ProcessorContext): Promise<Error> {
  try {
    await factory.create(ctx);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected create to throw');
}

describeProcessorConformance({
  name: 'pixels (examples/image-processors)',
  factory: pixelsFactory,
  stage: 'pre',
  metadata: CLS,
  samples: [[image(1)], [image(3, 48, 192, 5)]],
  invalid: [
    [image(1, 32, 192)], // wrong height
    [image(1, 48, 100)], // wrong width
    [{ name: 'image', datatype: 'UINT8', shape: [1, 48, 192, 1], data: new Uint8Array(48 * 192) }], // grey, one channel
    [{ name: 'image', datatype: 'FP32', shape: [1, 48, 192, 3], data: new Float32Array(48 * 192 * 3) }], // floats, not pixels
    [{ name: 'picture', datatype: 'UINT8', shape: [1, 48, 192, 3], data: new Uint8Array(48 * 192 * 3) }], // another name
  ],
  expected: (sample) => [normalise(sample[0]!)],
  tolerance: 1e-6,
});

describeProcessorConformance({
  name: 'pixels, 32 × 100 crops, ImageNet-like mean and std',
  factory: pixelsFactory,
  stage: 'pre',
  options: { height: 32, width: 100, mean: 0.45, std: 0.25, name: 'crop' },
  metadata: CLS,
  samples: [[image(2, 32, 100, 1, 'crop')]],
  invalid: [[image(1, 48, 192, 0, 'crop')]],
  expected: (sample) => [normalise(sample[0]!, 0.45, 0.25)],
  tolerance: 1e-5,
});

describeProcessorConformance({
  name: 'orientation-label (examples/image-processors)',
  factory: orientationLabelFactory,
  stage: 'post',
  metadata: CLS,
  samples: [[softmax([[0.9, 0.1]])], [softmax([[0.2, 0.8], [0.51, 0.49], [0.5, 0.5]])]],
  expected: (sample) => {
    const rows = sample[0]!.shape[0]!;
    const p = sample[0]!.data as Float32Array;
    const label = Array.from({ length: rows }, (_, r) => (p[r * 2 + 1]! > p[r * 2]! ? '180' : '0'));
    const score = Float32Array.from({ length: rows }, (_, r) => Math.max(p[r * 2]!, p[r * 2 + 1]!));
    return [
      { name: 'label', datatype: 'BYTES', shape: [rows], data: label },
      { name: 'score', datatype: 'FP32', shape: [rows], data: score },
    ];
  },
});

describeProcessorConformance({
  name: 'orientation-label, keepRaw',
  factory: orientationLabelFactory,
  stage: 'post',
  options: { keepRaw: true },
  metadata: CLS,
  samples: [[softmax([[0.3, 0.7]])]],
});

describe('pixels', () => {
  it('should put channels first and scale 0 → -1, 255 → 1, as PP-OCR expects', async () => {
    const step = await pixelsFactory.create(context('pre', { height: 1, width: 2 }));
    // one image of 1 × 2 pixels: black, then (255, 128, 0)
    const out = await step.process([{ name: 'image', datatype: 'UINT8', shape: [1, 1, 2, 3], data: Uint8Array.from([0, 0, 0, 255, 128, 0]) }], testProcessContext());
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 3, 1, 2] });
    // R plane, G plane, B plane
    const want = [-1, 1, -1, 128 / 127.5 - 1, -1, -1];
    [...(out[0]!.data as Float32Array)].forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
  });

  it('should declare what it accepts, named as the option says', async () => {
    expect((await pixelsFactory.create(context('pre'))).specs).toEqual([{ name: 'image', datatype: 'UINT8', shape: [-1, 48, 192, 3] }]);
  });

  it('should say which dims are wrong', async () => {
    const step = await pixelsFactory.create(context('pre'));
    expect(() => step.process([image(1, 32, 192)], testProcessContext())).toThrow("input 'image': expected [N, 48, 192, 3] (height, width, RGB), got [1, 32, 192, 3]; resize the crop first");
  });

  it('should refuse to be created for a model it does not fit, with both shapes', async () => {
    const fixed: ModelMetadata = { ...CLS, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 32, 320] }] };
    const err = await creationError(pixelsFactory, context('pre', {}, fixed));
    expect(err).toMatchObject({ code: 'TESSERA_E_MODEL_LOAD' });
    expect(err.message).toBe('it produces FP32 [N, 3, 48, 192], the model takes FP32 [-1, 3, 32, 320]');
    expect((await creationError(pixelsFactory, context('post'))).message).toContain('it is a preprocess step');
  });
});

describe('orientation-label', () => {
  it('should label each row with its most likely class and its probability', async () => {
    const step = await orientationLabelFactory.create(context('post'));
    const out = await step.process([softmax([[0.93, 0.07], [0.1, 0.9]])], testProcessContext({ stage: 'post' }));
    expect(diffTensorLists(out, [
      { name: 'label', datatype: 'BYTES', shape: [2], data: ['0', '180'] },
      { name: 'score', datatype: 'FP32', shape: [2], data: Float32Array.from([0.93, 0.9]) },
    ])).toBeUndefined();
  });

  it('should keep the softmax with keepRaw, and take other labels', async () => {
    const three: ModelMetadata = { ...CLS, outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 3] }] };
    const step = await orientationLabelFactory.create(context('post', { labels: ['0', '90', '180'], keepRaw: true }, three));
    expect(step.specs!.map((s) => s.name)).toEqual(['label', 'score', 'probs']);
    const probs: Tensor = { name: 'probs', datatype: 'FP32', shape: [1, 3], data: Float32Array.from([0.2, 0.5, 0.3]) };
    const out = await step.process([probs], testProcessContext({ stage: 'post' }));
    expect(out.map((t) => [t.name, [...t.data]])).toEqual([['label', ['90']], ['score', [0.5]], ['probs', [...probs.data]]]);
  });

  it('should refuse a model without a matching softmax output', async () => {
    const err = await creationError(orientationLabelFactory, context('post', { labels: ['a', 'b', 'c'] }));
    expect(err.message).toBe('it needs one FP32 [N, 3] output, the model has softmax_0.tmp_0 FP32 [-1, 2]');
  });

  it('should fail (a 500, not the client) when the model returns something else', async () => {
    const step = await orientationLabelFactory.create(context('post'));
    expect(() => step.process([{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }], testProcessContext({ stage: 'post' }))).toThrow(/FP32 \[N, 2\] from the model/);
  });
});

describe('options', () => {
  it('should fill in defaults and refuse typos and bad values with their path, as the server does', () => {
    expect(validateAgainstSchema(PIXELS_OPTIONS_SCHEMA, {}, 'models.m.preprocess[0]')).toEqual({ name: 'image', height: 48, width: 192, mean: 0.5, std: 0.5 });
    expect(() => validateAgainstSchema(PIXELS_OPTIONS_SCHEMA, { hieght: 48 }, 'models.m.preprocess[0]')).toThrow(/hieght/);
    expect(() => validateAgainstSchema(PIXELS_OPTIONS_SCHEMA, { std: 0 }, 'models.m.preprocess[0]')).toThrow(/models\.m\.preprocess\[0\]\.std/);
    expect(validateAgainstSchema(LABEL_OPTIONS_SCHEMA, {}, 'models.m.postprocess[0]')).toEqual({ labels: ['0', '180'], keepRaw: false });
    expect(() => validateAgainstSchema(LABEL_OPTIONS_SCHEMA, { labels: ['up'] }, 'models.m.postprocess[0]')).toThrow(/labels/);
  });

  it('should register both steps', async () => {
    const regs = await registerTestPlugins([plugin]);
    expect(regs.names('processor').sort()).toEqual(['orientation-label', 'pixels']);
  });
});
