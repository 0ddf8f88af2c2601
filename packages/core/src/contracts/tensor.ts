/**
 * Tensors as they travel through Tessera: typed arrays in row-major order, never boxed numbers.
 * The datatype names are the Open Inference Protocol v2 names (KServe, Triton).
 */

/** The OIP v2 datatypes Tessera understands. */
export type DataType =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

/** Every datatype, in a stable order (used by schemas, docs and tests). */
export const DATA_TYPES: readonly DataType[] = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
];

/**
 * The storage of each datatype. BOOL is one byte per element (0 or 1), FP16 is the raw IEEE-754
 * half bits, INT64/UINT64 are BigInt arrays so that no value loses precision, BYTES are strings.
 */
export interface TensorDataMap {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: string[];
}

export type NumericDataType = Exclude<DataType, 'BYTES'>;
export type TypedArray = TensorDataMap[NumericDataType];
export type TensorData = TypedArray | string[];

/** A tensor: name, datatype, shape (all dims known) and row-major data. */
export interface Tensor<D extends DataType = DataType> {
  name: string;
  datatype: D;
  shape: number[];
  data: TensorDataMap[D];
}

/** The declared shape of a model input or output; `-1` marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: DataType;
  shape: number[];
  /**
   * BYTES only: what the elements hold. Absent or `text`: UTF-8 text (binary tensor data that is
   * not valid UTF-8 is refused). `binary`: any bytes (encoded images, audio), as a processor that
   * accepts them declares (the built-in `image` step): binary tensor data is kept one character
   * per byte (latin1: `Buffer.from(s, 'latin1')` gives the bytes back), JSON strings as sent.
   */
  content?: 'text' | 'binary';
}

type TypedArrayConstructor<T> = { new (length: number): T; BYTES_PER_ELEMENT: number };

const CONSTRUCTORS: { [K in NumericDataType]: TypedArrayConstructor<TensorDataMap[K]> } = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** The typed-array constructor that stores a numeric datatype. */
export function typedArrayConstructor<D extends NumericDataType>(datatype: D): TypedArrayConstructor<TensorDataMap[D]> {
  return CONSTRUCTORS[datatype];
}

/** Allocates zeroed storage for `length` elements of a datatype. */
export function allocateTensorData<D extends DataType>(datatype: D, length: number): TensorDataMap[D] {
  if (datatype === 'BYTES') return new Array<string>(length).fill('') as TensorDataMap[D];
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- tsc -b needs it (the lint project narrows D differently)
  return new CONSTRUCTORS[datatype as NumericDataType](length) as TensorDataMap[D];
}

/** Size in bytes of one element, or `undefined` for BYTES (variable length). */
export function elementSize(datatype: DataType): number | undefined {
  return datatype === 'BYTES' ? undefined : CONSTRUCTORS[datatype].BYTES_PER_ELEMENT;
}

/** Whether `value` is a datatype name. */
export function isDataType(value: unknown): value is DataType {
  return typeof value === 'string' && (DATA_TYPES as readonly string[]).includes(value);
}

/** Number of elements in a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Converts an IEEE-754 half (raw bits) to a JS number. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Converts a JS number to IEEE-754 half bits, rounding to nearest even. */
export function numberToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa rounds into the exponent, up to infinity, as IEEE-754 wants
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
