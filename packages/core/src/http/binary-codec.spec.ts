import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import type { DataType, TensorData } from '../contracts/tensor.js';
import { DATA_TYPES, numberToHalf } from '../contracts/tensor.js';
import { decodeBinaryInferResponse, encodeBinaryInferRequest } from './binary-client.js';
import {
  alignBinaryTail,
  binaryByteSize,
  bytesElementsLength,
  decodeBinaryTensor,
  decodeBytesElements,
  decodeRawBinaryRequest,
  encodeBinaryTensor,
  encodeBytesElements,
  parseBinaryHeader,
  parseBinaryInferRequest,
  parseInferenceHeaderLength,
  rawInputShape,
  splitBinaryInputs,
} from './binary-codec.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

/** Four elements of every datatype, edge values included. */
const SAMPLES: Record<DataType, TensorData> = {
  BOOL: Uint8Array.from([1, 0, 1, 1]),
  UINT8: Uint8Array.from([0, 255, 7, 1]),
  UINT16: Uint16Array.from([0, 65535, 7, 1]),
  UINT32: Uint32Array.from([0, 4294967295, 7, 1]),
  UINT64: BigUint64Array.from([0n, 18446744073709551615n, 2n ** 53n + 1n, 1n]),
  INT8: Int8Array.from([-128, 127, 0, -1]),
  INT16: Int16Array.from([-32768, 32767, 0, -1]),
  INT32: Int32Array.from([-2147483648, 2147483647, 0, -1]),
  INT64: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -1n]),
  FP16: Uint16Array.from([numberToHalf(1), numberToHalf(-2.5), 0x7c00, 0x7e00]),
  FP32: Float32Array.from([1.5, -0, Number.NaN, 3.4028234663852886e38]),
  FP64: Float64Array.from([Math.PI, Number.MIN_VALUE, Number.NEGATIVE_INFINITY, -1e300]),
  BYTES: ['', 'a', 'héllo 中文 🙂', 'x'.repeat(300)],
};

/** The little-endian bytes of a sample, written independently of the codec (DataView). */
function littleEndianBytes(datatype: DataType, data: TensorData): Buffer {
  if (datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const s of data as string[]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const ta = data as Exclude<TensorData, string[]>;
  const out = Buffer.alloc(ta.byteLength);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const size = ta.BYTES_PER_ELEMENT;
  for (let i = 0; i < ta.length; i++) {
    const v = ta[i]!;
    switch (datatype) {
      case 'FP32':
        view.setFloat32(i * size, v as number, true);
        break;
      case 'FP64':
        view.setFloat64(i * size, v as number, true);
        break;
      case 'INT64':
        view.setBigInt64(i * size, v as bigint, true);
        break;
      case 'UINT64':
        view.setBigUint64(i * size, v as bigint, true);
        break;
      default:
        if (size === 1) view.setUint8(i, Number(v) & 0xff);
        else if (size === 2) view.setUint16(i * 2, Number(v) & 0xffff, true);
        else view.setUint32(i * 4, Number(v) >>> 0, true);
    }
  }
  return out;
}

/** `bytes` copied into a fresh buffer at byte `offset` (to control alignment). */
function at(bytes: Buffer, offset: number): Buffer {
  const backing = Buffer.alloc(offset + bytes.length + 8);
  bytes.copy(backing, offset);
  return backing.subarray(offset, offset + bytes.length);
}

describe('encodeBinaryTensor / decodeBinaryTensor', () => {
  it.each(DATA_TYPES.map((d) => [d]))('should round-trip %s in little-endian row-major bytes', (datatype) => {
    const data = SAMPLES[datatype];
    const chunks = encodeBinaryTensor({ datatype, data });
    const bytes = Buffer.concat(chunks);
    expect(bytes.equals(littleEndianBytes(datatype, data))).toBe(true);
    const back = decodeBinaryTensor(datatype, [2, 2], bytes);
    if (datatype === 'BYTES') expect(back).toEqual(data);
    else {
      expect(back.constructor).toBe(data.constructor);
      // byte-exact (NaN payloads and -0 included)
      expect(Buffer.from((back as Uint8Array).buffer, (back as Uint8Array).byteOffset, (back as Uint8Array).byteLength).equals(bytes)).toBe(true);
    }
  });

  it('should size BOOL at one byte per element and FP16 at two', () => {
    expect(binaryByteSize('BOOL', [2, 3])).toBe(6);
    expect(binaryByteSize('FP16', [2, 3])).toBe(12);
    expect(binaryByteSize('INT64', [5])).toBe(40);
    expect(binaryByteSize('BYTES', [5])).toBeUndefined();
  });

  it('should encode typed arrays as views on their memory, without a copy', () => {
    const big = new Float32Array(16).map((_, i) => i);
    const slice = big.subarray(4, 8);
    const [chunk] = encodeBinaryTensor({ datatype: 'FP32', data: slice });
    expect(chunk!.buffer).toBe(big.buffer);
    expect(chunk!.byteOffset).toBe(16);
    expect(chunk!.length).toBe(16);
  });

  it.each<[DataType, number]>([
    ['FP32', 4],
    ['FP64', 8],
    ['INT64', 8],
    ['FP16', 2],
    ['INT32', 4],
  ])('should view aligned %s bytes without a copy and copy unaligned ones once', (datatype, size) => {
    const data = SAMPLES[datatype];
    const bytes = littleEndianBytes(datatype, data);
    const aligned = at(bytes, size * 3);
    const viewed = decodeBinaryTensor(datatype, [4], aligned) as Uint8Array;
    expect(viewed.buffer).toBe(aligned.buffer);
    expect(viewed.byteOffset).toBe(aligned.byteOffset);
    for (const offset of [1, size + 1, size * 2 - 1]) {
      const unaligned = at(bytes, offset);
      const copied = decodeBinaryTensor(datatype, [4], unaligned) as Uint8Array;
      expect(copied.buffer).not.toBe(unaligned.buffer);
      expect(copied.byteOffset).toBe(0);
      expect(Buffer.from(copied.buffer, copied.byteOffset, copied.byteLength).equals(bytes)).toBe(true);
    }
  });

  it('should view one-byte types at any offset', () => {
    const bytes = at(Buffer.from([1, 2, 3]), 5);
    const out = decodeBinaryTensor('UINT8', [3], bytes) as Uint8Array;
    expect(out.buffer).toBe(bytes.buffer);
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(out)).toBe(false);
  });

  it('should decode empty tensors', () => {
    expect((decodeBinaryTensor('FP32', [0, 4], Buffer.alloc(0)) as Float32Array).length).toBe(0);
    expect(decodeBinaryTensor('BYTES', [0], Buffer.alloc(0))).toEqual([]);
  });

  it('should reject a byte count that is not shape × element size', () => {
    expect(thrownCode(() => decodeBinaryTensor('FP32', [2, 2], Buffer.alloc(12), "input 'x'"))).toBe('TESSERA_E_REQUEST_BINARY');
    expect(thrownCode(() => decodeBinaryTensor('FP32', [2, 2], Buffer.alloc(20)))).toBe('TESSERA_E_REQUEST_BINARY');
    expect(thrownCode(() => decodeBinaryTensor('FP16', [3], Buffer.alloc(3)))).toBe('TESSERA_E_REQUEST_BINARY');
    expect(messageOf(() => decodeBinaryTensor('FP32', [2, 2], Buffer.alloc(12), "input 'x'"))).toBe(
      "input 'x': binary_data_size is 12 but shape [2, 2] of FP32 needs 16 bytes (4 × 4)",
    );
  });

  it('should reject BOOL bytes other than 0 and 1', () => {
    expect(thrownCode(() => decodeBinaryTensor('BOOL', [3], Buffer.from([1, 0, 2])))).toBe('TESSERA_E_INPUT_DATA');
  });
});

describe('BYTES elements', () => {
  it('should write a uint32-LE length before each element, UTF-8 bytes after', () => {
    const buf = encodeBytesElements(['', 'é', 'ab']);
    expect([...buf]).toEqual([0, 0, 0, 0, 2, 0, 0, 0, 0xc3, 0xa9, 2, 0, 0, 0, 0x61, 0x62]);
    expect(bytesElementsLength(['', 'é', 'ab'])).toBe(16);
    expect(decodeBytesElements(buf, 3)).toEqual(['', 'é', 'ab']);
  });

  it('should round-trip empty strings and multi-byte UTF-8', () => {
    const strings = ['', '', '🙂🙂', 'ß中\n"', ''];
    expect(decodeBytesElements(encodeBytesElements(strings), 5)).toEqual(strings);
  });

  it.each<[string, Buffer, number]>([
    ['a length that runs past the blob', Buffer.from([5, 0, 0, 0, 0x61, 0x62]), 1],
    ['a truncated length prefix', Buffer.from([1, 0, 0, 0, 0x61, 1, 0]), 2],
    ['fewer elements than the shape', encodeBytesElements(['a', 'b']), 3],
    ['more elements than the shape', encodeBytesElements(['a', 'b', 'c']), 2],
    ['elements for an empty shape', encodeBytesElements(['a']), 0],
    ['a huge length', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x61]), 1],
  ])('should reject %s', (_label, bytes, count) => {
    expect(thrownCode(() => decodeBytesElements(bytes, count, "input 's'"))).toBe('TESSERA_E_REQUEST_BINARY');
  });

  it('should reject elements that are not UTF-8', () => {
    expect(thrownCode(() => decodeBytesElements(Buffer.from([2, 0, 0, 0, 0xff, 0xfe]), 1))).toBe('TESSERA_E_INPUT_DATA');
  });
});

describe('parseInferenceHeaderLength', () => {
  it('should read a decimal length within the body', () => {
    expect(parseInferenceHeaderLength(undefined, 10)).toBeUndefined();
    expect(parseInferenceHeaderLength('10', 10)).toBe(10);
    expect(parseInferenceHeaderLength(' 7 ', 10)).toBe(7);
    expect(parseInferenceHeaderLength('0', 10)).toBe(0);
  });

  it.each([['abc'], ['-1'], ['1.5'], ['1e3'], [''], ['12, 12'], ['0x10'], ['99999999999999999999']])('should reject %j', (value) => {
    expect(thrownCode(() => parseInferenceHeaderLength(value, 100))).toBe('TESSERA_E_REQUEST_BINARY');
  });

  it('should reject a length larger than the body', () => {
    expect(thrownCode(() => parseInferenceHeaderLength('11', 10))).toBe('TESSERA_E_REQUEST_BINARY');
    expect(messageOf(() => parseInferenceHeaderLength('11', 10))).toContain('only 10 bytes');
  });
});

describe('parseBinaryInferRequest', () => {
  const x = { name: 'x', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.from([1, 2, 3, 4]) };
  const b = { name: 'b', datatype: 'INT32' as const, shape: [2], data: Int32Array.from([7, -7]) };

  it("should parse Triton's documented example: a UINT32 and a BOOL input", () => {
    const header = Buffer.from(
      JSON.stringify({
        model_name: 'mymodel',
        inputs: [
          { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
          { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
        ],
        outputs: [{ name: 'output0', parameters: { binary_data: true } }],
      }),
    );
    const body = Buffer.concat([header, littleEndianBytes('UINT32', Uint32Array.from([1, 2, 3, 4])), Buffer.from([1, 0, 1])]);
    expect(body.length).toBe(header.length + 19);
    const { header: h, blobs } = parseBinaryInferRequest(body, header.length);
    expect(h.inputs.map((i) => i.name)).toEqual(['input0', 'input1']);
    expect([...(decodeBinaryTensor('UINT32', [2, 2], blobs[0]!) as Uint32Array)]).toEqual([1, 2, 3, 4]);
    expect([...(decodeBinaryTensor('BOOL', [3], blobs[1]!) as Uint8Array)]).toEqual([1, 0, 1]);
  });

  it('should hand blobs out in input order, skipping JSON inputs, as views on the body', () => {
    const req = encodeBinaryInferRequest([x, { ...b, binary: false }, { ...b, name: 'c' }]);
    const { header, blobs } = parseBinaryInferRequest(req.body, req.headerLength);
    expect(header.inputs[1]!.data).toEqual([7, -7]);
    expect(blobs[1]).toBeUndefined();
    expect(blobs[0]!.buffer).toBe(req.body.buffer);
    expect([...(decodeBinaryTensor('FP32', [1, 4], blobs[0]!) as Float32Array)]).toEqual([1, 2, 3, 4]);
    expect([...(decodeBinaryTensor('INT32', [2], blobs[2]!) as Int32Array)]).toEqual([7, -7]);
  });

  it('should let the client pad the header so that tensor bytes start aligned', () => {
    const padded = encodeBinaryInferRequest([x], { align: 8 });
    expect(padded.headerLength % 8).toBe(0);
    const parsed = parseBinaryInferRequest(padded.body, padded.headerLength);
    const data = decodeBinaryTensor('FP32', [1, 4], parsed.blobs[0]!) as Float32Array;
    expect(data.buffer).toBe(padded.body.buffer); // a view
    const tight = encodeBinaryInferRequest([x], { align: 1, id: 'abc' });
    expect(tight.headerLength).toBe(Buffer.byteLength(tight.body.toString('utf8', 0, tight.headerLength).trimEnd()));
  });

  it('should move an unpadded tail onto an 8-byte boundary in place, so that tensors are views', () => {
    const f64 = { name: 'd', datatype: 'FP64' as const, shape: [3], data: Float64Array.from([1.5, -2, Math.PI]) };
    for (let extra = 0; extra < 8; extra++) {
      const req = encodeBinaryInferRequest([x, f64], { align: 1, id: 'z'.repeat(extra) });
      const body = Buffer.concat([req.body]); // a buffer of its own, as the server's parser gets it
      const { header } = parseBinaryInferRequest(body, req.headerLength);
      const tail = alignBinaryTail(body, req.headerLength);
      expect(tail.byteOffset % 8).toBe(0);
      expect(tail.buffer).toBe(body.buffer);
      const blobs = splitBinaryInputs(header, tail);
      const a = decodeBinaryTensor('FP32', [1, 4], blobs[0]!) as Float32Array;
      const d = decodeBinaryTensor('FP64', [3], blobs[1]!) as Float64Array;
      expect(a.buffer).toBe(body.buffer);
      expect(d.buffer).toBe(body.buffer);
      expect([...a]).toEqual([1, 2, 3, 4]);
      expect([...d]).toEqual([1.5, -2, Math.PI]);
    }
  });

  it('should accept binary_data_size 0 for an empty tensor', () => {
    const req = encodeBinaryInferRequest([{ name: 'e', datatype: 'FP32', shape: [0, 4], data: new Float32Array(0) }]);
    const { blobs } = parseBinaryInferRequest(req.body, req.headerLength);
    expect(blobs[0]!.length).toBe(0);
  });

  function withTail(header: unknown, tail: Buffer): { body: Buffer; length: number } {
    const h = Buffer.from(JSON.stringify(header));
    return { body: Buffer.concat([h, tail]), length: h.length };
  }
  const fp = (size: unknown, extra: Record<string, unknown> = {}) => ({ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: size }, ...extra });

  it.each<[string, () => unknown]>([
    ['a header that is not JSON', () => parseBinaryInferRequest(Buffer.from('{"inputs": [ xx'), 15)],
    ['a header cut short by a wrong length', () => {
      const { body, length } = withTail({ inputs: [fp(16)] }, Buffer.alloc(16));
      return parseBinaryInferRequest(body, length - 3);
    }],
    ['a header length past the JSON into the tensor bytes', () => {
      const { body, length } = withTail({ inputs: [fp(16)] }, Buffer.alloc(16, 0x41));
      return parseBinaryInferRequest(body, length + 2);
    }],
    ['a header that is JSON but not an object', () => parseBinaryInferRequest(Buffer.from('[1,2]'), 5)],
    ['a header without inputs', () => parseBinaryInferRequest(Buffer.from('{"id":"a"}'), 10)],
    ['a header length of zero given to the JSON parser', () => parseBinaryHeader(Buffer.from('{}'), 0)],
    ['a header length beyond the body', () => parseBinaryHeader(Buffer.from('{}'), 3)],
    ['too few bytes after the header', () => {
      const { body, length } = withTail({ inputs: [fp(16)] }, Buffer.alloc(15));
      return parseBinaryInferRequest(body, length);
    }],
    ['bytes left over after the last input', () => {
      const { body, length } = withTail({ inputs: [fp(16)] }, Buffer.alloc(17));
      return parseBinaryInferRequest(body, length);
    }],
    ['bytes after the header that no input claims', () => {
      const { body, length } = withTail({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }, Buffer.alloc(4));
      return parseBinaryInferRequest(body, length);
    }],
    ['sizes that add up to more than the body', () => {
      const { body, length } = withTail({ inputs: [fp(8), { ...fp(16), name: 'y' }] }, Buffer.alloc(16));
      return parseBinaryInferRequest(body, length);
    }],
    ['binary_data_size together with data', () => {
      const { body, length } = withTail({ inputs: [fp(16, { data: [1, 2, 3, 4] })] }, Buffer.alloc(16));
      return parseBinaryInferRequest(body, length);
    }],
    ['a negative binary_data_size', () => {
      const { body, length } = withTail({ inputs: [fp(-4)] }, Buffer.alloc(0));
      return parseBinaryInferRequest(body, length);
    }],
    ['a fractional binary_data_size', () => {
      const { body, length } = withTail({ inputs: [fp(1.5)] }, Buffer.alloc(2));
      return parseBinaryInferRequest(body, length);
    }],
    ['a string binary_data_size', () => {
      const { body, length } = withTail({ inputs: [fp('16')] }, Buffer.alloc(16));
      return parseBinaryInferRequest(body, length);
    }],
  ])('should reject %s with TESSERA_E_REQUEST_BINARY', (_label, fn) => {
    expect(thrownCode(fn)).toBe('TESSERA_E_REQUEST_BINARY');
  });

  it('should say that a JSON request without the header cannot carry binary data', () => {
    const header = { inputs: [fp(16)] };
    expect(messageOf(() => splitBinaryInputs(header as never, Buffer.alloc(0), false))).toContain('Inference-Header-Content-Length');
    expect(splitBinaryInputs({ inputs: [fp(0)] }, Buffer.alloc(0), false)[0]!.length).toBe(0);
  });

  it('should name the position where the header stops being JSON', () => {
    expect(messageOf(() => parseBinaryInferRequest(Buffer.from('{"inputs": [ xx'), 15))).toMatch(/first 15 bytes.*not a JSON object/);
  });
});

describe('raw binary requests (Inference-Header-Content-Length: 0)', () => {
  const spec = (datatype: DataType, shape: number[]) => ({ name: 'in', datatype, shape });

  it('should make dim 0 of a batching model 1 and deduce one variable dim from the byte count', () => {
    expect(rawInputShape(spec('FP32', [-1, 3]), 8, 12)).toEqual([1, 3]);
    expect(rawInputShape(spec('FP32', [-1, 3, -1]), 8, 36)).toEqual([1, 3, 3]);
    expect(rawInputShape(spec('UINT8', [-1]), 0, 5)).toEqual([5]);
    expect(rawInputShape(spec('FP32', [2, 3]), 0, 24)).toEqual([2, 3]);
    expect(rawInputShape(spec('BYTES', [-1, 1]), 4, 99)).toEqual([1, 1]);
  });

  it.each<[string, () => unknown]>([
    ['two variable dims', () => rawInputShape(spec('FP32', [-1, 3, -1, -1]), 8, 48)],
    ['a byte count that is not a whole number of rows', () => rawInputShape(spec('FP32', [-1, 3, -1]), 8, 13)],
    ['a byte count that does not fit a fixed shape', () => rawInputShape(spec('FP32', [-1, 3]), 8, 16)],
    ['a BYTES input of more than one element', () => rawInputShape(spec('BYTES', [-1, 3]), 8, 4)],
    ['a model with two inputs', () => decodeRawBinaryRequest(Buffer.alloc(4), [spec('FP32', [1]), { ...spec('FP32', [1]), name: 'b' }], 0)],
  ])('should reject %s', (_label, fn) => {
    expect(thrownCode(fn)).toBe('TESSERA_E_REQUEST_BINARY');
  });

  it('should take the whole body as the only input, BYTES without a length prefix', () => {
    const t = decodeRawBinaryRequest(littleEndianBytes('FP32', Float32Array.from([1, 2, 3])), [spec('FP32', [-1, 3])], 4);
    expect(t.shape).toEqual([1, 3]);
    expect([...(t.data as Float32Array)]).toEqual([1, 2, 3]);
    const s = decodeRawBinaryRequest(Buffer.from('héllo'), [spec('BYTES', [-1, 1])], 4);
    expect(s).toEqual({ name: 'in', datatype: 'BYTES', shape: [1, 1], data: ['héllo'] });
  });
});

describe('decodeBinaryInferResponse', () => {
  it('should read binary and JSON outputs of one response', () => {
    const header = Buffer.from(
      JSON.stringify({
        model_name: 'm',
        model_version: '1',
        outputs: [
          { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
          { name: 'b', datatype: 'INT32', shape: [1], data: [5] },
          { name: 'c', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 10 } },
        ],
      }),
    );
    const body = Buffer.concat([header, littleEndianBytes('FP32', Float32Array.from([0.5, -1])), encodeBytesElements(['hi', ''])]);
    const res = decodeBinaryInferResponse(body, String(header.length));
    expect(res.model_name).toBe('m');
    expect(res.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
    expect([...(res.outputs[0]!.data as Float32Array)]).toEqual([0.5, -1]);
    expect([...(res.outputs[1]!.data as Int32Array)]).toEqual([5]);
    expect(res.outputs[2]!.data).toEqual(['hi', '']);
    expect(() => decodeBinaryInferResponse(Buffer.concat([body, Buffer.from([0])]), header.length)).toThrow(/belong to no output/);
  });

  it('should read a plain JSON response when there is no header length', () => {
    const res = decodeBinaryInferResponse(Buffer.from('{"model_name":"m","model_version":"2","id":"q","outputs":[{"name":"y","datatype":"BOOL","shape":[2],"data":[true,false]}]}'));
    expect(res.id).toBe('q');
    expect([...(res.outputs[0]!.data as Uint8Array)]).toEqual([1, 0]);
  });
});
