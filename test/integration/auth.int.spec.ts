/**
 * `auth` end to end over loopback HTTP: a server with real ONNX models (affine, spare) and a
 * generative model (FakeBackend), API keys and JWTs (a local JWKS), `auth.metrics: protected` and
 * a `server.metricsPort` listener. The matrix enumerates every route the server registered (read
 * from fastify's onRoute, so a route added later without an entry here fails the test) and sends
 * each one with every kind of caller — no credential, an unknown key, a key of each scope, a
 * model-restricted key, a JWT of each scope, an expired JWT — expecting 401, 403 or "allowed"
 * (anything else). Then the OIP v2 binary extension, the official `openai` client, the keys file
 * applied without a restart, listings filtered for a restricted key, and `metrics: open`.
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EndpointKind, GenerateChunk, GenerateRequest, TesseraPlugin } from '@tessera/core';
import { TesseraServer, definePlugin, resolveConfig } from '@tessera/core';
import type { TestModelCatalog } from '@tessera/core/testing';
import { FakeBackend, encodeBinaryInferRequest, silentLogger, writeTestModels } from '@tessera/core/testing';
import type { CryptoKey, JWTPayload } from 'jose';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, tempDir } from './helpers.js';

const KEY = {
  infer: 'infer-key-6f1d0c2b9a8e7d6c',
  admin: 'admin-key-0b9c8d7e6f5a4b3c',
  metrics: 'metrics-key-1a2b3c4d5e6f7a8b',
  restricted: 'restricted-key-9f8e7d6c5b4a3f2e',
  unknown: 'unknown-key-0000000000000000',
  fromFile: 'file-key-7e6d5c4b3a2f1e0d',
};

type Scope = 'infer' | 'admin' | 'metrics';

/** One kind of caller: how it authenticates, and what it may do (`valid: false`: 401 wherever a credential is needed). */
interface Caller {
  name: string;
  headers: () => Record<string, string>;
  valid: boolean;
  scopes: Scope[];
  models?: string[];
}

/** What each endpoint kind needs (the policy of docs/security.md): null open, [] any valid credential. */
const NEEDS: Record<EndpointKind, Scope[] | null> = { health: null, metrics: ['metrics'], infer: ['infer'], metadata: ['infer', 'admin'], admin: ['admin'], ui: null, unknown: [] };

const ALLOWED_MODELS = ['affine', 'llm'];

/** One request of the matrix. */
interface Case {
  method: string;
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** The model the URL or the body names (checked against a restricted caller's models). */
  model?: string;
  /** The status an allowed caller gets, when it is always the same. */
  ok?: number;
}

const INFER_JSON = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };
const PREDICT = (model: string) => ({ model, inputs: { x: [[1, 2, 3, 4]] } });
const CHAT = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });
const COMPLETION = (model: string) => ({ model, prompt: 'hi', max_tokens: 3 });

/**
 * Every route of the server (`METHOD template`) with the kind it must have and the requests that
 * exercise it (the model it names filled in: a model the restricted caller may use, and one it may
 * not). Admin routes about a model use `spare`, which loading and unloading may disturb.
 */
const ROUTES: Record<string, { kind: EndpointKind; cases: (model: string) => Case[]; models?: [string, string] }> = {
  'GET /v2': { kind: 'metadata', cases: () => [{ method: 'GET', url: '/v2', ok: 200 }] },
  'HEAD /v2': { kind: 'metadata', cases: () => [{ method: 'HEAD', url: '/v2', ok: 200 }] },
  'GET /v2/health/live': { kind: 'health', cases: () => [{ method: 'GET', url: '/v2/health/live', ok: 200 }] },
  'HEAD /v2/health/live': { kind: 'health', cases: () => [{ method: 'HEAD', url: '/v2/health/live', ok: 200 }] },
  'GET /v2/health/ready': { kind: 'health', cases: () => [{ method: 'GET', url: '/v2/health/ready', ok: 200 }] },
  'HEAD /v2/health/ready': { kind: 'health', cases: () => [{ method: 'HEAD', url: '/v2/health/ready', ok: 200 }] },
  'GET /v2/models/:model': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}`, model: m, ok: 200 }] },
  'GET /v2/models/:model/versions/:version': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/versions/1`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model/versions/:version': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/versions/1`, model: m, ok: 200 }] },
  'GET /v2/models/:model/ready': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/ready`, model: m }] },
  'HEAD /v2/models/:model/ready': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/ready`, model: m }] },
  'GET /v2/models/:model/versions/:version/ready': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/versions/1/ready`, model: m }] },
  'HEAD /v2/models/:model/versions/:version/ready': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/versions/1/ready`, model: m }] },
  'GET /v2/models/stats': { kind: 'metadata', cases: () => [{ method: 'GET', url: '/v2/models/stats', ok: 200 }] },
  'HEAD /v2/models/stats': { kind: 'metadata', cases: () => [{ method: 'HEAD', url: '/v2/models/stats', ok: 200 }] },
  'GET /v2/models/:model/stats': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/stats`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model/stats': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/stats`, model: m, ok: 200 }] },
  'GET /v2/models/:model/versions/:version/stats': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/versions/1/stats`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model/versions/:version/stats': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/versions/1/stats`, model: m, ok: 200 }] },
  'GET /v2/models/:model/config': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/config`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model/config': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/config`, model: m, ok: 200 }] },
  'GET /v2/models/:model/versions/:version/config': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v2/models/${m}/versions/1/config`, model: m, ok: 200 }] },
  'HEAD /v2/models/:model/versions/:version/config': { kind: 'metadata', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v2/models/${m}/versions/1/config`, model: m, ok: 200 }] },
  'POST /v2/models/:model/infer': {
    kind: 'infer',
    models: ['affine', 'spare'],
    cases: (m) => {
      const binary = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) }]);
      return [
        { method: 'POST', url: `/v2/models/${m}/infer`, body: INFER_JSON, model: m, ok: m === 'affine' ? 200 : undefined },
        { method: 'POST', url: `/v2/models/${m}/infer`, body: binary.body, headers: binary.headers, model: m, ok: m === 'affine' ? 200 : undefined },
      ];
    },
  },
  'POST /v2/models/:model/versions/:version/infer': { kind: 'infer', models: ['affine', 'spare'], cases: (m) => [{ method: 'POST', url: `/v2/models/${m}/versions/1/infer`, body: INFER_JSON, model: m, ok: m === 'affine' ? 200 : undefined }] },
  'POST /v2/repository/index': { kind: 'admin', cases: () => [{ method: 'POST', url: '/v2/repository/index', body: {}, ok: 200 }] },
  'GET /v2/repository/index': { kind: 'admin', cases: () => [{ method: 'GET', url: '/v2/repository/index', ok: 200 }] },
  'HEAD /v2/repository/index': { kind: 'admin', cases: () => [{ method: 'HEAD', url: '/v2/repository/index', ok: 200 }] },
  'POST /v2/repository/models/:model/load': { kind: 'admin', models: ['spare', 'spare'], cases: (m) => [{ method: 'POST', url: `/v2/repository/models/${m}/load`, body: {}, model: m }] },
  'POST /v2/repository/models/:model/unload': { kind: 'admin', models: ['spare', 'spare'], cases: (m) => [{ method: 'POST', url: `/v2/repository/models/${m}/unload`, body: {}, model: m }] },
  'POST /v1/predict': { kind: 'infer', models: ['affine', 'spare'], cases: (m) => [{ method: 'POST', url: '/v1/predict', body: PREDICT(m), model: m, ok: m === 'affine' ? 200 : undefined }] },
  'POST /v1/chat/completions': { kind: 'infer', models: ['llm', 'spare'], cases: (m) => [{ method: 'POST', url: '/v1/chat/completions', body: CHAT(m), model: m, ok: m === 'llm' ? 200 : undefined }] },
  'POST /v1/completions': { kind: 'infer', models: ['llm', 'spare'], cases: (m) => [{ method: 'POST', url: '/v1/completions', body: COMPLETION(m), model: m, ok: m === 'llm' ? 200 : undefined }] },
  'GET /v1/models': { kind: 'metadata', cases: () => [{ method: 'GET', url: '/v1/models', ok: 200 }] },
  'HEAD /v1/models': { kind: 'metadata', cases: () => [{ method: 'HEAD', url: '/v1/models', ok: 200 }] },
  'GET /v1/routing': { kind: 'admin', cases: () => [{ method: 'GET', url: '/v1/routing', ok: 200 }] },
  'HEAD /v1/routing': { kind: 'admin', cases: () => [{ method: 'HEAD', url: '/v1/routing', ok: 200 }] },
  'GET /v1/routing/:model': { kind: 'admin', models: ['affine', 'spare'], cases: (m) => [{ method: 'GET', url: `/v1/routing/${m}`, model: m, ok: 200 }] },
  'HEAD /v1/routing/:model': { kind: 'admin', models: ['affine', 'spare'], cases: (m) => [{ method: 'HEAD', url: `/v1/routing/${m}`, model: m, ok: 200 }] },
  'POST /v1/routing/:model/:action': { kind: 'admin', models: ['affine', 'spare'], cases: (m) => [{ method: 'POST', url: `/v1/routing/${m}/no-such-action`, body: {}, model: m, ok: 404 }] },
  'GET /health': { kind: 'health', cases: () => [{ method: 'GET', url: '/health', ok: 200 }] },
  'HEAD /health': { kind: 'health', cases: () => [{ method: 'HEAD', url: '/health', ok: 200 }] },
  // the OpenAPI document (metadata) and the /docs page's assets (ui: open)
  'GET /openapi.json': { kind: 'metadata', cases: () => [{ method: 'GET', url: '/openapi.json', ok: 200 }] },
  'HEAD /openapi.json': { kind: 'metadata', cases: () => [{ method: 'HEAD', url: '/openapi.json', ok: 200 }] },
  'GET /docs': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs', ok: 200 }] },
  'HEAD /docs': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs', ok: 200 }] },
  'HEAD /docs/': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/', ok: 200 }] },
  'GET /docs/static/index.html': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs/static/index.html' }] },
  'HEAD /docs/static/index.html': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/static/index.html' }] },
  'GET /docs/static/swagger-initializer.js': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs/static/swagger-initializer.js', ok: 200 }] },
  'HEAD /docs/static/swagger-initializer.js': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/static/swagger-initializer.js', ok: 200 }] },
  'GET /docs/json': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs/json', ok: 200 }] },
  'HEAD /docs/json': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/json', ok: 200 }] },
  'GET /docs/yaml': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs/yaml', ok: 200 }] },
  'HEAD /docs/yaml': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/yaml', ok: 200 }] },
  'GET /docs/static/*': { kind: 'ui', cases: () => [{ method: 'GET', url: '/docs/static/swagger-ui.css', ok: 200 }] },
  'HEAD /docs/static/*': { kind: 'ui', cases: () => [{ method: 'HEAD', url: '/docs/static/swagger-ui.css', ok: 200 }] },
  'GET /metrics': { kind: 'metrics', cases: () => [{ method: 'GET', url: '/metrics', ok: 200 }] },
  'HEAD /metrics': { kind: 'metrics', cases: () => [{ method: 'HEAD', url: '/metrics', ok: 200 }] },
};

/** No route matches these: `unknown`, a credential is needed before the 404. */
const UNKNOWN: Case[] = [
  { method: 'GET', url: '/v2/no/such/route', ok: 404 },
  { method: 'POST', url: '/admin', body: {}, ok: 404 },
  { method: 'GET', url: '/v1/nothing-here', ok: 404 },
];

/** A generative model that answers every request with one short completion. */
function llmPlugin(): TesseraPlugin {
  const chunk = (req: GenerateRequest): GenerateChunk => {
    const data =
      req.kind === 'chat'
        ? { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'llm', choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }] }
        : { id: 'cmpl-1', object: 'text_completion', created: 1, model: 'llm', choices: [{ index: 0, text: 'hello', logprobs: null, finish_reason: 'stop' }] };
    return { data };
  };
  return definePlugin({
    name: 'auth-test-llm',
    version: '1.0.0',
    core: '^0.1.0',
    register(ctx) {
      ctx.registerBackend(
        'fake-llm',
        new FakeBackend({
          async *generate(req) {
            if (!req.stream) {
              yield chunk(req);
              return;
            }
            yield { data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [{ index: 0, delta: { role: 'assistant', content: 'hello' }, finish_reason: null }] } };
            yield { data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] } };
          },
        }),
      );
    },
  });
}

let dir: string;
let models: TestModelCatalog;
let signer: { privateKey: CryptoKey; kid: string };

function jwt(claims: JWTPayload, expiresIn: string | number = '5m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: signer.kid }).setIssuer('https://issuer.test/').setAudience('tessera').setIssuedAt().setExpirationTime(expiresIn).sign(signer.privateKey);
}

interface Started {
  server: TesseraServer;
  url: string;
  /** `METHOD template` → the endpoint kind the server gave it (read after start: exporters set theirs late). */
  routes: Map<string, EndpointKind>;
}

async function start(auth: Record<string, unknown>, server: Record<string, unknown> = {}): Promise<Started> {
  const config = resolveConfig(
    {
      server: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...server },
      models: { affine: { path: models.affine.path }, spare: { path: models.affine.path }, llm: { backend: 'fake-llm' } },
      auth,
    },
    { configDir: dir, env: { INFER_KEY: KEY.infer } },
  );
  const tessera = new TesseraServer({ config, plugins: [llmPlugin()], logger: silentLogger() });
  const seen: { method: string | string[]; url: string; route: { config?: unknown } }[] = [];
  tessera.app.addHook('onRoute', (route) => void seen.push({ method: route.method, url: route.url, route }));
  const { url } = await tessera.start();
  const routes = new Map<string, EndpointKind>();
  for (const r of seen) {
    for (const method of [r.method].flat()) routes.set(`${method} ${r.url}`, ((r.route.config as { endpoint?: EndpointKind } | undefined)?.endpoint ?? 'admin'));
  }
  return { server: tessera, url, routes };
}

async function send(base: string, c: Case, headers: Record<string, string>): Promise<{ status: number; text: string; headers: Headers }> {
  const isBuffer = Buffer.isBuffer(c.body);
  const res = await fetch(`${base}${c.url}`, {
    method: c.method,
    headers: { ...(c.body !== undefined && !isBuffer ? { 'content-type': 'application/json' } : {}), ...c.headers, ...headers },
    ...(c.body !== undefined ? { body: isBuffer ? (c.body as Buffer) : JSON.stringify(c.body) } : {}),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** 401, 403, or 'allowed', as the policy says. */
function expected(caller: Caller, kind: EndpointKind, model: string | undefined): 401 | 403 | 'allowed' {
  const needs = NEEDS[kind];
  if (needs === null) return 'allowed';
  if (!caller.valid) return 401;
  if (needs.length > 0 && !needs.some((s) => caller.scopes.includes(s))) return 403;
  if (model !== undefined && caller.models && !caller.models.includes(model)) return 403;
  return 'allowed';
}

let callers: Caller[];
let s: Started;

beforeAll(async () => {
  dir = await tempDir('tessera-auth-');
  models = await writeTestModels(dir);
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  signer = { privateKey, kid: 'test-1' };
  await writeFile(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'ES256' }] }));
  await writeFile(path.join(dir, 'keys.yaml'), `- { name: from-file, key: ${KEY.fromFile}, scopes: [infer] }\n`);
  const tokens = {
    infer: await jwt({ sub: 'jwt-infer', scope: 'infer' }),
    admin: await jwt({ sub: 'jwt-admin', scope: ['admin'] }),
    metrics: await jwt({ sub: 'jwt-metrics', scope: 'metrics' }),
    restricted: await jwt({ sub: 'jwt-restricted', scope: 'infer admin', models: ALLOWED_MODELS }),
    expired: await jwt({ sub: 'jwt-expired', scope: 'infer admin metrics' }, Math.floor(Date.now() / 1000) - 3600),
  };
  const bearer = (v: string) => () => ({ authorization: `Bearer ${v}` });
  callers = [
    { name: 'no credential', headers: () => ({}), valid: false, scopes: [] },
    { name: 'unknown key', headers: () => ({ 'x-api-key': KEY.unknown }), valid: false, scopes: [] },
    { name: 'Basic auth', headers: () => ({ authorization: `Basic ${Buffer.from(`u:${KEY.admin}`).toString('base64')}` }), valid: false, scopes: [] },
    { name: 'infer key (Bearer)', headers: bearer(KEY.infer), valid: true, scopes: ['infer'] },
    { name: 'infer key (x-api-key)', headers: () => ({ 'x-api-key': KEY.infer }), valid: true, scopes: ['infer'] },
    { name: 'admin key', headers: () => ({ 'x-api-key': KEY.admin }), valid: true, scopes: ['admin'] },
    { name: 'metrics key', headers: bearer(KEY.metrics), valid: true, scopes: ['metrics'] },
    { name: 'restricted key', headers: bearer(KEY.restricted), valid: true, scopes: ['infer', 'admin'], models: ALLOWED_MODELS },
    { name: 'keys-file key', headers: bearer(KEY.fromFile), valid: true, scopes: ['infer'] },
    { name: 'JWT infer', headers: bearer(tokens.infer), valid: true, scopes: ['infer'] },
    { name: 'JWT admin', headers: bearer(tokens.admin), valid: true, scopes: ['admin'] },
    { name: 'JWT metrics', headers: bearer(tokens.metrics), valid: true, scopes: ['metrics'] },
    { name: 'JWT restricted', headers: bearer(tokens.restricted), valid: true, scopes: ['infer', 'admin'], models: ALLOWED_MODELS },
    { name: 'JWT expired', headers: bearer(tokens.expired), valid: false, scopes: [] },
  ];
  s = await start(
    {
      apiKeys: [
        { name: 'infer', key: '${INFER_KEY}', scopes: ['infer'] },
        { name: 'admin', key: KEY.admin, scopes: ['admin'] },
        { name: 'metrics', key: KEY.metrics, scopes: ['metrics'] },
        { name: 'restricted', key: KEY.restricted, scopes: ['infer', 'admin'], models: ALLOWED_MODELS, rateLimit: { max: 100, timeWindow: '1m' } },
      ],
      apiKeysFile: './keys.yaml',
      jwt: { jwks: './jwks.json', issuer: 'https://issuer.test/', audience: 'tessera', algorithms: ['ES256'] },
      metrics: 'protected',
    },
    { metricsPort: 0 },
  );
}, 60_000);

afterAll(async () => {
  await s?.server.close();
});

describe('the auth matrix: every route × every caller', () => {
  it('should list every route the server has, with the endpoint kind the matrix expects', () => {
    const missing = [...s.routes.keys()].filter((r) => !(r in ROUTES));
    expect(missing, 'routes without an entry in ROUTES: add them to the matrix').toEqual([]);
    const stale = Object.keys(ROUTES).filter((r) => !s.routes.has(r));
    expect(stale, 'entries of ROUTES the server does not have').toEqual([]);
    for (const [route, kind] of s.routes) expect(kind, route).toBe(ROUTES[route]!.kind);
  });

  it('should answer each route and caller with 401, 403 or the route\'s own answer, as the policy says', async () => {
    const failures: string[] = [];
    const check = async (caller: Caller, kind: EndpointKind, c: Case): Promise<void> => {
      const want = expected(caller, kind, c.model);
      const got = await send(s.url, c, caller.headers());
      const label = `${caller.name}: ${c.method} ${c.url}${c.headers?.['inference-header-content-length'] ? ' (binary)' : ''} → ${got.status}`;
      if (want === 'allowed') {
        if (got.status === 401 || got.status === 403) failures.push(`${label}, expected it allowed: ${got.text.slice(0, 200)}`);
        else if (c.ok !== undefined && got.status !== c.ok) failures.push(`${label}, expected ${c.ok}: ${got.text.slice(0, 200)}`);
      } else if (got.status !== want) {
        failures.push(`${label}, expected ${want}: ${got.text.slice(0, 200)}`);
      } else if (c.method !== 'HEAD') {
        // every refusal names its code and says what to do; a 401 carries the Bearer challenge
        const code = /TESSERA_E_AUTH_(REQUIRED|INVALID|FORBIDDEN)/.exec(got.text)?.[0];
        if (!code) failures.push(`${label}: no auth code in ${got.text.slice(0, 200)}`);
        if (want === 401 && !got.headers.get('www-authenticate')?.startsWith('Bearer realm="tessera"')) failures.push(`${label}: no WWW-Authenticate`);
      }
    };
    for (const [route, { kind, cases, models: pair }] of Object.entries(ROUTES)) {
      for (const caller of callers) {
        const [allowedModel, otherModel] = pair ?? ['', ''];
        for (const c of cases(allowedModel)) await check(caller, kind, c);
        if (pair && otherModel !== allowedModel && caller.models) for (const c of cases(otherModel)) await check(caller, kind, c);
      }
      expect(route).toBeTruthy();
    }
    for (const caller of callers) for (const c of UNKNOWN) await check(caller, 'unknown', c);
    expect(failures).toEqual([]);
  });

  it('should say what to send without echoing the credential, with error="invalid_token" for a bad one', async () => {
    const none = await http(`${s.url}/v2/models/affine`);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'this endpoint needs a credential: send Authorization: Bearer <key or token>, or x-api-key: <key>', code: 'TESSERA_E_AUTH_REQUIRED' });
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tessera"');
    const bad = await http(`${s.url}/v2/models/affine`, { headers: { authorization: `Bearer ${KEY.unknown}` } });
    expect(bad.body.code).toBe('TESSERA_E_AUTH_INVALID');
    expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');
    expect(bad.text).not.toContain(KEY.unknown);
    const scope = await http(`${s.url}/v2/repository/index`, { method: 'POST', json: {}, headers: { 'x-api-key': KEY.infer } });
    expect(scope.status).toBe(403);
    expect(scope.body.error).toBe("the credential 'infer' lacks the admin scope this endpoint needs; use a credential with it");
    expect(scope.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="admin"');
    expect(scope.text).not.toContain(KEY.infer);
  });
});

describe('inference with a credential', () => {
  it('should serve OIP v2 binary requests to an allowed key and refuse them without one', async () => {
    const { body, headers } = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) }], { binaryOutput: false });
    const ok = await fetch(`${s.url}/v2/models/affine/infer`, { method: 'POST', body, headers: { ...headers, 'x-api-key': KEY.infer } });
    expect(ok.status).toBe(200);
    const answer = (await ok.json()) as { outputs: { name: string; data: number[] }[] };
    expect(answer.outputs.find((o) => o.name === 'y')?.data).toEqual([3, 5, 7, 9]);
    expect((await fetch(`${s.url}/v2/models/affine/infer`, { method: 'POST', body, headers })).status).toBe(401);
  });

  it('should refuse a restricted key a model named in the body (/v1/predict) with 403, and serve the allowed one', async () => {
    const other = await http(`${s.url}/v1/predict`, { json: PREDICT('spare'), headers: { authorization: `Bearer ${KEY.restricted}` } });
    expect(other.status).toBe(403);
    expect(other.body).toEqual({ error: "the credential 'restricted' may not use the model 'spare'", code: 'TESSERA_E_AUTH_FORBIDDEN' });
    const own = await http(`${s.url}/v1/predict`, { json: PREDICT('affine'), headers: { authorization: `Bearer ${KEY.restricted}` } });
    expect(own.status).toBe(200);
  });
});

describe('the OpenAI endpoints with the official openai client', () => {
  const client = (apiKey: string) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });

  it('should serve chat completions (and streams) to a key with the infer scope', async () => {
    const out = await client(KEY.infer).chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }] });
    expect(out.choices[0]?.message.content).toBe('hello');
    const stream = await client(KEY.restricted).chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('hello');
    const models = await client(KEY.infer).models.list();
    expect(models.data.map((m) => m.id)).toEqual(['llm']);
  });

  it('should raise AuthenticationError for an unknown key, with OpenAI\'s authentication_error shape', async () => {
    const err = await client(KEY.unknown).chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const e = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(e.status).toBe(401);
    expect(e.error).toMatchObject({ type: 'authentication_error', code: 'TESSERA_E_AUTH_INVALID' });
    expect(JSON.stringify(e.error)).not.toContain(KEY.unknown);
    const completions = await client(KEY.unknown).completions.create({ model: 'llm', prompt: 'x' }).catch((x: unknown) => x);
    expect(completions).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('should raise PermissionDeniedError for a key without the scope or the model', async () => {
    const scope = await client(KEY.metrics).chat.completions.create({ model: 'llm', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(scope).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((scope as InstanceType<typeof OpenAI.PermissionDeniedError>).error).toMatchObject({ type: 'permission_error', code: 'TESSERA_E_AUTH_FORBIDDEN' });
    const model = await client(KEY.restricted).completions.create({ model: 'spare', prompt: 'x' }).catch((e: unknown) => e);
    expect(model).toBeInstanceOf(OpenAI.PermissionDeniedError);
  });
});

describe('listings for a model-restricted credential', () => {
  it('should list only the models it may use in /v1/models and /v2/repository/index', async () => {
    const h = { authorization: `Bearer ${KEY.restricted}` };
    const index = await http(`${s.url}/v2/repository/index`, { method: 'POST', json: {}, headers: h });
    expect(index.status).toBe(200);
    expect((index.body as { name: string }[]).map((m) => m.name).sort()).toEqual(['affine', 'llm']);
    const all = await http(`${s.url}/v2/repository/index`, { method: 'POST', json: {}, headers: { 'x-api-key': KEY.admin } });
    expect((all.body as { name: string }[]).map((m) => m.name).sort()).toEqual(['affine', 'llm', 'spare']);
    const status = await http(`${s.url}/v2/repository/index`, { headers: h });
    expect((status.body as { models: { name: string }[] }).models.map((m) => m.name).sort()).toEqual(['affine', 'llm']);
  });

  it('should list only the models it may use in /v2/models/stats', async () => {
    const names = async (headers: Record<string, string>) => {
      const res = await http(`${s.url}/v2/models/stats`, { headers });
      expect(res.status).toBe(200);
      return [...new Set((res.body.model_stats as { name: string }[]).map((m) => m.name))].sort();
    };
    expect(await names({ authorization: `Bearer ${KEY.restricted}` })).toEqual(['affine', 'llm']);
    expect(await names({ 'x-api-key': KEY.infer })).toEqual(['affine', 'llm', 'spare']);
  });
});

describe('metrics', () => {
  it('should need the metrics scope on /metrics and on the server.metricsPort listener when protected; /health stays open there', async () => {
    const metricsUrl = s.server.metricsUrl!;
    expect(metricsUrl).toBeTruthy();
    for (const base of [s.url, metricsUrl]) {
      expect((await http(`${base}/metrics`)).status).toBe(401);
      expect((await http(`${base}/metrics`, { headers: { 'x-api-key': KEY.infer } })).status).toBe(403);
      const ok = await http(`${base}/metrics`, { headers: { authorization: `Bearer ${KEY.metrics}` } });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('tessera_auth_refused_total{reason="missing"}');
      expect(ok.text).not.toMatch(new RegExp(Object.values(KEY).join('|')));
    }
    expect((await http(`${metricsUrl}/health`)).status).toBe(200);
    const refused = await http(`${metricsUrl}/metrics`, { headers: { 'x-api-key': KEY.unknown } });
    expect(refused.body.code).toBe('TESSERA_E_AUTH_INVALID');
  });

  it('should leave /metrics open with auth.metrics: open (the default), and everything else protected', async () => {
    const open = await start({ apiKeys: [{ name: 'infer', key: KEY.infer }] });
    try {
      expect((await http(`${open.url}/metrics`)).status).toBe(200);
      expect((await http(`${open.url}/v2/models/affine`)).status).toBe(401);
      // scopes default to [infer]
      expect((await http(`${open.url}/v2/models/affine/infer`, { json: INFER_JSON, headers: { 'x-api-key': KEY.infer } })).status).toBe(200);
      expect((await http(`${open.url}/v2/repository/index`, { method: 'POST', json: {}, headers: { 'x-api-key': KEY.infer } })).status).toBe(403);
    } finally {
      await open.server.close();
    }
  });
});

describe('auth.apiKeysFile', () => {
  it('should apply a changed keys file without a restart, and keep the keys when it breaks', async () => {
    const file = path.join(dir, 'keys.yaml');
    const infer = (key: string) => http(`${s.url}/v2/models/affine/infer`, { json: INFER_JSON, headers: { 'x-api-key': key } });
    expect((await infer(KEY.fromFile)).status).toBe(200);
    const rotated = 'rotated-file-key-55aa66bb77cc';
    const tmp = path.join(dir, 'keys.yaml.new');
    await writeFile(tmp, `- { name: rotated, key: ${rotated}, scopes: [infer] }\n`);
    await rename(tmp, file);
    await expect.poll(async () => (await infer(rotated)).status, { timeout: 10_000, interval: 50 }).toBe(200);
    expect((await infer(KEY.fromFile)).status).toBe(401);
    await writeFile(file, '- { name: broken\n');
    // give the watcher time to read the broken file; the rotated key must keep working throughout
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await infer(rotated)).status).toBe(200);
  });
});
