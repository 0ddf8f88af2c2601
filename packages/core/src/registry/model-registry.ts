import type { Container } from 'inversify';
import type { Logger } from 'pino';
import type { Backend, ModelInstance, ModelMetadata, ModelVersionSpec } from '../contracts/backend.js';
import { BACKEND } from '../contracts/backend.js';
import type { Batcher, BatcherFactory } from '../contracts/batcher.js';
import { BATCHER_FACTORY } from '../contracts/batcher.js';
import type { ModelState, ServingEvents } from '../contracts/events.js';
import type { RouteCandidate, Router, RouterFactory } from '../contracts/router.js';
import { ROUTER_FACTORY } from '../contracts/router.js';
import type { ModelConfig } from '../config/types.js';
import { validateAgainstSchema } from '../config/index.js';
import { TesseraError, errorMessage } from '../errors.js';
import { compareVersions } from '../routing/latest-router.js';

/** Packages that provide the well-known backends, for "install X" hints. */
export const KNOWN_BACKEND_PACKAGES: Readonly<Record<string, string>> = {
  onnxruntime: '@tessera/backend-onnxruntime',
  tensorrt: '@tessera/backend-tensorrt',
  vllm: '@tessera/backend-vllm',
};

/** One version of a model and where it is in its lifecycle. */
export class ModelVersion {
  state: ModelState = 'loading';
  /** Why the version failed, when `state` is `failed`. */
  reason: string | undefined;
  instances: ModelInstance[] = [];
  batcher: Batcher | undefined;
  /** Generations (LLM requests) in progress; they bypass the batcher, so draining waits on them here. */
  #generations = 0;
  #generationsIdle: (() => void) | undefined;

  constructor(
    readonly model: string,
    readonly version: string,
  ) {}

  /** The version's metadata (instance 0's; all instances of a version load the same artifact). */
  get metadata(): ModelMetadata | undefined {
    return this.instances[0]?.metadata;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  /**
   * Ready and able to serve now: the lifecycle state, and every instance's own `ready()` (remote
   * backends answer false while none of their replicas is healthy).
   */
  async serving(): Promise<boolean> {
    if (!this.ready) return false;
    const answers = await Promise.all(this.instances.map((i) => (i.ready ? i.ready().catch(() => false) : Promise.resolve(true))));
    return answers.every(Boolean);
  }

  /** Counts a generation in; call the returned function once when it ends. */
  beginGeneration(): () => void {
    this.#generations++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#generations === 0) this.#generationsIdle?.();
    };
  }

  /** Resolves when no generation is in progress. */
  generationsDrained(): Promise<void> {
    if (this.#generations === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#generationsIdle;
      this.#generationsIdle = () => {
        this.#generationsIdle = undefined;
        previous?.();
        resolve();
      };
    });
  }
}

/** A configured model: its versions, oldest first, and its router. */
export class ModelEntry {
  readonly versions = new Map<string, ModelVersion>();
  /** True after an operator unloaded the model through the repository API; readiness skips it. */
  unloaded = false;
  /** Serialises load/unload operations on this model. */
  operation: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly config: ModelConfig,
    readonly router: Router,
    /** Per version: the backend-specific options (model keys + version overrides), validated. */
    readonly backendOptions: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  ) {
    const labels = Object.keys(config.versions).sort(compareVersions);
    for (const v of labels) this.versions.set(v, new ModelVersion(name, v));
  }

  candidates(): RouteCandidate[] {
    return [...this.versions.values()].map((v) => ({ version: v.version, ready: v.ready }));
  }

  get ready(): boolean {
    for (const v of this.versions.values()) if (!v.ready) return false;
    return this.versions.size > 0;
  }

  /** The newest version, for metadata requests that name none. */
  latest(): ModelVersion | undefined {
    let best: ModelVersion | undefined;
    for (const v of this.versions.values()) {
      if (v.ready && (!best || compareVersions(v.version, best.version) > 0)) best = v;
    }
    return best ?? [...this.versions.values()].at(-1);
  }
}

export interface ModelRegistryOptions {
  container: Container;
  /** The config file, named in validation errors. */
  configFile?: string;
  events: ServingEvents;
  logger: Logger;
  /** Aborted when the server shuts down; loads in progress see it. */
  signal: AbortSignal;
}

/**
 * Owns every model version's lifecycle: load → warmup → ready → draining → closed (or failed).
 * Backends, batchers and routers come from the DI container by name.
 */
export class ModelRegistry {
  readonly #models = new Map<string, ModelEntry>();
  readonly #opts: ModelRegistryOptions;

  constructor(opts: ModelRegistryOptions) {
    this.#opts = opts;
  }

  /**
   * Declares the configured models and checks that their backend, batcher and router exist and
   * accept their options. Throws a TesseraError naming the first problem; loads nothing.
   */
  configure(models: Record<string, ModelConfig>): void {
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
      const batcher = this.#named<BatcherFactory>(BATCHER_FACTORY, config.batching.batcher, `models.${name}.batching.batcher`, 'batcher');
      if (batcher.optionsSchema) validateAgainstSchema(batcher.optionsSchema, config.batching.options, `models.${name}.batching`, file);
      const routerFactory = this.#named<RouterFactory>(ROUTER_FACTORY, config.routing.strategy, `models.${name}.routing.strategy`, 'routing strategy');
      if (routerFactory.optionsSchema) validateAgainstSchema(routerFactory.optionsSchema, config.routing.options, `models.${name}.routing`, file);
      const versions = Object.keys(config.versions).sort(compareVersions);
      const router = routerFactory.create({ model: name, options: config.routing.options, versions });
      this.#models.set(name, new ModelEntry(name, config, router, options));
    }
  }

  /** `file: ` for messages about the config, as the config validator writes them. */
  #filePrefix(): string {
    return this.#opts.configFile ? `${this.#opts.configFile}: ` : '';
  }

  #backend(model: string, config: ModelConfig): Backend {
    const { container } = this.#opts;
    if (!container.isBound(BACKEND, { name: config.backend })) {
      const pkg = KNOWN_BACKEND_PACKAGES[config.backend];
      const hint = pkg ? `install ${pkg} (npm install ${pkg}) and list it under \`plugins:\`` : 'add the plugin that provides it to `plugins:`';
      throw new TesseraError('TESSERA_E_BACKEND_UNKNOWN', `${this.#filePrefix()}models.${model}.backend: no plugin provides backend '${config.backend}'; ${hint}`);
    }
    return container.get<Backend>(BACKEND, { name: config.backend });
  }

  #named<T>(token: symbol, name: string, path: string, what: string): T {
    const { container } = this.#opts;
    if (!container.isBound(token, { name })) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${this.#filePrefix()}${path}: unknown ${what} '${name}'; install and list the plugin that provides it`);
    }
    return container.get<T>(token, { name });
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

  async #load(entry: ModelEntry, v: ModelVersion): Promise<ModelVersion> {
    const { container, events, logger, signal } = this.#opts;
    const config = entry.config;
    const log = logger.child({ model: entry.name, version: v.version });
    const versionConfig = config.versions[v.version]!;
    this.#setState(v, 'loading');
    const started = performance.now();
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
        v.instances.push(await backend.load(spec, { logger: log, signal, events }));
      }
      checkInstances(entry.name, v);
    } catch (err) {
      const reason = errorMessage(err);
      log.error({ err }, `model failed to load: ${reason}`);
      this.#setState(v, 'failed', reason);
      await this.#unloadInstances(v);
      return v;
    }
    if (config.warmup) {
      this.#setState(v, 'warming');
      try {
        for (const inst of v.instances) await inst.warmup?.();
      } catch (err) {
        const reason = `${entry.name} v${v.version}: warm-up failed: ${errorMessage(err)}`;
        log.error({ err }, reason);
        this.#setState(v, 'failed', reason);
        await this.#unloadInstances(v);
        return v;
      }
    }
    // generative models batch inside their engine; only tensor models get a batcher
    if (v.instances[0]!.execute) v.batcher = container.get<BatcherFactory>(BATCHER_FACTORY, { name: config.batching.batcher }).create({
      model: entry.name,
      version: v.version,
      metadata: v.metadata!,
      instances: v.instances,
      options: config.batching.options,
      events,
      logger: log,
    });
    this.#setState(v, 'ready');
    log.info({ ms: Math.round(performance.now() - started), instances: v.instances.length }, 'model ready');
    return v;
  }

  async #unloadInstances(v: ModelVersion): Promise<void> {
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

  /** The model, or a 404 TesseraError. */
  require(name: string): ModelEntry {
    const m = this.#models.get(name);
    if (!m) throw new TesseraError('TESSERA_E_MODEL_NOT_FOUND', `unknown model '${name}'`);
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

  /** Like `ready`, and every instance can serve now (its own `ready()`). */
  async serving(): Promise<boolean> {
    if (!this.ready) return false;
    const versions = [...this.#models.values()].filter((m) => !m.unloaded).flatMap((m) => [...m.versions.values()]);
    const answers = await Promise.all(versions.map((v) => v.serving()));
    return answers.every(Boolean);
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
      await this.#unloadInstances(v);
      if (v.state !== 'failed') this.#setState(v, 'closed');
    }
  }

  /** Drains every batcher, then unloads instances, models in reverse order. Idempotent. */
  async close(): Promise<void> {
    const entries = [...this.#models.values()].reverse();
    await Promise.all(entries.map((m) => m.operation));
    await this.#unloadVersions(entries.flatMap((m) => [...m.versions.values()].reverse()));
    for (const m of entries) await m.router.close?.();
  }
}

function checkInstances(model: string, v: ModelVersion): void {
  const md = v.metadata;
  if (!md) throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend returned no instance`);
  if (!v.instances.every((i) => typeof i.execute === 'function' || typeof i.generate === 'function')) {
    throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend's instance implements neither execute nor generate`);
  }
}

