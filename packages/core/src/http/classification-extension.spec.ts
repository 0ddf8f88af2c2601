import { describe, expect, it } from 'vitest';
import type { Tensor } from '../contracts/tensor.js';
import { numberToHalf } from '../contracts/tensor.js';
import { applyClassification, classificationRequests } from './classification-extension.js';

const scores = (shape: number[], values: number[]): Tensor => ({ name: 'p', datatype: 'FP32', shape, data: Float32Array.from(values) });

describe(classificationRequests, () => {
  it('should collect the outputs asked for as classes, and nothing when none is', () => {
    expect(classificationRequests({ outputs: [{ name: 'p', parameters: { classification: 3 } }, { name: 'q' }] })).toEqual(new Map([['p', 3]]));
    expect(classificationRequests({ outputs: [{ name: 'q', parameters: { binary_data: true } }] })).toBeUndefined();
    expect(classificationRequests({})).toBeUndefined();
  });
});

describe(applyClassification, () => {
  it("should answer each row's top k as Triton's value:index:label strings, best first, six decimals", () => {
    const [out] = applyClassification([scores([2, 3], [0.1, 0.7, 0.2, 0.5, 0.25, 0.25])], new Map([['p', 2]]), true, () => ['cat', 'dog', 'fox']);
    expect(out).toEqual({ name: 'p', datatype: 'BYTES', shape: [2, 2], data: ['0.700000:1:dog', '0.200000:2:fox', '0.500000:0:cat', '0.250000:1:dog'] });
  });

  it('should leave the label out without labels, cap k at the number of classes, and keep ties in index order', () => {
    const [out] = applyClassification([scores([1, 3], [0.25, 0.5, 0.25])], new Map([['p', 10]]), true, () => undefined);
    expect(out).toEqual({ name: 'p', datatype: 'BYTES', shape: [1, 3], data: ['0.500000:1', '0.250000:0', '0.250000:2'] });
  });

  it('should read an unbatched output as one row and answer [k]', () => {
    const [out] = applyClassification([scores([4], [3, 1, 4, 1])], new Map([['p', 1]]), false, () => undefined);
    expect(out).toEqual({ name: 'p', datatype: 'BYTES', shape: [1], data: ['4.000000:2'] });
  });

  it('should read FP16 scores as numbers, not their bits, and rank NaN last', () => {
    const half: Tensor = { name: 'p', datatype: 'FP16', shape: [1, 3], data: Uint16Array.from([numberToHalf(0.25), numberToHalf(0.5), numberToHalf(0.125)]) };
    expect(applyClassification([half], new Map([['p', 2]]), true, () => undefined)[0]!.data).toEqual(['0.500000:1', '0.250000:0']);
    const nan = scores([1, 3], [Number.NaN, 0.1, 0.2]);
    expect(applyClassification([nan], new Map([['p', 3]]), true, () => undefined)[0]!.data).toEqual(['0.200000:2', '0.100000:1', 'NaN:0']);
  });

  it('should leave the outputs not asked for as they are', () => {
    const other = { ...scores([1, 2], [1, 2]), name: 'q' };
    expect(applyClassification([other], new Map([['p', 1]]), true, () => undefined)[0]).toBe(other);
  });

  it('should refuse a BYTES output with 400 TESSERA_E_REQUEST_INVALID', () => {
    const text: Tensor = { name: 'p', datatype: 'BYTES', shape: [1], data: ['a'] };
    expect(() => applyClassification([text], new Map([['p', 1]]), true, () => undefined)).toThrow(expect.objectContaining({ code: 'TESSERA_E_REQUEST_INVALID', status: 400 }));
  });
});
