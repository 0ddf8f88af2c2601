/**
 * Tensor comparison for tests: returns the first difference as a sentence (or `undefined`), so that
 * a failing assertion says which element differs instead of dumping two large arrays.
 */
import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';

/**
 * Compares two tensors: name (unless `ignoreName`), datatype, shape and every element. Floats
 * (FP16/FP32/FP64) may differ by `tolerance` (absolute, plus the same amount relative to the
 * expected magnitude); other datatypes must be equal. FP16 is compared by value, NaN equals NaN.
 * @returns `undefined` when equal, else a description of the first difference.
 */
export function diffTensors(actual: Tensor, expected: Tensor, options: { tolerance?: number; ignoreName?: boolean } = {}): string | undefined {
  const tolerance = options.tolerance ?? 0;
  const label = `tensor '${expected.name}'`;
  if (!options.ignoreName && actual.name !== expected.name) return `${label}: name is '${actual.name}'`;
  if (actual.datatype !== expected.datatype) return `${label}: datatype ${actual.datatype}, expected ${expected.datatype}`;
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return `${label}: shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`;
  }
  if (actual.data.length !== expected.data.length) return `${label}: ${actual.data.length} elements, expected ${expected.data.length}`;
  const float = expected.datatype === 'FP16' || expected.datatype === 'FP32' || expected.datatype === 'FP64';
  for (let i = 0; i < expected.data.length; i++) {
    let a = actual.data[i];
    let e = expected.data[i];
    if (expected.datatype === 'FP16') {
      a = halfToNumber(a as number);
      e = halfToNumber(e as number);
    }
    if (float) {
      const an = a as number;
      const en = e as number;
      if (Number.isNaN(an) && Number.isNaN(en)) continue;
      if (an === en) continue;
      if (Math.abs(an - en) <= tolerance * (1 + Math.abs(en))) continue;
      return `${label}: element ${i} is ${an}, expected ${en} (tolerance ${tolerance})`;
    }
    if (a !== e) return `${label}: element ${i} is ${show(a)}, expected ${show(e)}`;
  }
  return undefined;
}

/** An element for a message: strings quoted (they may be empty or hold newlines), bigints with their `n`. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

/**
 * Compares two lists of tensors by name (order does not matter): every expected tensor must be
 * present and equal; extra actual tensors are reported unless `allowExtra`.
 * @returns `undefined` when equal, else a description of the first difference.
 */
export function diffTensorLists(
  actual: readonly Tensor[],
  expected: readonly Tensor[],
  options: { tolerance?: number; allowExtra?: boolean } = {},
): string | undefined {
  for (const e of expected) {
    const a = actual.find((t) => t.name === e.name);
    if (!a) return `missing output '${e.name}' (got ${actual.map((t) => `'${t.name}'`).join(', ') || 'none'})`;
    const diff = diffTensors(a, e, options);
    if (diff) return diff;
  }
  if (!options.allowExtra) {
    const extra = actual.filter((a) => !expected.some((e) => e.name === a.name));
    if (extra.length > 0) return `unexpected outputs ${extra.map((t) => `'${t.name}'`).join(', ')}`;
  }
  return undefined;
}
