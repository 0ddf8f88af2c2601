import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import type { EndpointKind } from '../contracts/hook.js';
import { shapeSize } from '../contracts/tensor.js';
import type { TensorSpec } from '../contracts/tensor.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { OPERATIONS } from './openapi-operations.js';
import { docsPagePlugins } from './openapi-page.js';

/** What the OpenAPI document and the /docs page need from the server. */
export interface OpenApiOptions {
  registry: ModelRegistry;
  /** The core's version (`info.version`). */
  version: string;
  /** Whether `auth` is configured: the document then requires a credential, except on the open endpoint kinds. */
  auth: boolean;
  /** Whether an endpoint kind needs no credential (`scopesFor(kind) === null`). */
  open: (kind: EndpointKind) => boolean;
}

/** Where the interactive page is. */
export const DOCS_PREFIX = '/docs';
/** Where the document is. */
export const OPENAPI_PATH = '/openapi.json';

/**
 * The page's Content-Security-Policy: everything from the server itself, no inline script (Swagger
 * UI's initializer is a file), inline styles (Swagger UI sets them on its elements), images as
 * data: URLs (its icons), no framing, no plugins, and requests only to this origin.
 */
export const DOCS_CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"],
};

/** `:name` → `{name}` (OpenAPI's path templates, as @fastify/swagger writes them). */
function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** A stable operationId from the method and the route: `post_v2_models_model_infer`. */
function operationId(method: string, url: string): string {
  return `${method.toLowerCase()}${url.replace(/[^A-Za-z0-9]+/g, '_').replace(/_$/, '')}`;
}

/**
 * Registers @fastify/swagger (dynamic: the document is generated from the routes' own schemas, as
 * they are added — so this runs before any route), `GET /openapi.json` (endpoint kind `metadata`)
 * with the served models' tensors as examples, and the `/docs` page (@fastify/swagger-ui, its
 * assets of endpoint kind `ui`).
 */
export async function installOpenApi(app: FastifyInstance, options: OpenApiOptions): Promise<void> {
  await app.register(swagger, {
    mode: 'dynamic',
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tessera',
        version: options.version,
        description:
          'Every HTTP route of this server: OIP v2 / KServe v2 inference and metadata (with Triton\'s binary tensor, statistics, model configuration, model repository and classification extensions), `/v1/predict`, the OpenAI-compatible routes, the routing API, metrics and health. Generated from the schemas the routes validate with; the examples of the inference routes are the models this server serves now.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key or a JWT: `Authorization: Bearer <key>`.' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An API key: `x-api-key: <key>`.' },
        },
      },
      ...(options.auth ? { security: [{ bearer: [] }, { apiKey: [] }] } : {}),
    },
    transform: ({ schema, url, route }) => ({ schema: routeSchema(schema, url, route, options), url }),
    transformObject: (document) => {
      const openapiObject = 'openapiObject' in document ? document.openapiObject : document.swaggerObject;
      // @fastify/swagger marks every body required; these routes take none as well
      const paths = (openapiObject as { paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>> }).paths ?? {};
      for (const [key, doc] of Object.entries(OPERATIONS)) {
        if (!doc.bodyOptional) continue;
        const [method, url] = key.split(' ') as [string, string];
        const body = paths[openapiPath(url)]?.[method.toLowerCase()]?.requestBody;
        if (body) body.required = false;
      }
      return openapiObject;
    },
  });

  const cache = { key: '', text: '' };
  app.get(OPENAPI_PATH, { config: { endpoint: 'metadata' } }, async (_request, reply) => {
    const models = modelSignatures(options.registry);
    const key = JSON.stringify(models);
    if (key !== cache.key) {
      cache.text = JSON.stringify(withModelExamples(app.swagger(), models));
      cache.key = key;
    }
    return reply.type('application/json; charset=utf-8').send(cache.text);
  });

  // the page and its assets: static files of the package, open (endpoint kind `ui`), with a CSP
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route: RouteOptions) => {
      route.config = { ...(route.config), endpoint: 'ui' };
    });
    await scope.register(swaggerUi, {
      routePrefix: DOCS_PREFIX,
      staticCSP: DOCS_CSP,
      theme: { title: 'Tessera API' },
      // the page's own document (`/docs/json`, open like the page) has the routes without the
      // served models; the page then loads /openapi.json with the key given to Authorize
      uiConfig: {
        deepLinking: true,
        persistAuthorization: false,
        displayRequestDuration: true,
        docExpansion: 'list',
        defaultModelsExpandDepth: 0,
        plugins: docsPagePlugins,
      },
    });
  });
}

/** The route's schema as the document shows it: its own, plus the operation's doc-only parts. */
function routeSchema(schema: FastifySchema | undefined, url: string, route: RouteOptions, options: OpenApiOptions): FastifySchema {
  const method = [route.method].flat()[0] ?? 'GET';
  const doc = OPERATIONS[`${method} ${url}`];
  const out: FastifySchema & Record<string, unknown> = { ...schema };
  if (out.operationId === undefined) out.operationId = operationId(method, url);
  if (doc) {
    out.summary ??= doc.summary;
    if (doc.description !== undefined) out.description ??= doc.description;
    out.tags ??= doc.tags;
    // the body fastify validates with, when it does; else the one the route's own validator uses
    if (out.body === undefined && doc.body !== undefined) out.body = doc.body;
    if (out.headers === undefined && doc.headers !== undefined) out.headers = doc.headers;
    if (out.response === undefined) out.response = doc.response;
  }
  const kind = (route.config)?.endpoint ?? 'admin';
  if (options.auth && options.open(kind)) out.security = [];
  return out;
}

/** One served model as the examples show it. */
export interface ModelSignature {
  model: string;
  version: string;
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** The shape each input's example has. */
  sizes: Record<string, number[]>;
}

/** The served models' tensors (of the latest ready version; models not loaded have none), sorted by name. */
export function modelSignatures(registry: ModelRegistry): ModelSignature[] {
  const out: ModelSignature[] = [];
  for (const entry of registry.models()) {
    if (entry.unloaded) continue;
    const v = [...entry.versions.values()].filter((x) => x.ready && x.metadata !== undefined).at(-1);
    if (!v) continue;
    const md = v.metadata!;
    const signature = v.signature ?? md;
    if (signature.inputs.length === 0) continue;
    const spec = (s: TensorSpec): TensorSpec => ({ name: s.name, datatype: s.datatype, shape: [...s.shape] });
    const warmup = { ...(entry.config.options as { warmupShapes?: unknown } | undefined), ...(entry.config.versions[v.version]?.options as { warmupShapes?: unknown } | undefined) }.warmupShapes;
    const sizes = (s: TensorSpec): number[] => concrete(s.shape, (warmup as Record<string, unknown> | undefined)?.[s.name]);
    out.push({
      model: entry.name,
      version: v.version,
      platform: md.platform,
      inputs: signature.inputs.map(spec),
      outputs: signature.outputs.map(spec),
      sizes: Object.fromEntries(signature.inputs.map((s) => [s.name, sizes(s)])),
    });
  }
  return out.sort((a, b) => a.model.localeCompare(b.model));
}

/** Largest tensor an example writes out in full; larger ones show their name, shape and datatype only. */
const EXAMPLE_ELEMENTS = 4096;

/**
 * The shape of an example: the model's `warmupShapes` for the input when it has them, else (as the
 * ONNX Runtime backend warms up) a variable dim 0 as 1 and other variable dims as 32.
 */
function concrete(shape: readonly number[], warmup?: unknown): number[] {
  if (Array.isArray(warmup) && warmup.length === shape.length && warmup.every((d, i) => Number.isInteger(d) && d >= 0 && (shape[i]! < 0 || shape[i] === d))) return warmup as number[];
  return shape.map((d, i) => (d >= 0 ? d : i === 0 ? 1 : 32));
}

function zero(datatype: string): unknown {
  if (datatype === 'BOOL') return false;
  if (datatype === 'BYTES') return '';
  return 0;
}

function nested(shape: readonly number[], value: unknown): unknown {
  if (shape.length === 0) return value;
  return Array.from({ length: shape[0]! }, () => nested(shape.slice(1), value));
}

function describe(s: TensorSpec): string {
  return `${s.name} ${s.datatype} [${s.shape.join(', ')}]`;
}

/** The OIP v2 request, the /v1/predict request and the OIP v2 answer of one model, as examples. */
function examplesOf(m: ModelSignature): { summary: string; infer: unknown; predict: unknown; answer: unknown } {
  const left: string[] = [];
  const inputs = m.inputs.map((s) => {
    const shape = m.sizes[s.name] ?? concrete(s.shape);
    const n = shapeSize(shape);
    if (n > EXAMPLE_ELEMENTS) left.push(`${s.name}: ${n} values`);
    return { name: s.name, shape, datatype: s.datatype, ...(n <= EXAMPLE_ELEMENTS ? { data: new Array<unknown>(n).fill(zero(s.datatype)) } : {}) };
  });
  const predictInputs = Object.fromEntries(
    m.inputs.map((s) => {
      const shape = m.sizes[s.name] ?? concrete(s.shape);
      if (s.datatype === 'BYTES') return [s.name, '<base64 or text>'];
      return [s.name, shapeSize(shape) <= EXAMPLE_ELEMENTS ? nested(shape, zero(s.datatype)) : `<nested arrays of shape [${shape.join(', ')}], ${s.datatype}>`];
    }),
  );
  const summary = `${m.model} v${m.version} (${m.platform}): inputs ${m.inputs.map(describe).join('; ')} → outputs ${m.outputs.map(describe).join('; ')}${left.length > 0 ? ` (data left out: ${left.join(', ')}, row-major)` : ''}`;
  return {
    summary,
    infer: { inputs, outputs: m.outputs.map((o) => ({ name: o.name })) },
    predict: { model: m.model, inputs: predictInputs },
    answer: { model_name: m.model, model_version: m.version, outputs: m.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: concrete(o.shape) })) },
  };
}

interface MediaObject {
  schema?: unknown;
  examples?: Record<string, { summary?: string; value: unknown }>;
}
interface OperationObject {
  parameters?: { name: string; in: string; examples?: Record<string, { summary?: string; value: unknown }> }[];
  requestBody?: { content?: Record<string, MediaObject> };
  responses?: Record<string, { content?: Record<string, MediaObject> }>;
}

/**
 * The document with the served models as examples: each model's name on the `{model}` parameter,
 * its OIP v2 request and answer on the inference routes and its `/v1/predict` request, keyed by
 * the model's name. A copy: @fastify/swagger's document is cached and shared.
 */
export function withModelExamples(base: unknown, models: readonly ModelSignature[]): Record<string, unknown> {
  const doc = structuredClone(base) as { paths?: Record<string, Record<string, OperationObject>> } & Record<string, unknown>;
  if (models.length === 0) return doc;
  const all = models.map((m) => ({ m, ex: examplesOf(m) }));
  for (const [url, item] of Object.entries(doc.paths ?? {})) {
    for (const op of Object.values(item)) {
      for (const p of op.parameters ?? []) {
        if (p.in === 'path' && p.name === 'model') p.examples = Object.fromEntries(all.map(({ m, ex }) => [m.model, { summary: ex.summary, value: m.model }]));
      }
      const json = op.requestBody?.content?.['application/json'];
      const answer = op.responses?.['200']?.content?.['application/json'];
      if (/^\/v2\/models\/\{model\}(\/versions\/\{version\})?\/infer$/.test(url)) {
        if (json) json.examples = Object.fromEntries(all.map(({ m, ex }) => [m.model, { summary: ex.summary, value: ex.infer }]));
        if (answer) answer.examples = Object.fromEntries(all.map(({ m, ex }) => [m.model, { summary: ex.summary, value: ex.answer }]));
      } else if (url === '/v1/predict' && json) {
        json.examples = Object.fromEntries(all.map(({ m, ex }) => [m.model, { summary: ex.summary, value: ex.predict }]));
      }
    }
  }
  return doc;
}
