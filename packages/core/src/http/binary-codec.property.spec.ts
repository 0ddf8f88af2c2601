/**
 * Property-based tests of Triton's binary framing: header lengths, JSON headers, binary_data_size,
 * tensor bytes, BYTES elements and raw requests as a hostile client writes them. Each function
 * either gives a result that satisfies its contract or throws a 4xx TesseraError — never another
 * exception. fast-check prints the seed and the shrunk counterexample on failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resultOrClientError } from '../testing/throws.js';
import type { TensorSpec } from '../contracts/tensor.js';
import { DATA_TYPES, elementSize, shapeSize } from '../contracts/tensor.js';
import type { BinaryInferRequestHeader } from './binary-codec.js';
import {
  decodeBinaryTensor,
  decodeBytesElements,
  decodeRawBinaryRequest,
  encodeBytesElements,
  parseBinaryHeader,
  parseInferenceHeaderLength,
  splitBinaryInputs,
} from './binary-codec.js';

const RUNS = 300;

const bytes = (max = 64): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const datatype = fc.constantFrom(...DATA_TYPES);
const dim = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, -0, 1.5, 2 ** 53, 1e300, Number.NaN) });
const shape = fc.array(dim, { maxLength: 4 });

describe('binary framing (properties)', () => {
  it('parseInferenceHeaderLength: undefined, a length within the body, or a 400', () => {
    const value = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 20 }),
      fc.integer().map(String),
      fc.constantFrom('-1', '1e3', '0x10', ' 12 ', '١٢', '99999999999999999999', ''),
      fc.array(fc.nat(100).map(String), { minLength: 2, maxLength: 3 }),
    );
    fc.assert(
      fc.property(value, fc.nat(1000), (v, bodyLength) => {
        const length = resultOrClientError(() => parseInferenceHeaderLength(v, bodyLength));
        if (v === undefined) expect(length).toBeUndefined();
        else if (length !== undefined) {
          expect(Number.isSafeInteger(length)).toBe(true);
          expect(length).toBeGreaterThanOrEqual(0);
          expect(length).toBeLessThanOrEqual(bodyLength);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('parseBinaryHeader: an object parsed from the first bytes, or a 400', () => {
    const body = fc.oneof(bytes(), fc.jsonValue().map((v) => Buffer.from(`${JSON.stringify(v)}garbage`)));
    fc.assert(
      fc.property(body, fc.oneof(fc.integer({ min: -5, max: 80 }), fc.constantFrom(Number.NaN, 1.5, 2 ** 60)), (b, length) => {
        const header = resultOrClientError(() => parseBinaryHeader(b, length));
        if (header !== undefined) expect(typeof header === 'object' && header !== null && !Array.isArray(header)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('splitBinaryInputs: views whose sizes add up to the tail exactly, or a 400', () => {
    const size = fc.oneof(fc.nat(40), fc.constantFrom(-1, 1.5, 2 ** 53, '8', null, Number.NaN), fc.constant(undefined));
    const input = fc.record({ name: fc.oneof(fc.string({ maxLength: 4 }), fc.constant(undefined)), size, data: fc.option(fc.constant([1]), { nil: undefined }) }).map(({ name, size: s, data }) => ({
      name,
      datatype: 'UINT8',
      shape: [1],
      ...(s === undefined ? {} : { parameters: { binary_data_size: s } }),
      ...(data ? { data } : {}),
    }));
    const inputs = fc.array(fc.oneof({ weight: 9, arbitrary: input }, { weight: 1, arbitrary: fc.constantFrom(null, 7, 'x') }), { maxLength: 5 });
    fc.assert(
      fc.property(inputs, bytes(120), fc.boolean(), (list, tail, headerPresent) => {
        const header = { inputs: list } as unknown as BinaryInferRequestHeader;
        const blobs = resultOrClientError(() => splitBinaryInputs(header, tail, headerPresent));
        if (blobs !== undefined) {
          expect(blobs.length).toBe(list.length);
          expect(blobs.reduce((n, b) => n + (b?.length ?? 0), 0)).toBe(tail.length);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeBinaryTensor: exactly shape × element size bytes (or BYTES elements), or a 400', () => {
    fc.assert(
      fc.property(datatype, shape, bytes(96), fc.nat(7), (dt, s, b, skip) => {
        // an unaligned view as well as an aligned one
        const view = Buffer.concat([Buffer.alloc(skip), b]).subarray(skip);
        const data = resultOrClientError(() => decodeBinaryTensor(dt, s, view));
        if (data !== undefined) {
          expect(data.length).toBe(shapeSize(s) + 0); // + 0: a dim of -0 counts as 0
          const size = elementSize(dt);
          if (size !== undefined) expect(shapeSize(s) * size + 0).toBe(view.length);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeBytesElements: decodes what encodeBytesElements wrote, refuses any other count', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 6 }), { maxLength: 6 }), fc.nat(8), (strings, count) => {
        const encoded = encodeBytesElements(strings);
        expect(decodeBytesElements(encoded, strings.length)).toEqual(strings);
        if (count !== strings.length) expect(resultOrClientError(() => decodeBytesElements(encoded, count))).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('decodeBytesElements: arbitrary bytes give strings or a 400 (lengths pointing past the end included)', () => {
    const lying = fc.tuple(fc.constantFrom(0xffffffff, 0x7fffffff, 5, 1), bytes(8)).map(([n, rest]) => {
      const b = Buffer.alloc(4 + rest.length);
      b.writeUInt32LE(n, 0);
      rest.copy(b, 4);
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(bytes(), lying), fc.nat(4), (b, count) => {
        const out = resultOrClientError(() => decodeBytesElements(b, count));
        if (out !== undefined) expect(out.length).toBe(count);
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeRawBinaryRequest: the only input, its shape deduced from the byte count, or a 400', () => {
    const spec: fc.Arbitrary<TensorSpec> = fc.record({ name: fc.constant('x'), datatype, shape: fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 4 })), { maxLength: 4 }) });
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 2 }), fc.constantFrom(0, 1, 8), bytes(64), (inputs, maxBatchSize, body) => {
        const t = resultOrClientError(() => decodeRawBinaryRequest(body, inputs, maxBatchSize));
        if (t !== undefined) {
          expect(inputs.length).toBe(1);
          expect(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
          expect(t.data.length).toBe(shapeSize(t.shape));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
