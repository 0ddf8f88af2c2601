/**
 * Property-based tests of the OIP v2 JSON codec: whatever a client sends as `data`, with whatever
 * shape and datatype, decoding either gives a tensor that fits the shape or a 4xx TesseraError —
 * never another exception, never a hang — and what the encoder writes decodes back to the same
 * tensor. fast-check prints the seed and the shrunk counterexample on failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resultOrClientError } from '../testing/throws.js';
import type { DataType } from '../contracts/tensor.js';
import { DATA_TYPES, shapeSize } from '../contracts/tensor.js';
import { decodeJsonData, encodeJsonData } from './json-codec.js';

const RUNS = 300;

const datatype = fc.constantFrom(...DATA_TYPES);

/** Dims as a hostile client writes them: small, zero, negative, fractional, huge, not numbers. */
const dim = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, 1e300, -1, Number.NaN, Number.POSITIVE_INFINITY) },
);
const shape = fc.array<number>(dim, { maxLength: 4 });

/** One element as JSON can carry it, plus the strings the codec gives meaning to. */
const element = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 8 }),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '9223372036854775808', '-9223372036854775809', '__proto__', 'toString', '1'.repeat(200)),
  fc.bigInt().map(String),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
const data = fc.oneof(
  { weight: 3, arbitrary: fc.array(element, { maxLength: 24 }) },
  { weight: 2, arbitrary: fc.array(fc.array(element, { maxLength: 5 }), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(fc.array(fc.array(element, { maxLength: 3 }), { maxLength: 3 }), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue() },
);

describe('decodeJsonData (properties)', () => {
  it('should give a tensor that fits the shape, or a 4xx TesseraError', () => {
    fc.assert(
      fc.property(datatype, shape, data, (dt, s, d) => {
        const t = resultOrClientError(() => decodeJsonData('x', dt, s, d));
        if (t) {
          expect(t.shape).toBe(s);
          expect(t.data.length).toBe(shapeSize(s) + 0); // + 0: a dim of -0 counts as 0
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('should decode well-formed data of every datatype', () => {
    fc.assert(
      fc.property(datatype, fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), (dt, rows, cols) => {
        const n = rows * cols;
        const values = Array.from({ length: n }, (_, i) => sampleValue(dt, i));
        const nested = Array.from({ length: rows }, (_, r) => values.slice(r * cols, (r + 1) * cols));
        expect(decodeJsonData('x', dt, [rows, cols], values).data.length).toBe(n);
        expect(decodeJsonData('x', dt, [rows, cols], nested).data.length).toBe(n);
      }),
      { numRuns: 100 },
    );
  });

  it('should decode what encodeJsonData wrote back to the same values', () => {
    fc.assert(
      fc.property(datatype, fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 16 }), (dt, seeds) => {
        const values = seeds.map((seed) => sampleValue(dt, seed));
        const first = decodeJsonData('x', dt, [values.length], values);
        const again = decodeJsonData('x', dt, [values.length], JSON.parse(encodeJsonData(first)) as unknown[]);
        expect(Array.from(again.data as ArrayLike<unknown>)).toEqual(Array.from(first.data as ArrayLike<unknown>));
      }),
      { numRuns: 100 },
    );
  });

  it('should refuse data nested far deeper than any stack with a 400, not a RangeError', () => {
    let deep: unknown = [1];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const t = resultOrClientError(() => decodeJsonData('x', 'FP32', [2], [deep, deep, deep]));
    expect(t).toBeUndefined();
    // and one deep element that is the only one: flattened without recursion, then accepted
    expect(decodeJsonData('x', 'FP32', [1], [deep]).data).toEqual(Float32Array.of(1));
  });

  it('should refuse a decimal string of a megabyte for INT64 at once (no BigInt of a million digits)', () => {
    const t = resultOrClientError(() => decodeJsonData('x', 'INT64', [1], ['9'.repeat(1_000_000)]));
    expect(t).toBeUndefined();
  });
});

/** A valid JSON value of `dt`, varied by `i`. */
function sampleValue(dt: DataType, i: number): unknown {
  switch (dt) {
    case 'BOOL':
      return i % 2 === 0;
    case 'BYTES':
      return `s${i}\u00e9`;
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return i % 7 === 0 ? 'NaN' : (i % 50) / 4 - 3;
    case 'INT8':
    case 'INT16':
    case 'INT32':
    case 'INT64':
      return (i % 100) - 50;
    default:
      return i % 100;
  }
}
