/**
 * The token-auth-hook example, as its README runs it: `tessera serve` on the example's config with
 * two tokens from the environment, over HTTP — every protocol and endpoint kind the server has
 * (OIP v2 JSON and binary inference, /v1/predict, the OpenAI-compatible API, metadata, /v1/routing,
 * the repository API),
 * refused without a token, with a wrong one and (403) outside a token's models; health probes and
 * scrapes let through; and the audit file, written at shutdown, without the tokens.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { decodeBinaryInferResponse, encodeBinaryInferRequest, runTesseraCli, startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/token-auth-hook/tessera.config.yaml';
const ADMIN = 'admin-4f1c9e2b7d3a8e6f';
const CLIENT = 'client-9b8a7c6d5e4f3a2b';
const CROP = new Array<number>(3 * 48 * 192).fill(0.5);

let server: TesseraProcess;
let url: string;
let auditFile: string;

beforeAll(async () => {
  auditFile = path.join(await mkdtemp(path.join(tmpdir(), 'tessera-audit-')), 'audit.jsonl');
  server = await startTessera({
    args: ['serve', '-c', CONFIG, '--port', '0'],
    cwd: ROOT,
    env: { TESSERA_HOST: '127.0.0.1', TESSERA_ADMIN_TOKEN: ADMIN, TESSERA_CLIENT_TOKEN: CLIENT, TESSERA_AUDIT_FILE: auditFile },
    timeoutMs: 60_000,
  });
  url = server.url;
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

interface Call {
  status: number;
  headers: Headers;
  body: any;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function call(method: string, urlPath: string, headers: Record<string, string> = {}, json?: unknown): Promise<Call> {
  const res = await fetch(`${url}${urlPath}`, {
    method,
    headers: { ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (the metrics text)
  }
  return { status: res.status, headers: res.headers, body };
}

/** A binary OIP v2 request for the classifier (the tensor as raw float32 bytes after the JSON header). */
async function binaryInfer(model: string, headers: Record<string, string>): Promise<Response> {
  const req = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: Float32Array.from(CROP) }], { binaryOutput: true });
  return fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { ...req.headers, ...headers }, body: req.body });
}

const infer = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: CROP }] };
/** The same crop, nested as /v1/predict takes it: [1][3][48][192]. */
const predict = { model: 'text-orientation', inputs: { x: [new Array(3).fill(new Array(48).fill(new Array(192).fill(0.5)))] } };

/** Every endpoint kind, on both models where it names one: [what, method, path, body]. */
const ENDPOINTS: [string, string, string, unknown][] = [
  ['OIP v2 infer', 'POST', '/v2/models/text-orientation/infer', infer],
  ['OIP v2 versioned infer', 'POST', '/v2/models/text-orientation/versions/1/infer', infer],
  ['/v1/predict', 'POST', '/v1/predict', predict],
  ['server metadata', 'GET', '/v2', undefined],
  ['model metadata', 'GET', '/v2/models/text-orientation', undefined],
  ['model readiness', 'GET', '/v2/models/text-orientation/ready', undefined],
  ['routing', 'GET', '/v1/routing', undefined],
  ['routing of a model', 'GET', '/v1/routing/text-orientation', undefined],
  ['repository index', 'POST', '/v2/repository/index', {}],
];

describe('examples/token-auth-hook served by the CLI', () => {
  it('should refuse every endpoint without a token: 401 EXAMPLE_E_AUTH_MISSING with a Bearer challenge', async () => {
    for (const [what, method, urlPath, body] of ENDPOINTS) {
      const res = await call(method, urlPath, {}, body);
      expect([what, res.status, res.body.code]).toEqual([what, 401, 'EXAMPLE_E_AUTH_MISSING']);
      expect(res.headers.get('www-authenticate'), what).toBe('Bearer realm="tessera"');
    }
    const binary = await binaryInfer('text-orientation', {});
    expect(binary.status).toBe(401);
    expect(((await binary.json()) as any).code).toBe('EXAMPLE_E_AUTH_MISSING');
  });

  it('should refuse a wrong token: 401 EXAMPLE_E_AUTH_INVALID, error="invalid_token"', async () => {
    for (const [what, method, urlPath, body] of ENDPOINTS) {
      const res = await call(method, urlPath, bearer(`${ADMIN}x`), body);
      expect([what, res.status, res.body.code]).toEqual([what, 401, 'EXAMPLE_E_AUTH_INVALID']);
      expect(res.headers.get('www-authenticate'), what).toBe('Bearer realm="tessera", error="invalid_token"');
    }
    expect((await binaryInfer('text-orientation', { 'x-api-key': 'not-a-token-at-all' })).status).toBe(401);
  });

  it("should refuse the OpenAI-compatible API in OpenAI's error format", async () => {
    const chat = { model: 'text-orientation', messages: [{ role: 'user', content: 'hi' }] };
    const missing = await call('POST', '/v1/chat/completions', {}, chat);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="tessera"');
    expect(missing.body.error).toMatchObject({ type: 'authentication_error', code: 'EXAMPLE_E_AUTH_MISSING' });
    const wrong = await call('GET', '/v1/models', bearer('sk-not-a-token-of-this-server'));
    expect([wrong.status, wrong.body.error.code]).toEqual([401, 'EXAMPLE_E_AUTH_INVALID']);
    // with a token the request goes on, to the core's answer: these models are not generative
    const served = await call('POST', '/v1/chat/completions', bearer(ADMIN), chat);
    expect([served.status, served.body.error.code]).toEqual([400, 'TESSERA_E_MODEL_UNSUPPORTED']);
  });

  it('should serve every endpoint with the admin token, in either header', async () => {
    for (const [what, method, urlPath, body] of ENDPOINTS) {
      expect([what, (await call(method, urlPath, bearer(ADMIN), body)).status]).toEqual([what, 200]);
      expect([what, (await call(method, urlPath, { 'x-api-key': ADMIN }, body)).status]).toEqual([what, 200]);
    }
    const predicted = await call('POST', '/v1/predict', bearer(ADMIN), { model: 'text-detection', inputs: { x: [new Array(3).fill(new Array(32).fill(new Array(32).fill(0.8)))] } });
    expect(predicted.status, JSON.stringify(predicted.body).slice(0, 200)).toBe(200);
    expect(predicted.body.outputs['sigmoid_0.tmp_0']).toHaveLength(1);
    const binary = await binaryInfer('text-orientation', bearer(ADMIN));
    expect(binary.status).toBe(200);
    const decoded = decodeBinaryInferResponse(Buffer.from(await binary.arrayBuffer()), binary.headers.get('inference-header-content-length'));
    expect(decoded.outputs[0]).toMatchObject({ name: 'softmax_0.tmp_0', shape: [1, 2], binary: true });
  });

  it("should keep the client token to its model: 403 EXAMPLE_E_AUTH_FORBIDDEN elsewhere and on the admin API", async () => {
    const auth = { 'x-api-key': CLIENT };
    expect((await call('POST', '/v2/models/text-orientation/infer', auth, infer)).status).toBe(200);
    expect((await binaryInfer('text-orientation', auth)).status).toBe(200);
    expect((await call('POST', '/v1/predict', auth, predict)).status).toBe(200);
    expect((await call('GET', '/v2/models/text-orientation', auth)).status).toBe(200);
    expect((await call('GET', '/v2', auth)).status).toBe(200);
    const refused: [string, Call][] = [
      ['OIP v2 infer', await call('POST', '/v2/models/text-detection/infer', auth, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 32, 32], data: new Array(3072).fill(0) }] })],
      ['/v1/predict', await call('POST', '/v1/predict', auth, { model: 'text-detection', inputs: { x: [[[[0]]]] } })],
      ['model metadata', await call('GET', '/v2/models/text-detection', auth)],
      ['version metadata', await call('GET', '/v2/models/text-detection/versions/1', auth)],
      ['routing', await call('GET', '/v1/routing', auth)],
      ['repository index', await call('POST', '/v2/repository/index', auth, {})],
      ['repository unload', await call('POST', '/v2/repository/models/text-orientation/unload', auth, {})],
    ];
    for (const [what, res] of refused) expect([what, res.status, res.body.code]).toEqual([what, 403, 'EXAMPLE_E_AUTH_FORBIDDEN']);
    const binary = await binaryInfer('text-detection', auth);
    // refused in preInfer, before the request is validated or queued
    expect(binary.status).toBe(403);
    expect(refused[1]![1].body.error).toBe("token 'ocr-client' may not use model 'text-detection'");
  });

  it('should let the admin token unload and load a model through the repository API', async () => {
    const auth = bearer(ADMIN);
    expect((await call('POST', '/v2/repository/models/text-detection/unload', auth, {})).status).toBe(200);
    expect((await call('POST', '/v2/repository/index', auth, { ready: true })).body).toEqual([{ name: 'text-orientation', version: '1', state: 'READY' }]);
    expect((await call('POST', '/v2/repository/models/text-detection/load', auth, {})).status).toBe(200);
    expect((await call('GET', '/v2/models/text-detection/ready', auth)).status).toBe(200);
  });

  it('should let health probes and (publicMetrics) scrapes through without a token', async () => {
    for (const urlPath of ['/v2/health/live', '/v2/health/ready', '/health']) expect([urlPath, (await call('GET', urlPath)).status]).toEqual([urlPath, 200]);
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    // refusals are requests too: the core counts them by status
    expect(metrics.body).toMatch(/tessera_requests_total\{[^}]*code="403"[^}]*\} \d+/);
  });

  it('should write the audit log at shutdown: who, what, the outcome, never a token', async () => {
    await call('POST', '/v2/models/text-orientation/infer', { ...bearer(CLIENT), 'x-request-id': 'audit-me' }, infer);
    expect(await server.stop()).toBe(0);
    const text = await readFile(auditFile, 'utf8');
    expect(text).not.toContain(ADMIN);
    expect(text).not.toContain(CLIENT);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.find((l) => l.id === 'audit-me')).toMatchObject({
      principal: 'ocr-client',
      method: 'POST',
      path: '/v2/models/text-orientation/infer',
      endpoint: 'infer',
      protocol: 'v2',
      model: 'text-orientation',
      version: '1',
      status: 200,
      code: null,
    });
    const codes = new Set(lines.map((l) => l.code));
    for (const code of ['EXAMPLE_E_AUTH_MISSING', 'EXAMPLE_E_AUTH_INVALID', 'EXAMPLE_E_AUTH_FORBIDDEN']) expect(codes).toContain(code);
    expect(lines.some((l) => l.endpoint === 'admin' && l.principal === 'admin' && l.status === 200)).toBe(true);
    // health probes are not audited; the scrape is
    expect(lines.filter((l) => l.endpoint === 'health')).toEqual([]);
    expect(lines.some((l) => l.endpoint === 'metrics')).toBe(true);
  });
});

describe('examples/token-auth-hook without its tokens', () => {
  it('should not start while a token variable is unset', async () => {
    const res = await runTesseraCli({ args: ['validate', '-c', CONFIG], cwd: ROOT, env: { TESSERA_ADMIN_TOKEN: ADMIN, TESSERA_CLIENT_TOKEN: undefined } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_ENV');
    expect(res.stderr).toContain('TESSERA_CLIENT_TOKEN');
  });

  it('should refuse a token shorter than 16 characters', async () => {
    const res = await runTesseraCli({ args: ['validate', '-c', CONFIG], cwd: ROOT, env: { TESSERA_ADMIN_TOKEN: 'secret', TESSERA_CLIENT_TOKEN: CLIENT } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_INVALID');
    expect(res.stderr).toContain('hooks[0].tokens[0]');
  });
});
