import type { Logger } from 'pino';
import type { Backend, ModelVersionSpec } from '../contracts/backend.js';
import type { BatcherFactory } from '../contracts/batcher.js';
import type { Clock } from '../contracts/clock.js';
import type { ModelState, ServingEvents } from '../contracts/events.js';
import type { MetricRegistrar } from '../contracts/metrics.js';
import type { ProcessorFactory } from '../contracts/processor.js';
import type { RouterFactory } from '../contracts/router.js';
import type { StateStore } from '../contracts/state-store.js';
import type { ModelConfig } from '../config/types.js';
import { validateAgainstSchema } from '../config/index.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import { closeSteps, createProcessors } from '../pipeline/processors.js';
import type { Catalog } from '../plugins/catalog.js';
import { compareVersions } from '../routing/latest-router.js';
import type { ModelVersion } from './model-version.js';
import { ModelEntry } from './model-version.js';
import { warmInstance } from './warmup.js';

export { ModelEntry, ModelVersion } from './model-version.js';

/** Packages that provide the well-known backends, for "install X" hints. */
export const KNOWN_BACKEND_PACKAGES: Readonly<Record<string, string>> = {
  onnxruntime: '@tessera/backend-onnxruntime',
  tensorrt: '@tessera/backend-tensorrt',
  vllm: '@tessera/backend-vllm',
};

export interface ModelRegistryOptions {
  catalog: Catalog;
  /** The config file, named in validation errors. */
  configFile?: string;
  events: ServingEvents;
  logger: Logger;
  /** Aborted when the server shuts down; loads in progress see it. */
  signal: AbortSignal;
  clock: Clock;
  metrics: MetricRegistrar;
  /** The state store of one namespace (e.g. `routers/<model>`). */
  stateStore: (namespace: string) => StateStore;
}

/**
 * Owns every model version's lifecycle: load → warmup → ready → draining → closed (or failed).
 * Backends, batchers, routers and processors come from the plugin catalogue by name.
 */
export class ModelRegistry {
  readonly #models = new Map<string, ModelEntry>();
  readonly #opts: ModelRegistryOptions;

  constructor(opts: ModelRegistryOptions) {
    this.#opts = opts;
  }

  /**
   * Declares the configured models and checks that their backend, batcher, router and processors
   * exist and accept their options; creates each model's router. Throws a TesseraError naming the
   * first problem; loads nothing.
   */
  async configure(models: Record<string, ModelConfig>): Promise<void> {
    const file = this.#opts.configFile ? { file: this.#opts.configFile } : {};
    for (const [name, config] of Object.entries(models)) {
      const backend = this.#backend(name, config);
      // Each version runs with the model's backend keys overridden by its own: validate that merge
      // (so schema defaults never override a value the model set) and keep the result for load.
      const options = new Map<string, Record<string, unknown>>();
      for (const [v, vc] of Object.entries(config.versions)) {
        const merged = structuredClone({ ...config.options, ...vc.options });
        const at = Object.keys(vc.options).length > 0 ? `models.${name}.versions.${v}` : `models.${name}`;
        options.set(v, backend.modelConfigSchema ? validateAgainstSchema<Record<string, unknown>>(backend.modelConfigSchema, merged, at, file) : merged);
      }
      if (backend.requiresPath !== false) {
        for (const [v, vc] of Object.entries(config.versions)) {
          if (!vc.path) {
            throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${this.#filePrefix()}models.${name}: backend '${config.backend}' needs a model file: give \`path\` or \`versions: {'${v}': {path}}\``);
          }
        }
      }
      this.#checkBatching(name, config);
      for (const [stage, entries] of [['preprocess', config.preprocess], ['postprocess', config.postprocess]] as const) {
        entries.forEach((entry, i) => {
          const factory = this.#opts.catalog.get<ProcessorFactory>('processor', entry.name, { path: `models.${name}.${stage}[${i}]`, ...file });
          if (factory.optionsSchema) validateAgainstSchema(factory.optionsSchema, entry.options, `models.${name}.${stage}[${i}]`, file);
        });
      }
      const routerFactory = this.#opts.catalog.get<RouterFactory>('router', config.routing.strategy, { path: `models.${name}.routing.strategy`, ...file });
      if (routerFactory.optionsSchema) validateAgainstSchema(routerFactory.optionsSchema, config.routing.options, `models.${name}.routing`, file);
      const versions = Object.keys(config.versions).sort(compareVersions);
      const { clock, metrics, logger } = this.#opts;
      let router;
      try {
        router = await routerFactory.create({
          model: name,
          options: config.routing.options,
          versions,
          clock,
          metrics,
          logger: logger.child({ model: name, router: config.routing.strategy }),
          state: this.#opts.stateStore(`routers/${name}`),
        });
      } catch (err) {
        // a refusal of the router's own keeps its code and words (the file named in front); anything else is wrapped
        if (isTesseraError(err)) throw new TesseraError(err.code, `${this.#filePrefix()}${err.message}`, { cause: err, ...(err.headers ? { headers: err.headers } : {}) });
        throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${this.#filePrefix()}models.${name}.routing: routing strategy '${config.routing.strategy}' failed to start: ${errorMessage(err)}`, { cause: err });
      }
      this.#models.set(name, new ModelEntry(name, config, router, options));
    }
  }

  /**
   * The batcher and its options. A key the batcher does not take is refused with the batcher that
   * does take it (`maxQueueDelayMs` under `passthrough` → set `batcher: dynamic`).
   */
  #checkBatching(name: string, config: ModelConfig): void {
    const file = this.#opts.configFile ? { file: this.#opts.configFile } : {};
    const { catalog } = this.#opts;
    const batcherName = config.batching.batcher;
    const batcher = catalog.get<BatcherFactory>('batcher', batcherName, { path: `models.${name}.batching.batcher`, ...file });
    if (!batcher.optionsSchema) return;
    try {
      validateAgainstSchema(batcher.optionsSchema, config.batching.options, `models.${name}.batching`, file);
    } catch (err) {
      const declared = (factory: BatcherFactory): string[] => Object.keys((factory.optionsSchema?.['properties'] as Record<string, unknown> | undefined) ?? {});
      const own = new Set(declared(batcher));
      const foreign = Object.keys(config.batching.options).filter((k) => !own.has(k));
      const owners = catalog.names('batcher').filter((n) => n !== batcherName && foreign.length > 0 && foreign.every((k) => declared(catalog.get<BatcherFactory>('batcher', n, { path: '' })).includes(k)));
      if (!isTesseraError(err) || owners.length === 0) throw err;
      throw new TesseraError(
        err.code,
        `${err.message}\n${this.#filePrefix()}models.${name}.batching: ${foreign.join(', ')} ${foreign.length === 1 ? 'is an option' : 'are options'} of the '${owners[0]}' batcher, not of '${batcherName}': write \`batcher: ${owners[0]}\` (or leave \`batcher\` out: batching keys alone choose the dynamic batcher)`,
        { cause: err },
      );
    }
  }

  /** `file: ` for messages about the config, as the config validator writes them. */
  #filePrefix(): string {
    return this.#opts.configFile ? `${this.#opts.configFile}: ` : '';
  }

  #backend(model: string, config: ModelConfig): Backend {
    const pkg = KNOWN_BACKEND_PACKAGES[config.backend];
    const hint = pkg ? `install ${pkg} (npm install ${pkg}) and list it under \`plugins:\`` : 'add the plugin that provides it to `plugins:`';
    return this.#opts.catalog.get<Backend>('backend', config.backend, {
      path: `models.${model}.backend`,
      ...(this.#opts.configFile ? { file: this.#opts.configFile } : {}),
      hint,
      code: 'TESSERA_E_BACKEND_UNKNOWN',
    });
  }

  /**
   * Loads and warms every version of every model, in parallel per model. Resolves when all have
   * settled; returns the versions that failed.
   */
  async loadAll(): Promise<ModelVersion[]> {
    const all = [...this.#models.values()].flatMap((m) => [...m.versions.values()].map((v) => this.#load(m, v)));
    const settled = await Promise.all(all);
    return settled.filter((v) => v.state === 'failed');
  }

  #setState(v: ModelVersion, state: ModelState, reason?: string): void {
    v.state = state;
    v.reason = reason;
    this.#opts.events.emit('modelState', { model: v.model, version: v.version, state, ...(reason ? { reason } : {}) });
  }

  /** Loads the instances, warms them, then creates the batcher and the processors: ready. */
  async #load(entry: ModelEntry, v: ModelVersion): Promise<ModelVersion> {
    const { catalog, events, logger, signal } = this.#opts;
    const config = entry.config;
    const log = logger.child({ model: entry.name, version: v.version });
    const label = `${entry.name} v${v.version}`;
    const versionConfig = config.versions[v.version]!;
    this.#setState(v, 'loading');
    const started = performance.now();
    let phase: 'load' | 'warm-up' | 'start' = 'load';
    try {
      const backend = this.#backend(entry.name, config);
      const specConfig = {
        ...(entry.backendOptions.get(v.version) ?? { ...config.options, ...versionConfig.options }),
        batching: { batcher: config.batching.batcher, ...(config.batching.maxBatchSize !== undefined ? { maxBatchSize: config.batching.maxBatchSize } : {}), ...config.batching.options },
      };
      for (let i = 0; i < config.instances; i++) {
        const spec: ModelVersionSpec = {
          model: entry.name,
          version: v.version,
          ...(versionConfig.path ? { path: versionConfig.path } : {}),
          config: specConfig,
          instanceIndex: i,
          instanceCount: config.instances,
        };
        v.instances.push(await backend.load(spec, { logger: log, signal, events, metrics: this.#opts.metrics }));
      }
      checkInstances(entry.name, v);
      v.requestHeaders = [...new Set(v.instances.flatMap((i) => (i.requestHeaders ?? []).map((h) => h.toLowerCase())))];
      v.warmed = false;
      if (config.warmup) {
        phase = 'warm-up';
        this.#setState(v, 'warming');
        for (const inst of v.instances) v.warmed = (await warmInstance(inst, label)) || v.warmed;
      }
      phase = 'start';
      const metadata = v.metadata!;
      // generative models batch inside their engine; only tensor models get a batcher and processors
      if (v.instances[0]!.execute) {
        const processors = await createProcessors(entry.name, v.version, config, metadata, (name) => catalog.get<ProcessorFactory>('processor', name, { path: `models.${entry.name}` }), log);
        v.pre = processors.pre;
        v.post = processors.post;
        v.signature = processors.signature;
        v.batcher = catalog.get<BatcherFactory>('batcher', config.batching.batcher, { path: `models.${entry.name}.batching.batcher` }).create({
          model: entry.name,
          version: v.version,
          metadata,
          instances: v.instances,
          options: config.batching.options,
          events,
          logger: log,
        });
      }
      this.#setState(v, 'ready');
      log.info({ ms: Math.round(performance.now() - started), instances: v.instances.length, warmed: v.warmed }, 'model ready');
    } catch (err) {
      const reason = phase === 'warm-up' ? `${label}: warm-up failed: ${errorMessage(err)}` : errorMessage(err);
      log.error({ err }, `model failed to ${phase === 'load' ? 'load' : phase === 'warm-up' ? 'warm up' : 'start'}: ${reason}`);
      this.#setState(v, 'failed', reason);
      await this.#release(v);
    }
    return v;
  }

  /** Frees a version's processors and instances (instances last first). */
  async #release(v: ModelVersion): Promise<void> {
    const steps = [...v.pre.splice(0), ...v.post.splice(0)];
    v.signature = undefined;
    await closeSteps(steps, this.#opts.logger);
    const instances = v.instances.splice(0).reverse();
    for (const inst of instances) {
      try {
        await inst.unload();
      } catch (err) {
        this.#opts.logger.warn({ err, model: v.model, version: v.version }, 'unload failed');
      }
    }
  }

  get(name: string): ModelEntry | undefined {
    return this.#models.get(name);
  }

  /** The model, or a 404 TesseraError (with the closest configured name). */
  require(name: string): ModelEntry {
    const m = this.#models.get(name);
    if (!m) throw new TesseraError('TESSERA_E_MODEL_NOT_FOUND', `unknown model '${name}'${this.#models.size > 0 ? ` (models: ${[...this.#models.keys()].join(', ')})` : ''}`);
    return m;
  }

  /** A specific version, or a 404. */
  requireVersion(entry: ModelEntry, version: string): ModelVersion {
    const v = entry.versions.get(version);
    if (!v) {
      throw new TesseraError('TESSERA_E_MODEL_VERSION_NOT_FOUND', `model '${entry.name}' has no version '${version}' (versions: ${[...entry.versions.keys()].join(', ')})`);
    }
    return v;
  }

  models(): ModelEntry[] {
    return [...this.#models.values()];
  }

  /** Like `ready`, and every version can serve now (`ModelVersion.serving()`). */
  async serving(): Promise<boolean> {
    if (!this.ready) return false;
    return (await this.notServing()).length === 0;
  }

  /**
   * The versions that cannot serve now, with their state and why (models an operator unloaded
   * excepted): what `/v2/health/ready` lists when it answers 503.
   */
  async notServing(): Promise<{ name: string; version: string; state: ModelState; reason: string }[]> {
    const versions = [...this.#models.values()].filter((m) => !m.unloaded).flatMap((m) => [...m.versions.values()]);
    const answers = await Promise.all(versions.map(async (v) => ({ v, availability: await v.availability() })));
    return answers
      .filter((a) => !a.availability.serving)
      .map(({ v, availability }) => ({ name: v.model, version: v.version, state: v.state, reason: availability.reason ?? v.state }));
  }

  /** True when every version of every model is ready (models an operator unloaded excepted). */
  get ready(): boolean {
    for (const m of this.#models.values()) if (!m.unloaded && !m.ready) return false;
    return true;
  }

  /**
   * (Re)loads every version of a configured model that is not ready (repository extension).
   * Resolves with the versions that failed. Operations on one model run one at a time.
   */
  loadModel(name: string): Promise<ModelVersion[]> {
    const entry = this.require(name);
    const run = entry.operation.then(async () => {
      entry.unloaded = false;
      const pending = [...entry.versions.values()].filter((v) => v.state === 'closed' || v.state === 'failed');
      const settled = await Promise.all(pending.map((v) => this.#load(entry, v)));
      return settled.filter((v) => v.state === 'failed');
    });
    entry.operation = run.catch(() => undefined);
    return run;
  }

  /** Drains and unloads every version of a model (repository extension); it answers 503 until loaded again. */
  unloadModel(name: string): Promise<void> {
    const entry = this.require(name);
    const run = entry.operation.then(async () => {
      entry.unloaded = true;
      await this.#unloadVersions([...entry.versions.values()].reverse());
    });
    entry.operation = run.catch(() => undefined);
    return run;
  }

  async #unloadVersions(versions: ModelVersion[]): Promise<void> {
    for (const v of versions) if (v.state === 'ready') this.#setState(v, 'draining');
    await Promise.all(versions.flatMap((v) => [v.batcher?.drain() ?? Promise.resolve(), v.generationsDrained()]));
    for (const v of versions) {
      if (v.state === 'closed') continue;
      v.batcher = undefined;
      await this.#release(v);
      if (v.state !== 'failed') this.#setState(v, 'closed');
    }
  }

  /** Drains every batcher, then unloads instances, models in reverse order; closes the routers. Idempotent. */
  async close(): Promise<void> {
    const entries = [...this.#models.values()].reverse();
    await Promise.all(entries.map((m) => m.operation));
    await this.#unloadVersions(entries.flatMap((m) => [...m.versions.values()].reverse()));
    for (const m of entries) {
      await m.router.close?.().catch((err: unknown) => this.#opts.logger.warn({ err, model: m.name }, `the router of '${m.name}' failed to close: ${errorMessage(err)}`));
    }
  }
}

function checkInstances(model: string, v: ModelVersion): void {
  const md = v.metadata;
  if (!md) throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend returned no instance`);
  if (!v.instances.every((i) => typeof i.execute === 'function' || typeof i.generate === 'function')) {
    throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend's instance implements neither execute nor generate`);
  }
}
