import type { FastifyRequest } from 'fastify';
import { TesseraError } from '../errors.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';

/** The path parameters of `/v2/models/{model}[/versions/{version}]/…`. */
export interface ModelParams {
  model: string;
  version?: string;
}

/**
 * The model a route names (404 when unknown) and the version it names, else the newest ready one,
 * noted on the request for the access log; a 503 `TESSERA_E_MODEL_NOT_READY` when that version has
 * no metadata yet (`what` says what it cannot report: `metadata`, `configuration`).
 */
export function loadedVersion(registry: ModelRegistry, request: FastifyRequest<{ Params: ModelParams }>, what: string): { entry: ModelEntry; v: ModelVersion } {
  const entry = registry.require(request.params.model);
  request.tessera.model = entry.name;
  const v = request.params.version === undefined ? entry.latest() : registry.requireVersion(entry, request.params.version);
  request.tessera.version = v?.version;
  if (!v || !v.metadata) {
    throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${entry.name}'${v ? ` version ${v.version}` : ''} has no ${what} yet (state: ${v?.state ?? 'none'}${v?.reason ? `: ${v.reason}` : ''})`);
  }
  return { entry, v };
}
