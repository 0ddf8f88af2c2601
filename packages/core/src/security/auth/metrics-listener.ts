import type { FastifyInstance } from 'fastify';
import { sendError, toTesseraError } from '../../http/errors.js';
import type { AuthHook } from './auth-hook.js';

/**
 * With `auth.metrics: protected`, the bare `server.metricsPort` listener (no hooks, no edge of its
 * own) checks credentials too: every request but `/health` needs one with the `metrics` scope, as
 * `/metrics` does on the main port. With `open` it stays as it is.
 */
export function protectMetricsListener(app: FastifyInstance, auth: AuthHook): void {
  if (!auth.metricsProtected) return;
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url === '/health') return;
    try {
      await auth.checkScrape(request.headers);
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
