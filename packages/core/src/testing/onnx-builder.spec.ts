import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataType, Tensor } from '../contracts/tensor.js';
import { DATA_TYPES, numberToHalf } from '../contracts/tensor.js';
import type { OnnxInitializer } from './onnx-builder.js';
import { ONNX_ELEM_TYPES, buildOnnxModel } from './onnx-builder.js';
import type { TestModel, TestModelCatalog } from './test-models.js';
import { writeTestModels } from './test-models.js';
import { diffTensorLists } from './tensor-compare.js';

const ORT_TYPES: Record<DataType, ort.Tensor.Type> = {
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
const FROM_ORT = Object.fromEntries(Object.entries(ORT_TYPES).map(([k, v]) => [v, k])) as Record<string, DataType>;

function toOrt(t: Tensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPES[t.datatype] as 'float32', t.data as Float32Array, t.shape);
}

function fromOrt(name: string, t: ort.Tensor): Tensor {
  return { name, datatype: FROM_ORT[t.type]!, shape: [...t.dims], data: t.data };
}

async function runModel(session: ort.InferenceSession, inputs: Tensor[]): Promise<Tensor[]> {
  const out = await session.run(Object.fromEntries(inputs.map((t) => [t.name, toOrt(t)])));
  return Object.entries(out).map(([name, t]) => fromOrt(name, t));
}

/** A minimal protobuf reader: enough to check field numbers without trusting the writer. */
function readFields(bytes: Uint8Array): { field: number; wire: number; value: bigint | Uint8Array }[] {
  const out: { field: number; wire: number; value: bigint | Uint8Array }[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ field, wire, value: bytes.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 5) {
      out.push({ field, wire, value: bytes.subarray(pos, pos + 4) });
      pos += 4;
    } else if (wire === 1) {
      out.push({ field, wire, value: bytes.subarray(pos, pos + 8) });
      pos += 8;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

const identityModel = (datatype: DataType, shape: (number | string)[]): Uint8Array =>
  buildOnnxModel({
    inputs: [{ name: 'input', datatype, shape }],
    outputs: [{ name: 'output', datatype, shape }],
    nodes: [{ op: 'Identity', inputs: ['input'], outputs: ['output'] }],
  });

describe('buildOnnxModel', () => {
  describe('encoding', () => {
    it('should write ModelProto fields with onnx.proto numbers', () => {
      const bytes = buildOnnxModel({ ...identitySpec('FP32'), irVersion: 9, opset: 19, producer: 'me', graphName: 'g' });
      const fields = readFields(bytes);
      expect(fields.find((f) => f.field === 1)?.value).toBe(9n); // ir_version
      expect(new TextDecoder().decode(fields.find((f) => f.field === 2)?.value as Uint8Array)).toBe('me'); // producer_name
      const opset = readFields(fields.find((f) => f.field === 8)!.value as Uint8Array); // opset_import
      expect(opset).toEqual([{ field: 2, wire: 0, value: 19n }]);
      const graph = readFields(fields.find((f) => f.field === 7)!.value as Uint8Array); // graph
      expect(new TextDecoder().decode(graph.find((f) => f.field === 2)!.value as Uint8Array)).toBe('g');
      const node = readFields(graph.find((f) => f.field === 1)!.value as Uint8Array);
      expect(new TextDecoder().decode(node.find((f) => f.field === 4)!.value as Uint8Array)).toBe('Identity');
      const input = readFields(graph.find((f) => f.field === 11)!.value as Uint8Array);
      const type = readFields(input.find((f) => f.field === 2)!.value as Uint8Array);
      const tensorType = readFields(type.find((f) => f.field === 1)!.value as Uint8Array);
      expect(tensorType.find((f) => f.field === 1)?.value).toBe(1n); // elem_type FLOAT
      const dims = readFields(tensorType.find((f) => f.field === 2)!.value as Uint8Array).map((d) => readFields(d.value as Uint8Array));
      expect(new TextDecoder().decode(dims[0]![0]!.value as Uint8Array)).toBe('batch'); // dim_param
      expect(dims[1]).toEqual([{ field: 1, wire: 0, value: 3n }]); // dim_value
    });

    it('should write negative int64 values as 10-byte two’s complement varints', () => {
      const bytes = buildOnnxModel({
        inputs: [],
        outputs: [{ name: 'c', datatype: 'INT64', shape: [1] }],
        nodes: [{ op: 'Constant', inputs: [], outputs: ['c'], attributes: { value_ints: [-1] } }],
      });
      // -1 as an int64 varint: nine 0xff bytes then 0x01
      const needle = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
      const hex = Buffer.from(bytes).toString('hex');
      expect(hex).toContain(Buffer.from(needle).toString('hex'));
    });

    it('should map every datatype to its ONNX element type', () => {
      expect(Object.keys(ONNX_ELEM_TYPES).sort()).toEqual([...DATA_TYPES].sort());
      expect(ONNX_ELEM_TYPES.BYTES).toBe(8);
      expect(ONNX_ELEM_TYPES.FP16).toBe(10);
    });

    it('should reject initializer data that does not fit its dims or datatype', () => {
      const spec = identitySpec('FP32');
      expect(() => buildOnnxModel({ ...spec, initializers: [{ name: 'w', datatype: 'FP32', dims: [2], data: Float32Array.of(1) }] })).toThrow(RangeError);
      expect(() => buildOnnxModel({ ...spec, initializers: [{ name: 'w', datatype: 'FP32', dims: [1], data: Int32Array.of(1) }] })).toThrow(/Float32Array/);
      expect(() => buildOnnxModel({ ...spec, initializers: [{ name: 'w', datatype: 'BYTES', dims: [1], data: Int32Array.of(1) }] })).toThrow(/string\[\]/);
      expect(() => buildOnnxModel({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1.5] }], outputs: [], nodes: [] })).toThrow(/invalid dim/);
    });
  });

  describe('in onnxruntime-node', () => {
    it('should load an unnamed dynamic dim (-1) as a dynamic dim', async () => {
      const session = await ort.InferenceSession.create(identityModel('FP32', [-1, 3]));
      const meta = session.inputMetadata[0]!;
      // ORT reports an unnamed dynamic dim as an empty symbolic name
      expect(meta.isTensor && meta.shape).toEqual(['', 3]);
      await session.release();
    });

    it('should encode every attribute type (via Constant)', async () => {
      const tensor: OnnxInitializer = { name: 't', datatype: 'INT64', dims: [2, 2], data: BigInt64Array.of(-(2n ** 62n), -1n, 0n, 2n ** 40n) };
      const session = await ort.InferenceSession.create(
        buildOnnxModel({
          inputs: [],
          outputs: [
            { name: 'f', datatype: 'FP32', shape: [] },
            { name: 'forced', datatype: 'FP32', shape: [] },
            { name: 'i', datatype: 'INT64', shape: [] },
            { name: 's', datatype: 'BYTES', shape: [] },
            { name: 'fs', datatype: 'FP32', shape: [3] },
            { name: 'is', datatype: 'INT64', shape: [3] },
            { name: 't', datatype: 'INT64', shape: [2, 2] },
          ],
          nodes: [
            { op: 'Constant', inputs: [], outputs: ['f'], attributes: { value_float: 1.5 } },
            { op: 'Constant', inputs: [], outputs: ['forced'], attributes: { value_float: { float: 2 } } },
            { op: 'Constant', inputs: [], outputs: ['i'], attributes: { value_int: { int: -(2n ** 40n) } } },
            { op: 'Constant', inputs: [], outputs: ['s'], attributes: { value_string: 'héllo' } },
            { op: 'Constant', inputs: [], outputs: ['fs'], attributes: { value_floats: [0.5, -1.25, 3] } },
            { op: 'Constant', inputs: [], outputs: ['is'], attributes: { value_ints: [-1, 0, 2 ** 40] } },
            { op: 'Constant', inputs: [], outputs: ['t'], attributes: { value: { tensor } } },
          ],
        }),
      );
      const r = await session.run({});
      expect(Array.from(r.f!.data as Float32Array)).toEqual([1.5]);
      expect(Array.from(r.forced!.data as Float32Array)).toEqual([2]);
      expect(Array.from(r.i!.data as BigInt64Array)).toEqual([-(2n ** 40n)]);
      expect(r.s!.data).toEqual(['héllo']);
      expect(Array.from(r.fs!.data as Float32Array)).toEqual([0.5, -1.25, 3]);
      expect(Array.from(r.is!.data as BigInt64Array)).toEqual([-1n, 0n, 2n ** 40n]);
      expect(Array.from(r.t!.data as BigInt64Array)).toEqual(Array.from(tensor.data as BigInt64Array));
      expect(r.t!.dims).toEqual([2, 2]);
      await session.release();
    });

    it('should encode initializers of every datatype (raw_data little-endian; string_data for BYTES)', async () => {
      const values: Record<DataType, OnnxInitializer['data']> = {
        BOOL: Uint8Array.of(1, 0, 1),
        UINT8: Uint8Array.of(0, 128, 255),
        UINT16: Uint16Array.of(1, 256, 65535),
        UINT32: Uint32Array.of(1, 65536, 4294967295),
        UINT64: BigUint64Array.of(1n, 2n ** 40n, 2n ** 64n - 1n),
        INT8: Int8Array.of(-128, -1, 127),
        INT16: Int16Array.of(-32768, 258, 32767),
        INT32: Int32Array.of(-2147483648, 16909060, 2147483647),
        INT64: BigInt64Array.of(-(2n ** 63n), 2n ** 53n + 1n, 2n ** 63n - 1n),
        FP16: Uint16Array.of(numberToHalf(1.5), numberToHalf(-2), numberToHalf(65504)),
        FP32: Float32Array.of(1.5, -2.25, 3.4028234663852886e38),
        FP64: Float64Array.of(Math.PI, -1e300, 5e-324),
        BYTES: ['a', '', '中文🙂'],
      };
      for (const datatype of DATA_TYPES) {
        const session = await ort.InferenceSession.create(
          buildOnnxModel({
            inputs: [],
            outputs: [{ name: 'out', datatype, shape: [3] }],
            initializers: [{ name: 'w', datatype, dims: [3], data: values[datatype] }],
            nodes: [{ op: 'Identity', inputs: ['w'], outputs: ['out'] }],
          }),
        );
        const r = await session.run({});
        expect(r.out!.type, datatype).toBe(ORT_TYPES[datatype]);
        expect(Array.from(r.out!.data as ArrayLike<unknown>), datatype).toEqual(Array.from(values[datatype] as ArrayLike<unknown>));
        await session.release();
      }
    });
  });
});

function identitySpec(datatype: DataType) {
  return {
    inputs: [{ name: 'input', datatype, shape: ['batch', 3] }],
    outputs: [{ name: 'output', datatype, shape: ['batch', 3] }],
    nodes: [{ op: 'Identity', inputs: ['input'], outputs: ['output'] }],
  };
}

describe('writeTestModels', () => {
  let dir: string;
  let catalog: TestModelCatalog;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-onnx-builder-'));
    catalog = await writeTestModels(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should write one identity model per datatype, and the named models', () => {
    expect(Object.keys(catalog.identity).sort()).toEqual([...DATA_TYPES].sort());
    expect(catalog.all.map((m) => m.name)).toEqual(expect.arrayContaining(['affine', 'affine-v2', 'multi-io', 'fixed', 'dynamic-image', 'identity-bytes', 'identity-fp16']));
    expect(catalog.all).toHaveLength(5 + DATA_TYPES.length);
    expect(catalog.fixed.batchable).toBe(false);
    expect(catalog.affine.batchable).toBe(true);
  });

  it('should keep model files tiny', async () => {
    for (const m of catalog.all) expect((await stat(m.path)).size, m.name).toBeLessThan(1024);
  });

  it('should write byte-identical files on every call (deterministic)', async () => {
    const again = await writeTestModels(join(dir, 'again'));
    for (const m of catalog.all) {
      const other = again.all.find((o) => o.name === m.name)!;
      expect(Buffer.compare(await readFile(m.path), await readFile(other.path)), m.name).toBe(0);
    }
  });

  it('should give different data for different seeds and the same data for the same seed', () => {
    for (const m of catalog.all) {
      const a = m.makeInputs(2, 1);
      expect(diffTensorLists(a, m.makeInputs(2, 1)), m.name).toBeUndefined();
      if (m.name !== 'identity-bool') expect(diffTensorLists(a, m.makeInputs(2, 2)), m.name).toBeDefined();
    }
  });

  it('should write a corrupt model that onnxruntime rejects', async () => {
    await expect(ort.InferenceSession.create(catalog.corrupt.path)).rejects.toThrow(/failed/i);
  });

  it('should name a missing path that does not exist', async () => {
    await expect(stat(catalog.missingPath)).rejects.toThrow(/ENOENT/);
  });

  describe.each(['affine', 'affine-v2', 'multi-io', 'fixed', 'dynamic-image', ...DATA_TYPES.map((d) => `identity-${d.toLowerCase()}`)])('%s', (name) => {
    let model: TestModel;
    let session: ort.InferenceSession;
    beforeAll(async () => {
      model = catalog.all.find((m) => m.name === name)!;
      session = await ort.InferenceSession.create(model.path);
    });
    afterAll(async () => {
      await session.release();
    });

    it('should declare the catalogued inputs and outputs', () => {
      const shapes = (meta: readonly ort.InferenceSession.ValueMetadata[]) =>
        meta.map((m) => (m.isTensor ? { name: m.name, datatype: FROM_ORT[m.type], shape: m.shape.map((d) => (typeof d === 'string' ? -1 : d)) } : m));
      expect(shapes(session.inputMetadata)).toEqual(model.metadata.inputs);
      expect(shapes(session.outputMetadata)).toEqual(model.metadata.outputs);
    });

    it.each([1, 3])('should compute the reference outputs for dim 0 = %i', async (batch) => {
      const inputs = model.makeInputs(batch, batch);
      const actual = await runModel(session, inputs);
      expect(diffTensorLists(actual, model.expected(inputs), { tolerance: model.tolerance })).toBeUndefined();
    });
  });

  it('should differ between affine and affine-v2 (two versions of one model)', async () => {
    const inputs = catalog.affine.makeInputs(1, 5);
    expect(diffTensorLists(catalog.affine.expected(inputs), catalog.affineV2.expected(inputs))).toBeDefined();
  });
});
