import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GenerateChunk, GenerateRequest, ModelInstance } from '../contracts/backend.js';
import type { RouteTarget } from '../contracts/router.js';
import type { ServingEvents } from '../contracts/events.js';
import type { OpenAIErrorFields } from '../errors.js';
import { TesseraError, errorMessage } from '../errors.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { ATTR, traceRoute } from '../telemetry/tracing.js';
import { clientGoneSignal } from './context.js';
import { toTesseraError } from './errors.js';

/** What the OpenAI routes need from the server. */
export interface OpenAIDeps {
  registry: ModelRegistry;
  events: ServingEvents;
  /** True while draining (new requests get 503). */
  draining: () => boolean;
}

/** Headers a backend may use or forward (`GenerateRequest.headers`). */
export const FORWARDED_HEADERS = ['x-session-id', 'x-request-id', 'traceparent', 'tracestate'] as const;

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

type GenerateBody = Record<string, unknown> & { model: string; stream?: boolean | null; stream_options?: { include_usage?: boolean | null } | null };

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
  if (err.headers) void reply.headers(err.headers);
  if (err.status >= 500 && err.status !== 503) request.log.error({ err: err.cause ?? err, code: err.code }, err.message);
  // a fastify schema error names the field: OpenAI puts it in `param`
  const validation = (err.cause as { validation?: { instancePath?: string; params?: { missingProperty?: string } }[] } | undefined)?.validation?.[0];
  const param = validation ? (validation.params?.missingProperty ?? validation.instancePath?.replace(/^\//, '').replaceAll('/', '.')) || null : null;
  return reply.code(err.status).type('application/json').send(JSON.stringify(openAIError(err, param)));
}

/** What the core tracks while a generation streams: the timings and token counts of DESIGN §6. */
class GenerationObserver {
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  /** Chunks that carried generated text, a fallback count when the engine reports no usage. */
  textChunks = 0;
  promptTokens: number | undefined;
  completionTokens: number | undefined;

  constructor(readonly started: number) {}

  see(chunk: GenerateChunk): void {
    if (chunk.data) this.#seeData(chunk.data);
    else if (chunk.json !== undefined) this.#seeJson(chunk.json);
  }

  #seeData(data: Readonly<Record<string, unknown>>): void {
    const { choices, usage } = data as { choices?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null };
    if (usage && typeof usage === 'object') {
      if (typeof usage.prompt_tokens === 'number') this.promptTokens = usage.prompt_tokens;
      if (typeof usage.completion_tokens === 'number') this.completionTokens = usage.completion_tokens;
    }
    if (Array.isArray(choices) && hasText(choices)) this.#text();
  }

  /** A forwarded chunk: parsed only when it carries usage; text is found in the string. */
  #seeJson(json: string): void {
    if (json.includes('"usage":{')) {
      try {
        this.#seeData(JSON.parse(json) as Record<string, unknown>);
      } catch {
        // not ours to judge: the client gets the bytes as the backend sent them
      }
      return;
    }
    if (TEXT_IN_JSON.test(json)) this.#text();
  }

  #text(): void {
    const now = performance.now();
    this.firstTokenAt ??= now;
    this.lastTokenAt = now;
    this.textChunks++;
  }

  emit(events: ServingEvents, v: ModelVersion, req: GenerateRequest, ok: boolean): void {
    const outputTokens = this.completionTokens ?? this.textChunks;
    const ttftMs = req.stream && this.firstTokenAt !== undefined ? this.firstTokenAt - this.started : undefined;
    const tpotMs =
      req.stream && this.firstTokenAt !== undefined && this.lastTokenAt !== undefined && outputTokens >= 2 ? (this.lastTokenAt - this.firstTokenAt) / (outputTokens - 1) : undefined;
    events.emit('generation', {
      model: v.model,
      version: v.version,
      kind: req.kind,
      stream: req.stream,
      ok,
      ...(ttftMs !== undefined ? { ttftMs } : {}),
      ...(tpotMs !== undefined ? { tpotMs } : {}),
      ...(this.promptTokens !== undefined ? { promptTokens: this.promptTokens } : {}),
      ...(this.completionTokens !== undefined ? { completionTokens: this.completionTokens } : {}),
      durationMs: performance.now() - this.started,
    });
  }
}

/** Generated text (or a tool call) in a serialised chunk: a non-empty content, text or reasoning string. */
const TEXT_IN_JSON = /"(?:content|text|reasoning_content)":"(?!")|"tool_calls":\[\{/;

/** The usage-only chunk the core asked for on the client's behalf (`choices: []` with usage). */
function isUsageOnly(chunk: GenerateChunk): boolean {
  if (chunk.data) {
    const { choices, usage } = chunk.data as { choices?: unknown; usage?: unknown };
    return Array.isArray(choices) && choices.length === 0 && !!usage;
  }
  const json = chunk.json ?? '';
  return json.includes('"choices":[]') && json.includes('"usage":{');
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

function hasText(choices: unknown[]): boolean {
  for (const c of choices as { delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: unknown }; text?: unknown }[]) {
    if (typeof c.text === 'string' && c.text.length > 0) return true;
    const d = c.delta;
    if (d && ((typeof d.content === 'string' && d.content.length > 0) || (typeof d.reasoning_content === 'string' && d.reasoning_content.length > 0) || d.tool_calls)) return true;
  }
  return false;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/**
 * The OpenAI-compatible API for models whose instances implement `generate`:
 * `POST /v1/chat/completions`, `POST /v1/completions` (streaming as server-sent events and not) and
 * `GET /v1/models`. Errors use OpenAI's `{"error": {message, type, param, code}}`.
 *
 * To count tokens for every stream, the core asks the backend for usage (`stream_options.include_usage`)
 * and drops the usage-only chunk when the client did not ask for it; nothing else in the body changes.
 */
export function registerOpenAI(app: FastifyInstance, deps: OpenAIDeps): void {
  const { registry, events } = deps;
  let rotation = 0;

  const handle = (kind: GenerateRequest['kind']) => async (request: FastifyRequest<{ Body: GenerateBody }>, reply: FastifyReply): Promise<FastifyReply> => {
    const ctx = request.tessera;
    ctx.protocol = 'openai';
    const started = ctx.started;
    let entry: ModelEntry | undefined;
    let v: ModelVersion | undefined;
    let target: RouteTarget | undefined;
    let observer: GenerationObserver | undefined;
    let req: GenerateRequest | undefined;
    let done: (() => void) | undefined;
    const finish = (ok: boolean, status: number): void => {
      if (!done) return;
      done();
      done = undefined;
      if (observer && v && req) {
        observer.emit(events, v, req, ok);
        if (ctx.span) {
          ctx.spanAttributes = {
            ...(observer.promptTokens !== undefined ? { [ATTR.inputTokens]: observer.promptTokens } : {}),
            ...(observer.completionTokens !== undefined ? { [ATTR.outputTokens]: observer.completionTokens } : {}),
          };
        }
      }
      if (entry && target) entry.router.observe(target, { status, durationMs: performance.now() - started });
    };
    try {
      if (deps.draining()) throw new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server is shutting down', { headers: { 'retry-after': '1' } });
      const body = request.body;
      entry = registry.require(body.model);
      ctx.model = entry.name;
      target = entry.router.select({ model: entry.name, headers: request.headers }, entry.candidates());
      traceRoute(ctx.trace, entry.name, target.version, target.shadow);
      v = registry.requireVersion(entry, target.version);
      ctx.version = v.version;
      if (!v.ready) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${entry.name}' version ${v.version} is ${v.state}`, { headers: { 'retry-after': '1' } });
      const instance = pickGenerative(v, rotation++);
      if (!instance) throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' is not a generative model: use the Open Inference Protocol (/v2/models/${entry.name}/infer)`);
      const stream = body.stream === true;
      const wantsUsage = body.stream_options?.include_usage === true;
      // ask for usage on every stream so tokens are counted; the client sees it only if it asked
      const upstreamBody = stream && !wantsUsage ? { ...body, stream_options: { ...body.stream_options, include_usage: true } } : body;
      req = { kind, body: upstreamBody, stream, headers: pickHeaders(request), ...(ctx.trace ? { trace: ctx.trace } : {}) };
      observer = new GenerationObserver(started);
      done = v.beginGeneration();
      const signal = clientGoneSignal(request, reply);
      const iterator = instance.generate!(req, signal)[Symbol.asyncIterator]();
      // Wait for the first chunk before answering: a failure before it is a plain HTTP error with
      // its status (and the backend may still retry elsewhere).
      const first = await iterator.next();
      if (!stream) {
        if (first.done) throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', 'the backend ended the generation without a response');
        observer.see(first.value);
        await iterator.return?.();
        finish(true, 200);
        return reply.type('application/json').send(first.value.json ?? JSON.stringify(first.value.data));
      }
      return await streamEvents(reply, first, iterator, observer, wantsUsage, signal, (ok, status, err) => {
        if (err) {
          ctx.code = err.code;
          if (!signal.aborted) request.log.warn({ err: err.cause ?? err, code: err.code }, `stream interrupted: ${err.message}`);
        }
        finish(ok, status);
      });
    } catch (err) {
      const e = toTesseraError(err);
      finish(false, e.status);
      return sendOpenAIError(request, reply, e);
    }
  };

  app.post<{ Body: GenerateBody }>('/v1/chat/completions', { schema: { body: chatCompletionRequestSchema }, errorHandler: openAIErrorHandler }, handle('chat'));
  app.post<{ Body: GenerateBody }>('/v1/completions', { schema: { body: completionRequestSchema }, errorHandler: openAIErrorHandler }, handle('completion'));
  app.get('/v1/models', async (_request, reply) => {
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

function pickGenerative(v: ModelVersion, turn: number): ModelInstance | undefined {
  const n = v.instances.length;
  for (let i = 0; i < n; i++) {
    const inst = v.instances[(turn + i) % n]!;
    if (inst.generate) return inst;
  }
  return undefined;
}

function pickHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  if (!out['x-request-id']) out['x-request-id'] = String(request.id);
  return out;
}

/**
 * Writes the server-sent events: `data: {chunk}\n\n` per chunk (the backend's bytes when it gave
 * them), `data: [DONE]\n\n` at the end, straight to the socket; a full socket buffer pauses the
 * pulls from the backend (backpressure). A failure after the first byte ends the stream with an
 * error event (OpenAI's error object, as vLLM sends it) and `[DONE]`, never a silent hang. A client
 * that leaves closes the backend's iterator, which aborts the upstream request. `end` is called
 * once with the outcome.
 */
async function streamEvents(
  reply: FastifyReply,
  first: IteratorResult<GenerateChunk>,
  iterator: AsyncIterator<GenerateChunk>,
  observer: GenerationObserver,
  wantsUsage: boolean,
  signal: AbortSignal,
  end: (ok: boolean, status: number, err?: TesseraError) => void,
): Promise<FastifyReply> {
  const headers = { ...reply.getHeaders(), ...SSE_HEADERS };
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, headers as Record<string, string>);
  let ok = false;
  let failure: TesseraError | undefined;
  try {
    // a client that leaves aborts `signal`: the backend's pending step ends (its upstream request is
    // aborted) and the loop stops at the closed response
    for (let next = first; !next.done && !res.destroyed && !signal.aborted; next = await iterator.next()) {
      const chunk = next.value;
      observer.see(chunk);
      if (!wantsUsage && isUsageOnly(chunk)) continue;
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
    // closes the backend's generator (it aborts its upstream request); not awaited: a generator
    // still inside a step finishes that step first
    if (!ok) void iterator.return?.().catch(() => undefined);
    const gone = signal.aborted || (!ok && !failure);
    end(ok, ok ? 200 : gone ? 499 : (failure?.status ?? 500), failure ?? (gone ? new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client closed the stream') : undefined));
  }
  return reply;
}

function isInterrupted(err: unknown): TesseraError {
  const e = toTesseraError(err);
  if (e.code === 'TESSERA_E_STREAM_INTERRUPTED' || e.code === 'TESSERA_E_REQUEST_CANCELLED') return e;
  return new TesseraError('TESSERA_E_STREAM_INTERRUPTED', `the stream broke after it started: ${errorMessage(err)}`, { cause: err, openai: e.openai ?? {} });
}
