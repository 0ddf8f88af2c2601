import type { DataType, Tensor, TypedArray } from '../contracts/tensor.js';
import { allocateTensorData, halfToNumber, numberToHalf } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import { checkedElementCount } from './binary-codec.js';

/**
 * Converts OIP v2 JSON `data` (flattened or nested, row-major) into typed arrays and back.
 * Numbers are range-checked per datatype: a value that would wrap or truncate is a 400, not a
 * silently different tensor.
 */

const INT_RANGES: Partial<Record<DataType, [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
};

const BIGINT_RANGES = {
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
} as const;

/**
 * Flattens nested arrays into `out`, in row-major order, with an explicit stack: no recursion, so
 * no nesting depth overflows the call stack (the HTTP parsers bound the depth; callers in code may
 * not). Stops with a 400 once more than `max` elements came out, before copying the rest.
 */
function flattenInto(value: unknown[], out: unknown[], max: number, name: string): void {
  const arrays: unknown[][] = [value];
  const positions: number[] = [0];
  while (arrays.length > 0) {
    const top = arrays.length - 1;
    const array = arrays[top]!;
    const i = positions[top]!;
    if (i === array.length) {
      arrays.pop();
      positions.pop();
      continue;
    }
    positions[top] = i + 1;
    const v = array[i];
    if (Array.isArray(v)) {
      arrays.push(v);
      positions.push(0);
    } else if (out.push(v) > max) {
      throw new TesseraError('TESSERA_E_INPUT_DATA', `input '${name}': data has more than the ${max} elements its shape needs`);
    }
  }
}

function isNested(data: unknown[]): boolean {
  for (const v of data) if (Array.isArray(v)) return true;
  return false;
}

const SPECIAL_FLOATS: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/** A client's value in a message: primitives as JSON (cut at 40 characters), containers by kind (never walked: they may nest deeply). */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function bad(input: string, index: number, value: unknown, expected: string): TesseraError {
  return new TesseraError('TESSERA_E_INPUT_DATA', `input '${input}': data[${index}] is ${shown(value)}; expected ${expected}`);
}

/**
 * Decodes one JSON input's `data` into a tensor of `datatype` and `shape`. The caller has checked
 * datatype and shape against the model; this checks the element count and every value.
 */
export function decodeJsonData(name: string, datatype: DataType, shape: number[], data: unknown): Tensor {
  if (!Array.isArray(data)) {
    throw new TesseraError('TESSERA_E_INPUT_DATA', `input '${name}': data must be an array (flattened or nested, row-major)`);
  }
  const count = checkedElementCount(shape, `input '${name}'`);
  let flat: unknown[] = data;
  if (isNested(data)) {
    flat = [];
    flattenInto(data, flat, count, name);
  }
  if (flat.length !== count) {
    throw new TesseraError(
      'TESSERA_E_INPUT_DATA',
      `input '${name}': shape [${shape.length > 8 ? `${shape.slice(0, 8).join(', ')}, …` : shape.join(', ')}] needs ${count} elements but data has ${flat.length}`,
    );
  }
  const out = allocateTensorData(datatype, count);
  switch (datatype) {
    case 'BYTES': {
      const strings = out as string[];
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v !== 'string') throw bad(name, i, v, 'a string (BYTES)');
        strings[i] = v;
      }
      break;
    }
    case 'BOOL': {
      const bools = out as Uint8Array;
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (v === true || v === 1) bools[i] = 1;
        else if (v === false || v === 0) bools[i] = 0;
        else throw bad(name, i, v, 'true or false (BOOL)');
      }
      break;
    }
    case 'FP16': {
      const halves = out as Uint16Array;
      for (let i = 0; i < count; i++) {
        let v = flat[i];
        if (typeof v === 'string' && Object.hasOwn(SPECIAL_FLOATS, v)) v = SPECIAL_FLOATS[v];
        if (typeof v !== 'number') throw bad(name, i, v, 'a number (FP16)');
        halves[i] = numberToHalf(v);
      }
      break;
    }
    case 'FP32':
    case 'FP64': {
      const floats = out as Float32Array | Float64Array;
      for (let i = 0; i < count; i++) {
        let v = flat[i];
        if (typeof v === 'string' && Object.hasOwn(SPECIAL_FLOATS, v)) v = SPECIAL_FLOATS[v];
        if (typeof v !== 'number') throw bad(name, i, v, `a number (${datatype})`);
        floats[i] = v;
      }
      break;
    }
    case 'INT64':
    case 'UINT64': {
      const [lo, hi] = BIGINT_RANGES[datatype];
      const big = out as BigInt64Array | BigUint64Array;
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        let b: bigint;
        if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
        // at most 20 digits (2^64 has 20): a longer string is out of range, and BigInt() of a megabyte of digits takes seconds
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) b = BigInt(v);
        else throw bad(name, i, v, `an integer (${datatype}; use a decimal string beyond 2^53)`);
        if (b < lo || b > hi) throw bad(name, i, v, `an integer in [${lo}, ${hi}] (${datatype})`);
        big[i] = b;
      }
      break;
    }
    default: {
      const [lo, hi] = INT_RANGES[datatype]!;
      const ints = out as TypedArray as Int32Array;
      for (let i = 0; i < count; i++) {
        const v = flat[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
          throw bad(name, i, v, `an integer in [${lo}, ${hi}] (${datatype})`);
        }
        ints[i] = v;
      }
    }
  }
  return { name, datatype, shape, data: out };
}

function floatToJson(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}

/**
 * Serialises a tensor's data as a flat JSON array. Written by hand: JSON.stringify cannot write
 * BigInt, NaN or typed arrays, and building the string directly avoids boxing every element twice.
 */
export function encodeJsonData(tensor: Tensor): string {
  const { datatype } = tensor;
  const data = tensor.data;
  const n = data.length;
  if (n === 0) return '[]';
  const parts = new Array<string>(n);
  switch (datatype) {
    case 'BYTES':
      for (let i = 0; i < n; i++) parts[i] = JSON.stringify((data as string[])[i]);
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) parts[i] = (data as Uint8Array)[i] ? 'true' : 'false';
      break;
    case 'FP16':
      for (let i = 0; i < n; i++) parts[i] = floatToJson(halfToNumber((data as Uint16Array)[i]!));
      break;
    case 'FP32':
    case 'FP64':
      for (let i = 0; i < n; i++) parts[i] = floatToJson((data as Float32Array)[i]!);
      break;
    default:
      // integers, including BigInt: String() gives exact digits, valid JSON numbers
      for (let i = 0; i < n; i++) parts[i] = String((data as Int32Array)[i]);
  }
  return `[${parts.join(',')}]`;
}
