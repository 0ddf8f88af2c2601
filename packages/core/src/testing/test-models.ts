/**
 * A catalogue of tiny ONNX models (a few hundred bytes each) with their expected behaviour, for
 * tests of Tessera itself and of plugins: `await writeTestModels(tmpDir)` writes the files and
 * returns, for each model, its path, its declared inputs/outputs, an input generator and a pure-TS
 * reference implementation to compare against.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataType, NumericDataType, Tensor, TensorSpec } from '../contracts/tensor.js';
import { DATA_TYPES, allocateTensorData, numberToHalf, shapeSize, typedArrayConstructor } from '../contracts/tensor.js';
import type { OnnxModelSpec, OnnxValueSpec } from './onnx-builder.js';
import { buildOnnxModel } from './onnx-builder.js';
import { mulberry32 } from './random.js';

/** One model of the catalogue. */
export interface TestModel {
  /** Catalogue name (`affine`, `identity-fp32`, …); the file is `<name>.onnx`. */
  name: string;
  /** Absolute path of the written `.onnx` file. */
  path: string;
  /** What the model computes, in one line. */
  description: string;
  /** Inputs and outputs as Tessera metadata shows them (symbolic dims as -1). */
  metadata: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  /** Whether dim 0 of every input is dynamic, i.e. requests can be concatenated into one batch. */
  batchable: boolean;
  /**
   * Deterministic inputs in the order of `metadata.inputs`. `batch` is dim 0 (ignored when the model
   * is not batchable); other dynamic dims get fixed sizes, so that requests made with different seeds
   * share their non-batch dims and can run in one batch. Different seeds give different data.
   */
  makeInputs(batch: number, seed?: number): Tensor[];
  /** The outputs the model must produce for `inputs`, in the order of `metadata.outputs`. */
  expected(inputs: readonly Tensor[]): Tensor[];
  /** Tolerance for float outputs (see `diffTensors`); 0 means exact. */
  tolerance: number;
}

/** What `writeTestModels` wrote. */
export interface TestModelCatalog {
  /** The folder the files are in. */
  dir: string;
  /**
   * `identity-<dtype>` for every datatype: input `input` ['batch', 3] → output `output`, unchanged.
   * ONNX Runtime's CPU provider runs Identity for all 13 datatypes (BYTES as an ONNX STRING tensor).
   */
  identity: Record<DataType, TestModel>;
  /** FP32 `x` ['batch', 4] → `y` = x·2 + 1 and `sum` ['batch'] = ReduceSum(y, axis 1). */
  affine: TestModel;
  /** Version 2 of `affine`: `y` = x·3 − 1, `sum` = ReduceSum(y, axis 1). */
  affineV2: TestModel;
  /** FP32 `a` and INT32 `b`, both ['batch', 2] → `a_plus_1` = a + 1 (FP32), `b_times_2` = b·2 (INT32). */
  multiIo: TestModel;
  /** FP32 `x` with the fixed shape [2, 3] (not batchable) → `y` = x + 1. */
  fixed: TestModel;
  /** FP32 `x` ['batch', 3, 'height', 'width'] → `y` = Relu(x). */
  dynamicImage: TestModel;
  /** A file with the `.onnx` suffix whose bytes are not a model. */
  corrupt: { name: 'corrupt'; path: string };
  /** A path in `dir` where no file exists (for "file not found" tests). */
  missingPath: string;
  /** Every loadable model above, identity models included. */
  all: TestModel[];
}

/** Small seeded PRNG (mulberry32, the seed spread first so that nearby seeds differ): deterministic test data. */
function rng(seed: number): () => number {
  return mulberry32((seed * 0x9e3779b1 + 0x6d2b79f5) >>> 0);
}

/** Edge values worth round-tripping, mixed into random data. */
const EDGE_VALUES: Record<NumericDataType, readonly (number | bigint)[]> = {
  BOOL: [0, 1],
  UINT8: [0, 1, 255],
  UINT16: [0, 1, 65535],
  UINT32: [0, 1, 4294967295],
  UINT64: [0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n],
  INT8: [-128, -1, 0, 127],
  INT16: [-32768, -1, 0, 32767],
  INT32: [-2147483648, -1, 0, 2147483647],
  INT64: [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n],
  FP16: [0x0000, 0x8000, 0x3c00, 0x7bff, 0x0001, 0xfbff],
  FP32: [0, -0, 1, -1.5, 3.4028234663852886e38, 1.401298464324817e-45],
  FP64: [0, -0, 1, Number.MAX_VALUE, Number.MIN_VALUE, Math.PI],
};

// NUL is left out on purpose: onnxruntime-node passes strings as C strings and truncates at the first NUL
const ALPHABET = ['a', 'b', 'z', 'A', '0', ' ', 'é', 'ß', '中', '🙂', '\n', '"'];

/** Random data of a datatype, about a quarter of it edge values. */
function randomData(datatype: DataType, length: number, seed: number): Tensor['data'] {
  const r = rng(seed);
  if (datatype === 'BYTES') {
    return Array.from({ length }, () => Array.from({ length: Math.floor(r() * 8) }, () => ALPHABET[Math.floor(r() * ALPHABET.length)]).join(''));
  }
  const data = allocateTensorData(datatype, length);
  const edges = EDGE_VALUES[datatype];
  const out = data as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < length; i++) {
    if (r() < 0.25) {
      out[i] = edges[Math.floor(r() * edges.length)]!;
      continue;
    }
    switch (datatype) {
      case 'BOOL':
        out[i] = r() < 0.5 ? 1 : 0;
        break;
      case 'UINT64':
        out[i] = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
        break;
      case 'INT64':
        out[i] = BigInt.asIntN(64, (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32)));
        break;
      case 'FP16':
        out[i] = numberToHalf((r() - 0.5) * 200);
        break;
      case 'FP32':
        out[i] = Math.fround((r() - 0.5) * 20);
        break;
      case 'FP64':
        out[i] = (r() - 0.5) * 2e6;
        break;
      default: {
        // integer types: uniform over the type's range (the typed array wraps the value)
        const bits = typedArrayConstructor(datatype).BYTES_PER_ELEMENT * 8;
        out[i] = Math.floor(r() * 2 ** bits);
      }
    }
  }
  return data;
}

function floats(shape: number[], seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: shapeSize(shape) }, () => Math.fround((r() * 2 - 1) * scale));
}

function toSpec(v: OnnxValueSpec): TensorSpec {
  return { name: v.name, datatype: v.datatype, shape: v.shape.map((d) => (typeof d === 'string' ? -1 : d)) };
}

function input(inputs: readonly Tensor[], name: string): Tensor {
  const t = inputs.find((i) => i.name === name);
  if (!t) throw new Error(`expected(): missing input '${name}'`);
  return t;
}

interface ModelDef {
  name: string;
  description: string;
  onnx: OnnxModelSpec;
  makeInputs(batch: number, seed: number): Tensor[];
  expected(inputs: readonly Tensor[]): Tensor[];
  tolerance: number;
}

function affineDef(name: string, scale: number, offset: number, description: string): ModelDef {
  const sub = offset < 0;
  return {
    name,
    description,
    onnx: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: ['batch', 4] },
        { name: 'sum', datatype: 'FP32', shape: ['batch'] },
      ],
      initializers: [
        { name: 'scale', datatype: 'FP32', dims: [], data: Float32Array.of(scale) },
        { name: 'offset', datatype: 'FP32', dims: [], data: Float32Array.of(Math.abs(offset)) },
        { name: 'axes', datatype: 'INT64', dims: [1], data: BigInt64Array.of(1n) },
      ],
      nodes: [
        { op: 'Mul', inputs: ['x', 'scale'], outputs: ['scaled'] },
        { op: sub ? 'Sub' : 'Add', inputs: ['scaled', 'offset'], outputs: ['y'] },
        // opset 13+: axes is an input, not an attribute
        { op: 'ReduceSum', inputs: ['y', 'axes'], outputs: ['sum'], attributes: { keepdims: 0 } },
      ],
    },
    makeInputs: (batch, seed) => [{ name: 'x', datatype: 'FP32', shape: [batch, 4], data: floats([batch, 4], seed) }],
    expected(inputs) {
      const x = input(inputs, 'x') as Tensor<'FP32'>;
      const batch = x.shape[0] ?? 0;
      const y = x.data.map((v) => Math.fround(Math.fround(v * scale) + offset));
      const sum = new Float32Array(batch);
      for (let b = 0; b < batch; b++) {
        let s = 0;
        for (let j = 0; j < 4; j++) s = Math.fround(s + y[b * 4 + j]!);
        sum[b] = s;
      }
      return [
        { name: 'y', datatype: 'FP32', shape: [batch, 4], data: y },
        { name: 'sum', datatype: 'FP32', shape: [batch], data: sum },
      ];
    },
    tolerance: 1e-5,
  };
}

function identityDef(datatype: DataType): ModelDef {
  return {
    name: `identity-${datatype.toLowerCase()}`,
    description: `Identity: ${datatype} input ['batch', 3] → output unchanged`,
    onnx: {
      inputs: [{ name: 'input', datatype, shape: ['batch', 3] }],
      outputs: [{ name: 'output', datatype, shape: ['batch', 3] }],
      nodes: [{ op: 'Identity', inputs: ['input'], outputs: ['output'] }],
    },
    makeInputs: (batch, seed) => [{ name: 'input', datatype, shape: [batch, 3], data: randomData(datatype, batch * 3, seed) }],
    expected: (inputs) => {
      const x = input(inputs, 'input');
      return [{ ...x, name: 'output', shape: [...x.shape] }];
    },
    tolerance: 0,
  };
}

const DEFS: ModelDef[] = [
  affineDef('affine', 2, 1, "FP32 x ['batch', 4] → y = x * 2 + 1, sum = ReduceSum(y, axis 1, keepdims 0) ['batch']"),
  affineDef('affine-v2', 3, -1, "FP32 x ['batch', 4] → y = x * 3 - 1, sum = ReduceSum(y, axis 1, keepdims 0) ['batch']"),
  {
    name: 'multi-io',
    description: "FP32 a ['batch', 2], INT32 b ['batch', 2] → a_plus_1 = a + 1 (FP32), b_times_2 = b * 2 (INT32)",
    onnx: {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: ['batch', 2] },
        { name: 'b', datatype: 'INT32', shape: ['batch', 2] },
      ],
      outputs: [
        { name: 'a_plus_1', datatype: 'FP32', shape: ['batch', 2] },
        { name: 'b_times_2', datatype: 'INT32', shape: ['batch', 2] },
      ],
      initializers: [
        { name: 'one', datatype: 'FP32', dims: [], data: Float32Array.of(1) },
        { name: 'two', datatype: 'INT32', dims: [], data: Int32Array.of(2) },
      ],
      nodes: [
        { op: 'Add', inputs: ['a', 'one'], outputs: ['a_plus_1'] },
        { op: 'Mul', inputs: ['b', 'two'], outputs: ['b_times_2'] },
      ],
    },
    makeInputs(batch, seed) {
      const r = rng(seed + 1000);
      return [
        { name: 'a', datatype: 'FP32', shape: [batch, 2], data: floats([batch, 2], seed, 100) },
        { name: 'b', datatype: 'INT32', shape: [batch, 2], data: Int32Array.from({ length: batch * 2 }, () => Math.floor(r() * 2_000_001) - 1_000_000) },
      ];
    },
    expected(inputs) {
      const a = input(inputs, 'a') as Tensor<'FP32'>;
      const b = input(inputs, 'b') as Tensor<'INT32'>;
      return [
        { name: 'a_plus_1', datatype: 'FP32', shape: [...a.shape], data: a.data.map((v) => Math.fround(v + 1)) },
        { name: 'b_times_2', datatype: 'INT32', shape: [...b.shape], data: b.data.map((v) => v * 2) },
      ];
    },
    tolerance: 1e-6,
  },
  {
    name: 'fixed',
    description: 'FP32 x [2, 3] (fixed shape, not batchable) → y = x + 1',
    onnx: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 3] }],
      initializers: [{ name: 'one', datatype: 'FP32', dims: [], data: Float32Array.of(1) }],
      nodes: [{ op: 'Add', inputs: ['x', 'one'], outputs: ['y'] }],
    },
    makeInputs: (_batch, seed) => [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: floats([2, 3], seed) }],
    expected(inputs) {
      const x = input(inputs, 'x') as Tensor<'FP32'>;
      return [{ name: 'y', datatype: 'FP32', shape: [2, 3], data: x.data.map((v) => Math.fround(v + 1)) }];
    },
    tolerance: 1e-6,
  },
  {
    name: 'dynamic-image',
    description: "FP32 x ['batch', 3, 'height', 'width'] → y = Relu(x); makeInputs uses height 4, width 5",
    onnx: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 3, 'height', 'width'] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 3, 'height', 'width'] }],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    },
    makeInputs: (batch, seed) => [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 4, 5], data: floats([batch, 3, 4, 5], seed) }],
    expected(inputs) {
      const x = input(inputs, 'x') as Tensor<'FP32'>;
      return [{ name: 'y', datatype: 'FP32', shape: [...x.shape], data: x.data.map((v) => (v > 0 ? v : 0)) }];
    },
    tolerance: 0,
  },
  ...DATA_TYPES.map(identityDef),
];

/**
 * Writes the catalogue into `dir` (created if needed; existing files are overwritten) and describes
 * it. The files are deterministic, so several test files may write into their own folders freely.
 */
export async function writeTestModels(dir: string): Promise<TestModelCatalog> {
  await mkdir(dir, { recursive: true });
  const byName = new Map<string, TestModel>();
  for (const def of DEFS) {
    const path = join(dir, `${def.name}.onnx`);
    await writeFile(path, buildOnnxModel({ ...def.onnx, graphName: def.name }));
    byName.set(def.name, {
      name: def.name,
      path,
      description: def.description,
      metadata: { inputs: def.onnx.inputs.map(toSpec), outputs: def.onnx.outputs.map(toSpec) },
      batchable: def.onnx.inputs.every((i) => typeof i.shape[0] === 'string'),
      makeInputs: (batch, seed = 0) => def.makeInputs(batch, seed),
      expected: (inputs) => def.expected(inputs),
      tolerance: def.tolerance,
    });
  }
  const corrupt = join(dir, 'corrupt.onnx');
  // starts like a protobuf tag, then goes wrong: a parser must reject it rather than read an empty model
  await writeFile(corrupt, '\x08\x07this is not an ONNX model\n');
  const get = (name: string): TestModel => byName.get(name)!;
  return {
    dir,
    identity: Object.fromEntries(DATA_TYPES.map((d) => [d, get(`identity-${d.toLowerCase()}`)])) as Record<DataType, TestModel>,
    affine: get('affine'),
    affineV2: get('affine-v2'),
    multiIo: get('multi-io'),
    fixed: get('fixed'),
    dynamicImage: get('dynamic-image'),
    corrupt: { name: 'corrupt', path: corrupt },
    missingPath: join(dir, 'does-not-exist.onnx'),
    all: [...byName.values()],
  };
}
