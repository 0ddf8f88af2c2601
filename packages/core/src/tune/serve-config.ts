import type { ModelConfig, TesseraConfig } from '../config/types.js';
import { resolvePluginUrl } from '../plugins/loader.js';
import { KNOWN_BACKEND_PACKAGES } from '../registry/model-registry.js';
import type { TunePoint } from './space.js';

/** The model the sweep serves, reduced from the user's config once. */
export interface TuneTarget {
  name: string;
  model: ModelConfig;
  /** The version served (the newest label when there are several). */
  version: string;
  /** What was left out or changed to measure the model alone, said in the output. */
  notes: string[];
}

/** The version a sweep serves: the highest label. */
export function newestVersion(model: ModelConfig): string {
  return Object.keys(model.versions).sort((a, b) => Number(a) - Number(b)).at(-1) ?? '1';
}

/** The model `name` of `config` as the sweep serves it, and the notes on what it leaves out. */
export function tuneTarget(config: TesseraConfig, name: string): TuneTarget {
  const model = config.models[name]!;
  const version = newestVersion(model);
  const notes: string[] = [];
  const others = Object.keys(config.models).filter((n) => n !== name);
  if (others.length > 0) notes.push(`other models left out: ${others.join(', ')}`);
  if (Object.keys(model.versions).length > 1) notes.push(`versions ${Object.keys(model.versions).join(', ')}: version ${version} is measured, routing left out`);
  const steps = [...model.preprocess.map((p) => `preprocess ${p.name}`), ...model.postprocess.map((p) => `postprocess ${p.name}`)];
  if (steps.length > 0) notes.push(`processors removed (${steps.join(', ')}): the backend and the batcher are measured, with tensors`);
  if (model.batching.batcher !== 'dynamic') notes.push(`batching.batcher ${model.batching.batcher} → dynamic (the sweep sets its max batch size and queue delay)`);
  if (config.auth) notes.push('auth left out (the load generator sends no credentials)');
  if (config.server.tls) notes.push('server.tls left out: plain HTTP on loopback');
  if (config.server.rateLimit) notes.push('server.rateLimit left out');
  if (config.hooks.length > 0) notes.push(`hooks left out: ${config.hooks.map((h) => h.name).join(', ')}`);
  if (!['info', 'debug', 'trace'].includes(config.server.logLevel)) notes.push(`server.logLevel ${config.server.logLevel} → info (tune reads the server's ready line)`);
  return { name, model, version, notes };
}

/**
 * The config of the server under test, as a tree to write as YAML: the user's model alone (the
 * version measured, its backend keys, processors and routing left out) with the point's settings,
 * on 127.0.0.1, with the user's plugins (package names resolved from the user's config folder, so
 * the file may live elsewhere), the Prometheus exporter, a state folder of its own and a short
 * shutdown grace period. Paths are absolute: `TesseraConfig` has them so.
 */
export function serveConfig(config: TesseraConfig, target: TuneTarget, point: TunePoint, stateDir: string): Record<string, unknown> {
  const { model, version } = target;
  const v = model.versions[version]!;
  const { requestTimeoutMs, ...limits } = config.server.limits;
  const logLevel = ['info', 'debug', 'trace'].includes(config.server.logLevel) ? config.server.logLevel : 'info';
  const batchingOptions = model.batching.batcher === 'dynamic' ? { ...model.batching.options } : {};
  const maxBatchSize = point.maxBatchSize ?? model.batching.maxBatchSize;
  const section: Record<string, unknown> = {
    ...model.options,
    backend: model.backend,
    versions: { [version]: { ...v.options, ...(v.path !== undefined ? { path: v.path } : {}) } },
    instances: point.instances,
    warmup: model.warmup,
    batching: { ...batchingOptions, batcher: 'dynamic', ...(maxBatchSize !== undefined ? { maxBatchSize } : {}), maxQueueDelayMs: point.maxQueueDelayMs },
    ...(model.timeoutMs > 0 ? { timeout: model.timeoutMs } : {}),
    ...(model.signature ? { signature: model.signature } : {}),
  };
  if (point.threads !== undefined) {
    const sessionOptions = (model.options['sessionOptions'] ?? {}) as Record<string, unknown>;
    section['sessionOptions'] = { ...sessionOptions, intraOpNumThreads: point.threads };
  }
  return {
    server: {
      host: '127.0.0.1',
      port: 0,
      logLevel,
      bodyLimit: config.server.bodyLimit,
      limits: { ...limits, requestTimeout: requestTimeoutMs },
      shutdownGracePeriod: 2000,
      stateDir,
      workers: config.server.workers,
      trustProxy: config.server.trustProxy,
    },
    plugins: pluginUrls(config, model.backend),
    exporters: ['prometheus'],
    ...config.sections,
    models: { [target.name]: section },
  };
}

/** The config's plugins as file URLs (resolved from its folder), plus the package of the model's backend when it is a well-known one found there. */
function pluginUrls(config: TesseraConfig, backend: string): string[] {
  const urls = config.plugins.map((spec) => resolvePluginUrl(spec, config.configDir));
  const known = KNOWN_BACKEND_PACKAGES[backend];
  if (known && !config.plugins.includes(known)) {
    try {
      urls.push(resolvePluginUrl(known, config.configDir));
    } catch {
      // not installed there: the server looks for it from its own installation, as it always does
    }
  }
  return [...new Set(urls)];
}
