/**
 * Writes small ONNX models from TypeScript, with no protobuf dependency: enough of onnx.proto
 * (ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto.Tensor, TensorShapeProto,
 * TensorProto, AttributeProto, OperatorSetIdProto) to describe test models and fixtures.
 *
 * Field numbers follow onnx/onnx.proto (proto2). The encoder is deliberately tiny: tests and plugin
 * authors write models of a few nodes, so clarity beats speed.
 */
import type { DataType, TensorData } from '../contracts/tensor.js';
import { shapeSize, typedArrayConstructor } from '../contracts/tensor.js';

/** A graph input or output. A string dim is a symbolic (dynamic) dim, e.g. `'batch'`; `-1` is an unnamed dynamic dim. */
export interface OnnxValueSpec {
  name: string;
  datatype: DataType;
  shape: (number | string)[];
}

/** A constant tensor: a graph initializer, or the value of a TENSOR attribute. */
export interface OnnxInitializer {
  name: string;
  datatype: DataType;
  /** Shape; `[]` is a scalar. */
  dims: number[];
  /** Row-major data in the datatype's storage (see `TensorDataMap`); length must equal the product of `dims`. */
  data: TensorData;
}

/**
 * An attribute value. Plain values are typed by their form: an integer number → INT, any other
 * number → FLOAT, a string → STRING, a number array → INTS when every element is an integer (an
 * empty array too), else FLOATS. Wrappers force the type where the form is ambiguous:
 * `{ float: 1 }`, `{ floats: [1, 2] }`, `{ int: 2n }`, `{ ints: [...] }`, `{ tensor: ... }`.
 */
export type OnnxAttributeValue =
  | number
  | string
  | number[]
  | { float: number }
  | { floats: number[] }
  | { int: number | bigint }
  | { ints: (number | bigint)[] }
  | { tensor: OnnxInitializer };

/** One graph node (an operator call). */
export interface OnnxNodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Operator domain; `''` (default) is the standard ONNX domain. */
  domain?: string;
  attributes?: Record<string, OnnxAttributeValue>;
}

/** Everything `buildOnnxModel` needs. */
export interface OnnxModelSpec {
  inputs: OnnxValueSpec[];
  outputs: OnnxValueSpec[];
  /** Nodes in topological order. */
  nodes: OnnxNodeSpec[];
  initializers?: OnnxInitializer[];
  /** Default-domain opset version (default 17). */
  opset?: number;
  /** IR version (default 8, the IR that opset 17 needs; ONNX Runtime 1.30 reads up to 11). */
  irVersion?: number;
  /** Extra opset imports for custom domains, e.g. `{ 'com.microsoft': 1 }`. */
  extraOpsets?: Record<string, number>;
  /** `producer_name` (default `tessera-onnx-builder`). */
  producer?: string;
  /** Graph name (default `tessera`). */
  graphName?: string;
}

/** Default opset: new enough for opset-13 semantics (ReduceSum axes as an input), old enough for any ORT ≥ 1.12. */
export const DEFAULT_OPSET = 17;
/** Default IR version (the IR that goes with opset 17). */
export const DEFAULT_IR_VERSION = 8;

/** ONNX `TensorProto.DataType` of each Tessera datatype (BYTES ↔ STRING). */
export const ONNX_ELEM_TYPES: Readonly<Record<DataType, number>> = {
  FP32: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BYTES: 8,
  BOOL: 9,
  FP16: 10,
  FP64: 11,
  UINT32: 12,
  UINT64: 13,
};

/** The ONNX element type number of a datatype. */
export function onnxElemType(datatype: DataType): number {
  return ONNX_ELEM_TYPES[datatype];
}

// ---------------------------------------------------------------------------------------------
// protobuf wire format

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** An append-only protobuf writer; messages nest by encoding the child first, then `bytes()`. */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Unsigned varint; negatives are written as 64-bit two's complement (10 bytes), as int64/int32 fields require. */
  private rawVarint(value: number | bigint): void {
    let v: bigint;
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) throw new TypeError(`varint must be an integer, got ${value}`);
      if (value >= 0 && value < 0x80) {
        this.push(Uint8Array.of(value));
        return;
      }
      v = BigInt(value);
    } else {
      v = value;
    }
    v = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.rawVarint((field << 3) | wire);
  }

  varint(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  double(field: number, value: number): this {
    this.tag(field, WIRE_FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.rawVarint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, child: ProtoWriter): this {
    return this.bytes(field, child.finish());
  }

  /** Packed repeated varints (proto2 `[packed = true]` is not declared by onnx.proto, but parsers must accept both). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.rawVarint(v);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated floats (fixed32). */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// onnx.proto messages (field numbers from onnx/onnx.proto)

const F = {
  // ModelProto
  MODEL_IR_VERSION: 1,
  MODEL_PRODUCER_NAME: 2,
  MODEL_PRODUCER_VERSION: 3,
  MODEL_GRAPH: 7,
  MODEL_OPSET_IMPORT: 8,
  // OperatorSetIdProto
  OPSET_DOMAIN: 1,
  OPSET_VERSION: 2,
  // GraphProto
  GRAPH_NODE: 1,
  GRAPH_NAME: 2,
  GRAPH_INITIALIZER: 5,
  GRAPH_INPUT: 11,
  GRAPH_OUTPUT: 12,
  // NodeProto
  NODE_INPUT: 1,
  NODE_OUTPUT: 2,
  NODE_NAME: 3,
  NODE_OP_TYPE: 4,
  NODE_ATTRIBUTE: 5,
  NODE_DOMAIN: 7,
  // ValueInfoProto
  VALUE_NAME: 1,
  VALUE_TYPE: 2,
  // TypeProto
  TYPE_TENSOR: 1,
  // TypeProto.Tensor
  TENSOR_TYPE_ELEM_TYPE: 1,
  TENSOR_TYPE_SHAPE: 2,
  // TensorShapeProto
  SHAPE_DIM: 1,
  // TensorShapeProto.Dimension
  DIM_VALUE: 1,
  DIM_PARAM: 2,
  // TensorProto
  TENSOR_DIMS: 1,
  TENSOR_DATA_TYPE: 2,
  TENSOR_STRING_DATA: 6,
  TENSOR_NAME: 8,
  TENSOR_RAW_DATA: 9,
  // AttributeProto
  ATTR_NAME: 1,
  ATTR_F: 2,
  ATTR_I: 3,
  ATTR_S: 4,
  ATTR_T: 5,
  ATTR_FLOATS: 7,
  ATTR_INTS: 8,
  ATTR_TYPE: 20,
} as const;

/** AttributeProto.AttributeType */
const AttrType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
} as const;

function encodeValueInfo(v: OnnxValueSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'string') dim.string(F.DIM_PARAM, d);
    else if (d === -1) {
      // an empty Dimension: dynamic, unnamed
    } else if (Number.isInteger(d) && d >= 0) dim.varint(F.DIM_VALUE, d);
    else throw new TypeError(`${v.name}: invalid dim ${d} (use a non-negative integer, -1 or a symbolic name)`);
    shape.message(F.SHAPE_DIM, dim);
  }
  const tensorType = new ProtoWriter().varint(F.TENSOR_TYPE_ELEM_TYPE, onnxElemType(v.datatype)).message(F.TENSOR_TYPE_SHAPE, shape);
  const type = new ProtoWriter().message(F.TYPE_TENSOR, tensorType);
  return new ProtoWriter().string(F.VALUE_NAME, v.name).message(F.VALUE_TYPE, type);
}

/** Little-endian bytes of a numeric tensor, as `raw_data` requires regardless of the host's byte order. */
function rawData(t: OnnxInitializer): Uint8Array {
  const data = t.data;
  if (Array.isArray(data)) throw new TypeError(`${t.name}: string data for a ${t.datatype} tensor`);
  const Ctor = typedArrayConstructor(t.datatype as Exclude<DataType, 'BYTES'>);
  if (!(data instanceof (Ctor as unknown as abstract new (...args: never[]) => unknown))) {
    throw new TypeError(`${t.name}: ${t.datatype} data must be a ${Ctor.name}, got ${data.constructor.name}`);
  }
  const size = Ctor.BYTES_PER_ELEMENT;
  const out = new Uint8Array(data.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const o = i * size;
    switch (t.datatype) {
      case 'FP32':
        view.setFloat32(o, data[i] as number, true);
        break;
      case 'FP64':
        view.setFloat64(o, data[i] as number, true);
        break;
      case 'INT64':
        view.setBigInt64(o, data[i] as bigint, true);
        break;
      case 'UINT64':
        view.setBigUint64(o, data[i] as bigint, true);
        break;
      case 'INT32':
        view.setInt32(o, data[i] as number, true);
        break;
      case 'UINT32':
        view.setUint32(o, data[i] as number, true);
        break;
      case 'INT16':
        view.setInt16(o, data[i] as number, true);
        break;
      case 'UINT16':
      case 'FP16':
        view.setUint16(o, data[i] as number, true);
        break;
      case 'INT8':
        view.setInt8(o, data[i] as number);
        break;
      case 'UINT8':
        view.setUint8(o, data[i] as number);
        break;
      case 'BOOL':
        // raw_data stores one byte per element, 1 for true
        view.setUint8(o, (data[i] as number) ? 1 : 0);
        break;
    }
  }
  return out;
}

function encodeTensor(t: OnnxInitializer): ProtoWriter {
  const count = shapeSize(t.dims);
  if (t.data.length !== count) {
    throw new RangeError(`${t.name}: ${t.data.length} elements for dims [${t.dims.join(', ')}] (expected ${count})`);
  }
  const w = new ProtoWriter();
  if (t.dims.length > 0) w.packedVarints(F.TENSOR_DIMS, t.dims);
  w.varint(F.TENSOR_DATA_TYPE, onnxElemType(t.datatype));
  w.string(F.TENSOR_NAME, t.name);
  if (t.datatype === 'BYTES') {
    // STRING tensors cannot use raw_data: onnx.proto requires the repeated string_data field
    if (!Array.isArray(t.data)) throw new TypeError(`${t.name}: BYTES data must be a string[]`);
    for (const s of t.data) w.string(F.TENSOR_STRING_DATA, s);
  } else {
    w.bytes(F.TENSOR_RAW_DATA, rawData(t));
  }
  return w;
}

function isIntegral(n: number | bigint): boolean {
  return typeof n === 'bigint' || Number.isInteger(n);
}

function encodeAttribute(name: string, value: OnnxAttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(F.ATTR_NAME, name);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return w.varint(F.ATTR_TYPE, AttrType.INT).varint(F.ATTR_I, value);
    return w.varint(F.ATTR_TYPE, AttrType.FLOAT).float(F.ATTR_F, value);
  }
  if (typeof value === 'string') return w.varint(F.ATTR_TYPE, AttrType.STRING).string(F.ATTR_S, value);
  if (Array.isArray(value)) {
    if (value.every(isIntegral)) return w.varint(F.ATTR_TYPE, AttrType.INTS).packedVarints(F.ATTR_INTS, value);
    return w.varint(F.ATTR_TYPE, AttrType.FLOATS).packedFloats(F.ATTR_FLOATS, value);
  }
  if ('float' in value) return w.varint(F.ATTR_TYPE, AttrType.FLOAT).float(F.ATTR_F, value.float);
  if ('floats' in value) return w.varint(F.ATTR_TYPE, AttrType.FLOATS).packedFloats(F.ATTR_FLOATS, value.floats);
  if ('int' in value) return w.varint(F.ATTR_TYPE, AttrType.INT).varint(F.ATTR_I, value.int);
  if ('ints' in value) return w.varint(F.ATTR_TYPE, AttrType.INTS).packedVarints(F.ATTR_INTS, value.ints);
  if ('tensor' in value) return w.varint(F.ATTR_TYPE, AttrType.TENSOR).message(F.ATTR_T, encodeTensor(value.tensor));
  throw new TypeError(`attribute ${name}: unsupported value ${JSON.stringify(value)}`);
}

function encodeNode(n: OnnxNodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(F.NODE_INPUT, i);
  for (const o of n.outputs) w.string(F.NODE_OUTPUT, o);
  if (n.name !== undefined) w.string(F.NODE_NAME, n.name);
  w.string(F.NODE_OP_TYPE, n.op);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(F.NODE_ATTRIBUTE, encodeAttribute(k, v));
  if (n.domain) w.string(F.NODE_DOMAIN, n.domain);
  return w;
}

function encodeOpset(domain: string, version: number): ProtoWriter {
  const w = new ProtoWriter();
  if (domain) w.string(F.OPSET_DOMAIN, domain);
  return w.varint(F.OPSET_VERSION, version);
}

/**
 * Encodes a model as ONNX protobuf bytes, ready for `fs.writeFile` or `InferenceSession.create`.
 * Throws a TypeError/RangeError when an initializer's data does not match its datatype or dims.
 *
 * ```ts
 * const bytes = buildOnnxModel({
 *   inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }],
 *   outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 4] }],
 *   nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
 * });
 * ```
 */
export function buildOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const graph = new ProtoWriter();
  spec.nodes.forEach((n, i) => graph.message(F.GRAPH_NODE, encodeNode({ ...n, name: n.name ?? `${n.op}_${i}` })));
  graph.string(F.GRAPH_NAME, spec.graphName ?? 'tessera');
  for (const t of spec.initializers ?? []) graph.message(F.GRAPH_INITIALIZER, encodeTensor(t));
  for (const v of spec.inputs) graph.message(F.GRAPH_INPUT, encodeValueInfo(v));
  for (const v of spec.outputs) graph.message(F.GRAPH_OUTPUT, encodeValueInfo(v));

  const model = new ProtoWriter()
    .varint(F.MODEL_IR_VERSION, spec.irVersion ?? DEFAULT_IR_VERSION)
    .string(F.MODEL_PRODUCER_NAME, spec.producer ?? 'tessera-onnx-builder')
    .string(F.MODEL_PRODUCER_VERSION, '0.1.0')
    .message(F.MODEL_GRAPH, graph)
    .message(F.MODEL_OPSET_IMPORT, encodeOpset('', spec.opset ?? DEFAULT_OPSET));
  for (const [domain, version] of Object.entries(spec.extraOpsets ?? {})) model.message(F.MODEL_OPSET_IMPORT, encodeOpset(domain, version));
  return model.finish();
}
