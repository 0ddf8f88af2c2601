import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';

/**
 * Row `r` of a numeric tensor read as `classes` scores into `into` (FP16 bits decoded, 64-bit
 * integers as numbers): the classification processor's and Triton's classification extension's input.
 */
export function readScoreRow(t: Tensor, r: number, classes: number, into: Float64Array): Float64Array {
  const base = r * classes;
  if (t.datatype === 'FP16') {
    const data = t.data as Uint16Array;
    for (let c = 0; c < classes; c++) into[c] = halfToNumber(data[base + c]!);
  } else if (t.datatype === 'INT64' || t.datatype === 'UINT64') {
    const data = t.data as BigInt64Array | BigUint64Array;
    for (let c = 0; c < classes; c++) into[c] = Number(data[base + c]!);
  } else {
    const data = t.data as ArrayLike<number>;
    for (let c = 0; c < classes; c++) into[c] = data[base + c]!;
  }
  return into;
}

/**
 * The indices of the `k` best of `row` into `out` (length ≥ k), best first: ties go to the lower
 * index, NaN ranks last. k scans of the row (k is small), `taken` (length ≥ the row's) as scratch.
 */
export function topK(row: Float64Array, k: number, taken: Uint8Array, out: Int32Array | number[]): void {
  taken.fill(0, 0, row.length);
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let c = 0; c < row.length; c++) {
      if (taken[c]) continue;
      if (best === -1 || row[c]! > row[best]! || (Number.isNaN(row[best]!) && !Number.isNaN(row[c]!))) best = c;
    }
    taken[best] = 1;
    out[j] = best;
  }
}
