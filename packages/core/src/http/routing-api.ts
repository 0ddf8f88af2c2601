import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteCandidate, Router } from '../contracts/router.js';
import { errorMessage } from '../errors.js';
import type { ModelEntry, ModelRegistry } from '../registry/model-registry.js';
import { sendError, toTesseraError } from './errors.js';

/**
 * The share of new requests each version gets now: the router's own `weights`, or — for a router
 * that declares none — 1 for the version a request without a version would get.
 */
export function routeWeights(entry: ModelEntry): Record<string, number> {
  const candidates = entry.candidates();
  try {
    if (entry.router.weights) return { ...entry.router.weights(candidates) };
  } catch {
    // a router that cannot say: fall back to its choice
  }
  return fallbackWeights(entry.router, entry.name, candidates);
}

function fallbackWeights(router: Router, model: string, candidates: RouteCandidate[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(candidates.map((c) => [c.version, 0]));
  try {
    out[router.select({ model, kind: 'tensor', protocol: 'http', id: 'weights', headers: {} }, candidates).version] = 1;
  } catch {
    // no version is ready: every weight is 0
  }
  return out;
}

/** One model's routing: strategy, versions with state and weight, and the router's own status. */
export function routingBody(entry: ModelEntry): Record<string, unknown> {
  const weights = routeWeights(entry);
  let status: unknown;
  try {
    status = entry.router.status();
  } catch (err) {
    status = { strategy: entry.config.routing.strategy, error: `status() failed: ${errorMessage(err)}` };
  }
  return {
    model: entry.name,
    strategy: entry.config.routing.strategy,
    versions: [...entry.versions.values()].map((v) => ({ version: v.version, state: v.state, ready: v.ready, weight: weights[v.version] ?? 0 })),
    status,
  };
}

/**
 * `GET /v1/routing` (every model) and `GET /v1/routing/{model}`: how each model's requests are
 * routed now, for people, dashboards and rollout tooling. The body of a router's `status()` is its
 * own (a canary router shows its stage, weights and judgements).
 */
export function registerRoutingApi(app: FastifyInstance, deps: { registry: ModelRegistry }): void {
  const { registry } = deps;
  const admin = { config: { endpoint: 'admin' as const } };
  app.get('/v1/routing', admin, async (_request, reply) => reply.send({ models: registry.models().map(routingBody) }));
  app.get('/v1/routing/:model', admin, async (request: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
    try {
      return reply.send(routingBody(registry.require(request.params.model)));
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
