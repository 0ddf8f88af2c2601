/**
 * Property-based fuzzing over real HTTP on loopback, against a real server (real ONNX Runtime
 * sessions on the test models, a fake generative model for the OpenAI API): OIP v2 JSON and binary
 * inference, /v1/predict and the OpenAI endpoints get generated bodies that mix valid and hostile
 * parts. Properties: no 5xx (a documented 503 aside), every 4xx is JSON in its path's error shape
 * with a code, the server still answers a good request after each property, and no promise
 * rejection goes unhandled. Runs are bounded (fast-check prints the seed of a failure).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostileServer } from './support.js';
import { LIMITS, goodRequest, rawRequest, startHostileServer, wellFormedError } from './support.js';

const RUNS = 120;
let hostile: HostileServer;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  hostile = await startHostileServer();
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await hostile?.close();
});

/** Statuses seen by the running property (logged after it: a fuzzer that only ever gets one 400 tests little). */
let tally: Record<number, number> = {};

/** Checks one answer against the properties; returns its status. */
function checkAnswer(path: string, status: number, text: string, what: string): number {
  tally[status] = (tally[status] ?? 0) + 1;
  const context = `${what} → ${status} ${text.slice(0, 300)}`;
  expect(status, context).toBeGreaterThan(0);
  expect(status >= 500 && status !== 503, context).toBe(false);
  if (status >= 400) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: fails below
    }
    expect(wellFormedError(path, json), context).toBe(true);
  }
  return status;
}

async function post(path: string, body: string | Buffer, headers: Record<string, string>): Promise<number> {
  const res = await fetch(`${hostile.url}${path}`, { method: 'POST', body, headers });
  return checkAnswer(path, res.status, await res.text(), typeof body === 'string' ? body.slice(0, 300) : `${body.length} bytes`);
}

/** After each property: the server still serves, and nothing was left unhandled. */
async function stillServing(): Promise<void> {
  console.log(`${expect.getState().currentTestName}: statuses ${JSON.stringify(tally)}`);
  tally = {};
  expect((await goodRequest(hostile.url)).status).toBe(200);
  expect(unhandled).toEqual([]);
}

const modelName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('affine', 'multi-io', 'fixed', 'dynamic-image', 'id-bytes', 'id-fp16', 'id-bool', 'id-int64', 'llm') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const inputName = fc.oneof({ weight: 5, arbitrary: fc.constantFrom('x', 'a', 'b', 'input') }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });
const datatype = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('FP32', 'INT32', 'BYTES', 'FP16', 'BOOL', 'INT64', 'FP64', 'UINT8') }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });
const dim = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0.5, 1e9, 2 ** 53 + 2, 1e300, LIMITS.maxTensorElements + 1) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 3 }), fc.constant(null)) },
);
const shape = fc.oneof({ weight: 9, arbitrary: fc.array(dim, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.jsonValue() });
const value = fc.oneof(
  fc.integer({ min: -300, max: 300 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.string({ maxLength: 5 }),
  fc.constantFrom('NaN', 'Infinity', '9223372036854775807', '99999999999999999999', null),
);
const data = fc.oneof(
  { weight: 4, arbitrary: fc.array(value, { maxLength: 30 }) },
  { weight: 2, arbitrary: fc.array(fc.array(value, { maxLength: 6 }), { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.jsonValue() },
);
const parameters = fc.option(fc.dictionary(fc.constantFrom('binary_data_size', 'binary_data', 'timeout', '__x'), fc.jsonValue(), { maxKeys: 2 }), { nil: undefined });
const input = fc.record(
  { name: inputName, datatype, shape, data, parameters },
  { requiredKeys: ['name'] },
);
const inferBody = fc.record(
  {
    id: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    inputs: fc.oneof({ weight: 9, arbitrary: fc.array(input, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.jsonValue() }),
    outputs: fc.array(fc.record({ name: fc.constantFrom('y', 'sum', 'output', 'a_plus_1', 'nope') }), { maxLength: 3 }),
    parameters: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue(), { maxKeys: 2 }),
  },
  { requiredKeys: [] },
);

/** A valid request for each test model: [model, inputs as (name, datatype, row shape)]. */
const TEMPLATES: [string, [string, string, number[]][]][] = [
  ['affine', [['x', 'FP32', [4]]]],
  ['multi-io', [['a', 'FP32', [2]], ['b', 'INT32', [2]]]],
  ['id-bytes', [['input', 'BYTES', [3]]]],
  ['id-fp16', [['input', 'FP16', [3]]]],
  ['id-bool', [['input', 'BOOL', [3]]]],
  ['id-int64', [['input', 'INT64', [3]]]],
  ['dynamic-image', [['x', 'FP32', [3, 2, 2]]]],
];

function sample(datatype: string, i: number): unknown {
  if (datatype === 'BYTES') return `s${i}`;
  if (datatype === 'BOOL') return i % 2 === 0;
  return (i % 5) - 2;
}

interface Valid {
  model: string;
  inputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
}

/** A valid OIP v2 request for one of the models, batch 1–3. */
const valid: fc.Arbitrary<Valid> = fc.record({ t: fc.nat(TEMPLATES.length - 1), batch: fc.integer({ min: 1, max: 3 }) }).map(({ t, batch }) => {
  const [model, inputs] = TEMPLATES[t]!;
  return {
    model,
    inputs: inputs.map(([name, datatype, row]) => {
      const shape = [batch, ...row];
      return { name, datatype, shape, data: Array.from({ length: shape.reduce((n, d) => n * d, 1) }, (_, i) => sample(datatype, i)) };
    }),
  };
});

/** One change to an input that a hostile (or careless) client makes. */
type Mutation = (input: Valid['inputs'][number], body: Record<string, unknown>) => void;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  dim.chain((d) => fc.nat(3).map((k): Mutation => (input) => void (input.shape[k % input.shape.length] = d as number))),
  datatype.map((dt): Mutation => (input) => void (input.datatype = dt)),
  value.chain((v) => fc.nat(50).map((k): Mutation => (input) => void (input.data[k % Math.max(1, input.data.length)] = v))),
  fc.constant<Mutation>((input) => void input.data.pop()),
  fc.constant<Mutation>((input) => void (input.data = [input.data])),
  inputName.map((n): Mutation => (input) => void (input.name = n)),
  fc.constant<Mutation>((input, body) => void (body['inputs'] as unknown[]).push({ ...input })),
  fc.jsonValue().map((j): Mutation => (input) => void ((input as Record<string, unknown>)['parameters'] = { binary_data_size: j })),
  fc.array(fc.constantFrom('y', 'sum', 'output', 'nope'), { maxLength: 3 }).map((names): Mutation => (_input, body) => void (body['outputs'] = names.map((name) => ({ name })))),
);
/** A valid request and up to two mutations (none in about a third of the runs). */
const mutated = fc.tuple(valid, fc.array(mutation, { maxLength: 2 })).map(([v, mutations]) => {
  const body: Record<string, unknown> = { inputs: v.inputs };
  for (const m of mutations) m(v.inputs[0]!, body);
  return { model: v.model, body };
});

describe('OIP v2 over HTTP (properties)', () => {
  it('JSON inference: no 5xx, errors in shape', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: fc.record({ model: modelName, body: inferBody }) }), async ({ model, body }) => {
        await post(`/v2/models/${encodeURIComponent(model)}/infer`, JSON.stringify(body), { 'content-type': 'application/json' });
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });

  it('binary inference: no 5xx for any header, header length and tail', async () => {
    const headerLength = fc.oneof({ weight: 12, arbitrary: fc.constant('exact') }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -3, max: 400 }).map(String), fc.string({ maxLength: 4 })) });
    const binaryInput = fc.record({
      name: inputName,
      datatype,
      shape,
      parameters: fc.record({ binary_data_size: fc.oneof(fc.nat(64), fc.constantFrom(-1, 2 ** 40, 1.5)) }),
    });
    const header = fc.record({ inputs: fc.array(fc.oneof({ weight: 4, arbitrary: binaryInput }, { weight: 1, arbitrary: input }), { maxLength: 3 }), outputs: fc.array(fc.record({ name: fc.constantFrom('y', 'output'), parameters: fc.record({ binary_data: fc.boolean() }) }), { maxLength: 2 }) });
    const contentType = fc.constantFrom('application/octet-stream', 'application/json', 'image/png', undefined);
    // a mutated valid request sent in binary: the tensors' bytes after the header, sizes from the (mutated) shapes
    const fromValid = fc.tuple(mutated, fc.integer({ min: -4, max: 4 })).map(([{ model, body }, skew]) => {
      const parts: Buffer[] = [];
      const inputs = (body['inputs'] as Valid['inputs']).map((i) => {
        const bytes = encodeData(i.datatype, i.data);
        parts.push(bytes);
        const declared = (i as { parameters?: { binary_data_size?: unknown } }).parameters?.binary_data_size;
        return { name: i.name, datatype: i.datatype, shape: i.shape, parameters: { binary_data_size: declared ?? bytes.length } };
      });
      const tail = Buffer.concat(parts);
      return { model, h: { ...body, inputs }, tail: skew < 0 ? tail.subarray(0, Math.max(0, tail.length + skew)) : skew > 2 ? Buffer.concat([tail, Buffer.alloc(skew)]) : tail };
    });
    const arbitrary = fc.record({ model: modelName, h: header, tail: fc.uint8Array({ maxLength: 96 }).map((a) => Buffer.from(a)) });
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: fromValid }, { weight: 1, arbitrary }), headerLength, contentType, async ({ model, h, tail }, length, type) => {
        const json = Buffer.from(JSON.stringify(h));
        const headers: Record<string, string> = { 'inference-header-content-length': length === 'exact' ? String(json.length) : length };
        if (type) headers['content-type'] = type;
        await post(`/v2/models/${encodeURIComponent(model)}/infer`, Buffer.concat([json, Buffer.from(tail)]), headers);
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });

  it('raw bytes as the body, any content type: no 5xx', async () => {
    const contentType = fc.constantFrom('application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v2/models/affine/infer', '/v1/predict', '/v1/chat/completions', '/v1/completions', '/v2/repository/index', '/v2/repository/models/affine/load'), contentType, fc.uint8Array({ maxLength: 200 }), async (path, type, bytes) => {
        const body = Buffer.from(bytes);
        const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...(type ? [`Content-Type: ${type}`] : []), `Content-Length: ${body.length}`, 'Connection: close'].join('\r\n');
        const res = await rawRequest(hostile.port, Buffer.concat([Buffer.from(`${head}\r\n\r\n`), body]), { timeoutMs: 10_000 });
        checkAnswer(path, res.status, res.body, `${type} ${body.toString('hex').slice(0, 80)}`);
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });
});

/** A (mutated) OIP v2 request as a /v1/predict body: the inputs nested by their shapes. */
function predictBody({ model, body }: { model: string; body: Record<string, unknown> }): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const i of body['inputs'] as Valid['inputs']) inputs[i.name] = nest(i.data, i.shape);
  const outputs = body['outputs'] as { name: string }[] | undefined;
  return { model, inputs, ...(outputs ? { outputs: outputs.map((o) => o.name) } : {}) };
}

function nest(data: unknown[], shape: unknown[]): unknown {
  if (shape.length <= 1 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) > 0 && (d as number) < 50)) return data;
  const [first, ...rest] = shape as number[];
  const size = data.length / first!;
  if (!Number.isInteger(size)) return data;
  return Array.from({ length: first! }, (_, k) => nest(data.slice(k * size, (k + 1) * size), rest));
}

/** JSON values as a binary tensor's bytes (what a client would send; wrong values give wrong bytes, as they would). */
function encodeData(datatype: string, data: unknown[]): Buffer {
  const flat = data.flat(8);
  const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : 0);
  switch (datatype) {
    case 'BYTES':
      return Buffer.concat(flat.map((v) => {
        const b = Buffer.from(String(v));
        const len = Buffer.alloc(4);
        len.writeUInt32LE(b.length, 0);
        return Buffer.concat([len, b]);
      }));
    case 'FP32':
      return Buffer.from(Float32Array.from(flat, num).buffer);
    case 'INT32':
      return Buffer.from(Int32Array.from(flat, num).buffer);
    case 'INT64':
      return Buffer.from(BigInt64Array.from(flat, (v) => BigInt(Math.trunc(num(v)))).buffer);
    case 'FP16':
      return Buffer.from(Uint16Array.from(flat, () => 0x3c00).buffer);
    default:
      return Buffer.from(Uint8Array.from(flat, num).buffer);
  }
}

describe('/v1/predict over HTTP (properties)', () => {
  it('no 5xx, errors in shape', async () => {
    const tensor = fc.oneof(data, value, fc.array(fc.array(fc.array(value, { maxLength: 3 }), { maxLength: 3 }), { maxLength: 2 }));
    const body = fc.record(
      {
        model: fc.oneof(modelName, fc.integer()),
        version: fc.oneof(fc.constantFrom('1', '2', '0', '../1'), fc.integer()),
        inputs: fc.oneof({ weight: 8, arbitrary: fc.dictionary(inputName, tensor, { maxKeys: 3 }) }, { weight: 1, arbitrary: fc.jsonValue() }),
        outputs: fc.array(fc.constantFrom('y', 'sum', 'output', 'nope'), { maxLength: 2 }),
        extra: fc.jsonValue(),
      },
      { requiredKeys: ['model'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: mutated.map(predictBody) }, { weight: 1, arbitrary: body }), async (b) => {
        await post('/v1/predict', JSON.stringify(b), { 'content-type': 'application/json' });
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });
});

describe('the OpenAI API over HTTP (properties)', () => {
  const message = fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant'), fc.integer()), content: fc.oneof(fc.string({ maxLength: 10 }), fc.constant(null), fc.jsonValue()) }, { requiredKeys: [] });
  const sampling = {
    model: fc.oneof(fc.constant('llm'), modelName, fc.integer()),
    stream: fc.oneof(fc.boolean(), fc.constant(null), fc.string({ maxLength: 3 })),
    stream_options: fc.oneof(fc.constant(null), fc.record({ include_usage: fc.oneof(fc.boolean(), fc.integer()) })),
    n: fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(1e9, 1.5, 'two')),
    max_tokens: fc.oneof(fc.nat(100), fc.constantFrom(-1, 2 ** 53, 'ten', null)),
    temperature: fc.oneof(fc.double(), fc.constantFrom('hot', null)),
    stop: fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.jsonValue(), { maxLength: 2 })),
    unknown_field: fc.jsonValue(),
  };
  it('chat completions: no 5xx, errors in OpenAI shape', async () => {
    const fields = fc.record({ ...sampling, messages: fc.oneof({ weight: 8, arbitrary: fc.array(message, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.jsonValue() }) }, { requiredKeys: [] });
    // a valid request with up to two of the generated fields in place of its own
    const body = fc.tuple(fields, fc.nat(3)).map(([f, keep]) => ({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], ...Object.fromEntries(Object.entries(f).slice(0, keep)) }));
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        await post('/v1/chat/completions', JSON.stringify(b), { 'content-type': 'application/json' });
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });

  it('completions: no 5xx, errors in OpenAI shape', async () => {
    const prompt = fc.oneof(fc.string({ maxLength: 10 }), fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.array(fc.integer(), { maxLength: 3 })), { maxLength: 4 }), fc.jsonValue());
    const fields = fc.record({ ...sampling, prompt, best_of: fc.oneof(fc.integer({ min: -1, max: 10 }), fc.constant('x')) }, { requiredKeys: [] });
    const body = fc.tuple(fields, fc.nat(3)).map(([f, keep]) => ({ model: 'llm', prompt: 'hi', ...Object.fromEntries(Object.entries(f).slice(0, keep)) }));
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        await post('/v1/completions', JSON.stringify(b), { 'content-type': 'application/json' });
      }),
      { numRuns: RUNS },
    );
    await stillServing();
  });
});
