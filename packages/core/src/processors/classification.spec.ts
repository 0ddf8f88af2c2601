/**
 * The built-in `classification` post step: the processor conformance suite, then softmax (auto,
 * on, off), top-k order and ties, labels from the config or a file, per-request top_k, and the
 * models it refuses to start for.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelMetadata } from '../contracts/backend.js';
import type { ProcessorContext } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { numberToHalf } from '../contracts/tensor.js';
import { validateAgainstSchema } from '../config/validate.js';
import { isTesseraError } from '../errors.js';
import { describeProcessorConformance, testProcessContext } from '../testing/processor-conformance.js';
import { silentLogger } from '../testing/silent-logger.js';
import { classificationProcessorFactory } from './classification.js';

function model(outputs: TensorSpec[]): ModelMetadata {
  return { platform: 'test', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs, maxBatchSize: 8 };
}

const CLS = model([{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }]);
const FIVE = model([{ name: 'logits', datatype: 'FP32', shape: [-1, 5] }]);

const scores = (rows: number[][], name = 'softmax_0.tmp_0'): Tensor<'FP32'> => ({ name, datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) });

async function step(options: Record<string, unknown>, metadata: ModelMetadata = CLS, configDir?: string) {
  const validated = validateAgainstSchema<Record<string, unknown>>(classificationProcessorFactory.optionsSchema, structuredClone(options), 'postprocess[0]');
  const ctx: ProcessorContext = { model: 'm', version: '1', stage: 'post', options: validated, specs: metadata.outputs, metadata, logger: silentLogger(), ...(configDir ? { configDir } : {}) };
  return classificationProcessorFactory.create(ctx);
}

async function creationError(options: Record<string, unknown>, metadata: ModelMetadata = CLS, configDir?: string): Promise<{ code: string; message: string }> {
  try {
    await step(options, metadata, configDir);
  } catch (err) {
    if (isTesseraError(err)) return err;
    throw err;
  }
  throw new Error('expected the step to refuse the model');
}

const softmax = (row: number[]): number[] => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describeProcessorConformance({
  name: 'classification (PP-OCR text orientation: 0 / 180)',
  factory: classificationProcessorFactory,
  stage: 'post',
  options: { labels: ['0', '180'] },
  metadata: CLS,
  samples: [[scores([[0.9, 0.1]])], [scores([[0.2, 0.8], [0.51, 0.49], [0.5, 0.5]])]],
  expected: (sample) => {
    const p = sample[0]!.data as Float32Array;
    const rows = sample[0]!.shape[0]!;
    // ties go to the lower class
    const best = Array.from({ length: rows }, (_, r) => (p[r * 2 + 1]! > p[r * 2]! ? 1 : 0));
    return [
      { name: 'label', datatype: 'BYTES', shape: [rows, 1], data: best.map((b) => (b ? '180' : '0')) },
      { name: 'score', datatype: 'FP32', shape: [rows, 1], data: Float32Array.from(best.map((b, r) => p[r * 2 + b]!)) },
    ];
  },
});

describeProcessorConformance({
  name: 'classification, top 3 of 5 logits',
  factory: classificationProcessorFactory,
  stage: 'post',
  options: { topK: 3 },
  metadata: FIVE,
  samples: [[scores([[1, 5, 2, 4, 3]], 'logits')]],
});

describe('classification', () => {
  it('should serve label BYTES and score FP32 [-1, k] in place of the scores, and name them as predictions', async () => {
    const s = await step({ topK: 2 }, FIVE);
    expect(s.specs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1, 2] },
      { name: 'score', datatype: 'FP32', shape: [-1, 2] },
    ]);
    expect(s.predictions).toEqual({ label: 'label', score: 'score' });
    const named = await step({ names: { label: 'class', score: 'p' } }, FIVE);
    expect(named.predictions).toEqual({ label: 'class', score: 'p' });
    expect(named.specs.map((x) => x.name)).toEqual(['class', 'p']);
  });

  it('auto: should apply softmax to rows of logits, and leave rows that are distributions as they are', async () => {
    const s = await step({ topK: 5 }, FIVE);
    const logits = [2, -1, 0.5, 0, 3];
    const distribution = [0.1, 0.2, 0.3, 0.15, 0.25];
    const [label, score] = s.process([scores([logits, distribution], 'logits')], testProcessContext({ stage: 'post' })) as [Tensor, Tensor];
    const p = softmax(logits);
    expect(label.data.slice(0, 5)).toEqual(['4', '0', '2', '3', '1']);
    [4, 0, 2, 3, 1].forEach((c, j) => expect((score.data as Float32Array)[j]).toBeCloseTo(p[c]!, 6));
    expect(label.data.slice(5)).toEqual(['2', '4', '1', '3', '0']);
    expect([...(score.data as Float32Array).subarray(5)]).toEqual([0.3, 0.25, 0.2, 0.15, 0.1].map(Math.fround));
  });

  it('true / false: should always / never apply softmax', async () => {
    const row = [0.1, 0.2, 0.3, 0.15, 0.25];
    const always = (await step({ softmax: true }, FIVE)).process([scores([row], 'logits')], testProcessContext({ stage: 'post' }));
    expect((always[1]!.data as Float32Array)[0]).toBeCloseTo(softmax(row)[2]!, 6);
    const never = (await step({ softmax: false }, FIVE)).process([scores([[7, -3, 1, 0, 2]], 'logits')], testProcessContext({ stage: 'post' }));
    expect([...(never[1]!.data as Float32Array)]).toEqual([7]);
  });

  it('should rank ties by the lower class, and NaN last', async () => {
    const s = await step({ topK: 3, softmax: false }, FIVE);
    const out = s.process([scores([[0.5, 0.9, 0.9, Number.NaN, 0.1]], 'logits')], testProcessContext({ stage: 'post' }));
    expect(out[0]!.data).toEqual(['1', '2', '0']);
    const nan = s.process([scores([[Number.NaN, Number.NaN, 0.2, Number.NaN, Number.NaN]], 'logits')], testProcessContext({ stage: 'post' }));
    expect(nan[0]!.data).toEqual(['2', '0', '1']);
  });

  it('should keep leading dims ([N, T, C] → [N, T, k]) and pass other outputs through', async () => {
    const m = model([
      { name: 'embedding', datatype: 'FP32', shape: [-1, 3] },
      { name: 'logits', datatype: 'FP32', shape: [-1, 2, 3] },
    ]);
    const s = await step({ output: 'logits', labels: ['a', 'b', 'c'] }, m);
    expect(s.specs.map((x) => `${x.name} [${x.shape.join(', ')}]`)).toEqual(['embedding [-1, 3]', 'label [-1, 2, 1]', 'score [-1, 2, 1]']);
    const embedding: Tensor = { name: 'embedding', datatype: 'FP32', shape: [1, 3], data: Float32Array.of(1, 2, 3) };
    const logits: Tensor = { name: 'logits', datatype: 'FP32', shape: [1, 2, 3], data: Float32Array.of(0, 0, 9, 9, 0, 0) };
    const out = s.process([embedding, logits], testProcessContext({ stage: 'post' }));
    expect(out[0]).toBe(embedding);
    expect(out[1]).toMatchObject({ name: 'label', shape: [1, 2, 1], data: ['c', 'a'] });
  });

  it('should read FP16 scores', async () => {
    const m = model([{ name: 'p', datatype: 'FP16', shape: [-1, 2] }]);
    const s = await step({}, m);
    const out = s.process([{ name: 'p', datatype: 'FP16', shape: [1, 2], data: Uint16Array.of(numberToHalf(0.25), numberToHalf(0.75)) }], testProcessContext({ stage: 'post' }));
    expect(out[0]!.data).toEqual(['1']);
    expect((out[1]!.data as Float32Array)[0]).toBe(0.75);
  });

  describe('labels', () => {
    it('should read labelsFile, one label per line, relative to the config folder', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-labels-'));
      await writeFile(path.join(dir, 'orientation.txt'), '0\r\n180\r\n');
      const s = await step({ labelsFile: 'orientation.txt' }, CLS, dir);
      expect(s.process([scores([[0.3, 0.7]])], testProcessContext({ stage: 'post' }))[0]!.data).toEqual(['180']);
      await writeFile(path.join(dir, 'gap.txt'), 'a\n\nc\n');
      expect(await creationError({ labelsFile: 'gap.txt' }, CLS, dir)).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message: `labelsFile: line 2 of ${path.join(dir, 'gap.txt')} is empty; one label per line` });
      expect(await creationError({ labelsFile: 'missing.txt' }, CLS, dir)).toMatchObject({ message: expect.stringContaining(`labelsFile: cannot read ${path.join(dir, 'missing.txt')}`) });
    });

    it('should name classes by their index without labels', async () => {
      const s = await step({ topK: 2 }, FIVE);
      expect(s.process([scores([[0, 0, 0, 5, 4]], 'logits')], testProcessContext({ stage: 'post' }))[0]!.data).toEqual(['3', '4']);
    });

    it('should fail (500) when a dynamic class count does not match the labels', async () => {
      const s = await step({ labels: ['a', 'b'] }, model([{ name: 'p', datatype: 'FP32', shape: [-1, -1] }]));
      expect(() => s.process([scores([[1, 2, 3]], 'p')], testProcessContext({ stage: 'post' }))).toThrow("'p' has 3 classes, the step has 2 labels");
    });
  });

  describe('parameters.top_k', () => {
    it('should answer the k a request asks for, up to maxTopK', async () => {
      const s = await step({ topK: 1, maxTopK: 4 }, FIVE);
      expect(s.specs[0]!.shape).toEqual([-1, -1]);
      const row = scores([[1, 5, 2, 4, 3]], 'logits');
      expect(s.process([row], testProcessContext({ stage: 'post' }))[0]).toMatchObject({ shape: [1, 1], data: ['1'] });
      expect(s.process([row], testProcessContext({ stage: 'post', parameters: { top_k: 3 } }))[0]).toMatchObject({ shape: [1, 3], data: ['1', '3', '4'] });
      for (const top_k of [0, 5, 2.5, '2']) {
        expect(() => s.process([row], testProcessContext({ stage: 'post', parameters: { top_k } })), String(top_k)).toThrow(expect.objectContaining({ code: 'TESSERA_E_REQUEST_INVALID', message: `parameters.top_k must be an integer from 1 to 4, got ${JSON.stringify(top_k)}` }));
      }
    });

    it('should refuse a k other than topK when the step fixes it', async () => {
      const s = await step({ topK: 2 }, FIVE);
      expect(() => s.process([scores([[1, 2, 3, 4, 5]], 'logits')], testProcessContext({ stage: 'post', parameters: { top_k: 3 } }))).toThrow(
        expect.objectContaining({ code: 'TESSERA_E_REQUEST_INVALID', message: "parameters.top_k must be 2 (the model's classification step fixes it: raise maxTopK to let requests choose), got 3" }),
      );
      expect(s.process([scores([[1, 2, 3, 4, 5]], 'logits')], testProcessContext({ stage: 'post', parameters: { top_k: 2 } }))[0]!.shape).toEqual([1, 2]);
    });
  });

  describe('fitting the model', () => {
    it.each([
      ['there are more classes than labels', { labels: ['a', 'b'] }, FIVE, 'logits FP32 [-1, 5] has 5 classes but 2 labels are given: give one per class'],
      ['there are more labels than classes', { labels: ['a', 'b', 'c'] }, CLS, 'softmax_0.tmp_0 FP32 [-1, 2] has 2 classes but 3 labels are given'],
      ['topK is over the classes', { topK: 3 }, CLS, 'topK is 3, but there are 2 classes'],
      ['maxTopK is below topK', { topK: 3, maxTopK: 2 }, FIVE, 'maxTopK (2) is below topK (3)'],
      ['both labels and labelsFile are given', { labels: ['a', 'b'], labelsFile: 'l.txt' }, CLS, 'give labels or labelsFile, not both'],
      ['the model has several outputs and output is not given', {}, model([{ name: 'a', datatype: 'FP32', shape: [-1, 2] }, { name: 'b', datatype: 'FP32', shape: [-1, 3] }]), 'the model has 2 outputs (a FP32 [-1, 2]; b FP32 [-1, 3]); say which holds the class scores with output: <name>'],
      ['output names no output', { output: 'probs' }, CLS, "output: the model has no output 'probs' (its outputs: softmax_0.tmp_0)"],
      ['the output is not scores', {}, model([{ name: 'ids', datatype: 'INT64', shape: [-1, 2] }]), 'it reads class scores (FP32, FP16 or FP64, last dim the classes); ids INT64 [-1, 2] is not'],
      ['a served name is another output', { output: 'a', names: { label: 'b' } }, model([{ name: 'a', datatype: 'FP32', shape: [-1, 2] }, { name: 'b', datatype: 'FP32', shape: [-1, 3] }]), "names: 'b' is another output of the model; choose another name"],
    ])('should refuse to start when %s', async (_label, options, metadata, message) => {
      expect(await creationError(options, metadata)).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message });
    });

    it('should refuse to be a preprocess step, and options outside its schema', async () => {
      const ctx: ProcessorContext = { model: 'm', version: '1', stage: 'pre', options: { softmax: 'auto', topK: 1, names: { label: 'label', score: 'score' } }, specs: CLS.inputs, metadata: CLS, logger: silentLogger() };
      await expect(classificationProcessorFactory.create(ctx)).rejects.toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message: 'it is a postprocess step (list it under postprocess)' });
      for (const bad of [{ topK: 0 }, { softmax: 'yes' }, { labels: [] }, { names: { label: '' } }, { top: 1 }]) {
        expect(() => validateAgainstSchema(classificationProcessorFactory.optionsSchema, bad, 'models.m.postprocess[0]'), JSON.stringify(bad)).toThrow(/models\.m\.postprocess\[0\]/);
      }
    });
  });
});
