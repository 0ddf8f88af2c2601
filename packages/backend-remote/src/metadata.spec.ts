import { describe, expect, it } from 'vitest';
import { agreedMetadata, parseMetadata } from './metadata.js';
import { upstreamStatusError } from './upstream-errors.js';

const body = (shape: number[]) => ({ name: 'cls', platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] });

describe('agreedMetadata', () => {
  it('should take the metadata the answering upstreams agree on, with max_batch_size from the config extension', () => {
    const m = parseMetadata('http://a:1', body([-1, 3]), { max_batch_size: 8 });
    expect(m).toEqual({ platform: 'onnxruntime_onnx', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }], maxBatchSize: 8 });
    expect(parseMetadata('http://a:1', body([-1, 3]), undefined).maxBatchSize).toBe(0);
    expect(agreedMetadata('cls', [{ url: 'http://a:1', metadata: m }, { url: 'http://b:1', unreachable: 'ECONNREFUSED' }, { url: 'http://c:1', metadata: m }])).toBe(m);
  });

  it('should name the upstream that differs, refuses, or say that none answered', () => {
    const a = parseMetadata('http://a:1', body([-1, 3]), { max_batch_size: 8 });
    const b = parseMetadata('http://b:1', body([-1, 4]), { max_batch_size: 8 });
    const c = parseMetadata('http://c:1', body([-1, 3]), undefined);
    expect(() => agreedMetadata('cls', [{ url: 'http://a:1', metadata: a }, { url: 'http://b:1', metadata: b }])).toThrow('http://b:1 has inputs x FP32 [-1,4] instead of x FP32 [-1,3]');
    expect(() => agreedMetadata('cls', [{ url: 'http://a:1', metadata: a }, { url: 'http://c:1', metadata: c }])).toThrow('http://c:1 has max_batch_size 0 instead of 8');
    expect(() => agreedMetadata('cls', [{ url: 'http://a:1', metadata: a }, { url: 'http://d:1', refused: 'answered 404' }])).toThrow('upstream http://d:1 answered 404');
    expect(() => agreedMetadata('cls', [{ url: 'http://a:1', unreachable: 'ECONNREFUSED' }])).toThrow(/no upstream answered .*http:\/\/a:1: ECONNREFUSED/);
  });
});

describe('upstreamStatusError', () => {
  it("should pass a request's 4xx through with its status, and blame the upstream for the rest", () => {
    const bad = upstreamStatusError('http://a:1', 400, JSON.stringify({ error: 'wrong shape', code: 'TESSERA_E_INPUT_SHAPE' }));
    expect([bad.code, bad.status, bad.message]).toEqual(['TESSERA_E_UPSTREAM_REJECTED', 400, 'wrong shape']);
    for (const status of [401, 403, 404, 408, 429, 500, 503]) {
      const e = upstreamStatusError('http://a:1', status, 'oops');
      expect([e.code, e.status]).toEqual(['TESSERA_E_UPSTREAM_FAILED', 502]);
      expect(e.message).toContain('http://a:1');
    }
  });
});
