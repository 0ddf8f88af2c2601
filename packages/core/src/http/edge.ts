import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EndpointKind } from '../contracts/hook.js';
import { TesseraError } from '../errors.js';
import type { ServingPipeline } from '../pipeline/serving-pipeline.js';
import { ServingRequest } from '../pipeline/serving-request.js';
import { ATTR, endServerSpan, startServerSpan } from '../telemetry/tracing.js';
import { clientGoneSignal } from './context.js';
import { sendError, toTesseraError } from './errors.js';
import { sendOpenAIError } from './openai.js';

export interface EdgeOptions {
  pipeline: ServingPipeline;
  /** Whether a tracing SDK is registered (checked once at start). */
  tracing: boolean;
  bodyLimit: number;
  /**
   * Whether the server is draining: every answer then carries `Connection: close` (keep-alive
   * clients move to another replica), and new requests other than probes and scrapes get 503.
   */
  draining: () => boolean;
  /** A request arrived / was answered: the server's in-flight count (drain waits for it). */
  arrived: () => void;
  answered: () => void;
}

/**
 * The HTTP edge every request passes: it makes the request's `ServingRequest`, starts its server
 * span, runs the pipeline's admission (onRequest hooks), and ends it exactly once when the answer
 * was sent — whether the response finished, the client cut it off, or left while uploading — with
 * the pipeline's accounting, the span and one access-log line. Errors thrown anywhere become
 * `{"error", "code"}` (OpenAI's shape under /v1) here.
 */
export function installEdge(app: FastifyInstance, options: EdgeOptions): void {
  const { pipeline, tracing } = options;
  app.decorateRequest('tessera', null as unknown as ServingRequest);
  // The access log: one line per request, of the fields below only (no headers, no body), so it
  // skips the server logger's redaction, which walks its wildcard paths over every line it writes
  // (10 µs a line; the access log is most of the lines). reqId as fastify's request logger binds it.
  const access = app.log.child({}, { redact: [] });

  const finish = (request: FastifyRequest, status: number, durationMs: number): void => {
    const req = request.tessera;
    if (!req || req.finished) return;
    pipeline.finish(req, status, durationMs);
    options.answered();
    if (req.span) {
      endServerSpan(
        req.span,
        status,
        { [ATTR.protocol]: req.protocol, ...(req.model ? { [ATTR.model]: req.model } : {}), ...(req.version ? { [ATTR.version]: req.version } : {}), ...req.spanAttributes },
        req.code,
      );
    }
    access.info(
      {
        reqId: request.id,
        method: request.method,
        // the path only: query strings can carry tokens
        url: req.path,
        status,
        model: req.model,
        version: req.version,
        code: req.code,
        ms: Math.round(durationMs * 100) / 100,
        ...(req.span ? { traceId: req.span.spanContext().traceId } : {}),
      },
      'request',
    );
  };

  app.addHook('onRequest', async (request, reply) => {
    const started = performance.now();
    // fastify builds a new routeOptions object on every read: read it once
    const routeOptions = request.routeOptions;
    const route = routeOptions.url;
    const endpoint: EndpointKind = route === undefined ? 'unknown' : (routeOptions.config.endpoint ?? 'admin');
    const url = request.url;
    const query = url.indexOf('?');
    const req = new ServingRequest({
      id: String(request.id),
      method: request.method,
      path: query === -1 ? url : url.slice(0, query),
      route,
      endpoint,
      params: (request.params as Record<string, string> | undefined) ?? {},
      headers: request.headers,
      ip: request.ip,
      started,
      clientGone: () => clientGoneSignal(reply),
    });
    request.tessera = req;
    options.arrived();
    if (tracing) {
      const { span, context } = startServerSpan(request.method, route, req.path, request.headers, started);
      req.span = span;
      req.trace = context;
      void reply.header('x-trace-id', span.spanContext().traceId);
    }
    // A response the client cut off (a stream it left) fires neither `finish` nor onResponse, and
    // a hijacked one (server-sent events) no onResponse: `close` always comes, once.
    const res = reply.raw;
    res.once('close', () => finish(request, res.writableFinished ? res.statusCode : 499, performance.now() - started));
    if (options.draining()) {
      void reply.header('connection', 'close');
      if (endpoint !== 'health' && endpoint !== 'metrics') throw new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server is shutting down; retry on another replica', { headers: DRAINING_HEADERS });
    }
    if (pipeline.admits) {
      await pipeline.admit(req);
      if (req.responseHeaders) void reply.headers(req.responseHeaders);
    }
    // deadline headers, and a full queue of the model the URL names: refused before the body is read
    if (endpoint === 'infer') pipeline.screen(req);
  });
  // answers sent while draining close their connection, also those of requests that arrived
  // before: a keep-alive client then reconnects (to another replica) instead of reusing a
  // connection the server is about to close under it
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (options.draining()) void reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', async (request, reply) => {
    finish(request, request.tessera?.clientLeft ? 499 : reply.statusCode, reply.elapsedTime);
  });
  // A client that goes away while its body is still arriving gets no onResponse: count it here
  // (499), or drain would wait for it until the grace period ends.
  app.addHook('onRequestAbort', async (request) => {
    finish(request, 499, performance.now() - (request.tessera?.started ?? performance.now()));
  });
  app.setErrorHandler((err, request, reply) => {
    const e = toTesseraError(err, options.bodyLimit);
    return openAIShaped(request.tessera?.path ?? request.url) ? sendOpenAIError(request, reply, e) : sendError(request, reply, e);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const err = new TesseraError('TESSERA_E_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${path}`);
    return openAIShaped(path) ? sendOpenAIError(request, reply, err) : sendError(request, reply, err);
  });
}

const DRAINING_HEADERS = { 'retry-after': '1', connection: 'close' };

/** OpenAI clients parse errors under /v1 in OpenAI's shape; /v1/predict and /v1/routing are Tessera's own. */
function openAIShaped(path: string): boolean {
  return path.startsWith('/v1/') && path !== '/v1/predict' && path !== '/v1/routing' && !path.startsWith('/v1/routing/');
}
