import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelState } from '../contracts/events.js';
import { TesseraError } from '../errors.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { mayList } from '../security/auth/access.js';
import { principalOf } from '../security/principal.js';
import { sendError, toTesseraError } from './errors.js';

const ADMIN = { config: { endpoint: 'admin' as const } };

/** Triton's model states, as its repository index reports them. */
const TRITON_STATES: Record<ModelState, string> = {
  loading: 'LOADING',
  warming: 'LOADING',
  ready: 'READY',
  draining: 'UNLOADING',
  closed: 'UNAVAILABLE',
  failed: 'UNAVAILABLE',
};

/**
 * The OIP v2 model repository extension over the configured models: list them with their state,
 * unload one (drain, then release) and load it again. Models not in the config cannot be loaded.
 */
export function registerRepository(app: FastifyInstance, deps: { registry: ModelRegistry }): void {
  const { registry } = deps;

  app.post('/v2/repository/index', ADMIN, async (request: FastifyRequest<{ Body: { ready?: boolean } | undefined }>, reply: FastifyReply) => {
    const onlyReady = request.body?.ready === true;
    // a model-restricted credential (auth) sees only the models it may use
    const principal = principalOf(request.tessera);
    const rows = registry.models().filter((m) => mayList(principal, m.name)).flatMap((m) =>
      [...m.versions.values()]
        .filter((v) => !onlyReady || v.ready)
        .map((v) => ({ name: m.name, version: v.version, state: TRITON_STATES[v.state], ...(v.reason ? { reason: v.reason } : {}) })),
    );
    return reply.send(rows);
  });

  app.post('/v2/repository/models/:model/load', ADMIN, async (request: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
    try {
      request.tessera.model = registry.require(request.params.model).name;
      const failed = await registry.loadModel(request.params.model);
      if (failed.length > 0) {
        throw new TesseraError('TESSERA_E_MODEL_LOAD', failed.map((v) => v.reason ?? `${v.model} v${v.version} failed`).join('; '));
      }
      return reply.send({});
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });

  app.post('/v2/repository/models/:model/unload', ADMIN, async (request: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
    try {
      request.tessera.model = registry.require(request.params.model).name;
      await registry.unloadModel(request.params.model);
      return reply.send({});
    } catch (err) {
      return sendError(request, reply, toTesseraError(err));
    }
  });
}
