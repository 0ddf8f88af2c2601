import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelState } from '../contracts/events.js';
import type { ErrorCode } from '../errors.js';
import { TesseraError, errorMessage } from '../errors.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { mayList } from '../security/auth/access.js';
import { principalOf } from '../security/principal.js';
import type { ConfigGeneration, ReloadOutcome } from '../server/reload.js';
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

/** What the repository endpoints need besides the registry: the config generation, and the config as it is on disk now. */
export interface RepositoryDeps {
  registry: ModelRegistry;
  /** The generation serving and the last reload. */
  generation: () => { generation: ConfigGeneration; last: ReloadOutcome | undefined };
  /**
   * The models the repository folder has now (rescanned): the index lists those not served, with
   * the versions their policy would serve, or why they cannot be (a config.pbtxt that does not parse).
   */
  discover?: () => { name: string; versions: string[]; reason?: string }[];
  /** Adds a model the config has now and the server does not serve (`undefined`: the config does not have it). */
  add?: (model: string) => Promise<ReloadOutcome | undefined>;
}

/** The header every repository answer carries: the config generation serving. */
export const GENERATION_HEADER = 'tessera-config-generation';

/**
 * The OIP v2 model repository extension: list the models with their state (the config read again,
 * so models added to it or to its repository folder since the last reload are listed as
 * `UNAVAILABLE`, not loaded), unload one (drain, then release) and load it again — or load one the
 * config has and the server does not serve yet. `GET /v2/repository/index` adds the config
 * generation serving and the last reload's outcome.
 */
export function registerRepository(app: FastifyInstance, deps: RepositoryDeps): void {
  const { registry } = deps;

  const rows = async (request: FastifyRequest, onlyReady: boolean): Promise<IndexRow[]> => {
    // a model-restricted credential (auth) sees only the models it may use
    const principal = principalOf(request.tessera);
    const served = registry.models().filter((m) => mayList(principal, m.name)).flatMap((m) =>
      [...m.versions.values()]
        .filter((v) => !onlyReady || v.ready)
        .map((v): IndexRow => ({ name: m.name, version: v.version, state: TRITON_STATES[v.state], ...(v.reason ? { reason: v.reason } : {}) })),
    );
    if (onlyReady || !deps.discover) return served;
    let found: ReturnType<NonNullable<RepositoryDeps['discover']>>;
    try {
      found = deps.discover();
    } catch (err) {
      request.log.warn({ err }, `repository index: the repository folder could not be read, so only served models are listed: ${errorMessage(err)}`);
      return served;
    }
    const notLoaded = (name: string): string => `not loaded: new in the repository folder; load it with POST /v2/repository/models/${name}/load, or reload the config`;
    const waiting = found
      .filter((m) => !registry.get(m.name) && mayList(principal, m.name))
      .flatMap((m): IndexRow[] => (m.versions.length > 0 && !m.reason ? m.versions.map((version) => ({ name: m.name, version, state: 'UNAVAILABLE', reason: notLoaded(m.name) })) : [{ name: m.name, state: 'UNAVAILABLE', reason: m.reason ?? 'no version folder holds a model file' }]));
    return [...served, ...waiting];
  };

  app.post('/v2/repository/index', ADMIN, async (request: FastifyRequest<{ Body: { ready?: boolean } | undefined }>, reply: FastifyReply) => {
    reply.header(GENERATION_HEADER, String(deps.generation().generation.generation));
    return reply.send(await rows(request, request.body?.ready === true));
  });

  app.get('/v2/repository/index', ADMIN, async (request: FastifyRequest, reply: FastifyReply) => {
    const { generation, last } = deps.generation();
    reply.header(GENERATION_HEADER, String(generation.generation));
    return reply.send({
      generation: generation.generation,
      config_file: generation.configFile,
      applied_at: generation.appliedAt,
      ...(last ? { last_reload: { ok: last.ok, at: last.at, generation: last.generation, duration_ms: Math.round(last.durationMs), ...(last.error ? { error: last.error } : {}), ...(last.code ? { code: last.code } : {}), ...(last.restartNeeded.length > 0 ? { restart_needed: last.restartNeeded } : {}) } } : {}),
      models: await rows(request, false),
    });
  });

  app.post('/v2/repository/models/:model/load', ADMIN, async (request: FastifyRequest<{ Params: { model: string } }>, reply: FastifyReply) => {
    try {
      const name = request.params.model;
      if (!registry.get(name) && deps.add) {
        // not served: perhaps the config (or its repository folder) has it now
        const outcome = await deps.add(name);
        if (outcome && !outcome.ok) throw new TesseraError((outcome.code as ErrorCode | undefined) ?? 'TESSERA_E_MODEL_LOAD', outcome.error ?? `loading '${name}' failed`);
        if (outcome) {
          request.tessera.model = name;
          reply.header(GENERATION_HEADER, String(outcome.generation));
          return reply.send({});
        }
      }
      request.tessera.model = registry.require(name).name;
      const failed = await registry.loadModel(name);
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

interface IndexRow {
  name: string;
  /** Absent for a folder model that cannot be served at all (Triton leaves it out then too). */
  version?: string;
  state: string;
  reason?: string;
}
