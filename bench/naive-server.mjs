// What a user would write instead of Tessera: `node:http` and onnxruntime-node, one session per
// model, no batching — read the body, parse it, `session.run`, reply. It speaks the same OIP v2
// JSON (and Triton's binary tensor extension, so protocols can be compared like for like), FP32
// only. Run by bench/run.mjs:
//   node bench/naive-server.mjs '{"models":[{"name":"text-orientation","path":"…onnx"}]}'
import http from 'node:http';
import * as ort from 'onnxruntime-node';

const HEADER_LENGTH = 'inference-header-content-length';
const args = JSON.parse(process.argv[2] ?? '{}');
const sessionOptions = { executionProviders: ['cpu'], ...(args.sessionOptions ?? {}) };
const sessions = new Map();
for (const m of args.models ?? []) sessions.set(m.name, await ort.InferenceSession.create(m.path, sessionOptions));

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, body, headers = {}) {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length, ...headers });
  res.end(buf);
}

async function infer(req, res, name) {
  const session = sessions.get(name);
  if (!session) return send(res, 404, JSON.stringify({ error: `unknown model ${name}` }));
  const body = await readBody(req);
  const headerLength = req.headers[HEADER_LENGTH];
  const request = JSON.parse((headerLength === undefined ? body : body.subarray(0, Number(headerLength))).toString('utf8'));
  let offset = headerLength === undefined ? 0 : Number(headerLength);
  const feeds = {};
  for (const input of request.inputs) {
    if (input.datatype !== 'FP32') return send(res, 400, JSON.stringify({ error: `only FP32 inputs, got ${input.datatype}` }));
    let data;
    const size = input.parameters?.binary_data_size;
    if (size !== undefined) {
      data = new Float32Array(body.buffer.slice(body.byteOffset + offset, body.byteOffset + offset + size));
      offset += size;
    } else {
      data = new Float32Array(Array.isArray(input.data) ? input.data.flat(Infinity) : []);
    }
    feeds[input.name] = new ort.Tensor('float32', data, input.shape);
  }
  const results = await session.run(feeds);
  const binary = request.parameters?.binary_data_output === true;
  const outputs = [];
  const blobs = [];
  for (const outName of session.outputNames) {
    const t = results[outName];
    if (binary) {
      const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      outputs.push({ name: outName, datatype: 'FP32', shape: t.dims, parameters: { binary_data_size: bytes.length } });
      blobs.push(bytes);
    } else {
      outputs.push({ name: outName, datatype: 'FP32', shape: t.dims, data: Array.from(t.data) });
    }
  }
  const json = JSON.stringify({ model_name: name, model_version: '1', ...(request.id ? { id: request.id } : {}), outputs });
  if (!binary) return send(res, 200, json);
  const header = Buffer.from(json);
  return send(res, 200, Buffer.concat([header, ...blobs]), { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(header.length) });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?\/infer$/.exec(url);
  const handle = async () => {
    if (req.method === 'POST' && m) return infer(req, res, decodeURIComponent(m[1]));
    if (req.method === 'GET' && url === '/v2/health/ready') return send(res, 200, '{"ready":true}');
    if (req.method === 'GET' && url === '/v2') return send(res, 200, JSON.stringify({ name: 'naive', version: '0', extensions: ['binary_tensor_data'] }));
    return send(res, 404, JSON.stringify({ error: 'not found' }));
  };
  handle().catch((err) => {
    if (!res.headersSent) send(res, err instanceof SyntaxError ? 400 : 500, JSON.stringify({ error: String(err?.message ?? err) }));
    else res.destroy();
  });
});
server.keepAliveTimeout = 65_000;

server.listen(Number(args.port ?? 0), args.host ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  process.stdout.write(`${JSON.stringify({ msg: 'server ready', url: `http://${address}:${port}` })}\n`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([...sessions.values()].map((s) => s.release())).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
