import { describe, expect, it } from 'vitest';
import { decodeBinaryTensor } from '../http/binary-codec.js';
import { thrownCode } from '../testing/throws.js';
import { fileRequest, synthesizeRequest } from './request-body.js';

const CLS = { inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 3, -1, -1] }], maxBatchSize: 32 };

/** The JSON header and the bytes of the first input of an encoded request. */
function split(body: Buffer, headerLength: string): { header: { inputs: Array<{ name: string; shape: number[]; datatype: string; parameters: { binary_data_size: number } }>; parameters?: Record<string, unknown> }; blob: Buffer } {
  const n = Number(headerLength);
  return { header: JSON.parse(body.toString('utf8', 0, n)), blob: body.subarray(n) };
}

describe(synthesizeRequest, () => {
  it('should fill dynamic dims from warmupShapes, one sample per request, outputs in binary', () => {
    const req = synthesizeRequest(CLS, { shapes: {}, warmupShapes: { x: [4, 3, 48, 192] }, seed: 1 });
    const { header, blob } = split(req.body, req.headers['inference-header-content-length']!);
    expect(header.inputs[0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: 3 * 48 * 192 * 4 } });
    expect(header.parameters).toEqual({ binary_data_output: true });
    expect(req.samples).toBe(1);
    const data = decodeBinaryTensor('FP32', [1, 3, 48, 192], blob, 'x') as Float32Array;
    expect(data.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(new Set(data).size).toBeGreaterThan(1000);
    expect(req.description).toContain('x FP32 [1, 3, 48, 192] (random, seed 1)');
  });

  it('should take whole shapes from --shape, dim 0 being the samples per request', () => {
    const req = synthesizeRequest(CLS, { shapes: { x: [4, 3, 48, 96] }, warmupShapes: {}, seed: 1 });
    expect(split(req.body, req.headers['inference-header-content-length']!).header.inputs[0]!.shape).toEqual([4, 3, 48, 96]);
    expect(req.samples).toBe(4);
  });

  it('should give the same body for the same seed and another for another', () => {
    const a = synthesizeRequest(CLS, { shapes: {}, warmupShapes: { x: [1, 3, 48, 192] }, seed: 7 });
    const b = synthesizeRequest(CLS, { shapes: {}, warmupShapes: { x: [1, 3, 48, 192] }, seed: 7 });
    const c = synthesizeRequest(CLS, { shapes: {}, warmupShapes: { x: [1, 3, 48, 192] }, seed: 8 });
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.body.equals(c.body)).toBe(false);
  });

  it('should make integer and boolean inputs of 0s and 1s and FP16 as half floats', () => {
    const req = synthesizeRequest(
      { inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, 8] }, { name: 'mask', datatype: 'BOOL', shape: [-1, 8] }, { name: 'h', datatype: 'FP16', shape: [-1, 2] }], maxBatchSize: 4 },
      { shapes: {}, warmupShapes: {}, seed: 3 },
    );
    const n = Number(req.headers['inference-header-content-length']);
    const header = JSON.parse(req.body.toString('utf8', 0, n)) as { inputs: Array<{ shape: number[] }> };
    expect(header.inputs.map((i) => i.shape)).toEqual([[1, 8], [1, 8], [1, 2]]);
    const ids = decodeBinaryTensor('INT64', [1, 8], req.body.subarray(n, n + 64), 'ids') as BigInt64Array;
    expect([...ids].every((v) => v === 0n || v === 1n)).toBe(true);
  });

  it('should refuse what it cannot make up, saying how to give it', () => {
    expect(thrownCode(() => synthesizeRequest(CLS, { shapes: {}, warmupShapes: {}, seed: 1 }))).toBe('TESSERA_E_CLI_USAGE');
    expect(() => synthesizeRequest(CLS, { shapes: {}, warmupShapes: {}, seed: 1 })).toThrow(/--shape x=1x3xNxN/);
    expect(() => synthesizeRequest(CLS, { shapes: { x: [1, 4, 48, 192] }, warmupShapes: {}, seed: 1 })).toThrow(/does not fit the input's shape \[-1, 3, -1, -1\]/);
    expect(() => synthesizeRequest(CLS, { shapes: { y: [1] }, warmupShapes: {}, seed: 1 })).toThrow(/no input 'y'/);
    expect(() => synthesizeRequest(CLS, { shapes: { x: [64, 3, 48, 192] }, warmupShapes: {}, seed: 1 })).toThrow(/more than the model's max batch size 32/);
    expect(() => synthesizeRequest({ inputs: [{ name: 's', datatype: 'BYTES', shape: [-1] }], maxBatchSize: 8 }, { shapes: {}, warmupShapes: {}, seed: 1 })).toThrow(/--request FILE/);
  });
});

describe(fileRequest, () => {
  it('should send the file as it is, JSON by its extension, with the headers given', () => {
    const body = Buffer.from('{"inputs":[]}');
    expect(fileRequest('req.json', body, undefined, {})).toMatchObject({ body, headers: { 'content-type': 'application/json' } });
    const raw = fileRequest('x.f32', Buffer.alloc(16), undefined, { 'inference-header-content-length': '0' });
    expect(raw.headers).toEqual({ 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' });
    expect(raw.samples).toBeUndefined();
  });
});
