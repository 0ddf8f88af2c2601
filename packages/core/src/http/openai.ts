import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OpenAIErrorFields } from '../errors.js';
import { TesseraError, errorMessage } from '../errors.js';
import type { Generation } from '../pipeline/generation.js';
import { pickGenerative } from '../pipeline/generation.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import type { GenerateCall } from '../pipeline/types.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { errorHeaders, toTesseraError } from './errors.js';

/** What the OpenAI routes need from the server. */
export interface OpenAIDeps {
  registry: ModelRegistry;
  pipeline: ServingPipeline;
}

const streamOptionsSchema = {
  anyOf: [{ type: 'null' }, { type: 'object', properties: { include_usage: { type: ['boolean', 'null'] }, continuous_usage_stats: { type: ['boolean', 'null'] } } }],
};

/**
 * JSON Schemas of the two generation bodies: only what the gateway relies on. Every other field
 * (sampling parameters, tools, vLLM's extras such as `top_k` or `structured_outputs`) is the
 * engine's business and passes through untouched.
 */
export const chatCompletionRequestSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1 },
    messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['role'], properties: { role: { type: 'string' } } } },
    stream: { type: ['boolean', 'null'] },
    stream_options: streamOptionsSchema,
  },
} as const;

export const completionRequestSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    model: { type: 'string', minLength: 1 },
    prompt: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1 }] },
    stream: { type: ['boolean', 'null'] },
    stream_options: streamOptionsSchema,
  },
} as const;

/** OpenAI's error `type` for an HTTP status. */
export function openAIErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The OpenAI error object for a TesseraError: `{message, type, param, code}`. */
export function openAIError(err: TesseraError, param: string | null = null): { error: Required<OpenAIErrorFields> & { message: string } } {
  const o = err.openai;
  return {
    error: {
      message: err.message,
      type: o?.type ?? openAIErrorType(err.status),
      param: o?.param !== undefined ? o.param : param,
      code: o?.code !== undefined ? o.code : err.code,
    },
  };
}

/** Sends an error in OpenAI's shape with the error's status and headers. */
export function sendOpenAIError(request: FastifyRequest, reply: FastifyReply, err: TesseraError): FastifyReply {
  request.tessera.code = err.code;
  void reply.headers(errorHeaders(err));
  if (err.status >= 500 && err.status !== 503) request.log.error({ err: err.cause ?? err, code: err.code }, err.message);
  // a fastify schema error names the field: OpenAI puts it in `param`
  const validation = (err.cause as { validation?: { instancePath?: string; params?: { missingProperty?: string } }[] } | undefined)?.validation?.[0];
  const param = validation ? (validation.params?.missingProperty ?? validation.instancePath?.replace(/^\//, '').replaceAll('/', '.')) || null : null;
  return reply.code(err.status).type('application/json').send(JSON.stringify(openAIError(err, param)));
}

/** Resolves when `res` can take more data, or when it closed. */
function writable(res: ServerResponse): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/**
 * The OpenAI-compatible API for models whose instances implement `generate`:
 * `POST /v1/chat/completions`, `POST /v1/completions` (streaming as server-sent events and not) and
 * `GET /v1/models`. Errors use OpenAI's `{"error": {message, type, param, code}}`. The adapter only
 * translates: the pipeline routes, counts, times and asks the backend for usage.
 */
export function registerOpenAI(app: FastifyInstance, deps: OpenAIDeps): void {
  const { registry, pipeline } = deps;

  const handle = (kind: GenerateCall['kind']) => async (request: FastifyRequest<{ Body: GenerateCall['body'] }>, reply: FastifyReply): Promise<FastifyReply> => {
    const req = request.tessera;
    req.protocol = 'openai';
    try {
      const generation = await pipeline.generate(req, { kind, body: request.body });
      if (generation.response) {
        generation.end(true);
        return reply.type('application/json').send(generation.response.json ?? JSON.stringify(generation.response.data));
      }
      return await streamEvents(reply, generation, req.signal, (err) => {
        req.code = err.code;
        // the response went out as a 200 stream; the router judges the version by what happened
        req.outcomeStatus = err.status;
        if (!req.signal.aborted) request.log.warn({ err: err.cause ?? err, code: err.code }, `stream interrupted: ${err.message}`);
      });
    } catch (err) {
      return sendOpenAIError(request, reply, toTesseraError(err));
    }
  };

  const infer = { endpoint: 'infer' as const };
  app.post<{ Body: GenerateCall['body'] }>('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema }, errorHandler: openAIErrorHandler, config: infer }, handle('chat'));
  app.post<{ Body: GenerateCall['body'] }>('/v1/completions', { schema: { body: completionRequestSchema }, errorHandler: openAIErrorHandler, config: infer }, handle('completion'));
  app.get('/v1/models', { config: { endpoint: 'metadata' } }, async (_request, reply) => {
    const created = Math.floor(Date.now() / 1000);
    const data = registry
      .models()
      .filter((m) => [...m.versions.values()].some((v) => pickGenerative(v, 0)))
      .map((m) => ({ id: m.name, object: 'model', created, owned_by: 'tessera', root: m.name, parent: null }));
    return reply.send({ object: 'list', data });
  });
}

/** Body parsing and schema errors on the OpenAI routes, in OpenAI's shape. */
function openAIErrorHandler(this: FastifyInstance, err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  void sendOpenAIError(request, reply, toTesseraError(err));
}

/**
 * Writes the server-sent events: `data: {chunk}\n\n` per chunk (the backend's bytes when it gave
 * them), `data: [DONE]\n\n` at the end, straight to the socket; a full socket buffer pauses the
 * pulls from the backend (backpressure). A failure after the first byte ends the stream with an
 * error event (OpenAI's error object, as vLLM sends it) and `[DONE]`, never a silent hang. A client
 * that leaves closes the backend's iterator, which aborts the upstream request.
 */
async function streamEvents(reply: FastifyReply, generation: Generation, signal: AbortSignal, failed: (err: TesseraError) => void): Promise<FastifyReply> {
  const headers = { ...reply.getHeaders(), ...SSE_HEADERS };
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, headers as Record<string, string>);
  let ok = false;
  let failure: TesseraError | undefined;
  try {
    // a client that leaves aborts `signal`: the backend's pending step ends (its upstream request is
    // aborted) and the loop stops at the closed response
    for (let chunk = await generation.next(); chunk && !res.destroyed && !signal.aborted; chunk = await generation.next()) {
      if (!res.write(`data: ${chunk.json ?? JSON.stringify(chunk.data)}\n\n`)) await writable(res);
    }
    if (!res.destroyed && !signal.aborted) {
      res.end('data: [DONE]\n\n');
      ok = true;
    }
  } catch (err) {
    failure = isInterrupted(err);
    if (!res.destroyed) res.end(`data: ${JSON.stringify(openAIError(failure))}\n\ndata: [DONE]\n\n`);
  } finally {
    if (!ok) generation.close();
    generation.end(ok);
    const gone = signal.aborted || (!ok && !failure);
    if (failure ?? gone) failed(failure ?? new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the stream'));
  }
  return reply;
}

function isInterrupted(err: unknown): TesseraError {
  const e = toTesseraError(err);
  if (e.code === 'TESSERA_E_STREAM_INTERRUPTED' || e.code === 'TESSERA_E_REQUEST_CANCELLED') return e;
  return new TesseraError('TESSERA_E_STREAM_INTERRUPTED', `the stream broke after it started: ${errorMessage(err)}`, { cause: err, openai: e.openai ?? {} });
}
