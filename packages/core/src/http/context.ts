import type { FastifyReply } from 'fastify';
import type { ServingRequest } from '../pipeline/serving-request.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request on its way through the serving pipeline (created by the edge's onRequest hook). */
    tessera: ServingRequest;
  }
}

/**
 * An AbortSignal that fires when the client closes the connection before the reply is written, so
 * that queued work for a departed client is dropped.
 */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const res = reply.raw;
  if (res.destroyed && !res.writableFinished) controller.abort();
  else {
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
  }
  return controller.signal;
}
