import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import type { DataType, Tensor } from '../contracts/tensor.js';
import { halfToNumber, numberToHalf } from '../contracts/tensor.js';
import { decodeJsonData, encodeJsonData } from './json-codec.js';

describe('decodeJsonData', () => {
  it('should accept flattened and nested data alike', () => {
    const flat = decodeJsonData('x', 'FP32', [2, 2], [1, 2, 3, 4]);
    const nested = decodeJsonData('x', 'FP32', [2, 2], [[1, 2], [3, 4]]);
    expect(flat.data).toBeInstanceOf(Float32Array);
    expect([...(nested.data as Float32Array)]).toEqual([1, 2, 3, 4]);
    expect([...(flat.data as Float32Array)]).toEqual([1, 2, 3, 4]);
  });

  it.each<[DataType, unknown[], unknown]>([
    ['BOOL', [true, false, 1, 0], Uint8Array.from([1, 0, 1, 0])],
    ['UINT8', [0, 255, 7, 1], Uint8Array.from([0, 255, 7, 1])],
    ['UINT16', [0, 65535, 7, 1], Uint16Array.from([0, 65535, 7, 1])],
    ['UINT32', [0, 4294967295, 7, 1], Uint32Array.from([0, 4294967295, 7, 1])],
    ['INT8', [-128, 127, 0, 1], Int8Array.from([-128, 127, 0, 1])],
    ['INT16', [-32768, 32767, 0, 1], Int16Array.from([-32768, 32767, 0, 1])],
    ['INT32', [-2147483648, 2147483647, 0, 1], Int32Array.from([-2147483648, 2147483647, 0, 1])],
    ['INT64', [-5, '9223372036854775807', 0, 1], BigInt64Array.from([-5n, 9223372036854775807n, 0n, 1n])],
    ['UINT64', [5, '18446744073709551615', 0, 1], BigUint64Array.from([5n, 18446744073709551615n, 0n, 1n])],
    ['FP32', [1.5, -2, 'NaN', 'Infinity'], Float32Array.from([1.5, -2, Number.NaN, Number.POSITIVE_INFINITY])],
    ['FP64', [1e300, -2, 0.1, 3], Float64Array.from([1e300, -2, 0.1, 3])],
    ['FP16', [1, -2, 0.5, 65504], Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff])],
    ['BYTES', ['a', 'bé', '', 'ß'], ['a', 'bé', '', 'ß']],
  ])('should decode %s and encode it back', (datatype, data, expected) => {
    const t = decodeJsonData('x', datatype, [4], data);
    expect(t.data).toEqual(expected);
    const back = JSON.parse(encodeJsonData(t)) as unknown[];
    expect(back).toHaveLength(4);
    if (datatype === 'BOOL') expect(back).toEqual([true, false, true, false]);
    if (datatype === 'BYTES') expect(back).toEqual(data);
    if (datatype === 'INT32') expect(back).toEqual(data);
  });

  it('should write INT64 beyond 2^53 as exact JSON digits', () => {
    const t: Tensor = { name: 'y', datatype: 'INT64', shape: [2], data: BigInt64Array.from([9223372036854775807n, -1n]) };
    expect(encodeJsonData(t)).toBe('[9223372036854775807,-1]');
  });

  it('should write non-finite floats as strings', () => {
    const t: Tensor = { name: 'y', datatype: 'FP32', shape: [3], data: Float32Array.from([Number.NaN, Number.NEGATIVE_INFINITY, 1]) };
    expect(encodeJsonData(t)).toBe('["NaN","-Infinity",1]');
  });

  it.each<[string, DataType, number[], unknown]>([
    ['count mismatch', 'FP32', [2, 2], [1, 2, 3]],
    ['not an array', 'FP32', [1], 5],
    ['string in FP32', 'FP32', [1], ['x']],
    ['fraction in INT32', 'INT32', [1], [1.5]],
    ['overflow in UINT8', 'UINT8', [1], [256]],
    ['negative UINT32', 'UINT32', [1], [-1]],
    ['overflow in INT64', 'INT64', [1], ['9223372036854775808']],
    ['number in BYTES', 'BYTES', [1], [1]],
    ['2 in BOOL', 'BOOL', [1], [2]],
    ['null in FP64', 'FP64', [1], [null]],
  ])('should reject %s with TESSERA_E_INPUT_DATA', (_label, datatype, shape, data) => {
    expect(thrownCode(() => decodeJsonData('x', datatype, shape, data))).toBe('TESSERA_E_INPUT_DATA');
  });
});

describe('half precision', () => {
  it('should round-trip every finite half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exp = (bits >> 10) & 0x1f;
      if (exp === 0x1f) continue;
      expect(numberToHalf(halfToNumber(bits))).toBe(bits === 0x8000 ? 0x8000 : bits);
    }
  });
  it('should round to nearest even and saturate to infinity', () => {
    expect(numberToHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(numberToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(numberToHalf(1e6)).toBe(0x7c00);
    expect(Number.isNaN(halfToNumber(numberToHalf(Number.NaN)))).toBe(true);
  });
});
