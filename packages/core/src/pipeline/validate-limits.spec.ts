/** `server.limits` on tensor requests: element counts checked on the shapes, before any data is decoded. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import type { Signature } from './types.js';
import { checkElementCount, validateInferRequest } from './validate.js';

const limits = { maxTensorElements: 1000, maxRequestElements: 1500 };
const signature: Signature = {
  inputs: [
    { name: 'a', datatype: 'FP32', shape: [-1, -1] },
    { name: 'b', datatype: 'BYTES', shape: [-1] },
  ],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
  maxBatchSize: 0,
};

describe(checkElementCount, () => {
  it('should give the product of whole non-negative dims within the limit, else a 400 or a 413', () => {
    const dim = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer(), fc.double(), fc.constantFrom(2 ** 53, 1e308, Number.NaN, '3', null, [2]));
    fc.assert(
      fc.property(fc.array(dim, { maxLength: 6 }), (shape) => {
        let count: number | undefined;
        const code = thrownCode(() => (count = checkElementCount('a', shape, limits)));
        if (code === undefined) {
          expect(count).toBe(shape.reduce<number>((n, d) => n * (d as number), 1));
          expect(count).toBeLessThanOrEqual(limits.maxTensorElements);
        } else {
          expect(['TESSERA_E_INPUT_SHAPE', 'TESSERA_E_INPUT_TOO_LARGE']).toContain(code);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('should refuse a huge dim hidden behind a zero one', () => {
    expect(thrownCode(() => checkElementCount('a', [1e15, 0], limits))).toBe('TESSERA_E_INPUT_TOO_LARGE');
  });
});

describe('validateInferRequest with limits', () => {
  it('should refuse shape [1e9] with 413 before looking at the data', () => {
    // the data is missing: decoding it first would be a different error
    const decoded = { inputs: [{ name: 'a', shape: [1, 1e9], json: undefined }, { name: 'b', shape: [1], json: ['x'] }] };
    expect(thrownCode(() => validateInferRequest(decoded, signature, limits))).toBe('TESSERA_E_INPUT_TOO_LARGE');
  });

  it('should refuse inputs that fit alone but not together, naming server.limits.maxRequestElements', () => {
    const decoded = { inputs: [{ name: 'a', shape: [10, 100], json: undefined }, { name: 'b', shape: [600], json: undefined }] };
    expect(() => validateInferRequest(decoded, signature, limits)).toThrow(/server\.limits\.maxRequestElements \(1500\)/);
  });

  it('should accept a request within the limits', () => {
    const decoded = { inputs: [{ name: 'a', shape: [2, 2], json: [1, 2, 3, 4] }, { name: 'b', shape: [1], json: ['x'] }] };
    expect(validateInferRequest(decoded, signature, limits).inputs.map((t) => t.shape)).toEqual([[2, 2], [1]]);
  });

  it('should not refuse a batch of 64 PP-OCR recognition crops or a 960×960 detection image at the defaults', () => {
    const ocr: Signature = { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }], outputs: signature.outputs, maxBatchSize: 64 };
    for (const shape of [[64, 3, 48, 320], [1, 3, 960, 960], [64, 3, 640, 640]]) {
      const data = new Float32Array(shape.reduce((n, d) => n * d, 1));
      expect(validateInferRequest({ inputs: [{ name: 'x', shape, data }] }, ocr).inputs[0]!.shape).toEqual(shape);
    }
  });
});
