import { isUtf8 } from 'node:buffer';
import type { DataType, Tensor, TensorData, TensorSpec, TypedArray } from '../contracts/tensor.js';
import { elementSize, shapeSize, typedArrayConstructor } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';

/**
 * Triton's binary tensor data extension (docs/protocol/extension_binary_data.md in
 * triton-inference-server/server), as pure functions over Buffers:
 *
 * - a body is a JSON header followed by raw tensor bytes; the HTTP header
 *   `Inference-Header-Content-Length` gives the JSON header's length in bytes;
 * - an input or output carried in binary has `"parameters": {"binary_data_size": N}` and no `data`;
 *   the blobs follow the JSON in the order of those tensors;
 * - bytes are little-endian and row-major; BOOL is one byte (0/1) per element, FP16 the raw half
 *   bits, BYTES per element a uint32-LE length then that many bytes;
 * - `Inference-Header-Content-Length: 0` is a "raw binary request": no JSON at all, the body is the
 *   data of the model's only input, whose shape is deduced from the byte count.
 *
 * Fixed-size tensors are decoded as typed-array views on the request body when the offset is
 * aligned to the element size (one copy otherwise; `alignBinaryTail` makes them aligned in place),
 * so float data never goes through JSON.
 */

/** The HTTP header that carries the length of the JSON part of a binary body (lower case, as Node gives it). */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'inference-header-content-length';

/** The server metadata extension name Triton reports for this extension. */
export const BINARY_TENSOR_EXTENSION = 'binary_tensor_data';

/** An input of the JSON header (structure as in OIP v2; `data` absent when it is sent in binary). */
export interface BinaryHeaderInput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, unknown>;
  data?: unknown;
}

/** The JSON header of a (binary) inference request: an OIP v2 inference request. */
export interface BinaryInferRequestHeader {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: BinaryHeaderInput[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

/** A binary request split in two: the parsed JSON header, and each input's bytes (undefined for JSON `data` inputs). */
export interface ParsedBinaryInferRequest {
  header: BinaryInferRequestHeader;
  /** `blobs[i]` is the binary data of `header.inputs[i]` (a view on the body, not a copy), or undefined when that input has JSON `data`. */
  blobs: (Buffer | undefined)[];
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function framing(message: string): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_BINARY', message);
}

function shapeText(shape: readonly number[]): string {
  return shape.length > 8 ? `[${shape.slice(0, 8).join(', ')}, … (rank ${shape.length})]` : `[${shape.join(', ')}]`;
}

/** A client's value in a message: primitives as JSON (cut at 40 characters), containers by kind (never walked: they may nest deeply). */
function shownValue(value: unknown): string {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
}

/** An input's name for a message (its index when it has none; cut at 100 characters). */
function label(name: unknown, index: number): string {
  return typeof name === 'string' ? name.slice(0, 100) : String(index);
}

/**
 * Reads `Inference-Header-Content-Length`: `undefined` when the header is absent (the whole body is
 * JSON), else the JSON header's length, checked to be a decimal integer within the body.
 */
export function parseInferenceHeaderLength(value: string | string[] | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (!/^\s*\d{1,15}\s*$/.test(text)) {
    throw framing(`Inference-Header-Content-Length must be the byte length of the JSON header (a non-negative integer), got '${text.slice(0, 40)}'`);
  }
  const length = Number(text);
  if (length > bodyLength) {
    throw framing(`Inference-Header-Content-Length is ${length} but the body has only ${bodyLength} bytes`);
  }
  return length;
}

/** JSON.parse of UTF-8 bytes. */
const parseUtf8Json = (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8'));

/**
 * Parses the JSON header: the first `headerLength` bytes of `body`. `parseJson` (given the bytes)
 * defaults to JSON.parse; the server passes its own parser (UTF-8, the depth limit, prototype-
 * poisoning checks), whose refusals with a code of their own (e.g. `TESSERA_E_REQUEST_TOO_DEEP`)
 * pass through. Only the framing is checked here (an object with an `inputs` array); the full
 * structure is the caller's (the OIP v2 schema).
 */
export function parseBinaryHeader(body: Buffer, headerLength: number, parseJson: (bytes: Buffer) => unknown = parseUtf8Json): BinaryInferRequestHeader {
  if (!Number.isSafeInteger(headerLength) || headerLength < 1 || headerLength > body.length) {
    throw framing(`the JSON header length ${headerLength} is outside the body (1…${body.length} bytes)`);
  }
  let header: unknown;
  try {
    header = parseJson(body.subarray(0, headerLength));
  } catch (err) {
    if (err instanceof TesseraError && err.code !== 'TESSERA_E_REQUEST_INVALID') throw err;
    throw new TesseraError(
      'TESSERA_E_REQUEST_BINARY',
      `the first ${headerLength} bytes of the body (Inference-Header-Content-Length) are not a JSON object: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw framing(`the first ${headerLength} bytes of the body (Inference-Header-Content-Length) are JSON but not an object`);
  }
  return header as BinaryInferRequestHeader;
}

/** The `binary_data_size` an input declares, or undefined when it has none. */
export function binaryDataSize(input: BinaryHeaderInput, index = 0): number | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const params = input.parameters;
  if (params === undefined || params === null || typeof params !== 'object' || !('binary_data_size' in params)) return undefined;
  const size = params['binary_data_size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw framing(`input '${label(input.name, index)}': parameters.binary_data_size must be a non-negative integer, got ${shownValue(size)}`);
  }
  return size;
}

/**
 * Hands each input that declares `binary_data_size` its bytes from `tail` (the body after the JSON
 * header), in input order, as views. The sizes must add up to `tail.length` exactly: too few bytes,
 * bytes left over, and `binary_data_size` together with `data` are errors. `headerPresent: false`
 * (a plain JSON request) only changes the wording: no tail can exist then.
 */
export function splitBinaryInputs(header: BinaryInferRequestHeader, tail: Buffer, headerPresent = true): (Buffer | undefined)[] {
  const inputs = Array.isArray(header.inputs) ? header.inputs : [];
  const blobs = new Array<Buffer | undefined>(inputs.length);
  let offset = 0;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const size = binaryDataSize(input, i);
    if (size === undefined) {
      blobs[i] = undefined;
      continue;
    }
    if (input.data !== undefined) {
      throw framing(`input '${label(input.name, i)}' has both data and parameters.binary_data_size; send one of them`);
    }
    const left = tail.length - offset;
    if (size > left) {
      throw framing(
        headerPresent
          ? `input '${label(input.name, i)}': binary_data_size is ${size} but only ${left} bytes remain after the JSON header and the inputs before it`
          : `input '${label(input.name, i)}': binary_data_size is ${size} but the request has no binary part; send the Inference-Header-Content-Length header with the length of the JSON header`,
      );
    }
    blobs[i] = tail.subarray(offset, offset + size);
    offset += size;
  }
  if (offset !== tail.length) {
    throw framing(`${tail.length - offset} bytes after the JSON header belong to no input: the inputs' binary_data_size add up to ${offset}, the body carries ${tail.length} after the header`);
  }
  return blobs;
}

/**
 * Splits a binary inference request body: the JSON header (`headerLength` bytes, from
 * `Inference-Header-Content-Length`) and each input's bytes. Decode an input's bytes with
 * `decodeBinaryTensor` once its datatype and shape are checked against the model.
 */
export function parseBinaryInferRequest(body: Buffer, headerLength: number, parseJson?: (bytes: Buffer) => unknown): ParsedBinaryInferRequest {
  const header = parseBinaryHeader(body, headerLength, parseJson);
  if (!Array.isArray(header.inputs)) throw framing('the JSON header has no inputs array');
  return { header, blobs: splitBinaryInputs(header, body.subarray(headerLength)) };
}

/**
 * Moves the bytes after the JSON header back onto an 8-byte boundary, over the end of the header
 * (dead once parsed), so that tensors can be viewed in place even when the client did not pad its
 * header (Triton's clients do not): a memmove within the buffer instead of an allocation and a copy
 * per tensor. Mutates `body` — call it only on a buffer you own, after the header is parsed — and
 * returns the view of the moved bytes.
 */
export function alignBinaryTail(body: Buffer, headerLength: number): Buffer {
  const length = body.length - headerLength;
  const shift = (body.byteOffset + headerLength) % 8;
  if (shift === 0 || length === 0 || shift > headerLength) return body.subarray(headerLength);
  const start = headerLength - shift;
  body.copyWithin(start, headerLength);
  return body.subarray(start, start + length);
}

/**
 * The element count of `shape`, whose dims must be non-negative safe integers (a 400
 * `TESSERA_E_INPUT_SHAPE` otherwise: `[-1, 0]` has "0 elements" too). The decoders check it
 * themselves rather than trust that their caller did.
 */
export function checkedElementCount(shape: readonly number[], label = 'tensor'): number {
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new TesseraError('TESSERA_E_INPUT_SHAPE', `${label}: dim ${i} of the shape is ${shownValue(d)}; dims are non-negative integers`);
    }
    count *= d;
  }
  return count;
}

/** The byte size of a fixed-size tensor, or undefined for BYTES. */
export function binaryByteSize(datatype: DataType, shape: readonly number[]): number | undefined {
  const size = elementSize(datatype);
  return size === undefined ? undefined : shapeSize(shape) * size;
}

function swapped(bytes: Buffer, size: number): Buffer {
  const copy = Buffer.from(bytes);
  if (size === 2) copy.swap16();
  else if (size === 4) copy.swap32();
  else if (size === 8) copy.swap64();
  return copy;
}

/**
 * Decodes one tensor's binary data. Fixed-size types must have exactly `shape product × element
 * size` bytes and come back as a typed-array view on `bytes` when its offset is aligned to the
 * element size (a copy otherwise); BOOL bytes must be 0 or 1; BYTES elements must fill `bytes`
 * exactly, number the shape's product and be valid UTF-8 (Tessera's BYTES tensors hold strings),
 * unless `content` is `binary` (`TensorSpec.content`): then any bytes, one character per byte.
 */
export function decodeBinaryTensor(datatype: DataType, shape: readonly number[], bytes: Buffer, label = 'tensor', content: TensorSpec['content'] = 'text'): TensorData {
  if (datatype === 'BYTES') return decodeBytesElements(bytes, checkedElementCount(shape, label), label, content);
  const Ctor = typedArrayConstructor(datatype) as unknown as { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; new (length: number): TypedArray; BYTES_PER_ELEMENT: number };
  const size = Ctor.BYTES_PER_ELEMENT;
  const count = checkedElementCount(shape, label);
  if (bytes.length !== count * size) {
    throw framing(`${label}: binary_data_size is ${bytes.length} but shape ${shapeText(shape)} of ${datatype} needs ${count * size} bytes (${count} × ${size})`);
  }
  let data: TypedArray;
  if (size > 1 && !LITTLE_ENDIAN) {
    const copy = swapped(bytes, size);
    data = new Ctor(copy.buffer, copy.byteOffset, count);
  } else if (bytes.byteOffset % size === 0) {
    data = new Ctor(bytes.buffer, bytes.byteOffset, count);
  } else {
    data = new Ctor(count);
    new Uint8Array(data.buffer, 0, bytes.length).set(bytes);
  }
  if (datatype === 'BOOL') {
    const bools = data as Uint8Array;
    for (let i = 0; i < bools.length; i++) {
      if (bools[i]! > 1) throw new TesseraError('TESSERA_E_INPUT_DATA', `${label}: BOOL element ${i} is the byte ${bools[i]}; binary BOOL is one byte, 0 or 1`);
    }
  }
  return data;
}

/**
 * Decodes BYTES elements (uint32-LE length + bytes, repeated) into strings; `count` is the expected
 * number. `label` names the tensor in error messages (e.g. `input 'x'`). `content: 'binary'`
 * keeps any bytes as latin1 strings (one character per byte) instead of requiring UTF-8.
 */
export function decodeBytesElements(bytes: Buffer, count: number, label = 'tensor', content: TensorSpec['content'] = 'text'): string[] {
  const out: string[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) {
      throw framing(`${label}: BYTES element ${out.length} starts at byte ${offset} but only ${bytes.length - offset} bytes remain, less than its 4-byte length`);
    }
    const length = bytes.readUInt32LE(offset);
    const start = offset + 4;
    const end = start + length;
    if (end > bytes.length) {
      throw framing(`${label}: BYTES element ${out.length} claims ${length} bytes but only ${bytes.length - start} remain in its binary_data_size`);
    }
    if (out.length === count) {
      throw framing(`${label}: the binary data holds more than the ${count} BYTES elements its shape needs`);
    }
    const element = bytes.subarray(start, end);
    if (content === 'binary') {
      out.push(element.toString('latin1'));
      offset = end;
      continue;
    }
    if (!isUtf8(element)) {
      throw new TesseraError('TESSERA_E_INPUT_DATA', `${label}: BYTES element ${out.length} is not valid UTF-8; Tessera's BYTES tensors hold text`);
    }
    out.push(element.toString('utf8'));
    offset = end;
  }
  if (out.length !== count) {
    throw framing(`${label}: the binary data holds ${out.length} BYTES elements but its shape needs ${count}`);
  }
  return out;
}

/** Byte length of BYTES elements once encoded (4 bytes of length + the UTF-8 bytes, per element). */
export function bytesElementsLength(strings: readonly string[]): number {
  let total = 0;
  for (const s of strings) total += 4 + Buffer.byteLength(s, 'utf8');
  return total;
}

/** Encodes strings as BYTES elements into one Buffer: per element a uint32-LE length and the UTF-8 bytes. */
export function encodeBytesElements(strings: readonly string[]): Buffer {
  const out = Buffer.allocUnsafe(bytesElementsLength(strings));
  let offset = 0;
  for (const s of strings) {
    const written = out.write(s, offset + 4, 'utf8');
    out.writeUInt32LE(written, offset);
    offset += 4 + written;
  }
  return out;
}

/**
 * A tensor's data as binary chunks, in order: for typed arrays a view on the same memory (no copy),
 * for BYTES one Buffer of length-prefixed elements. The chunks' total length is `binary_data_size`.
 */
export function encodeBinaryTensor(tensor: Pick<Tensor, 'datatype' | 'data'>): Buffer[] {
  if (tensor.datatype === 'BYTES') return [encodeBytesElements(tensor.data as string[])];
  const data = tensor.data as TypedArray;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const size = data.BYTES_PER_ELEMENT;
  return [size > 1 && !LITTLE_ENDIAN ? swapped(view, size) : view];
}

/** Total byte length of chunks. */
export function chunksLength(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/**
 * The shape of a raw binary request's input (`Inference-Header-Content-Length: 0`, Triton's rules):
 * the model must have exactly one input; a batching model's dim 0 is 1; at most one other dim may
 * be variable, deduced from the byte count; a BYTES input must hold exactly one element.
 */
export function rawInputShape(spec: TensorSpec, maxBatchSize: number, byteLength: number): number[] {
  const batched = maxBatchSize > 0 && spec.shape.length > 0;
  const shape = batched ? [1, ...spec.shape.slice(1)] : [...spec.shape];
  let dynamicAxis = -1;
  let fixed = 1;
  for (let i = batched ? 1 : 0; i < shape.length; i++) {
    if (shape[i] === -1) {
      if (dynamicAxis !== -1) {
        throw framing(`a raw binary request (Inference-Header-Content-Length: 0) cannot deduce the shape of input '${spec.name}' ${shapeText(spec.shape)}: it has more than one variable dimension; send a JSON header`);
      }
      dynamicAxis = i;
    } else {
      fixed *= shape[i]!;
    }
  }
  const size = elementSize(spec.datatype);
  if (size === undefined) {
    if (dynamicAxis !== -1 || fixed !== 1) {
      throw framing(`a raw binary request (Inference-Header-Content-Length: 0) to a BYTES input needs the shape [1]; input '${spec.name}' is ${shapeText(spec.shape)}; send a JSON header`);
    }
    return shape;
  }
  if (dynamicAxis === -1) {
    if (fixed * size !== byteLength) {
      throw framing(`a raw binary request for input '${spec.name}' ${shapeText(shape)} of ${spec.datatype} needs ${fixed * size} bytes, the body has ${byteLength}`);
    }
    return shape;
  }
  const row = fixed * size;
  if (row === 0 || byteLength % row !== 0) {
    throw framing(`a raw binary request for input '${spec.name}' ${shapeText(spec.shape)} of ${spec.datatype}: ${byteLength} bytes are not a whole number of ${row}-byte steps along the variable dimension`);
  }
  shape[dynamicAxis] = byteLength / row;
  return shape;
}

/**
 * Decodes a raw binary request (`Inference-Header-Content-Length: 0`): the whole body is the data of
 * the model's only input. A BYTES input's body is the element's bytes without a length prefix.
 */
export function decodeRawBinaryRequest(body: Buffer, inputs: readonly TensorSpec[], maxBatchSize: number): Tensor {
  if (inputs.length !== 1) {
    throw framing(`a raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly one input; this one has ${inputs.length} (${inputs.map((s) => s.name).join(', ')}); send a JSON header`);
  }
  const spec = inputs[0]!;
  const shape = rawInputShape(spec, maxBatchSize, body.length);
  if (spec.datatype === 'BYTES') {
    if (spec.content === 'binary') return { name: spec.name, datatype: 'BYTES', shape, data: [body.toString('latin1')] };
    if (!isUtf8(body)) throw new TesseraError('TESSERA_E_INPUT_DATA', `input '${spec.name}': the raw BYTES element is not valid UTF-8; Tessera's BYTES tensors hold text`);
    return { name: spec.name, datatype: 'BYTES', shape, data: [body.toString('utf8')] };
  }
  return { name: spec.name, datatype: spec.datatype, shape, data: decodeBinaryTensor(spec.datatype, shape, body, `input '${spec.name}'`) };
}
