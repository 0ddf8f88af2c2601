import type { ModelVersionSpec } from '../contracts/backend.js';
import type { ModelConfig } from '../config/types.js';
import { specConfigOf } from '../registry/model-registry.js';

/**
 * The spec `Backend.build` gets for one version: what `load` would get for instance 0 of 1 — the
 * backend's validated options of that version plus the resolved `batching` section, as the
 * registry composes them for a load (`specConfigOf`).
 */
export function buildVersionSpec(name: string, version: string, model: ModelConfig, options: Record<string, unknown>): ModelVersionSpec {
  const path = model.versions[version]?.path;
  return {
    model: name,
    version,
    ...(path ? { path } : {}),
    config: specConfigOf(model, options),
    instanceIndex: 0,
    instanceCount: 1,
  };
}
