/**
 * Triton's binary tensor data extension over OIP v2, end to end: the real `tessera` CLI as a child
 * process, real ONNX Runtime sessions on generated models and the PP-OCR classifier, binary bodies
 * over loopback, and outputs compared byte for byte with what went in (identity models) or with
 * onnxruntime-node run directly.
 */
import { connect } from 'node:net';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '@tessera/core';
import type { BinaryRequestInput, DecodedInferResponse, EncodeBinaryInferRequestOptions, TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { decodeBinaryInferResponse, diffTensors, encodeBinaryInferRequest, startTessera, writeTestModels } from '@tessera/core/testing';
import { CLS_MODEL, announceBody, http, tempDir, writeConfig } from './helpers.js';

const HEADER = 'inference-header-content-length';

let dir: string;
let models: TestModelCatalog;
let server: TesseraProcess;
let base: string;

beforeAll(async () => {
  dir = await tempDir('tessera-binary-');
  models = await writeTestModels(dir);
  const identity = Object.fromEntries(Object.values(models.identity).map((m) => [m.name, { path: m.path, batching: { maxBatchSize: 16 } }]));
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, bodyLimit: '4MiB', logLevel: 'info' },
    models: {
      affine: { versions: { '1': { path: models.affine.path } }, batching: { maxBatchSize: 8 } },
      'multi-io': { path: models.multiIo.path },
      'dynamic-image': { path: models.dynamicImage.path, batching: { maxBatchSize: 4 } },
      'text-orientation': { path: CLS_MODEL, warmupShapes: { x: [1, 3, 48, 192] } },
      ...identity,
    },
  });
  server = await startTessera({ args: ['serve', '-c', config, '--port', '0'] });
  base = server.url;
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

interface RawResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  json: any;
}

/** POSTs raw bytes with exactly the headers given (fetch adds no content type to a Buffer body). */
async function post(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  const res = await fetch(`${base}${path}`, { method: 'POST', body, headers });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    // a binary body
  }
  return { status: res.status, headers: res.headers, body: buf, json };
}

/** Sends a binary request built by `encodeBinaryInferRequest` and decodes the answer (binary or JSON). */
async function binaryInfer(
  path: string,
  inputs: BinaryRequestInput[],
  options: EncodeBinaryInferRequestOptions = {},
): Promise<RawResponse & { decoded: DecodedInferResponse }> {
  const req = encodeBinaryInferRequest(inputs, options);
  const res = await post(path, req.body, req.headers);
  expect(res.status, res.body.toString('utf8').slice(0, 400)).toBe(200);
  return { ...res, decoded: decodeBinaryInferResponse(res.body, res.headers.get(HEADER)) };
}

function bytesOf(t: Tensor): Buffer {
  const ta = t.data as Uint8Array;
  return Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength);
}

/** A JSON header followed by `tail`, with the header length announced as `announced` (default: the true length). */
function framed(header: unknown, tail: Buffer, announced?: string): { body: Buffer; headers: Record<string, string> } {
  const h = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([h, tail]), headers: { 'content-type': 'application/octet-stream', [HEADER]: announced ?? String(h.length) } };
}

const affineX = (batch = 2): Tensor => models.affine.makeInputs(batch, 11)[0]!;

describe('binary tensor data: server metadata', () => {
  it('should announce binary_tensor_data among the extensions', async () => {
    const res = await http(`${base}/v2`);
    expect(res.body.extensions).toContain('binary_tensor_data');
  });
});

describe('binary tensor data: requests and responses', () => {
  it('should answer a binary request with a binary response', async () => {
    const x = affineX(2);
    const res = await binaryInfer('/v2/models/affine/infer', [x], { binaryOutput: true, id: 'b-1' });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const headerLength = Number(res.headers.get(HEADER));
    expect(Number(res.headers.get('content-length'))).toBe(res.body.length);
    const header = JSON.parse(res.body.toString('utf8', 0, headerLength));
    expect(header).toEqual({
      model_name: 'affine',
      model_version: '1',
      id: 'b-1',
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } },
        { name: 'sum', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      ],
    });
    expect(res.body.length).toBe(headerLength + 40);
    const want = models.affine.expected([x]);
    for (let i = 0; i < want.length; i++) expect(diffTensors(res.decoded.outputs[i]!, want[i]!, { tolerance: 1e-6 })).toBeUndefined();
    expect(res.decoded.outputs.every((o) => o.binary)).toBe(true);
  });

  it('should answer a binary request without binary outputs with the same JSON as a JSON request', async () => {
    const x = affineX(3);
    const viaBinary = await binaryInfer('/v2/models/affine/infer', [x], { id: 'same' });
    expect(viaBinary.headers.get('content-type')).toContain('application/json');
    expect(viaBinary.headers.get(HEADER)).toBeNull();
    const viaJson = await http(`${base}/v2/models/affine/infer`, {
      json: { id: 'same', inputs: [{ name: 'x', datatype: 'FP32', shape: x.shape, data: Array.from(x.data as Float32Array) }] },
    });
    expect(viaJson.status).toBe(200);
    expect(viaBinary.body.toString('utf8')).toBe(viaJson.text);
  });

  it('should answer a JSON request with binary outputs when it sets binary_data_output', async () => {
    const x = affineX(1);
    const res = await post(
      '/v2/models/affine/infer',
      Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: Array.from(x.data as Float32Array) }], parameters: { binary_data_output: true } })),
      { 'content-type': 'application/json' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const decoded = decodeBinaryInferResponse(res.body, res.headers.get(HEADER));
    expect(decoded.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['y', true],
      ['sum', true],
    ]);
    expect(diffTensors(decoded.outputs[0]!, models.affine.expected([x])[0]!, { tolerance: 1e-6 })).toBeUndefined();
  });

  it('should honour binary_data per output, over binary_data_output, in the order asked', async () => {
    const x = affineX(2);
    const want = models.affine.expected([x]);
    const perOutput = await binaryInfer('/v2/models/affine/infer', [x], { outputs: [{ name: 'sum', binary: true }, { name: 'y' }] });
    expect(perOutput.decoded.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['sum', true],
      ['y', false],
    ]);
    expect(diffTensors(perOutput.decoded.outputs[0]!, want[1]!, { tolerance: 1e-6 })).toBeUndefined();
    expect(diffTensors(perOutput.decoded.outputs[1]!, want[0]!, { tolerance: 1e-6 })).toBeUndefined();

    const overridden = await binaryInfer('/v2/models/affine/infer', [x], { binaryOutput: true, outputs: [{ name: 'y', binary: false }, { name: 'sum' }] });
    expect(overridden.decoded.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['y', false],
      ['sum', true],
    ]);
    const header = JSON.parse(overridden.body.toString('utf8', 0, Number(overridden.headers.get(HEADER))));
    expect(header.outputs[0].data).toHaveLength(8);
    expect(header.outputs[1]).toEqual({ name: 'sum', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } });

    const noneBinary = await binaryInfer('/v2/models/affine/infer', [x], { binaryOutput: true, outputs: [{ name: 'sum', binary: false }] });
    expect(noneBinary.headers.get('content-type')).toContain('application/json');
    expect(noneBinary.decoded.outputs.map((o) => [o.name, o.binary])).toEqual([['sum', false]]);
  });

  it('should take inputs mixing JSON data and binary data', async () => {
    const [a, b] = models.multiIo.makeInputs(2, 4);
    const want = models.multiIo.expected([a!, b!]);
    for (const inputs of [
      [a!, { ...b!, binary: false }],
      [{ ...a!, binary: false }, b!],
      [b!, { ...a!, binary: false }],
    ]) {
      const res = await binaryInfer('/v2/models/multi-io/infer', inputs, { binaryOutput: true });
      for (let i = 0; i < want.length; i++) expect(diffTensors(res.decoded.outputs[i]!, want[i]!, { tolerance: 1e-6 })).toBeUndefined();
    }
  });

  it('should round-trip every datatype byte for byte through the identity models', async () => {
    for (const m of Object.values(models.identity)) {
      const input = m.makeInputs(3, 7)[0]!;
      for (const align of [8, 1]) {
        const res = await binaryInfer(`/v2/models/${m.name}/infer`, [input], { binaryOutput: true, align });
        const out = res.decoded.outputs[0]!;
        expect(out.binary).toBe(true);
        expect(out.datatype).toBe(input.datatype);
        expect(out.shape).toEqual(input.shape);
        if (input.datatype === 'BYTES') expect(out.data).toEqual(input.data);
        else expect(bytesOf(out).equals(bytesOf(input)), `${m.name} (align ${align})`).toBe(true);
      }
    }
  });

  it('should give every datatype the same JSON answer for a binary request as for a JSON one', async () => {
    for (const m of Object.values(models.identity)) {
      const input = m.makeInputs(2, 9)[0]!;
      const viaBinary = await binaryInfer(`/v2/models/${m.name}/infer`, [input]);
      const viaJson = await binaryInfer(`/v2/models/${m.name}/infer`, [{ ...input, binary: false }]);
      expect(viaBinary.body.toString('utf8'), m.name).toBe(viaJson.body.toString('utf8'));
    }
  });

  it('should carry BYTES elements that are empty or multi-byte UTF-8', async () => {
    const data = ['', 'é', '中文🙂', '', 'a"b\\c', 'ß'];
    const res = await binaryInfer('/v2/models/identity-bytes/infer', [{ name: 'input', datatype: 'BYTES', shape: [2, 3], data }], { binaryOutput: true });
    expect(res.decoded.outputs[0]!.data).toEqual(data);
  });

  it('should match onnxruntime-node run directly on the PP-OCR classifier', async () => {
    const batch = 2;
    const data = new Float32Array(batch * 3 * 48 * 192);
    for (let i = 0; i < data.length; i++) data[i] = Math.cos(i * 0.21) * 0.9;
    const session = await ort.InferenceSession.create(CLS_MODEL);
    const raw = await session.run({ x: new ort.Tensor('float32', data, [batch, 3, 48, 192]) });
    const rawOut = raw[session.outputNames[0]!]!;
    await session.release();
    const want: Tensor = { name: session.outputNames[0]!, datatype: 'FP32', shape: [...rawOut.dims], data: rawOut.data };
    // padded (aligned view on the server) and unpadded like Triton's own client (one copy)
    for (const align of [8, 1]) {
      const res = await binaryInfer('/v2/models/text-orientation/infer', [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192], data }], { binaryOutput: true, align });
      expect(diffTensors(res.decoded.outputs[0]!, want, { tolerance: 1e-6 })).toBeUndefined();
    }
  });

  it('should stream a large binary response with its exact length', async () => {
    const shape = [1, 3, 400, 300]; // 1.44 MB in and out
    const x: Tensor = { name: 'x', datatype: 'FP32', shape, data: Float32Array.from({ length: 3 * 400 * 300 }, (_, i) => (i % 7) - 3) };
    const res = await binaryInfer('/v2/models/dynamic-image/infer', [x], { binaryOutput: true });
    expect(Number(res.headers.get('content-length'))).toBe(res.body.length);
    expect(diffTensors(res.decoded.outputs[0]!, models.dynamicImage.expected([x])[0]!)).toBeUndefined();
  });
});

describe('binary tensor data: content types and raw requests', () => {
  const x = (): Tensor => affineX(1);

  it.each<[string, Record<string, string>]>([
    ['application/octet-stream', { 'content-type': 'application/octet-stream' }],
    ['application/json', { 'content-type': 'application/json' }],
    ['no content type (Triton’s Python client)', {}],
    ['application/x-www-form-urlencoded (urllib’s default)', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['text/plain', { 'content-type': 'text/plain' }],
  ])('should take a binary body sent as %s', async (_label, contentType) => {
    const req = encodeBinaryInferRequest([x()], { binaryOutput: true });
    const headers = { [HEADER]: req.headers[HEADER]!, ...contentType };
    const res = await post('/v2/models/affine/infer', req.body, headers);
    expect(res.status, res.body.toString()).toBe(200);
    expect(decodeBinaryInferResponse(res.body, res.headers.get(HEADER)).outputs).toHaveLength(2);
  });

  it('should read a body without Inference-Header-Content-Length as JSON (octet-stream or no content type)', async () => {
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }));
    for (const headers of [{ 'content-type': 'application/octet-stream' }, {}] as Record<string, string>[]) {
      const res = await post('/v2/models/affine/infer', body, headers);
      expect(res.status).toBe(200);
      expect(res.json.outputs[0].data).toEqual([3, 5, 7, 9]);
    }
  });

  it('should still answer other content types without the header with 415', async () => {
    const res = await post('/v2/models/affine/infer', Buffer.from('x=1'), { 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(415);
    expect(res.json.code).toBe('TESSERA_E_REQUEST_MEDIA_TYPE');
  });

  it('should serve a raw binary request (Inference-Header-Content-Length: 0) with binary outputs', async () => {
    const data = Float32Array.from([1.5, -2, 3]);
    const res = await post('/v2/models/identity-fp32/infer', Buffer.from(data.buffer), { 'content-type': 'application/octet-stream', [HEADER]: '0' });
    expect(res.status, res.body.toString()).toBe(200);
    const decoded = decodeBinaryInferResponse(res.body, res.headers.get(HEADER));
    expect(decoded.outputs[0]!.shape).toEqual([1, 3]);
    expect([...(decoded.outputs[0]!.data as Float32Array)]).toEqual([1.5, -2, 3]);
    const image = new Float32Array(3 * 4 * 5).fill(-1);
    const relu = await post('/v2/models/dynamic-image/infer', Buffer.from(image.buffer), { [HEADER]: '0' });
    expect(relu.status).toBe(400); // two variable dims: the shape cannot be deduced
    expect(relu.json.code).toBe('TESSERA_E_REQUEST_BINARY');
    const two = await post('/v2/models/multi-io/infer', Buffer.alloc(16), { [HEADER]: '0' });
    expect(two.json.code).toBe('TESSERA_E_REQUEST_BINARY');
    const wrong = await post('/v2/models/identity-fp32/infer', Buffer.alloc(16), { [HEADER]: '0' });
    expect(wrong.json.code).toBe('TESSERA_E_REQUEST_BINARY');
  });
});

describe('binary tensor data: malformed requests', () => {
  const fp32 = (size: unknown, extra: Record<string, unknown> = {}) => ({ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: size }, ...extra });
  const ok = Buffer.alloc(16);
  const bytesInput = (size: number) => ({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 3], parameters: { binary_data_size: size } }] });
  const bytesElements = (...parts: [number, string][]) => Buffer.concat(parts.flatMap(([len, s]) => [Buffer.from(Uint32Array.of(len).buffer), Buffer.from(s)]));

  const cases: [string, string, () => { body: Buffer; headers: Record<string, string> }, number, string][] = [
    ['a header length that is not a number', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, ok, 'abc'), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['a negative header length', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, ok, '-5'), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['a header length larger than the body', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, ok, '100000'), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['a header length that cuts the JSON short', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, ok, '20'), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['a header that is not JSON', '/v2/models/affine/infer', () => ({ body: Buffer.from('not json at all'), headers: { [HEADER]: '8', 'content-type': 'application/octet-stream' } }), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['too few bytes after the header', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, Buffer.alloc(12)), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['bytes left over after the inputs', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)] }, Buffer.alloc(20)), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['binary_data_size not matching shape × element size', '/v2/models/affine/infer', () => framed({ inputs: [fp32(12)] }, Buffer.alloc(12)), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['binary_data_size together with data', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16, { data: [1, 2, 3, 4] })] }, ok), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['binary_data_size in a JSON request without the header', '/v2/models/affine/infer', () => ({ body: Buffer.from(JSON.stringify({ inputs: [fp32(16)] })), headers: { 'content-type': 'application/json' } }), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['BYTES lengths that run past the blob', '/v2/models/identity-bytes/infer', () => framed(bytesInput(13), bytesElements([1, 'a'], [1, 'b'], [9, 'c'])), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['BYTES elements fewer than the shape', '/v2/models/identity-bytes/infer', () => framed(bytesInput(10), bytesElements([1, 'a'], [1, 'b'])), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['BYTES elements more than the shape', '/v2/models/identity-bytes/infer', () => framed(bytesInput(20), bytesElements([1, 'a'], [1, 'b'], [1, 'c'], [1, 'd'])), 400, 'TESSERA_E_REQUEST_BINARY'],
    ['a BYTES element that is not UTF-8', '/v2/models/identity-bytes/infer', () => framed(bytesInput(15), Buffer.concat([bytesElements([1, 'a'], [1, 'b']), Buffer.from([1, 0, 0, 0, 0xff])])), 400, 'TESSERA_E_INPUT_DATA'],
    ['a BOOL byte that is neither 0 nor 1', '/v2/models/identity-bool/infer', () => framed({ inputs: [{ name: 'input', datatype: 'BOOL', shape: [1, 3], parameters: { binary_data_size: 3 } }] }, Buffer.from([0, 1, 7])), 400, 'TESSERA_E_INPUT_DATA'],
    ['a binary_data_size that is a string', '/v2/models/affine/infer', () => framed({ inputs: [fp32('16')] }, ok), 400, 'TESSERA_E_REQUEST_INVALID'],
    ['a binary_data_output that is not a boolean', '/v2/models/affine/infer', () => framed({ inputs: [fp32(16)], parameters: { binary_data_output: 'yes' } }, ok), 400, 'TESSERA_E_REQUEST_INVALID'],
    ['an input with neither data nor binary_data_size', '/v2/models/affine/infer', () => framed({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }] }, Buffer.alloc(0)), 400, 'TESSERA_E_REQUEST_INVALID'],
    ['a header without inputs', '/v2/models/affine/infer', () => framed({ id: 'x' }, Buffer.alloc(0)), 400, 'TESSERA_E_REQUEST_INVALID'],
    ['a binary input of the wrong datatype', '/v2/models/affine/infer', () => framed({ inputs: [{ ...fp32(16), datatype: 'INT32' }] }, ok), 400, 'TESSERA_E_INPUT_DATATYPE'],
    ['a binary input of the wrong shape', '/v2/models/affine/infer', () => framed({ inputs: [{ ...fp32(16), shape: [2, 2] }] }, ok), 400, 'TESSERA_E_INPUT_SHAPE'],
    ['an unknown model', '/v2/models/nope/infer', () => framed({ inputs: [fp32(16)] }, ok), 404, 'TESSERA_E_MODEL_NOT_FOUND'],
  ];

  it.each(cases)('should answer %s with the right status and code', async (_label, path, make, status, code) => {
    const { body, headers } = make();
    const res = await post(path, body, headers);
    expect(res.status, res.body.toString()).toBe(status);
    expect(res.json).toEqual({ error: expect.any(String), code });
    expect(res.json.error.length).toBeGreaterThan(10);
  });

  it('should say what is wrong with the framing', async () => {
    const res = await post('/v2/models/affine/infer', ...Object.values(framed({ inputs: [fp32(16)] }, Buffer.alloc(20))) as [Buffer, Record<string, string>]);
    expect(res.json.error).toContain('4 bytes after the JSON header belong to no input');
    const short = await post('/v2/models/affine/infer', ...Object.values(framed({ inputs: [fp32(12)] }, Buffer.alloc(12))) as [Buffer, Record<string, string>]);
    expect(short.json.error).toContain("input 'x': binary_data_size is 12 but shape [1, 4] of FP32 needs 16 bytes");
  });

  it('should answer a binary body over the limit with 413, whatever its content type', async () => {
    for (const headers of [{ 'content-type': 'application/octet-stream' }, { 'content-type': 'application/x-www-form-urlencoded' }]) {
      const res = await announceBody(base, '/v2/models/affine/infer', 5 * 1024 * 1024, { ...headers, [HEADER]: '10' });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.text).code).toBe('TESSERA_E_REQUEST_TOO_LARGE');
    }
  });

  it('should answer a chunked binary body that grows over the limit with 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const sock = connect(server.port, '127.0.0.1', () => {
        sock.write(`POST /v2/models/affine/infer HTTP/1.1\r\nhost: x\r\n${HEADER}: 10\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`);
        const chunk = Buffer.alloc(512 * 1024, 0x20);
        for (let i = 0; i < 10 && !sock.destroyed; i++) {
          sock.write(`${chunk.length.toString(16)}\r\n`);
          sock.write(chunk);
          sock.write('\r\n');
        }
      });
      let raw = '';
      sock.setEncoding('latin1');
      sock.on('data', (c: string) => (raw += c));
      sock.on('error', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)));
      sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)));
      sock.setTimeout(10_000, () => sock.destroy(new Error('no answer')));
      sock.on('timeout', () => reject(new Error('no answer')));
    });
    expect(status).toBe(413);
  });

  it('should read the same tensors whether the body comes whole, in small pieces first, or chunked', async () => {
    // the server copies a body with a Content-Length straight into an aligned buffer when its first
    // piece is big enough, concatenates it otherwise, and concatenates a chunked one: all three must agree
    const shape = [2, 3, 48, 192];
    const data = Float32Array.from({ length: 2 * 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.013));
    const req = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape, data }], { binaryOutput: true, align: 1 });
    const headerLength = Number(req.headers[HEADER]);
    expect(headerLength % 8, 'a header that leaves the tensor unaligned').not.toBe(0);
    const send = (pieces: (sock: ReturnType<typeof connect>) => void, framing: string): Promise<Buffer> =>
      new Promise<Buffer>((resolve, reject) => {
        const sock = connect(server.port, '127.0.0.1', () => {
          sock.write(`POST /v2/models/text-orientation/infer HTTP/1.1\r\nhost: x\r\n${HEADER}: ${headerLength}\r\ncontent-type: application/octet-stream\r\n${framing}connection: close\r\n\r\n`);
          pieces(sock);
        });
        const got: Buffer[] = [];
        sock.on('data', (c: Buffer) => got.push(c));
        sock.on('error', reject);
        sock.on('close', () => resolve(Buffer.concat(got)));
        sock.setTimeout(20_000, () => sock.destroy(new Error('no answer')));
      });
    const whole = await send((sock) => sock.write(req.body), `content-length: ${req.body.length}\r\n`);
    const pieces = await send((sock) => {
      for (let at = 0; at < req.body.length; at += at === 0 ? 7 : 65_536) sock.write(req.body.subarray(at, at === 0 ? 7 : at + 65_536));
    }, `content-length: ${req.body.length}\r\n`);
    const chunked = await send((sock) => {
      for (let at = 0; at < req.body.length; at += 50_000) {
        const part = req.body.subarray(at, at + 50_000);
        sock.write(`${part.length.toString(16)}\r\n`);
        sock.write(part);
        sock.write('\r\n');
      }
      sock.write('0\r\n\r\n');
    }, 'transfer-encoding: chunked\r\n');
    const outputs = (raw: Buffer): Tensor[] => {
      const text = raw.toString('latin1');
      expect(text.slice(0, 15)).toBe('HTTP/1.1 200 OK');
      const split = raw.indexOf('\r\n\r\n');
      const announced = /inference-header-content-length: (\d+)/i.exec(text.slice(0, split))?.[1];
      return decodeBinaryInferResponse(raw.subarray(split + 4), announced ?? null).outputs;
    };
    const want = outputs(whole);
    expect(want[0]!.shape).toEqual([2, 2]);
    expect(diffTensors(outputs(pieces)[0]!, want[0]!)).toBeUndefined();
    expect(diffTensors(outputs(chunked)[0]!, want[0]!)).toBeUndefined();
  });

  it('should keep serving after malformed binary requests', async () => {
    for (let i = 0; i < 5; i++) {
      await post('/v2/models/affine/infer', Buffer.from('{"inputs":[]}garbage'), { [HEADER]: String(1000 + i) });
      await post('/v2/models/affine/infer', Buffer.alloc(7), { [HEADER]: '0' });
    }
    const res = await binaryInfer('/v2/models/affine/infer', [affineX(1)], { binaryOutput: true });
    expect(res.decoded.outputs).toHaveLength(2);
    expect(await http(`${base}/v2/health/ready`)).toMatchObject({ status: 200 });
  });
});
