import { DATA_TYPES } from '../contracts/tensor.js';
import { inferRequestSchema } from './infer-schema.js';

/**
 * What the OpenAPI document says of each core route beyond the schemas fastify validates with:
 * summary, tags, response schemas (documentation only: attaching them to the routes would make
 * fast-json-stringify serialize, and drop fields, on every answer) and, for the inference routes
 * whose body is validated by hand, the body schema that validator uses (`inferRequestSchema`, the
 * same object). Keyed by `METHOD url` as fastify registers the route.
 */
export interface OperationDoc {
  summary: string;
  description?: string;
  tags: string[];
  /** `schema.body` for a route fastify does not validate the body of (the document only). */
  body?: Record<string, unknown>;
  /** The body may be left out (`requestBody.required: false`). */
  bodyOptional?: boolean;
  /** `schema.headers` for the document only. */
  headers?: Record<string, unknown>;
  /** `schema.response` for the document only, by status. */
  response: Record<string, Record<string, unknown>>;
}

/** `{"error", "code"}`: every error of the OIP v2, Triton, predict and routing routes. */
export const errorBodySchema = {
  type: 'object',
  required: ['error', 'code'],
  properties: {
    error: { type: 'string', description: 'What went wrong and what to do about it.' },
    code: { type: 'string', pattern: '^TESSERA_E_[A-Z0-9_]+$', description: 'A stable code of docs/errors.md.' },
  },
} as const;

/** OpenAI's error object: the errors of `/v1/chat/completions`, `/v1/completions` and `/v1/models`. */
export const openAIErrorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type'],
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } },
    },
  },
} as const;

const error = (description: string): Record<string, unknown> => ({ description, ...errorBodySchema });
const openAIFailure = (description: string): Record<string, unknown> => ({ description, ...openAIErrorBodySchema });

/** The errors most routes answer with. */
const ERRORS = {
  400: error('Invalid request (`TESSERA_E_REQUEST_INVALID`, `TESSERA_E_INPUT_*`).'),
  401: error('A credential is needed (`auth` configured): send `Authorization: Bearer <key>` or `x-api-key: <key>`.'),
  403: error('The credential lacks the scope or the model.'),
  404: error('No such model, version or route.'),
  503: error('Not ready, draining, or a full queue; retry (`Retry-After`).'),
};
const MODEL_ERRORS = { 401: ERRORS[401], 403: ERRORS[403], 404: ERRORS[404] };

const tensorSpec = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: { name: { type: 'string' }, datatype: { type: 'string', enum: DATA_TYPES }, shape: { type: 'array', items: { type: 'integer', description: '-1: any size' } } },
} as const;

const modelMetadata = {
  description: 'The model version: its tensors (after its processors), platform and state.',
  type: 'object',
  required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' } },
    platform: { type: 'string' },
    inputs: { type: 'array', items: tensorSpec },
    outputs: { type: 'array', items: tensorSpec },
    parameters: { type: 'object', additionalProperties: true, properties: { version: { type: 'string' }, max_batch_size: { type: 'integer' }, state: { type: 'string' } } },
  },
};

const readiness = {
  type: 'object',
  required: ['name', 'ready'],
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    ready: { type: 'boolean' },
    state: { type: 'string' },
    versions: { type: 'object', additionalProperties: { type: 'string' }, description: 'The state of each version (without a version in the URL).' },
    reason: { type: 'string' },
    reasons: { type: 'object', additionalProperties: { type: 'string' } },
  },
};

/** The binary tensor extension's header: the JSON part's length (0: the body is the only input's raw data). */
const INFERENCE_HEADER = {
  type: 'object',
  properties: {
    'inference-header-content-length': {
      type: 'integer',
      minimum: 0,
      description:
        "Triton's binary tensor extension: the length of the JSON header at the start of the body; the tensors' bytes follow (each input sized by `parameters.binary_data_size`). `0`: the body is the raw data of the model's only input.",
    },
  },
};

const inferResponseJson = {
  type: 'object',
  required: ['model_name', 'outputs'],
  additionalProperties: true,
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    id: { type: 'string' },
    parameters: { type: 'object', additionalProperties: true },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'datatype', 'shape'],
        additionalProperties: true,
        properties: {
          ...tensorSpec.properties,
          data: { description: 'The elements, flattened in row-major order (absent for a binary output).' },
          parameters: { type: 'object', additionalProperties: true, properties: { binary_data_size: { type: 'integer' } } },
        },
      },
    },
  },
};

const INFER: OperationDoc = {
  summary: 'Run inference (OIP v2 / KServe v2)',
  description:
    'A JSON body, or a binary one (Triton\'s binary tensor extension): `Inference-Header-Content-Length` bytes of JSON header (the same structure, inputs sized by `parameters.binary_data_size`), then the tensors\' bytes, little-endian. `outputs[].parameters.classification` (Triton\'s classification extension) answers the top N classes of an output as `"score:index[:label]"` strings. Outputs come back in binary with `parameters.binary_data_output` or `outputs[].parameters.binary_data`.',
  tags: ['OIP v2 inference'],
  body: {
    content: {
      'application/json': { schema: inferRequestSchema },
      'application/octet-stream': {
        schema: { type: 'string', format: 'binary', description: 'With `Inference-Header-Content-Length`: the JSON header (`application/json`\'s schema), then the tensors\' bytes.' },
      },
    },
  },
  headers: INFERENCE_HEADER,
  response: {
    200: {
      description: 'The outputs. In binary (`application/octet-stream`) when any output was asked for in binary: the JSON header, then the bytes, its length in `Inference-Header-Content-Length`.',
      content: {
        'application/json': { schema: inferResponseJson },
        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
      },
      headers: { 'inference-header-content-length': { type: 'integer', description: 'The JSON header\'s length (binary answers only).' } },
    },
    ...ERRORS,
    413: error('The body is larger than `server.bodyLimit`.'),
    415: error('Unsupported media type: send application/json, or binary data with Inference-Header-Content-Length.'),
    429: error('Rate limited (`server.rateLimit`).'),
  },
};

const statsBody = {
  type: 'object',
  required: ['model_stats'],
  properties: { model_stats: { type: 'array', items: { type: 'object', additionalProperties: true, required: ['name', 'version'], properties: { name: { type: 'string' }, version: { type: 'string' }, inference_count: { type: 'integer' }, execution_count: { type: 'integer' } } } } },
};

const modelConfig = {
  description: 'Triton\'s model configuration (`model_config.proto` as JSON) and Tessera\'s own settings under `tessera`.',
  type: 'object',
  additionalProperties: true,
  properties: { name: { type: 'string' }, platform: { type: 'string' }, max_batch_size: { type: 'integer' }, input: { type: 'array', items: { type: 'object', additionalProperties: true } }, output: { type: 'array', items: { type: 'object', additionalProperties: true } } },
};

const indexRow = {
  type: 'object',
  required: ['name', 'state'],
  properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string', enum: ['READY', 'LOADING', 'UNLOADING', 'UNAVAILABLE'] }, reason: { type: 'string' } },
};

const GENERATION = { 'tessera-config-generation': { type: 'integer', description: 'The config generation serving.' } };

const routing = {
  type: 'object',
  required: ['model', 'strategy', 'versions'],
  additionalProperties: true,
  description: 'How the model\'s requests are routed now; the router\'s own `status()` fields (a canary\'s `state`, `stats`, `history`) follow at the top level.',
  properties: {
    model: { type: 'string' },
    strategy: { type: 'string' },
    versions: { type: 'array', items: { type: 'object', properties: { version: { type: 'string' }, state: { type: 'string' }, ready: { type: 'boolean' }, weight: { type: ['number', 'null'] } } } },
    weights: { type: ['object', 'null'], additionalProperties: { type: 'number' } },
    actions: { type: 'array', items: { type: 'string' } },
  },
};

const generation = {
  200: {
    description: 'The completion (`application/json`), or with `stream: true` server-sent events (`data: {chunk}` … `data: [DONE]`).',
    content: {
      'application/json': { schema: { type: 'object', additionalProperties: true, properties: { id: { type: 'string' }, object: { type: 'string' }, model: { type: 'string' }, choices: { type: 'array', items: { type: 'object', additionalProperties: true } } } } },
      'text/event-stream': { schema: { type: 'string' } },
    },
  },
  400: openAIFailure('Invalid request.'),
  401: openAIFailure('A credential is needed.'),
  403: openAIFailure('The credential lacks the scope or the model.'),
  404: openAIFailure('No such model, or not a generative one.'),
  503: openAIFailure('Not ready, draining, or a full queue.'),
};

const metadataOf = (summary: string, tags: string[], response: Record<string, Record<string, unknown>>): OperationDoc => ({ summary, tags, response });

/** The document of every core route, by `METHOD url`. */
export const OPERATIONS: Record<string, OperationDoc> = {
  'GET /health': metadataOf('Liveness', ['health'], { 200: { description: 'The process is up.', type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } }),
  'GET /v2/health/live': metadataOf('Liveness (OIP v2)', ['health'], { 200: { description: 'The process is up.', type: 'object', properties: { live: { type: 'boolean' } } } }),
  'GET /v2/health/ready': metadataOf('Readiness (OIP v2)', ['health'], {
    200: { description: 'Every model can serve.', type: 'object', properties: { ready: { type: 'boolean', enum: [true] } } },
    503: {
      description: 'Not ready: starting up or draining, or a version that cannot serve (listed with its state and reason).',
      type: 'object',
      properties: { ready: { type: 'boolean', enum: [false] }, reason: { type: 'string' }, models: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' } } } } },
    },
  }),
  'GET /v2': metadataOf('Server metadata (OIP v2)', ['OIP v2 metadata'], {
    200: { description: 'The server\'s name, version and protocol extensions.', type: 'object', required: ['name', 'version', 'extensions'], properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } } },
    401: ERRORS[401],
  }),
  'GET /v2/models/:model': metadataOf('Model metadata (the latest ready version)', ['OIP v2 metadata'], { 200: modelMetadata, ...MODEL_ERRORS }),
  'GET /v2/models/:model/versions/:version': metadataOf('Model metadata of one version', ['OIP v2 metadata'], { 200: modelMetadata, ...MODEL_ERRORS }),
  'GET /v2/models/:model/ready': metadataOf('Model readiness (every version)', ['OIP v2 metadata'], { 200: { description: 'Every version can serve.', ...readiness }, 503: { description: 'A version cannot serve now.', ...readiness }, ...MODEL_ERRORS }),
  'GET /v2/models/:model/versions/:version/ready': metadataOf('Readiness of one model version', ['OIP v2 metadata'], { 200: { description: 'The version can serve.', ...readiness }, 503: { description: 'The version cannot serve now.', ...readiness }, ...MODEL_ERRORS }),
  'POST /v2/models/:model/infer': INFER,
  'POST /v2/models/:model/versions/:version/infer': { ...INFER, summary: 'Run inference on one model version (OIP v2 / KServe v2)' },
  'GET /v2/models/stats': metadataOf('Statistics of every model (Triton\'s statistics extension)', ['Triton extensions'], { 200: { description: 'Counts and cumulative durations (ns) per version.', ...statsBody }, 401: ERRORS[401] }),
  'GET /v2/models/:model/stats': metadataOf('Statistics of a model (Triton\'s statistics extension)', ['Triton extensions'], { 200: { description: 'Counts and cumulative durations (ns) per version.', ...statsBody }, ...MODEL_ERRORS }),
  'GET /v2/models/:model/versions/:version/stats': metadataOf('Statistics of one model version', ['Triton extensions'], { 200: { description: 'Counts and cumulative durations (ns).', ...statsBody }, ...MODEL_ERRORS }),
  'GET /v2/models/:model/config': metadataOf('Model configuration (Triton\'s model configuration extension)', ['Triton extensions'], { 200: modelConfig, ...MODEL_ERRORS }),
  'GET /v2/models/:model/versions/:version/config': metadataOf('Configuration of one model version', ['Triton extensions'], { 200: modelConfig, ...MODEL_ERRORS }),
  'POST /v2/repository/index': {
    summary: 'Repository index (Triton\'s model repository extension)',
    tags: ['model repository'],
    body: { type: 'object', properties: { ready: { type: 'boolean', description: 'Only the versions ready now.' } } },
    bodyOptional: true,
    response: { 200: { description: 'Every model version with its state, and models of the config or repository folder not loaded.', type: 'array', items: indexRow, headers: GENERATION }, 401: ERRORS[401], 403: ERRORS[403] },
  },
  'GET /v2/repository/index': metadataOf('Repository index with the config generation and the last reload', ['model repository'], {
    200: {
      description: 'The config generation serving, the last reload\'s outcome and every model version.',
      type: 'object',
      additionalProperties: true,
      properties: { generation: { type: 'integer' }, config_file: { type: 'string' }, applied_at: { type: 'string' }, last_reload: { type: 'object', additionalProperties: true }, models: { type: 'array', items: indexRow } },
      headers: GENERATION,
    },
    401: ERRORS[401],
    403: ERRORS[403],
  }),
  'POST /v2/repository/models/:model/load': {
    summary: 'Load (or reload) a model',
    description: 'Loads a model again after an unload, or one the config (or its repository folder) has and the server does not serve yet.',
    tags: ['model repository'],
    bodyOptional: true,
    body: { type: 'object', additionalProperties: true },
    response: { 200: { description: 'Loaded and warm.', type: 'object' }, ...MODEL_ERRORS, 500: error('The model failed to load (`TESSERA_E_MODEL_LOAD`).') },
  },
  'POST /v2/repository/models/:model/unload': {
    summary: 'Unload a model (drain, then release)',
    tags: ['model repository'],
    bodyOptional: true,
    body: { type: 'object', additionalProperties: true },
    response: { 200: { description: 'Unloaded.', type: 'object' }, ...MODEL_ERRORS },
  },
  'POST /v1/predict': {
    summary: 'Simple prediction (Tessera\'s own protocol)',
    description: 'Inputs by name as nested arrays (shapes from the nesting, datatypes from the model) or, for a BYTES input, a string (an image as base64). Outputs come back nested, with `predictions` (`{label, score}`) when the model\'s last post step names label and score outputs.',
    tags: ['predict'],
    response: {
      200: {
        description: 'The outputs as nested arrays.',
        type: 'object',
        required: ['model_name', 'model_version', 'outputs'],
        properties: {
          model_name: { type: 'string' },
          model_version: { type: 'string' },
          outputs: { type: 'object', additionalProperties: true },
          predictions: { type: 'array', items: {} },
        },
      },
      ...ERRORS,
      413: error('The body is larger than `server.bodyLimit`.'),
      429: error('Rate limited (`server.rateLimit`).'),
    },
  },
  'POST /v1/chat/completions': { summary: 'Chat completion (OpenAI-compatible)', tags: ['OpenAI-compatible'], response: generation },
  'POST /v1/completions': { summary: 'Completion (OpenAI-compatible)', tags: ['OpenAI-compatible'], response: generation },
  'GET /v1/models': metadataOf('Generative models (OpenAI-compatible)', ['OpenAI-compatible'], {
    200: {
      description: 'The generative models (those the credential may use).',
      type: 'object',
      properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: { type: 'object', additionalProperties: true, properties: { id: { type: 'string' }, object: { type: 'string' }, created: { type: 'integer' }, owned_by: { type: 'string' } } } } },
    },
    401: openAIFailure('A credential is needed.'),
  }),
  'GET /v1/routing': metadataOf('Routing of every model', ['routing'], { 200: { description: 'One routing body per model.', type: 'object', properties: { models: { type: 'array', items: routing } } }, 401: ERRORS[401], 403: ERRORS[403] }),
  'GET /v1/routing/:model': metadataOf('Routing of a model', ['routing'], { 200: routing, ...MODEL_ERRORS }),
  'POST /v1/routing/:model/:action': {
    summary: 'An action on a model\'s router (a canary\'s promote, rollback, pause, resume)',
    tags: ['routing'],
    bodyOptional: true,
    response: { 200: { ...routing, description: 'The routing after the action took effect.' }, 400: ERRORS[400], ...MODEL_ERRORS, 500: error('The router failed (`TESSERA_E_ROUTER_FAILED`).') },
  },
  'GET /metrics': {
    summary: 'Prometheus metrics',
    tags: ['metrics'],
    response: { 200: { description: 'The Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: ERRORS[401], 403: ERRORS[403] },
  },
  'GET /openapi.json': {
    summary: 'This document (OpenAPI 3.1)',
    tags: ['OpenAPI'],
    response: { 200: { description: 'The OpenAPI 3.1 document of every route, with the served models\' tensors as examples.', type: 'object', additionalProperties: true }, 401: ERRORS[401], 403: ERRORS[403] },
  },
};
