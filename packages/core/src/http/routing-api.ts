import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RoutingActionInput } from '../contracts/router.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
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

/** Keys of the body the core owns; a router's `status()` cannot override them. */
const CORE_KEYS = new Set(['model', 'strategy', 'versions', 'weights', 'actions']);

/**
 * One model's routing: strategy, versions with state and weight, the weights by version, the
 * actions the router takes, then the router's own `status()` fields (a canary's `state`, `stats`,
 * `history`, …) at the top level.
 */
export function routingBody(entry: ModelEntry): Record<string, unknown> {
  const weights = routeWeights(entry);
  let status: Record<string, unknown>;
  try {
    status = { ...entry.router.status() };
  } catch (err) {
    status = { error: `status() failed: ${errorMessage(err)}` };
  }
  const body: Record<string, unknown> = {
    model: entry.name,
    strategy: entry.config.routing.strategy,
    versions: [...entry.versions.values()].map((v) => ({ version: v.version, state: v.state, ready: v.ready, weight: weights ? (weights[v.version] ?? 0) : null })),
    weights: weights ?? null,
    actions: [...(entry.router.actions ?? [])],
  };
  for (const [key, value] of Object.entries(status)) if (!CORE_KEYS.has(key)) body[key] = value;
  return body;
}

const ACTION_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 64 },
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;

/**
 * `GET /v1/routing` (every model) and `GET /v1/routing/{model}`: how each model's requests are
 * routed now, for people, dashboards and rollout tooling. `POST /v1/routing/{model}/{action}`: an
 * operator's action on the router (a canary's promote, rollback, pause, resume), answered with the
 * routing body after it took effect.
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
  app.post<{ Params: { model: string; action: string }; Body: RoutingActionInput | undefined }>(
    '/v1/routing/:model/:action',
    {
      ...admin,
      schema: { body: ACTION_BODY },
      // the body is optional: `curl -X POST …/rollback` with none is the common call
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      try {
        const entry = registry.require(request.params.model);
        request.tessera.model = entry.name;
        const { action } = request.params;
        const { router } = entry;
        if (!router.act || !router.actions?.includes(action)) {
          const known = router.actions?.length ? `it takes ${router.actions.map((a) => `'${a}'`).join(', ')}` : 'it takes none';
          throw new TesseraError('TESSERA_E_ROUTING_ACTION_UNKNOWN', `the '${entry.config.routing.strategy}' router of model '${entry.name}' has no action '${action}': ${known}`);
        }
        const input: RoutingActionInput = { ...(request.body?.version !== undefined ? { version: request.body.version } : {}), ...(request.body?.reason !== undefined ? { reason: request.body.reason } : {}) };
        try {
          await router.act(action, input);
        } catch (err) {
          if (isTesseraError(err)) throw err;
          throw new TesseraError('TESSERA_E_ROUTER_FAILED', `model '${entry.name}': routing strategy '${entry.config.routing.strategy}' failed to ${action}: ${errorMessage(err)}`, { cause: err });
        }
        request.log.info({ model: entry.name, action, ...input }, `routing of '${entry.name}': ${action}${input.reason ? ` (${input.reason})` : ''}`);
        return reply.send(routingBody(entry));
      } catch (err) {
        return sendError(request, reply, toTesseraError(err));
      }
    },
  );
}
