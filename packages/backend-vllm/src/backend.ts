import cluster from 'node:cluster';
import type { Backend, LoadContext, ModelVersionSpec } from '@tessera/core';
import { TesseraError } from '@tessera/core';
import type { VllmModelConfigInput } from './config.js';
import { VLLM_MODEL_CONFIG_SCHEMA, resolveVllmConfig } from './config.js';
import { ReplicaSupervisor } from './launch/supervisor.js';
import { VllmModelInstance } from './instance.js';

/**
 * The `vllm` backend: each model version is a pool of vLLM replicas, given as `upstreams`, started
 * by Tessera from `launch`, or both. Loading waits for the first health round; a model whose
 * replicas are all down still loads, and answers 503 (`TESSERA_E_UPSTREAM_UNAVAILABLE`) until one
 * is healthy.
 */
export class VllmBackend implements Backend {
  readonly modelConfigSchema = VLLM_MODEL_CONFIG_SCHEMA;
  readonly requiresPath = false;

  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<VllmModelInstance> {
    const config = resolveVllmConfig(spec.config as unknown as VllmModelConfigInput);
    if (!config.upstreams?.length && !config.launch) {
      throw new TesseraError('TESSERA_E_MODEL_LOAD', `models.${spec.model}: a vllm model needs \`upstreams\` (the replicas' URLs) or \`launch\` (replicas Tessera starts)`);
    }
    if (config.launch && cluster.isWorker) {
      // every worker of `server.workers` would start its own replicas on the same GPUs and ports
      throw new TesseraError(
        'TESSERA_E_MODEL_LOAD',
        `models.${spec.model}.launch: cannot start replicas in a server with several workers (server.workers > 1); start them separately and list them in \`upstreams\`, or use one worker`,
      );
    }
    const instance = new VllmModelInstance({ model: spec.model, version: spec.version, config, logger: ctx.logger, events: ctx.events });
    for (const url of config.upstreams ?? []) instance.addReplica(url);
    if (config.launch) {
      const supervisor = new ReplicaSupervisor({
        modelName: spec.model,
        config: config.launch,
        logger: ctx.logger,
        onUp: (url) => instance.replicaUp(url),
        onDown: (url, _index, reason) => instance.replicaDown(url, reason),
      });
      instance.supervisor = supervisor;
      const stop = (): void => void supervisor.stop();
      ctx.signal.addEventListener('abort', stop, { once: true });
      try {
        for (const url of await supervisor.start()) instance.addReplica(url);
      } catch (err) {
        await instance.unload();
        throw err;
      } finally {
        ctx.signal.removeEventListener('abort', stop);
      }
    }
    await instance.pool.start();
    const healthy = instance.pool.snapshot().filter((r) => r.healthy).length;
    if (healthy === 0) ctx.logger.warn({ upstreams: instance.pool.snapshot().map((r) => r.url) }, `${spec.model}: no replica is healthy yet; requests get 503 until one is`);
    return instance;
  }
}
