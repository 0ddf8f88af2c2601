import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import type { Tensor } from '../contracts/tensor.js';
import type { Signature } from './types.js';
import { checkShape, selectOutputs, validateInferRequest } from './validate.js';

describe('checkShape', () => {
  const spec = { name: 'x', datatype: 'FP32' as const, shape: [-1, 3] };
  it('should accept a matching input', () => {
    expect(thrownCode(() => checkShape(spec, 'FP32', [4, 3], 8))).toBeUndefined();
  });
  it.each<[string, string, number[], number, string]>([
    ['wrong datatype', 'INT32', [4, 3], 8, 'TESSERA_E_INPUT_DATATYPE'],
    ['wrong rank', 'FP32', [4], 8, 'TESSERA_E_INPUT_SHAPE'],
    ['wrong fixed dim', 'FP32', [4, 2], 8, 'TESSERA_E_INPUT_SHAPE'],
    ['batch over max', 'FP32', [9, 3], 8, 'TESSERA_E_INPUT_SHAPE'],
    ['empty batch', 'FP32', [0, 3], 8, 'TESSERA_E_INPUT_SHAPE'],
  ])('should reject %s', (_label, datatype, shape, max, code) => {
    expect(thrownCode(() => checkShape(spec, datatype, shape, max))).toBe(code);
  });
});

describe(validateInferRequest, () => {
  const signature: Signature = {
    inputs: [
      { name: 'a', datatype: 'FP32', shape: [-1, 2] },
      { name: 'b', datatype: 'INT64', shape: [-1] },
    ],
    outputs: [
      { name: 'p', datatype: 'FP32', shape: [-1] },
      { name: 'q', datatype: 'FP32', shape: [-1] },
    ],
    maxBatchSize: 4,
  };

  it('should order the inputs as the signature does and decode each form of data', () => {
    const request = validateInferRequest(
      {
        inputs: [
          { name: 'b', datatype: 'INT64', shape: [2], json: [1, '9007199254740993'] },
          { name: 'a', datatype: 'FP32', shape: [2, 2], bytes: Buffer.from(new Float32Array([1, 2, 3, 4]).buffer) },
        ],
        outputs: ['q', 'p', 'q'],
        id: 'r1',
        parameters: { priority: 1 },
      },
      signature,
    );
    expect(request.inputs.map((t) => t.name)).toEqual(['a', 'b']);
    expect([...(request.inputs[0]!.data as Float32Array)]).toEqual([1, 2, 3, 4]);
    expect([...(request.inputs[1]!.data as BigInt64Array)]).toEqual([1n, 9007199254740993n]);
    expect(request.outputs).toEqual(['q', 'p']);
    expect(request.id).toBe('r1');
    expect(request.parameters).toEqual({ priority: 1 });
  });

  it('should take the datatype from the signature when the protocol has none (/v1/predict)', () => {
    const request = validateInferRequest({ inputs: [{ name: 'a', shape: [1, 2], json: [[1, 2]] }, { name: 'b', shape: [1], json: [5] }] }, signature);
    expect(request.inputs[1]!.datatype).toBe('INT64');
  });

  it.each<[string, unknown, string]>([
    ['an unknown input', { inputs: [{ name: 'c', datatype: 'FP32', shape: [1], json: [1] }] }, 'TESSERA_E_INPUT_UNKNOWN'],
    ['a duplicate', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], json: [1, 2] }, { name: 'a', datatype: 'FP32', shape: [1, 2], json: [1, 2] }] }, 'TESSERA_E_INPUT_DUPLICATE'],
    ['a missing input', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], json: [1, 2] }] }, 'TESSERA_E_INPUT_MISSING'],
    ['different batch sizes', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], json: [1, 2] }, { name: 'b', datatype: 'INT64', shape: [2], json: [1, 2] }] }, 'TESSERA_E_INPUT_SHAPE'],
    ['typed data of the wrong length', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: new Float32Array(3) }, { name: 'b', datatype: 'INT64', shape: [1], json: [1] }] }, 'TESSERA_E_INPUT_DATA'],
    ['binary data of the wrong length', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], bytes: Buffer.alloc(4) }, { name: 'b', datatype: 'INT64', shape: [1], json: [1] }] }, 'TESSERA_E_REQUEST_BINARY'],
    ['no data at all', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], json: undefined }, { name: 'b', datatype: 'INT64', shape: [1], json: [1] }] }, 'TESSERA_E_REQUEST_INVALID'],
    ['an unknown output', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], json: [1, 2] }, { name: 'b', datatype: 'INT64', shape: [1], json: [1] }], outputs: ['z'] }, 'TESSERA_E_OUTPUT_UNKNOWN'],
  ])('should refuse %s', (_label, decoded, code) => {
    expect(thrownCode(() => validateInferRequest(decoded as never, signature))).toBe(code);
  });
});

describe(selectOutputs, () => {
  const signature: Signature = { inputs: [], outputs: [{ name: 'p', datatype: 'FP32', shape: [-1] }, { name: 'q', datatype: 'FP32', shape: [-1] }], maxBatchSize: 0 };
  const p = { name: 'p', datatype: 'FP32' as const, shape: [1], data: new Float32Array(1) };
  const q = { name: 'q', datatype: 'FP32' as const, shape: [1], data: new Float32Array(1) };
  const extra = { name: 'debug', datatype: 'FP32' as const, shape: [1], data: new Float32Array(1) };

  it('should give the asked outputs in the asked order, or all in the signature order, dropping extras', () => {
    expect(selectOutputs([p, q], ['q'], signature)).toEqual([q]);
    expect(selectOutputs([q, extra, p], undefined, signature)).toEqual([p, q]);
    const same = [p, q];
    expect(selectOutputs(same, undefined, signature)).toBe(same);
  });

  it('should blame the backend for an output whose data does not fit its shape or datatype (never a 200 with garbage)', () => {
    const bad = (t: Partial<Tensor>) => thrownCode(() => selectOutputs([{ ...p, ...t }, q], undefined, signature));
    expect(bad({ data: 'not numbers' as never })).toBe('TESSERA_E_INFERENCE_FAILED');
    expect(bad({ data: [1, 2] as never })).toBe('TESSERA_E_INFERENCE_FAILED');
    expect(bad({ shape: [p.shape[0]! + 1, ...p.shape.slice(1)] })).toBe('TESSERA_E_INFERENCE_FAILED');
    expect(bad({ shape: [-1] })).toBe('TESSERA_E_INFERENCE_FAILED');
  });

  it("should blame the backend for an output it did not return", () => {
    expect(thrownCode(() => selectOutputs([p], undefined, signature))).toBe('TESSERA_E_INFERENCE_FAILED');
  });
});
