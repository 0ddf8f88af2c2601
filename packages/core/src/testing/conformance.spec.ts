import { describe, expect, it } from 'vitest';
import type { RequestResult } from '../contracts/backend.js';
import { TesseraError } from '../errors.js';
import { outputsOf } from './conformance.js';

describe('outputsOf', () => {
  const y = { name: 'y', datatype: 'FP32' as const, shape: [1], data: Float32Array.of(1) };

  it('should return the outputs of a slot that has them', () => {
    expect(outputsOf([[y]], 0, 'batch of 1')).toEqual([y]);
  });

  it('should fail with the error and its code where outputs were expected but the slot is an Error', () => {
    const results: RequestResult[] = [[y], new TesseraError('TESSERA_E_INPUT_DATA', 'value out of range')];
    expect(() => outputsOf(results, 1, 'batch of N')).toThrow(
      'batch of N: expected the outputs of request 1, but the backend returned an Error in its slot (TESSERA_E_INPUT_DATA): TesseraError: value out of range',
    );
    expect(() => outputsOf([new RangeError('bad row')], 0, 'alone')).toThrow('alone: expected the outputs of request 0, but the backend returned an Error in its slot: RangeError: bad row');
  });

  it('should fail when the slot is missing', () => {
    expect(() => outputsOf([[y]], 1, 'batch of N')).toThrow('batch of N: expected the outputs of request 1, but the backend returned 1 results and slot 1 is undefined');
  });
});
