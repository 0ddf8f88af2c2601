/**
 * Hand-written hostile requests, each with the answer Tessera must give: sent byte for byte over a
 * raw socket (test/hostile/corpus.int.spec.ts) to the server of `support.ts` (its small limits are
 * in `LIMITS`). Add an entry for every hostile input a bug report shows; name it after what it is.
 */
import { LIMITS } from './support.js';

export interface HostileRequest {
  name: string;
  method: string;
  path: string;
  /** Header lines as sent (duplicates allowed); `Host` and `Connection: close` are added. */
  headers: [string, string][];
  /** The body as sent; `Content-Length` is added unless a header gives it (or `Transfer-Encoding`). */
  body: string | Buffer;
  /** Send the whole request as these bytes instead (request line and all). */
  raw?: Buffer;
  /** Keep the connection open after writing: a client that stops sending. */
  stall?: boolean;
  expect: { status: number; code?: string };
}

const JSON_HEADERS: [string, string][] = [['Content-Type', 'application/json']];
const INFER = '/v2/models/affine/infer';

/** An OIP v2 body for `affine` (x FP32 [-1, 4]) with one input replaced by `input`. */
function affine(input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...input }], ...extra });
}

/** A binary request: JSON header + tail, with `Inference-Header-Content-Length` (or the value given). */
function binary(header: unknown, tail: Buffer, headerLength?: string): { headers: [string, string][]; body: Buffer } {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  return { headers: [['Content-Type', 'application/octet-stream'], ['Inference-Header-Content-Length', headerLength ?? String(json.length)]], body: Buffer.concat([json, tail]) };
}

function binaryInput(name: string, datatype: string, shape: number[], size: number): Record<string, unknown> {
  return { name, datatype, shape, parameters: { binary_data_size: size } };
}

const floats = (n: number): Buffer => Buffer.from(new Float32Array(n).fill(1).buffer);

/** A uint32-LE length followed by `bytes`. */
function bytesElement(length: number, bytes: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(length, 0);
  return Buffer.concat([b, bytes]);
}

const deep = (n: number): string => `${'['.repeat(n)}1${']'.repeat(n)}`;
const deepObject = (n: number): string => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

function entry(name: string, method: string, path: string, headers: [string, string][], body: string | Buffer, status: number, code?: string, extra: Partial<HostileRequest> = {}): HostileRequest {
  return { name, method, path, headers, body, expect: { status, ...(code ? { code } : {}) }, ...extra };
}

const chat = (body: Record<string, unknown>): string => JSON.stringify({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], ...body });

export const CORPUS: HostileRequest[] = [
  // a good request first: the corpus's own sanity check
  entry('a good JSON inference', 'POST', INFER, JSON_HEADERS, affine(), 200),

  // nesting
  entry('100k nested arrays as tensor data', 'POST', INFER, JSON_HEADERS, affine({ data: '@' }).replace('"@"', deep(100_000)), 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('nesting one past maxJsonDepth', 'POST', INFER, JSON_HEADERS, affine({ data: '@' }).replace('"@"', deep(LIMITS.maxJsonDepth)), 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('nesting within maxJsonDepth (a rank-4 tensor)', 'POST', '/v2/models/dynamic-image/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 1, 1], data: [[[[1]], [[2]], [[3]]]] }] }), 200),
  entry('100k nested objects on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, `{"model":"affine","inputs":{"x":${deepObject(100_000)}}}`, 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('100k nested arrays in an OpenAI chat request', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ messages: '@' }).replace('"@"', deep(100_000)), 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('100k nested objects on the repository API', 'POST', '/v2/repository/index', JSON_HEADERS, deepObject(100_000), 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('100k nested arrays in a binary request\'s JSON header', 'POST', INFER, binary(`{"inputs":${deep(100_000)}}`, Buffer.alloc(0)).headers, binary(`{"inputs":${deep(100_000)}}`, Buffer.alloc(0)).body, 400, 'TESSERA_E_REQUEST_TOO_DEEP'),
  entry('brackets inside strings do not count as nesting', 'POST', INFER, JSON_HEADERS, affine({}, { id: '['.repeat(10_000) }), 200),

  // shapes
  entry('shape [1e9] with four values', 'POST', '/v2/models/id-bytes/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape: [1e9, 3], data: ['a', 'b', 'c'] }] }), 413, 'TESSERA_E_INPUT_TOO_LARGE'),
  entry('a huge dim hidden by a zero dim', 'POST', '/v2/models/dynamic-image/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 1e15, 0], data: [] }] }), 413, 'TESSERA_E_INPUT_TOO_LARGE'),
  entry('a shape one element over maxTensorElements', 'POST', '/v2/models/dynamic-image/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 1, Math.floor(LIMITS.maxTensorElements / 3) + 1], data: [] }] }), 413, 'TESSERA_E_INPUT_TOO_LARGE'),
  entry('dims beyond 2^53', 'POST', '/v2/models/dynamic-image/infer', JSON_HEADERS, '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,9007199254740993,1e300],"data":[]}]}', 400, 'TESSERA_E_INPUT_SHAPE'),
  entry('a negative dim', 'POST', INFER, JSON_HEADERS, affine({ shape: [-1, 4] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a fractional dim', 'POST', INFER, JSON_HEADERS, affine({ shape: [0.5, 8] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a shape that is a string', 'POST', INFER, JSON_HEADERS, affine({ shape: '[1,4]' }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('data one element short', 'POST', INFER, JSON_HEADERS, affine({ data: [1, 2, 3] }), 400, 'TESSERA_E_INPUT_DATA'),
  entry('a datatype the model does not have', 'POST', INFER, JSON_HEADERS, affine({ datatype: 'FP64' }), 400, 'TESSERA_E_INPUT_DATATYPE'),
  entry('a datatype that does not exist', 'POST', INFER, JSON_HEADERS, affine({ datatype: 'FP128' }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('10k inputs of one name', 'POST', INFER, JSON_HEADERS, JSON.stringify({ inputs: Array.from({ length: 10_000 }, () => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] })) }), 400, 'TESSERA_E_INPUT_DUPLICATE'),
  entry('10k inputs of different names', 'POST', INFER, JSON_HEADERS, JSON.stringify({ inputs: Array.from({ length: 10_000 }, (_, i) => ({ name: `x${i}`, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] })) }), 400, 'TESSERA_E_INPUT_UNKNOWN'),
  entry('10k outputs asked for', 'POST', INFER, JSON_HEADERS, affine({}, { outputs: Array.from({ length: 10_000 }, () => ({ name: 'y' })) }), 200),

  // values
  entry('a NaN literal', 'POST', INFER, JSON_HEADERS, affine({ data: '@' }).replace('"@"', '[NaN, 1, 2, 3]'), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('an Infinity literal', 'POST', INFER, JSON_HEADERS, affine({ data: '@' }).replace('"@"', '[Infinity, 1, 2, 3]'), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('"NaN" and "Infinity" as strings for FP32 (the documented spelling)', 'POST', INFER, JSON_HEADERS, affine({ data: ['NaN', 'Infinity', '-Infinity', 1] }), 200),
  entry('1e999 for an INT32 input', 'POST', '/v2/models/multi-io/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] }, { name: 'b', datatype: 'INT32', shape: [1, 2], data: ['@'] }] }).replace('"@"', '1e999,1'), 400, 'TESSERA_E_INPUT_DATA'),
  entry('a megabyte-long decimal string for INT64', 'POST', '/v2/models/id-int64/infer', JSON_HEADERS, JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 3], data: ['9'.repeat(900_000), 1, 2] }] }), 400, 'TESSERA_E_INPUT_DATA'),
  entry('invalid UTF-8 in a JSON string', 'POST', '/v2/models/id-bytes/infer', JSON_HEADERS, Buffer.concat([Buffer.from('{"inputs":[{"name":"input","datatype":"BYTES","shape":[1,3],"data":["a","b","'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"]}]}')]), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('an object where a number belongs', 'POST', INFER, JSON_HEADERS, affine({ data: [{ valueOf: 1 }, 2, 3, 4] }), 400, 'TESSERA_E_INPUT_DATA'),

  // prototype pollution
  entry('__proto__ at the top of an inference body', 'POST', INFER, JSON_HEADERS, `{"__proto__":{"polluted":1},${affine().slice(1)}`, 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('__proto__ inside an input', 'POST', INFER, JSON_HEADERS, affine({ parameters: '@' }).replace('"@"', '{"__proto__":{"polluted":1}}'), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('constructor.prototype on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, '{"model":"affine","inputs":{"x":[[1,2,3,4]]},"constructor":{"prototype":{"polluted":1}}}', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('__proto__ in an OpenAI request', 'POST', '/v1/chat/completions', JSON_HEADERS, `{"__proto__":{"polluted":1},${chat({}).slice(1)}`, 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('__proto__ in a binary request\'s JSON header', 'POST', INFER, binary('{"__proto__":{"polluted":1},"inputs":[]}', Buffer.alloc(0)).headers, binary('{"__proto__":{"polluted":1},"inputs":[]}', Buffer.alloc(0)).body, 400, 'TESSERA_E_REQUEST_BINARY'),

  // binary framing
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(4));
    return entry('a good binary request', 'POST', INFER, b.headers, b.body, 200);
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(4), '100000');
    return entry('Inference-Header-Content-Length past the body', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  ...['-5', 'abc', '1e2', '0x10', ' ', '99999999999999999999'].map((value) => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(4), value);
    return entry(`Inference-Header-Content-Length '${value}'`, 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  }),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(4));
    return entry('two Inference-Header-Content-Length headers', 'POST', INFER, [...b.headers, ['Inference-Header-Content-Length', '3']], b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const b = binary({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }] }, floats(4));
    return entry('binary_data_size missing (and no data)', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], -16)] }, floats(4));
    // the schema of the JSON header refuses it before the framing is read
    return entry('a negative binary_data_size', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_INVALID');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 2 ** 40)] }, floats(4));
    return entry('a binary_data_size of a terabyte', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(5));
    return entry('bytes after the last input', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 12)] }, floats(3));
    return entry('binary_data_size that does not fit the shape', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('x', 'FP32', [1, 4], 16)] }, floats(2));
    return entry('a truncated binary body', 'POST', INFER, b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const el = bytesElement(0xffffffff, Buffer.from('abc'));
    const b = binary({ inputs: [binaryInput('input', 'BYTES', [1, 3], el.length)] }, el);
    return entry('a BYTES element claiming 4 GiB', 'POST', '/v2/models/id-bytes/infer', b.headers, b.body, 400, 'TESSERA_E_REQUEST_BINARY');
  })(),
  (() => {
    const el = Buffer.concat([bytesElement(1, Buffer.from('a')), bytesElement(1, Buffer.from('b')), bytesElement(2, Buffer.from([0xc3, 0x28]))]);
    const b = binary({ inputs: [binaryInput('input', 'BYTES', [1, 3], el.length)] }, el);
    return entry('a BYTES element that is not UTF-8', 'POST', '/v2/models/id-bytes/infer', b.headers, b.body, 400, 'TESSERA_E_INPUT_DATA');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('input', 'BOOL', [1, 3], 3)] }, Buffer.from([0, 1, 2]));
    return entry('a BOOL byte of 2', 'POST', '/v2/models/id-bool/infer', b.headers, b.body, 400, 'TESSERA_E_INPUT_DATA');
  })(),
  (() => {
    const b = binary({ inputs: [binaryInput('input', 'FP16', [1, 3], 6)] }, Buffer.from([0, 0x7c, 0xff, 0x7f, 0, 0xfc]));
    return entry('FP16 infinities and a NaN in binary (accepted as they are)', 'POST', '/v2/models/id-fp16/infer', b.headers, b.body, 200);
  })(),
  entry('a raw binary request to a model with two inputs', 'POST', '/v2/models/multi-io/infer', [['Content-Type', 'application/octet-stream'], ['Inference-Header-Content-Length', '0']], floats(4), 400, 'TESSERA_E_REQUEST_BINARY'),
  entry('a raw binary request of 15 bytes for FP32 rows of 4', 'POST', INFER, [['Inference-Header-Content-Length', '0']], Buffer.alloc(15), 400, 'TESSERA_E_REQUEST_BINARY'),

  // sizes and lengths
  entry('a JSON body over server.bodyLimit', 'POST', INFER, JSON_HEADERS, `{"id":"${'a'.repeat(LIMITS.bodyLimit)}"}`, 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('a binary body over server.bodyLimit', 'POST', INFER, [['Content-Type', 'application/octet-stream'], ['Inference-Header-Content-Length', '10']], Buffer.alloc(LIMITS.bodyLimit + 1), 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('a body of an unknown type over server.bodyLimit (binary)', 'POST', INFER, [['Content-Type', 'image/png'], ['Inference-Header-Content-Length', '10']], Buffer.alloc(LIMITS.bodyLimit + 1), 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('an OpenAI body over server.bodyLimit', 'POST', '/v1/completions', JSON_HEADERS, JSON.stringify({ model: 'llm', prompt: 'a'.repeat(LIMITS.bodyLimit) }), 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('a /v1/predict body over server.bodyLimit', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'a'.repeat(LIMITS.bodyLimit) }), 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('a chunked body over server.bodyLimit', 'POST', INFER, [...JSON_HEADERS, ['Transfer-Encoding', 'chunked']], `${(LIMITS.bodyLimit + 10).toString(16)}\r\n${'a'.repeat(LIMITS.bodyLimit + 10)}\r\n0\r\n\r\n`, 413, 'TESSERA_E_REQUEST_TOO_LARGE'),
  entry('Content-Length smaller than the body (the rest is a second, broken request)', 'POST', INFER, [...JSON_HEADERS, ['Content-Length', '10']], affine(), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('Content-Length larger than the body, then the client stops', 'POST', INFER, [...JSON_HEADERS, ['Content-Length', '1000']], affine(), 408, 'TESSERA_E_REQUEST_TIMEOUT', { stall: true }),
  entry('two different Content-Length headers', 'POST', INFER, [...JSON_HEADERS, ['Content-Length', '5'], ['Content-Length', '6']], '{}    ', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('Content-Length that is not a number', 'POST', INFER, [...JSON_HEADERS, ['Content-Length', 'ten']], '{}', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a chunk size that is not hex', 'POST', INFER, [...JSON_HEADERS, ['Transfer-Encoding', 'chunked']], 'zz\r\n{}\r\n0\r\n\r\n', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('an empty JSON body', 'POST', INFER, JSON_HEADERS, '', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('an inference request without a body or a content type', 'POST', INFER, [], '', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('an empty JSON body on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, '', 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a header of 16 KiB', 'GET', '/v2/health/live', [['X-Junk', 'a'.repeat(16 * 1024)]], '', 431, 'TESSERA_E_REQUEST_HEADERS_TOO_LARGE'),
  entry('a URL of 16 KiB', 'GET', `/v2/models/${'a'.repeat(16 * 1024)}`, [], '', 431, 'TESSERA_E_REQUEST_HEADERS_TOO_LARGE'),
  entry('3000 headers', 'GET', '/v2/health/live', Array.from({ length: 3000 }, (_, i): [string, string] => [`X-H${i}`, 'v']), '', 431, 'TESSERA_E_REQUEST_HEADERS_TOO_LARGE'),
  {
    ...entry('headers that never end', 'POST', INFER, [], '', 408, 'TESSERA_E_REQUEST_TIMEOUT', { stall: true }),
    raw: Buffer.from(`POST ${INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: appl`),
  },

  // content types
  entry('application/xml', 'POST', INFER, [['Content-Type', 'application/xml']], '<x/>', 415, 'TESSERA_E_REQUEST_MEDIA_TYPE'),
  entry('application/xml on /v1/predict', 'POST', '/v1/predict', [['Content-Type', 'application/xml']], '<x/>', 415, 'TESSERA_E_REQUEST_MEDIA_TYPE'),
  entry('a content type that is not a media type', 'POST', '/v1/predict', [['Content-Type', ';;;']], '{}', 415, 'TESSERA_E_REQUEST_MEDIA_TYPE'),
  entry('two Content-Type headers', 'POST', INFER, [...JSON_HEADERS, ['Content-Type', 'text/xml']], affine(), 200),
  entry('JSON as text/plain', 'POST', INFER, [['Content-Type', 'text/plain']], affine(), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('JSON as application/octet-stream without the binary header (Triton: the whole body is JSON)', 'POST', INFER, [['Content-Type', 'application/octet-stream']], affine(), 200),
  entry('JSON with a charset that is not UTF-8', 'POST', INFER, [['Content-Type', 'application/json; charset=latin1']], Buffer.concat([Buffer.from('{"id":"'), Buffer.from([0xe9]), Buffer.from(`",${affine().slice(1)}`)]), 400, 'TESSERA_E_REQUEST_INVALID'),

  // names and URLs
  entry('a model name of 200 characters in the URL', 'POST', `/v2/models/${'m'.repeat(200)}/infer`, JSON_HEADERS, affine(), 414, 'TESSERA_E_REQUEST_URL_TOO_LONG'),
  entry('a model name of 500 KB on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'm'.repeat(500_000), inputs: { x: [[1, 2, 3, 4]] } }), 404, 'TESSERA_E_MODEL_NOT_FOUND'),
  entry('path traversal, encoded', 'POST', '/v2/models/..%2F..%2Fetc%2Fpasswd/infer', JSON_HEADERS, affine(), 404, 'TESSERA_E_MODEL_NOT_FOUND'),
  entry('path traversal, plain', 'GET', '/v2/models/../../../etc/passwd', [], '', 404, 'TESSERA_E_ROUTE_NOT_FOUND'),
  entry('path traversal on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: '../../etc/passwd', inputs: { x: [[1, 2, 3, 4]] } }), 404, 'TESSERA_E_MODEL_NOT_FOUND'),
  entry('an encoded null byte in the model name', 'POST', '/v2/models/aff%00ine/infer', JSON_HEADERS, affine(), 404, 'TESSERA_E_MODEL_NOT_FOUND'),
  entry('a null byte in a model name on /v1/predict', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'aff\u0000ine', inputs: { x: [[1, 2, 3, 4]] } }), 404, 'TESSERA_E_MODEL_NOT_FOUND'),
  entry('a null byte in an input name', 'POST', INFER, JSON_HEADERS, affine({ name: 'x\u0000' }), 400, 'TESSERA_E_INPUT_UNKNOWN'),
  entry('an invalid percent-encoding', 'GET', '/v2/models/%zz', [], '', 400, 'TESSERA_E_REQUEST_URL'),
  entry('an invalid percent-encoding on an inference route', 'POST', '/v2/models/%zz/infer', JSON_HEADERS, affine(), 400, 'TESSERA_E_REQUEST_URL'),
  entry('a version that is not a number', 'POST', '/v2/models/affine/versions/1e3/infer', JSON_HEADERS, affine(), 404, 'TESSERA_E_MODEL_VERSION_NOT_FOUND'),
  entry('a method the route does not take', 'DELETE', INFER, [], '', 404, 'TESSERA_E_ROUTE_NOT_FOUND'),

  // /v1/predict
  entry('/v1/predict with an unknown field', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'affine', inputs: { x: [[1, 2, 3, 4]] }, output: ['y'] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('/v1/predict with inputs as a list', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'affine', inputs: [[1, 2, 3, 4]] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('/v1/predict with ragged rows', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'affine', inputs: { x: [[1, 2, 3, 4], [1, 2]] } }), 400, 'TESSERA_E_INPUT_SHAPE'),
  entry('/v1/predict with a version that is not a label', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 'affine', version: '../1', inputs: { x: [[1, 2, 3, 4]] } }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('/v1/predict with a model that is a number', 'POST', '/v1/predict', JSON_HEADERS, JSON.stringify({ model: 7, inputs: { x: [[1, 2, 3, 4]] } }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('/v1/predict with a body that is a JSON string', 'POST', '/v1/predict', JSON_HEADERS, '"affine"', 400, 'TESSERA_E_REQUEST_INVALID'),

  // OpenAI
  entry('a good chat completion', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({}), 200),
  entry('more messages than server.limits.maxMessages', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ messages: Array.from({ length: LIMITS.maxMessages + 1 }, () => ({ role: 'user', content: 'hi' })) }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('n over server.limits.maxChoices', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ n: 1000 }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('max_tokens as a string', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ max_tokens: 'ten' }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('max_tokens of 2^53', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ max_tokens: 2 ** 53 }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a temperature that is a word', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ temperature: 'hot' }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a message without a role', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ messages: [{ content: 'hi' }] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('messages as a string', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ messages: 'hi' }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a prompt list of objects', 'POST', '/v1/completions', JSON_HEADERS, JSON.stringify({ model: 'llm', prompt: [{}] }), 400, 'TESSERA_E_REQUEST_INVALID'),
  entry('a prompt of token ids (accepted)', 'POST', '/v1/completions', JSON_HEADERS, JSON.stringify({ model: 'llm', prompt: [1, 2, 3] }), 200),
  entry('unknown fields pass through to the engine', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ top_k: 5, structured_outputs: { json: {} } }), 200),
  entry('a tensor model on the OpenAI API', 'POST', '/v1/chat/completions', JSON_HEADERS, chat({ model: 'affine' }), 400, 'TESSERA_E_MODEL_UNSUPPORTED'),
  entry('an OpenAI body that is not JSON', 'POST', '/v1/chat/completions', JSON_HEADERS, '{"model":', 400, 'TESSERA_E_REQUEST_INVALID'),

  // HTTP itself
  { ...entry('not HTTP at all', 'GET', '/', [], '', 400, 'TESSERA_E_REQUEST_INVALID'), raw: Buffer.from('\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 hello\r\n\r\n') },
  { ...entry('a header name with a space', 'GET', '/', [], '', 400, 'TESSERA_E_REQUEST_INVALID'), raw: Buffer.from('GET /v2/health/live HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n') },
];

/** The request bytes of an entry. */
export function requestBytes(e: HostileRequest): Buffer {
  if (e.raw) return e.raw;
  const body = typeof e.body === 'string' ? Buffer.from(e.body) : e.body;
  const names = new Set(e.headers.map(([k]) => k.toLowerCase()));
  const lines = [`${e.method} ${e.path} HTTP/1.1`, 'Host: 127.0.0.1', ...e.headers.map(([k, v]) => `${k}: ${v}`)];
  if (!names.has('content-length') && !names.has('transfer-encoding') && (body.length > 0 || e.method === 'POST')) lines.push(`Content-Length: ${body.length}`);
  if (!e.stall) lines.push('Connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]);
}
