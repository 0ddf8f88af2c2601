import type { Context, Span } from '@opentelemetry/api';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Per-request facts the serving path records for the access log and the telemetry events. */
export interface RequestContext {
  protocol: string;
  /** performance.now() when the request arrived. */
  started: number;
  /** Set once the request has been counted and logged. */
  finished?: boolean;
  model?: string;
  version?: string;
  code?: string;
  /** Aborted when the client goes away before the answer is sent. */
  signal?: AbortSignal;
  /** The server span and its context, while tracing is on. */
  span?: Span;
  trace?: Context;
  /** Attributes for the server span, set by the handler (e.g. token counts). */
  spanAttributes?: Record<string, string | number | boolean>;
}

declare module 'fastify' {
  interface FastifyRequest {
    tessera: RequestContext;
  }
}

/**
 * An AbortSignal that fires when the client closes the connection before the reply is written, so
 * that queued work for a departed client is dropped.
 */
export function clientGoneSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  if (request.tessera.signal) return request.tessera.signal;
  const controller = new AbortController();
  const res = reply.raw;
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  request.tessera.signal = controller.signal;
  return controller.signal;
}
