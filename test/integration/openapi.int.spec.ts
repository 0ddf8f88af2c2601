/**
 * The OpenAPI 3.1 document (`GET /openapi.json`) and the `/docs` page's assets, over loopback HTTP
 * to an in-process server serving the real PP-OCR text-orientation classifier under two names: the
 * document validates against the OpenAPI 3.1 schema, lists every route fastify registered (read
 * from onRoute, not a list kept here), carries the served models' tensors as examples (following
 * unloads and loads), and its inference body schema is the validator's — a body the server takes
 * passes it and a body the server refuses with 400 fails it. Then `auth` (the document needs a key,
 * the page's assets do not) and `server.openapi: false`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { EndpointKind } from '@tessera/core';
import { TesseraServer, resolveConfig } from '@tessera/core';
import { encodeBinaryInferRequest, silentLogger } from '@tessera/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLS_MODEL, ROOT, http, tempDir } from './helpers.js';

/** The ajv the core validates with (v8; the repository root has an older one). */
interface AjvLike {
  compile: (schema: unknown) => ((value: unknown) => boolean) & { errors?: unknown };
}
const Ajv = (createRequire(path.join(ROOT, 'packages/core/package.json'))('ajv') as { Ajv: new (o: object) => AjvLike }).Ajv;

const KEY = 'openapi-test-key-5c4b3a29f8e7';

interface Operation {
  operationId?: string;
  parameters?: { name: string; in: string; examples?: Record<string, { value: unknown }> }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: unknown; examples?: Record<string, { summary?: string; value: any }> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: any; examples?: Record<string, { value: any }> }> }>;
  security?: unknown[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, Record<string, unknown>> };
  security?: unknown[];
}

interface Started {
  server: TesseraServer;
  url: string;
  /** `METHOD url` → endpoint kind of every route fastify registered (HEAD routes aside). */
  routes: Map<string, EndpointKind>;
}

let dir: string;

async function start(extra: { server?: Record<string, unknown>; auth?: Record<string, unknown> } = {}): Promise<Started> {
  const config = resolveConfig(
    {
      server: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...extra.server },
      models: { 'text-orientation': { path: CLS_MODEL, warmupShapes: { x: [1, 3, 48, 192] } }, orientation: { path: CLS_MODEL } },
      ...(extra.auth ? { auth: extra.auth } : {}),
    },
    { configDir: dir, env: {} },
  );
  const server = new TesseraServer({ config, logger: silentLogger() });
  const seen: { method: string | string[]; url: string; route: { config?: unknown } }[] = [];
  server.app.addHook('onRoute', (route) => void seen.push({ method: route.method, url: route.url, route }));
  const { url } = await server.start();
  const routes = new Map<string, EndpointKind>();
  for (const r of seen) {
    for (const method of [r.method].flat()) {
      if (method !== 'HEAD') routes.set(`${method} ${r.url}`, (r.route.config as { endpoint?: EndpointKind } | undefined)?.endpoint ?? 'admin');
    }
  }
  return { server, url, routes };
}

const openapiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

let s: Started;
let doc: Document;

beforeAll(async () => {
  dir = await tempDir('tessera-openapi-');
  s = await start();
  const res = await http<Document>(`${s.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = res.body;
}, 60_000);

afterAll(async () => {
  await s?.server.close();
});

describe('GET /openapi.json', () => {
  it('should be a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    if (!result.valid) console.error('OpenAPI validation errors:', JSON.stringify(result.errors, null, 2));
    expect(result.valid).toBe(true);
  });

  it('should list every route the server has (but the page\'s assets), each with a 200 and an error shape', () => {
    expect(s.routes.size).toBeGreaterThan(25);
    const missing: string[] = [];
    const documented = new Set<string>();
    for (const [route, kind] of s.routes) {
      const [method, url] = route.split(' ') as [string, string];
      const op = doc.paths[openapiPath(url)]?.[method.toLowerCase()];
      if (kind === 'ui') {
        expect(op, `${route} is a page asset, not an API route`).toBeUndefined();
        continue;
      }
      if (!op) {
        missing.push(route);
        continue;
      }
      documented.add(`${method.toLowerCase()} ${openapiPath(url)}`);
      expect(op.responses['200'], `${route}: 200`).toBeDefined();
      if (kind !== 'health') {
        const errors = Object.entries(op.responses).filter(([status]) => Number(status) >= 400 && Number(status) < 500);
        expect(errors.length, `${route}: error responses`).toBeGreaterThan(0);
        // every 4xx body documented is `{error, code}`, or OpenAI's `{error: {message, type}}`
        for (const [status, r] of errors) {
          const schema = r.content?.['application/json']?.schema;
          expect(schema?.required?.[0], `${route} ${status}`).toBe('error');
        }
      }
    }
    expect(missing, 'routes the document leaves out').toEqual([]);
    // and nothing the server does not have
    const extra = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`)).filter((op) => !documented.has(op));
    expect(extra).toEqual([]);
    expect(s.routes.get('GET /docs')).toBe('ui');
    expect(s.routes.get('GET /openapi.json')).toBe('metadata');
  });

  it('should document the request bodies, path parameters and the binary tensor extension', () => {
    const infer = doc.paths['/v2/models/{model}/infer']!['post']!;
    expect(Object.keys(infer.requestBody!.content).sort()).toEqual(['application/json', 'application/octet-stream']);
    expect(infer.parameters!.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['header:inference-header-content-length', 'path:model']);
    expect(Object.keys(infer.responses['200']!.content!).sort()).toEqual(['application/json', 'application/octet-stream']);
    const versioned = doc.paths['/v2/models/{model}/versions/{version}/infer']!['post']!;
    expect(versioned.parameters!.map((p) => p.name).sort()).toEqual(['inference-header-content-length', 'model', 'version']);
    // fastify's own body schemas, as the routes validate with them
    const predict = doc.paths['/v1/predict']!['post']!.requestBody!.content['application/json']!.schema as { required: string[]; additionalProperties: boolean };
    expect(predict).toMatchObject({ required: ['model', 'inputs'], additionalProperties: false });
    const chat = doc.paths['/v1/chat/completions']!['post']!.requestBody!.content['application/json']!.schema as { required: string[] };
    expect(chat.required).toEqual(['model', 'messages']);
    expect(doc.paths['/v1/routing/{model}/{action}']!['post']!.requestBody!.required).toBe(false);
    expect(doc.paths['/metrics']!['get']!.responses['200']!.content!['text/plain']).toBeDefined();
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
    expect(doc.components.securitySchemes['bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes['apiKey']).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    // without auth, nothing requires a credential
    expect(doc.security).toBeUndefined();
  });

  it('should validate requests as the server does: a body the server takes passes the schema, one it refuses with 400 fails it', async () => {
    const schema = doc.paths['/v2/models/{model}/infer']!['post']!.requestBody!.content['application/json']!.schema;
    const check = new Ajv({ strict: false, allErrors: false }).compile(schema);
    const good = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0.5) }] };
    const refused = [
      { inputs: [] },
      { inputs: [{ name: 'x', datatype: 'FP33', shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0.5) }] },
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, -192], data: [0] }] },
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: [0] }], outputs: [{ name: 'softmax_0.tmp_0', parameters: { classification: 0 } }] },
      { outputs: [] },
    ];
    const ok = await http(`${s.url}/v2/models/text-orientation/infer`, { json: good });
    expect(ok.status, ok.text).toBe(200);
    expect(check(good)).toBe(true);
    for (const body of refused) {
      const res = await http(`${s.url}/v2/models/text-orientation/infer`, { json: body });
      expect(res.status, JSON.stringify(body).slice(0, 120)).toBe(400);
      expect(res.body.code).toBe('TESSERA_E_REQUEST_INVALID');
      expect(check(body), JSON.stringify(body).slice(0, 120)).toBe(false);
    }
    // the binary request's JSON header is checked against the same schema
    const header = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: 4 * 3 * 48 * 192 } }] };
    expect(check(header)).toBe(true);
    const binary = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) }]);
    const bin = await fetch(`${s.url}/v2/models/text-orientation/infer`, { method: 'POST', headers: binary.headers, body: binary.body });
    expect(bin.status).toBe(200);

    // /v1/predict: fastify's schema, the same in the document
    const predict = new Ajv({ strict: false }).compile(doc.paths['/v1/predict']!['post']!.requestBody!.content['application/json']!.schema);
    const misspelt = { model: 'text-orientation', inputs: { x: [[[[0]]]] }, output: ['softmax_0.tmp_0'] };
    const res = await http(`${s.url}/v1/predict`, { json: misspelt });
    expect(res.status).toBe(400);
    expect(predict(misspelt)).toBe(false);
  });

  it('should give each served model\'s tensors as examples, and requests built from them work', async () => {
    const infer = doc.paths['/v2/models/{model}/infer']!['post']!;
    const examples = infer.requestBody!.content['application/json']!.examples!;
    expect(Object.keys(examples).sort()).toEqual(['orientation', 'text-orientation']);
    for (const model of ['orientation', 'text-orientation']) {
      const metadata = (await http(`${s.url}/v2/models/${model}`)).body as { inputs: { name: string; datatype: string; shape: number[] }[]; outputs: { name: string }[] };
      const example = examples[model]!;
      expect(example.summary).toContain(`${metadata.inputs[0]!.name} ${metadata.inputs[0]!.datatype} [${metadata.inputs[0]!.shape.join(', ')}]`);
      const input = example.value.inputs[0];
      expect(input).toMatchObject({ name: metadata.inputs[0]!.name, datatype: metadata.inputs[0]!.datatype });
      // the example's shape fits the model's (-1: any size)
      expect(input.shape.length).toBe(metadata.inputs[0]!.shape.length);
      metadata.inputs[0]!.shape.forEach((d, i) => d >= 0 && expect(input.shape[i]).toBe(d));
      expect(example.value.outputs.map((o: { name: string }) => o.name)).toEqual(metadata.outputs.map((o) => o.name));
      // the model's name is an example of the {model} parameter of every model route
      expect(Object.keys(infer.parameters!.find((p) => p.name === 'model')!.examples!)).toContain(model);
      expect(Object.keys(doc.paths['/v2/models/{model}/config']!['get']!.parameters![0]!.examples!)).toContain(model);
      // the example, sent as it is, is answered (a large tensor's data is left out of it, and it says so)
      if (input.data === undefined) {
        expect(example.summary).toContain(`data left out: ${input.name}`);
        continue;
      }
      const res = await http(`${s.url}/v2/models/${model}/infer`, { json: example.value });
      expect(res.status, res.text.slice(0, 200)).toBe(200);
      const answer = infer.responses['200']!.content!['application/json']!.examples![model]!.value;
      expect(res.body.outputs.map((o: { name: string; datatype: string }) => [o.name, o.datatype])).toEqual(answer.outputs.map((o: { name: string; datatype: string }) => [o.name, o.datatype]));
    }
    // warmupShapes are the example's shape when the model has them
    expect(examples['text-orientation']!.value.inputs[0].shape).toEqual([1, 3, 48, 192]);
    expect(examples['orientation']!.value.inputs[0].data).toHaveLength(3 * 32 * 32);
    const predict = doc.paths['/v1/predict']!['post']!.requestBody!.content['application/json']!.examples!;
    expect(Object.keys(predict).sort()).toEqual(['orientation', 'text-orientation']);
    expect(Object.keys(predict['orientation']!.value.inputs)).toEqual(['x']);
  });

  it('should follow models unloaded and loaded again', async () => {
    const examples = async (): Promise<string[]> => {
      const d = (await http<Document>(`${s.url}/openapi.json`)).body;
      return Object.keys(d.paths['/v2/models/{model}/infer']!['post']!.requestBody!.content['application/json']!.examples ?? {}).sort();
    };
    expect((await http(`${s.url}/v2/repository/models/orientation/unload`, { json: {} })).status).toBe(200);
    expect(await examples()).toEqual(['text-orientation']);
    expect((await http(`${s.url}/v2/repository/models/orientation/load`, { json: {} })).status).toBe(200);
    expect(await examples()).toEqual(['orientation', 'text-orientation']);
  });
});

describe('the /docs page\'s assets', () => {
  it('should be served from the package with a Content-Security-Policy', async () => {
    for (const asset of ['/docs', '/docs/static/swagger-ui.css', '/docs/static/swagger-ui-bundle.js', '/docs/static/swagger-initializer.js', '/docs/json']) {
      const res = await fetch(`${s.url}${asset}`);
      expect(res.status, asset).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, asset).toContain("script-src 'self'");
      expect(csp, asset).toContain("style-src 'self' 'unsafe-inline'");
      expect(csp, asset).toContain("connect-src 'self'");
      expect(csp, asset).not.toMatch(/https?:/);
      await res.arrayBuffer();
    }
    const page = await (await fetch(`${s.url}/docs`)).text();
    expect(page).not.toMatch(/<script[^>]+src="https?:/);
    expect(page).not.toMatch(/href="https?:/);
  });
});

describe('with auth', () => {
  let a: Started;
  beforeAll(async () => {
    a = await start({ auth: { apiKeys: [{ name: 'reader', key: KEY, scopes: ['infer'] }] } });
  }, 60_000);
  afterAll(async () => {
    await a?.server.close();
  });

  it('should need a key for /openapi.json, not for the page\'s assets', async () => {
    const none = await http(`${a.url}/openapi.json`);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('TESSERA_E_AUTH_REQUIRED');
    const bearer = await http<Document>(`${a.url}/openapi.json`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(bearer.status).toBe(200);
    expect((await http(`${a.url}/openapi.json`, { headers: { 'x-api-key': KEY } })).status).toBe(200);
    // the document says so: a credential everywhere but on the open endpoints
    expect(bearer.body.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(bearer.body.paths['/health']!['get']!.security).toEqual([]);
    expect(bearer.body.paths['/v2/health/ready']!['get']!.security).toEqual([]);
    expect(bearer.body.paths['/v2/models/{model}/infer']!['post']!.security).toBeUndefined();
    for (const asset of ['/docs', '/docs/static/swagger-ui.css', '/docs/static/swagger-initializer.js', '/docs/json']) {
      const res = await fetch(`${a.url}${asset}`);
      expect(res.status, asset).toBe(200);
      await res.arrayBuffer();
    }
    // the page's own document lists the routes, not the models this server serves
    const pageDoc = (await http<Document>(`${a.url}/docs/json`)).body;
    expect(pageDoc.paths['/v2/models/{model}/infer']).toBeDefined();
    expect(JSON.stringify(pageDoc)).not.toContain('text-orientation');
    // a key in the query string is not a credential
    expect((await http(`${a.url}/openapi.json?api_key=${KEY}`)).status).toBe(401);
  });
});

describe('server.openapi: false', () => {
  it('should serve neither the document nor the page', async () => {
    const off = await start({ server: { openapi: false } });
    try {
      expect((await http(`${off.url}/openapi.json`)).status).toBe(404);
      expect((await http(`${off.url}/docs`)).status).toBe(404);
      expect((await http(`${off.url}/docs/static/swagger-ui.css`)).status).toBe(404);
      expect([...off.routes.keys()].filter((r) => r.includes('/docs') || r.includes('openapi'))).toEqual([]);
      expect((await http(`${off.url}/v2/health/ready`)).status).toBe(200);
    } finally {
      await off.server.close();
    }
  }, 60_000);
});
