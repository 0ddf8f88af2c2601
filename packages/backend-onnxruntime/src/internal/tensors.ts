/**
 * Conversions between Tessera tensors, wire tensors (`protocol.ts`: what crosses to the session's
 * worker thread) and ONNX Runtime tensors, and batch assembly: concatenation of request inputs along
 * dim 0 (one copy of each request's bytes) and splitting of outputs with `subarray` views (no copies).
 */
import * as ort from 'onnxruntime-node';
import type { DataType, Tensor } from '@tessera/core';
import { TesseraError, shapeSize, typedArrayConstructor } from '@tessera/core';
import type { WireData, WireTensor } from './protocol.js';

/** ONNX Runtime's type name of each Tessera datatype. */
export const ORT_TYPE_OF: Readonly<Record<DataType, ort.Tensor.Type>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const DATATYPE_OF: ReadonlyMap<string, DataType> = new Map(Object.entries(ORT_TYPE_OF).map(([k, v]) => [v, k as DataType]));

/** The Tessera datatype of an ONNX Runtime type name, or `undefined` (int4, uint4, … have none). */
export function datatypeOfOrt(type: string): DataType | undefined {
  return DATATYPE_OF.get(type);
}

/** Declared dims → Tessera shape: symbolic (string), unnamed (`''`) and negative dims become -1. */
export function specShape(dims: readonly (number | string)[]): number[] {
  return dims.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

/** A request tensor as a wire tensor, without copying: `data` is the request's own array. */
export function toWire(t: Tensor): WireTensor {
  // BOOL is a Uint8Array of 0/1 in both; FP16 is Uint16Array bits, which ORT accepts (and views as Float16Array where that exists)
  return { name: t.name, type: ORT_TYPE_OF[t.datatype], dims: t.shape, data: t.data };
}

/** Wraps a wire tensor for ONNX Runtime without copying (ORT keeps a reference to the same buffer). */
export function toOrtTensor(t: WireTensor): ort.Tensor {
  return new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
}

/** Wraps ORT output data as Tessera data, without copying. */
export function fromOrtData(datatype: DataType, data: unknown): Tensor['data'] {
  // where globalThis.Float16Array exists ORT returns it for float16; Tessera stores FP16 as raw bits
  if (datatype === 'FP16' && !(data instanceof Uint16Array)) {
    const view = data as ArrayBufferView & { length: number };
    return new Uint16Array(view.buffer, view.byteOffset, view.length);
  }
  if (datatype === 'BOOL' && !(data instanceof Uint8Array)) {
    const view = data as ArrayBufferView;
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }
  return data as Tensor['data'];
}

/**
 * Converts one output (an ORT tensor, or a wire tensor from the worker) to a Tessera tensor, without
 * copying its data. `dims` is copied: ORT's are read-only.
 */
export function fromOrtTensor(name: string, t: Pick<WireTensor, 'type' | 'dims' | 'data'>): Tensor {
  const datatype = datatypeOfOrt(t.type);
  if (!datatype) throw new TesseraError('TESSERA_E_INFERENCE_FAILED', `output '${name}' has type ${t.type}, which Tessera cannot represent`);
  return { name, datatype, shape: [...t.dims], data: fromOrtData(datatype, t.data) };
}

/**
 * Concatenates the tensors of one input across requests along dim 0: one preallocated array,
 * each request's data copied into it exactly once. Requests must share the non-batch dims (the
 * batchers form batches so; checked, since a mismatch would misplace rows). The result's buffer is
 * new and viewed by nothing else, so it may be transferred to another thread.
 */
export function concatBatch(name: string, parts: readonly Tensor[]): WireTensor {
  const first = parts[0]!;
  const inner = first.shape.slice(1);
  let rows = 0;
  for (const p of parts) {
    if (p.shape.length !== first.shape.length || p.shape.some((d, i) => i > 0 && d !== first.shape[i])) {
      throw new TesseraError(
        'TESSERA_E_INPUT_SHAPE',
        `input '${name}': requests in one batch must share their non-batch dims, got [${first.shape.join(', ')}] and [${p.shape.join(', ')}]`,
      );
    }
    rows += p.shape[0]!;
  }
  const shape = [rows, ...inner];
  const length = shapeSize(shape);
  if (first.datatype === 'BYTES') {
    const data = new Array<string>(length);
    let offset = 0;
    for (const p of parts) for (const s of p.data as string[]) data[offset++] = s;
    return { name, type: 'string', dims: shape, data };
  }
  const out = new (typedArrayConstructor(first.datatype))(length);
  let offset = 0;
  for (const p of parts) {
    (out as Uint8Array).set(p.data as Uint8Array, offset);
    offset += p.data.length;
  }
  return { name, type: ORT_TYPE_OF[first.datatype], dims: shape, data: out as WireData };
}

/** A slice of rows `[start, end)` along dim 0: a `subarray` view for typed arrays, a shallow slice for strings. */
export function sliceRows(t: Tensor, start: number, end: number): Tensor {
  const rowSize = shapeSize(t.shape.slice(1));
  const data = Array.isArray(t.data) ? t.data.slice(start * rowSize, end * rowSize) : t.data.subarray(start * rowSize, end * rowSize);
  return { name: t.name, datatype: t.datatype, shape: [end - start, ...t.shape.slice(1)], data };
}
