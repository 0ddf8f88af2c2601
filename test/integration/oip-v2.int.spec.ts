/**
 * The OIP v2 REST surface, end to end: the real `tessera` CLI as a child process, real ONNX Runtime
 * sessions on generated models and the PP-OCR classifier, HTTP over loopback, and outputs compared
 * with onnxruntime-node run directly on the same inputs.
 */
import { connect } from 'node:net';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataType, Tensor } from '@tessera/core';
import { halfToNumber } from '@tessera/core';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { CLS_MODEL, announceBody, http, tempDir, writeConfig } from './helpers.js';

let dir: string;
let models: TestModelCatalog;
let server: TesseraProcess;
let base: string;

/** A JSON-safe float: the protocol writes non-finite values as strings. */
function jsonFloat(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** A tensor as an OIP v2 JSON input (INT64 as decimal strings, FP16 as numbers). */
function toJson(t: Tensor): { name: string; datatype: DataType; shape: number[]; data: unknown[] } {
  let data: unknown[];
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') data = Array.from(t.data as BigInt64Array, (v) => v.toString());
  else if (t.datatype === 'BYTES') data = [...(t.data as string[])];
  else if (t.datatype === 'BOOL') data = Array.from(t.data as Uint8Array, (v) => v === 1);
  else if (t.datatype === 'FP16') data = Array.from(t.data as Uint16Array, (v) => jsonFloat(halfToNumber(v)));
  else data = Array.from(t.data as Float64Array, jsonFloat);
  return { name: t.name, datatype: t.datatype, shape: t.shape, data };
}

beforeAll(async () => {
  dir = await tempDir();
  models = await writeTestModels(dir);
  const identity = Object.fromEntries(Object.values(models.identity).map((m) => [m.name, { path: m.path, batching: { maxBatchSize: 16 } }]));
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, bodyLimit: '4MiB', logLevel: 'info' },
    models: {
      affine: { versions: { '1': { path: './affine.onnx' }, '2': { path: models.affineV2.path } }, batching: { maxBatchSize: 8 } },
      'multi-io': { path: models.multiIo.path },
      fixed: { path: models.fixed.path },
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

describe('OIP v2 health and metadata', () => {
  it('should report live and ready', async () => {
    expect(await http(`${base}/v2/health/live`)).toMatchObject({ status: 200, body: { live: true } });
    expect(await http(`${base}/v2/health/ready`)).toMatchObject({ status: 200, body: { ready: true } });
    expect(await http(`${base}/health`)).toMatchObject({ status: 200 });
  });

  it('should describe the server', async () => {
    const res = await http(`${base}/v2`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'tessera', version: expect.stringMatching(/^\d+\.\d+\.\d+/), extensions: expect.any(Array) });
  });

  it('should describe a model with and without a version', async () => {
    const latest = await http(`${base}/v2/models/affine`);
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({
      name: 'affine',
      versions: ['1', '2'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 4] },
        { name: 'sum', datatype: 'FP32', shape: [-1] },
      ],
      parameters: { version: '2', max_batch_size: 8 },
    });
    const v1 = await http(`${base}/v2/models/affine/versions/1`);
    expect(v1.body.parameters.version).toBe('1');
    const cls = await http(`${base}/v2/models/text-orientation`);
    expect(cls.body.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
  });

  it('should report model readiness with and without a version', async () => {
    expect(await http(`${base}/v2/models/affine/ready`)).toMatchObject({ status: 200, body: { name: 'affine', ready: true } });
    expect(await http(`${base}/v2/models/affine/versions/1/ready`)).toMatchObject({ status: 200, body: { ready: true, state: 'ready' } });
    expect(await http(`${base}/v2/models/nope/ready`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_NOT_FOUND' } });
    expect(await http(`${base}/v2/models/affine/versions/9/ready`)).toMatchObject({ status: 404, body: { code: 'TESSERA_E_MODEL_VERSION_NOT_FOUND' } });
  });
});

describe('OIP v2 inference', () => {
  it('should serve the newest version by default and a named version on request', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] };
    const latest = await http(`${base}/v2/models/affine/infer`, { json: { inputs: [x] } });
    expect(latest.status).toBe(200);
    expect(latest.body.model_version).toBe('2');
    expect(latest.body.outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape: [1, 4], data: [2, 5, 8, 11] });
    const v1 = await http(`${base}/v2/models/affine/versions/1/infer`, { json: { inputs: [x] } });
    expect(v1.body.model_version).toBe('1');
    expect(v1.body.outputs[0].data).toEqual([3, 5, 7, 9]);
    expect(v1.body.outputs[1]).toEqual({ name: 'sum', datatype: 'FP32', shape: [1], data: [24] });
  });

  it('should accept nested data, echo the id and select outputs in the order asked', async () => {
    const res = await http(`${base}/v2/models/affine/versions/1/infer`, {
      json: { id: 'req-7', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [[1, 2, 3, 4], [0, 0, 0, 1]] }], outputs: [{ name: 'sum' }, { name: 'y' }] },
    });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe('req-7');
    expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual(['sum', 'y']);
    expect(res.body.outputs[0].data).toEqual([24, 6]);
    const one = await http(`${base}/v2/models/affine/versions/1/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }], outputs: [{ name: 'sum' }] } });
    expect(one.body.outputs).toEqual([{ name: 'sum', datatype: 'FP32', shape: [1], data: [12] }]);
  });

  it('should run models with several inputs and outputs of different datatypes', async () => {
    const res = await http(`${base}/v2/models/multi-io/infer`, {
      json: {
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [2, 2], data: [0.5, 1, 2, 3] },
          { name: 'b', datatype: 'INT32', shape: [2, 2], data: [1, -2, 3, 2147483647 >> 1] },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.outputs).toEqual([
      { name: 'a_plus_1', datatype: 'FP32', shape: [2, 2], data: [1.5, 2, 3, 4] },
      { name: 'b_times_2', datatype: 'INT32', shape: [2, 2], data: [2, -4, 6, (2147483647 >> 1) * 2] },
    ]);
  });

  it('should round-trip every datatype exactly as ONNX Runtime computes it', async () => {
    for (const m of Object.values(models.identity)) {
      const inputs = m.makeInputs(2, 3);
      const res = await http(`${base}/v2/models/${m.name}/infer`, { json: { inputs: inputs.map(toJson) } });
      expect(res.status, `${m.name}: ${res.text}`).toBe(200);
      const out = res.body.outputs[0];
      const want = m.expected(inputs)[0]!;
      expect(out.datatype).toBe(want.datatype);
      expect(out.shape).toEqual(want.shape);
      if (want.datatype === 'INT64' || want.datatype === 'UINT64') {
        // exact digits, checked on the raw text: JSON.parse would round beyond 2^53
        const digits = /"data":\[([^\]]*)\]/.exec(res.text)![1]!.split(',');
        expect(digits).toEqual(Array.from(want.data as BigInt64Array, (v) => v.toString()));
      } else if (want.datatype === 'BOOL') {
        expect(out.data).toEqual(Array.from(want.data as Uint8Array, (v) => v === 1));
      } else if (want.datatype === 'FP16') {
        expect(out.data).toEqual(Array.from(want.data as Uint16Array, (v) => jsonFloat(halfToNumber(v))));
      } else if (want.datatype === 'BYTES') {
        expect(out.data).toEqual(want.data);
      } else {
        expect(out.data).toEqual(Array.from(want.data as Float64Array, jsonFloat));
      }
    }
  });

  it('should match onnxruntime-node run directly on the PP-OCR classifier', async () => {
    const batch = 2;
    const data = new Float32Array(batch * 3 * 48 * 192);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.8;
    const session = await ort.InferenceSession.create(CLS_MODEL);
    const raw = await session.run({ x: new ort.Tensor('float32', data, [batch, 3, 48, 192]) });
    const rawOut = raw[session.outputNames[0]!]!;
    await session.release();
    const res = await http(`${base}/v2/models/text-orientation/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192], data: Array.from(data) }] } });
    expect(res.status).toBe(200);
    const out = res.body.outputs[0];
    expect(out.name).toBe(session.outputNames[0]);
    expect(out.shape).toEqual([...rawOut.dims]);
    const want = Array.from(rawOut.data as Float32Array);
    for (let i = 0; i < want.length; i++) expect(out.data[i]).toBeCloseTo(want[i]!, 5);
  });

  it('should serve a model without a batch dimension as shaped', async () => {
    const res = await http(`${base}/v2/models/fixed/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] } });
    expect(res.status).toBe(200);
    expect(res.body.outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape: [2, 3], data: [2, 3, 4, 5, 6, 7] });
  });
});

describe('OIP v2 errors', () => {
  const x = (over: Record<string, unknown> = {}) => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...over });
  const cases: [string, string, unknown, number, string][] = [
    ['unknown model', '/v2/models/nope/infer', { inputs: [x()] }, 404, 'TESSERA_E_MODEL_NOT_FOUND'],
    ['unknown version', '/v2/models/affine/versions/7/infer', { inputs: [x()] }, 404, 'TESSERA_E_MODEL_VERSION_NOT_FOUND'],
    ['no inputs field', '/v2/models/affine/infer', { id: 'a' }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['inputs not an array', '/v2/models/affine/infer', { inputs: 5 }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['bad datatype name', '/v2/models/affine/infer', { inputs: [x({ datatype: 'FLOAT' })] }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['negative dim', '/v2/models/affine/infer', { inputs: [x({ shape: [-1, 4] })] }, 400, 'TESSERA_E_REQUEST_INVALID'],
    ['unknown input', '/v2/models/affine/infer', { inputs: [x(), x({ name: 'z' })] }, 400, 'TESSERA_E_INPUT_UNKNOWN'],
    ['duplicate input', '/v2/models/affine/infer', { inputs: [x(), x()] }, 400, 'TESSERA_E_INPUT_DUPLICATE'],
    ['missing input', '/v2/models/multi-io/infer', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }, 400, 'TESSERA_E_INPUT_MISSING'],
    ['wrong datatype', '/v2/models/affine/infer', { inputs: [x({ datatype: 'INT32' })] }, 400, 'TESSERA_E_INPUT_DATATYPE'],
    ['wrong rank', '/v2/models/affine/infer', { inputs: [x({ shape: [4] })] }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['wrong fixed dim', '/v2/models/affine/infer', { inputs: [x({ shape: [2, 2] })] }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['batch over max', '/v2/models/affine/infer', { inputs: [x({ shape: [9, 4], data: new Array(36).fill(0) })] }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['mismatched batch across inputs', '/v2/models/multi-io/infer', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] }, { name: 'b', datatype: 'INT32', shape: [2, 2], data: [1, 2, 3, 4] }] }, 400, 'TESSERA_E_INPUT_SHAPE'],
    ['too few elements', '/v2/models/affine/infer', { inputs: [x({ data: [1, 2, 3] })] }, 400, 'TESSERA_E_INPUT_DATA'],
    ['string in FP32 data', '/v2/models/affine/infer', { inputs: [x({ data: [1, 2, 'x', 4] })] }, 400, 'TESSERA_E_INPUT_DATA'],
    ['out-of-range INT32', '/v2/models/multi-io/infer', { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] }, { name: 'b', datatype: 'INT32', shape: [1, 2], data: [1, 2 ** 40] }] }, 400, 'TESSERA_E_INPUT_DATA'],
    ['unknown output', '/v2/models/affine/infer', { inputs: [x()], outputs: [{ name: 'nope' }] }, 400, 'TESSERA_E_OUTPUT_UNKNOWN'],
  ];

  it.each(cases)('should answer %s with the right status and code', async (_label, path, body, status, code) => {
    const res = await http(`${base}${path}`, { json: body });
    expect(res.status, res.text).toBe(status);
    expect(res.body).toEqual({ error: expect.any(String), code });
    expect(res.body.error.length).toBeGreaterThan(10);
  });

  it('should name what is wrong in the message', async () => {
    const res = await http(`${base}/v2/models/affine/infer`, { json: { inputs: [x({ shape: [1, 3], data: [1, 2, 3] })] } });
    expect(res.body.error).toContain("input 'x'");
    expect(res.body.error).toContain('[-1, 4]');
  });

  it('should answer malformed JSON with 400', async () => {
    const res = await http(`${base}/v2/models/affine/infer`, { method: 'POST', body: '{"inputs": [', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('TESSERA_E_REQUEST_INVALID');
  });

  it('should answer an unsupported content type with 415', async () => {
    const res = await http(`${base}/v2/models/affine/infer`, { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('TESSERA_E_REQUEST_MEDIA_TYPE');
  });

  it('should answer a body over the limit with 413', async () => {
    const res = await announceBody(base, '/v2/models/affine/infer', 5 * 1024 * 1024);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).code).toBe('TESSERA_E_REQUEST_TOO_LARGE');
  });

  it('should answer an unknown endpoint with 404 in the same shape', async () => {
    const res = await http(`${base}/v2/nothing/here`);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('TESSERA_E_ROUTE_NOT_FOUND');
  });

  it('should keep serving after a client drops its connection mid-request', async () => {
    await new Promise<void>((resolve, reject) => {
      const sock = connect(server.port, '127.0.0.1', () => {
        sock.write('POST /v2/models/affine/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"inputs":');
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 50);
      });
      sock.on('error', reject);
    });
    const res = await http(`${base}/v2/models/affine/versions/1/infer`, { json: { inputs: [x()] } });
    expect(res.status).toBe(200);
  });
});
