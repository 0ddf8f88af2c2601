import type { Backend, LoadContext, ModelVersionSpec } from '@tessera/core';
import type { RemoteModelConfigInput } from './config.js';
import { REMOTE_MODEL_CONFIG_SCHEMA, resolveRemoteConfig } from './config.js';
import { RemoteModelInstance } from './instance.js';
import { agreedMetadata } from './metadata.js';

/**
 * The `remote` backend: each model version forwards OIP v2 inference requests to a pool of
 * upstream servers (Tessera, Triton, KServe). Loading reads the model metadata from every upstream
 * (they must agree), then waits for the first health round; a model whose upstreams are all down
 * afterwards answers 503 (`TESSERA_E_UPSTREAM_UNAVAILABLE`) until one is healthy.
 */
export class RemoteBackend implements Backend {
  readonly modelConfigSchema = REMOTE_MODEL_CONFIG_SCHEMA;
  readonly requiresPath = false;

  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<RemoteModelInstance> {
    const config = resolveRemoteConfig(spec.model, spec.config as unknown as RemoteModelConfigInput);
    const instance = new RemoteModelInstance({ model: spec.model, config, logger: ctx.logger, events: ctx.events });
    const answers = await Promise.all(config.upstreams.map((url) => instance.fetchMetadata(url, ctx.signal)));
    const metadata = agreedMetadata(spec.model, answers);
    const unreachable = answers.filter((a) => 'unreachable' in a);
    if (unreachable.length > 0) ctx.logger.warn({ upstreams: unreachable }, `${spec.model}: some upstreams did not answer; they are checked when they do`);
    instance.agreed(
      metadata,
      answers.filter((a) => 'metadata' in a).map((a) => a.url),
    );
    for (const url of config.upstreams) instance.pool.add(url);
    await instance.pool.start();
    return instance;
  }
}
