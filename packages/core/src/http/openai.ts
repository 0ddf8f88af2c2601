import { setMaxListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LimitsConfig } from '../config/types.js';
import type { OpenAIErrorFields } from '../errors.js';
import { TesseraError, errorMessage } from '../errors.js';
import type { Generation } from '../pipeline/generation.js';
import { pickGenerative } from '../pipeline/generation.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import type { GenerateCall } from '../pipeline/types.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { mayList } from '../security/auth/access.js';
import { principalOf } from '../security/principal.js';
import { errorHeaders, toTesseraError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';

/** What the OpenAI routes need from the server. */
export interface OpenAIDeps {
  /** `server.limits` (`maxMessages`, `maxChoices`); default `DEFAULT_LIMITS`. */
  limits?: Pick<LimitsConfig, 'maxMessages' | 'maxChoices'>;
  registry: ModelRegistry;
  pipeline: ServingPipeline;
  /**
   * Aborts when the server's shutdown grace period is over: streams still running end with an
   * error event (TESSERA_E_SERVER_DRAINING) and `[DONE]` instead of a cut connection.
   */
  streamsCut?: AbortSignal;
}

const streamOptionsSchema = {
  anyOf: [{ type: 'null' }, { type: 'object', properties: { include_usage: { type: ['boolean', 'null'] }, continuous_usage_stats: { type: ['boolean', 'null'] } } }],
};

/** Largest token count an engine takes (int32: larger values overflow engines' counters). */
const MAX_TOKENS = 2 ** 31 - 1;

/** Fields both generation bodies share, typed (a wrong type is a 400 here, not an engine's 500). */
function commonFields(limits: Pick<LimitsConfig, 'maxChoices'>): Record<string, unknown> {
  const number = { type: ['number', 'null'] };
  return {
    model: { type: 'string', minLength: 1 },
    stream: { type: ['boolean', 'null'] },
    stream_options: streamOptionsSchema,
    n: { type: ['integer', 'null'], minimum: 1, maximum: limits.maxChoices },
    max_tokens: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TOKENS },
    temperature: number,
    top_p: number,
    presence_penalty: number,
    frequency_penalty: number,
    seed: { type: ['integer', 'null'] },
    stop: { anyOf: [{ type: 'null' }, { type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    user: { type: ['string', 'null'] },
  };
}

/**
 * JSON Schema of a chat completion body: what the gateway relies on, common fields typed, and the
 * sizes `server.limits` bounds (`messages`, `n`). Every other field (tools, vLLM's extras such as
 * `top_k` or `structured_outputs`) is the engine's business and passes through untouched.
 */
export function chatCompletionRequestSchema(limits: Pick<LimitsConfig, 'maxMessages' | 'maxChoices'> = DEFAULT_LIMITS): Record<string, unknown> {
  return {
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      ...commonFields(limits),
      messages: { type: 'array', minItems: 1, maxItems: limits.maxMessages, items: { type: 'object', required: ['role'], properties: { role: { type: 'string' } } } },
      max_completion_tokens: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TOKENS },
      logprobs: { type: ['boolean', 'null'] },
    },
  };
}

/**
 * JSON Schema of a completion body: `prompt` a string or a list of strings, token ids or lists
 * of token ids (OpenAI's four forms), `n` and `best_of` within `server.limits.maxChoices`.
 */
export function completionRequestSchema(limits: Pick<LimitsConfig, 'maxChoices'> = DEFAULT_LIMITS): Record<string, unknown> {
  return {
    type: 'object',
    required: ['model', 'prompt'],
    properties: {
      ...commonFields(limits),
      prompt: { anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'array', items: { type: 'integer' } }] } }] },
      best_of: { type: ['integer', 'null'], minimum: 1, maximum: limits.maxChoices },
      logprobs: { type: ['integer', 'null'], minimum: 0 },
    },
  };
}

/** The `server.limits` key behind a schema refusal, for the message (ajv's names only the field). */
function limitKey(validation: { instancePath?: string; keyword?: string } | undefined): string | undefined {
  if (!validation) return undefined;
  if (validation.instancePath === '/messages' && validation.keyword === 'maxItems') return 'server.limits.maxMessages';
  if ((validation.instancePath === '/n' || validation.instancePath === '/best_of') && validation.keyword === 'maximum') return 'server.limits.maxChoices';
  return undefined;
}

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
  const limits = deps.limits ?? DEFAULT_LIMITS;
  // one listener per stream in flight: hundreds are expected, not a leak
  if (deps.streamsCut) setMaxListeners(0, deps.streamsCut);

  const handle = (kind: GenerateCall['kind']) => async (request: FastifyRequest<{ Body: GenerateCall['body'] }>, reply: FastifyReply): Promise<FastifyReply> => {
    const req = request.tessera;
    req.protocol = 'openai';
    try {
      const generation = await pipeline.generate(req, { kind, body: request.body });
      if (generation.response) {
        generation.end(true);
        return reply.type('application/json').send(generation.response.json ?? JSON.stringify(generation.response.data));
      }
      return await streamEvents(reply, generation, req.signal, deps.streamsCut, (err) => {
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
  app.post<{ Body: GenerateCall['body'] }>('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema(limits) }, errorHandler: openAIErrorHandler, config: infer }, handle('chat'));
  app.post<{ Body: GenerateCall['body'] }>('/v1/completions', { schema: { body: completionRequestSchema(limits) }, errorHandler: openAIErrorHandler, config: infer }, handle('completion'));
  app.get('/v1/models', { config: { endpoint: 'metadata' } }, async (request, reply) => {
    const created = Math.floor(Date.now() / 1000);
    // a model-restricted credential (auth) sees only the models it may use
    const principal = principalOf(request.tessera);
    const data = registry
      .models()
      .filter((m) => mayList(principal, m.name) && [...m.versions.values()].some((v) => pickGenerative(v, 0)))
      .map((m) => ({ id: m.name, object: 'model', created, owned_by: 'tessera', root: m.name, parent: null }));
    return reply.send({ object: 'list', data });
  });
}

/** Body parsing and schema errors on the OpenAI routes, in OpenAI's shape. */
function openAIErrorHandler(this: FastifyInstance, err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  let e = toTesseraError(err, request.routeOptions.bodyLimit);
  const key = limitKey((err as { validation?: { instancePath?: string; keyword?: string }[] }).validation?.[0]);
  if (key) e = new TesseraError(e.code, `${e.message} (${key})`, { cause: err });
  void sendOpenAIError(request, reply, e);
}

/**
 * Writes the server-sent events: `data: {chunk}\n\n` per chunk (the backend's bytes when it gave
 * them), `data: [DONE]\n\n` at the end, straight to the socket; a full socket buffer pauses the
 * pulls from the backend (backpressure). A failure after the first byte ends the stream with an
 * error event (OpenAI's error object, as vLLM sends it) and `[DONE]`, never a silent hang. A client
 * that leaves closes the backend's iterator, which aborts the upstream request. When `cut` aborts
 * (the grace period is over) the stream ends from its listener at once, whatever the loop awaits:
 * one listener per stream rather than a race per chunk.
 */
async function streamEvents(reply: FastifyReply, generation: Generation, signal: AbortSignal, cut: AbortSignal | undefined, failed: (err: TesseraError) => void): Promise<FastifyReply> {
  const headers = { ...reply.getHeaders(), ...SSE_HEADERS };
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, headers as Record<string, string>);
  let ok = false;
  let failure: TesseraError | undefined;
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    cut?.removeEventListener('abort', onCut);
    if (!ok) generation.close();
    generation.end(ok);
    const gone = signal.aborted || (!ok && !failure);
    if (failure ?? gone) failed(failure ?? new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the stream'));
  };
  const fail = (err: TesseraError): void => {
    if (failure || ok) return;
    failure = err;
    if (!res.destroyed && !res.writableEnded) res.end(`data: ${JSON.stringify(openAIError(failure))}\n\ndata: [DONE]\n\n`);
  };
  function onCut(): void {
    fail(new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server shut down before the stream ended (server.shutdownGracePeriod is over); retry the request on another replica'));
    settle();
  }
  if (cut?.aborted) onCut();
  else cut?.addEventListener('abort', onCut, { once: true });
  try {
    // a client that leaves aborts `signal`: the backend's pending step ends (its upstream request is
    // aborted) and the loop stops at the closed response
    for (let chunk = settled ? undefined : await generation.next(); chunk && !failure && !res.destroyed && !signal.aborted; chunk = await generation.next()) {
      if (!res.write(`data: ${chunk.json ?? JSON.stringify(chunk.data)}\n\n`)) await writable(res);
    }
    if (!failure && !res.destroyed && !signal.aborted) {
      res.end('data: [DONE]\n\n');
      ok = true;
    }
  } catch (err) {
    fail(isInterrupted(err));
  } finally {
    settle();
  }
  return reply;
}

function isInterrupted(err: unknown): TesseraError {
  const e = toTesseraError(err);
  if (e.code === 'TESSERA_E_STREAM_INTERRUPTED' || e.code === 'TESSERA_E_REQUEST_CANCELLED' || e.code === 'TESSERA_E_SERVER_DRAINING' || e.code === 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED') return e;
  return new TesseraError('TESSERA_E_STREAM_INTERRUPTED', `the stream broke after it started: ${errorMessage(err)}`, { cause: err, openai: e.openai ?? {} });
}
