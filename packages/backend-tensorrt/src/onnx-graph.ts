/**
 * Reads what the TensorRT options need from an `.onnx` file before any session exists: the graph's
 * inputs (names and declared shapes) and whether it holds Q/DQ nodes. A few protobuf fields of
 * onnx.proto are walked by hand; everything else (weights included) is skipped by its length.
 */
import { readFile } from 'node:fs/promises';

/** A graph input as declared: `shape` has -1 for a symbolic or missing dim, `undefined` for an unknown rank. */
export interface GraphInput {
  name: string;
  shape: number[] | undefined;
}

/** What `readOnnxGraph` found. */
export interface OnnxGraphInfo {
  /** The inputs a caller feeds, in declaration order (initializers listed as inputs by old exporters left out). */
  inputs: GraphInput[];
  /** Whether a QuantizeLinear or DequantizeLinear node is in the main graph (explicit quantization). */
  quantized: boolean;
}

// field numbers of onnx.proto
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const NODE_OP_TYPE = 4;
const TENSOR_NAME = 8;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_VALUE = 1;

const QDQ_OPS = new Set(['QuantizeLinear', 'DequantizeLinear']);

/** One field of a message: its number and, for length-delimited ones, its bytes. */
interface Field {
  field: number;
  bytes?: Uint8Array;
  value?: number;
}

/** The fields of one protobuf message, in order. Throws on bytes that are not protobuf. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new Error('field number 0');
    if (wire === 0) {
      yield { field, value: varint() };
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
    } else if (wire === 2) {
      const length = varint();
      if (pos + length > buf.length) throw new Error('length past the end');
      yield { field, bytes: buf.subarray(pos, pos + length) };
      pos += length;
    } else {
      throw new Error(`wire type ${wire}`);
    }
  }
  if (pos !== buf.length) throw new Error('truncated field');
}

const utf8 = new TextDecoder();

function stringField(message: Uint8Array, number: number): string | undefined {
  for (const f of fields(message)) if (f.field === number && f.bytes) return utf8.decode(f.bytes);
  return undefined;
}

function messageField(message: Uint8Array, number: number): Uint8Array | undefined {
  for (const f of fields(message)) if (f.field === number && f.bytes) return f.bytes;
  return undefined;
}

/** A ValueInfoProto's shape: dims as numbers, -1 where symbolic; undefined without a tensor shape. */
function shapeOf(valueInfo: Uint8Array): number[] | undefined {
  const type = messageField(valueInfo, VALUE_INFO_TYPE);
  const tensor = type && messageField(type, TYPE_TENSOR);
  const shape = tensor && messageField(tensor, TENSOR_TYPE_SHAPE);
  if (!shape) return undefined;
  const dims: number[] = [];
  for (const f of fields(shape)) {
    if (f.field !== SHAPE_DIM || !f.bytes) continue;
    let dim = -1;
    for (const d of fields(f.bytes)) if (d.field === DIM_VALUE && d.value !== undefined) dim = d.value;
    dims.push(dim);
  }
  return dims;
}

/** Parses the bytes of an ONNX model (a ModelProto). Throws when they are not one. */
export function parseOnnxGraph(bytes: Uint8Array): OnnxGraphInfo {
  const graph = messageField(bytes, MODEL_GRAPH);
  if (!graph) throw new Error('no graph in the file: not an ONNX model');
  const declared: GraphInput[] = [];
  const initializers = new Set<string>();
  let quantized = false;
  for (const f of fields(graph)) {
    if (!f.bytes) continue;
    if (f.field === GRAPH_INPUT) {
      declared.push({ name: stringField(f.bytes, VALUE_INFO_NAME) ?? '', shape: shapeOf(f.bytes) });
    } else if (f.field === GRAPH_INITIALIZER) {
      const name = stringField(f.bytes, TENSOR_NAME);
      if (name !== undefined) initializers.add(name);
    } else if (f.field === GRAPH_NODE && !quantized) {
      quantized = QDQ_OPS.has(stringField(f.bytes, NODE_OP_TYPE) ?? '');
    }
  }
  return { inputs: declared.filter((i) => !initializers.has(i.name)), quantized };
}

/** Reads and parses an `.onnx` file. Rejects with the file system's error, or an Error saying why the bytes are not a model. */
export async function readOnnxGraph(path: string): Promise<OnnxGraphInfo> {
  return parseOnnxGraph(await readFile(path));
}
