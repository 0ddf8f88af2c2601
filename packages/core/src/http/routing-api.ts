import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../errors.js';
import type { ModelEntry, ModelRegistry } from '../registry/model-registry.js';
import { sendError, toTesseraError } from './errors.js';

/**
 * The share of new requests each version gets now, from the router's own `weights`; undefined for
 * a router that declares none (the core does not guess by calling `select`, which may have effects).
 */
export function routeWeights(entry: ModelEntry): Record<string, number> | undefined {
  if (!entry.router.weights) return undefined;
  try {
    return { ...entry.router.weights(entry.candidates()) };
  } catch {
    return undefined;
  }
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
    versions: [...entry.versions.values()].map((v) => ({ version: v.version, state: v.state, ready: v.ready, weight: weights ? (weights[v.version] ?? 0) : null })),
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
      const entry = registry.require(request.params.model);
      request.tessera.model = entry.name;
      return reply.send(routingBody(entry));
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
