import { describe, expect, it } from 'vitest';
import type { DeclaredSignature } from '../config/types.js';
import type { ModelMetadata } from '../contracts/backend.js';
import { catchError } from '../config/test-support.js';
import { checkDeclaredSignature } from './signature-check.js';

/** The PP-OCR text direction classifier, as the ONNX Runtime backend reports it. */
const CLS: ModelMetadata = {
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
  outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
  maxBatchSize: 8,
};

const FILE = '/repo/cls/config.pbtxt';

function declared(signature: Omit<DeclaredSignature, 'declaredIn'>): DeclaredSignature {
  return { declaredIn: FILE, ...signature };
}

const mismatch = (signature: DeclaredSignature, metadata: ModelMetadata = CLS): string => {
  const err = catchError(() => checkDeclaredSignature('cls', '1', signature, metadata));
  expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
  return err.message;
};

describe(checkDeclaredSignature, () => {
  describe('having a model that matches', () => {
    it('should accept the same names, datatypes and shapes', () => {
      expect(() => checkDeclaredSignature('cls', '1', declared({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }], outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }] }), CLS)).not.toThrow();
    });

    it('should let -1 match any size on either side, and leave out what is not declared', () => {
      expect(() => checkDeclaredSignature('cls', '1', declared({ inputs: [{ name: 'x', shape: [8, -1, 48, -1] }] }), CLS)).not.toThrow();
      expect(() => checkDeclaredSignature('cls', '1', declared({ inputs: [{ name: 'x' }] }), CLS)).not.toThrow();
      expect(() => checkDeclaredSignature('cls', '1', declared({}), CLS)).not.toThrow();
    });

    it('should accept declared outputs that are a subset of the model\'s', () => {
      const two: ModelMetadata = { ...CLS, outputs: [...CLS.outputs, { name: 'logits', datatype: 'FP32', shape: [-1, 2] }] };
      expect(() => checkDeclaredSignature('cls', '1', declared({ outputs: [{ name: 'logits' }] }), two)).not.toThrow();
    });
  });

  describe('having a model that differs', () => {
    it('should name the file, the declaring field and the model\'s shape when a dim differs', () => {
      const field = 'input[0] "x" (line 7; dims [3, 48, 100] exclude the batch dim, max_batch_size 8)';
      expect(mismatch(declared({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 100], field }] }))).toBe(
        `cls v1 does not match the signature declared in ${FILE}: ${field}: declares shape [-1, 3, 48, 100], the model's input "x" has shape [-1, 3, 48, 192]`,
      );
    });

    it('should say when the rank differs (dims that forgot or added the batch dim)', () => {
      expect(mismatch(declared({ inputs: [{ name: 'x', shape: [3, 48, 192] }] }))).toContain('inputs[0] "x": declares shape [3, 48, 192], the model\'s input "x" has shape [-1, 3, 48, 192] (3 dims against 4)');
    });

    it('should name the model\'s datatype', () => {
      expect(mismatch(declared({ outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP16' }] }))).toContain('outputs[0] "softmax_0.tmp_0": declares datatype FP16, the model\'s output "softmax_0.tmp_0" is FP32');
    });

    it('should name the tensors the model has when a declared one is missing', () => {
      expect(mismatch(declared({ outputs: [{ name: 'prob' }] }))).toContain('outputs[0] "prob": the model has no output "prob" (its outputs: "softmax_0.tmp_0")');
    });

    it('should refuse a model input that the declared inputs leave out, and list every problem', () => {
      const two: ModelMetadata = { ...CLS, inputs: [...CLS.inputs, { name: 'scale', datatype: 'FP32', shape: [1] }] };
      const message = mismatch(declared({ inputs: [{ name: 'x', datatype: 'INT8' }] }), two);
      expect(message).toContain('inputs[0] "x": declares datatype INT8, the model\'s input "x" is FP32; the model\'s input "scale" (FP32 [1]) is not declared (declared inputs: "x")');
    });

    it('should name models.<name>.signature when no file declared it', () => {
      expect(mismatch({ inputs: [{ name: 'y' }] })).toMatch(/^cls v1 does not match the signature declared in models\.cls\.signature: inputs\[0\] "y": the model has no input "y"/);
    });
  });
});
