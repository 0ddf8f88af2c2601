import { stat } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Backend, JSONSchema, ModelVersionSpec } from '../contracts/backend.js';
import type { BatcherFactory } from '../contracts/batcher.js';
import type { Clock } from '../contracts/clock.js';
import type { ModelState, ServingEvents } from '../contracts/events.js';
import type { MetricRegistrar } from '../contracts/metrics.js';
import type { ProcessorFactory } from '../contracts/processor.js';
import type { Router, RouterFactory } from '../contracts/router.js';
import type { StateStore } from '../contracts/state-store.js';
import type { ModelConfig } from '../config/types.js';
import { validateAgainstSchema } from '../config/index.js';
import { MODEL_CORE_KEYS } from '../config/schema.js';
import { closestMatch } from '../config/suggest.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import { availableCores } from '../internal/cores.js';
import { closeSteps, createProcessors } from '../pipeline/processors.js';
import type { Catalog } from '../plugins/catalog.js';
import { checkDeclaredSignature } from '../repository/signature-check.js';
import { compareVersions } from '../routing/latest-router.js';
import { ModelEntry, ModelVersion } from './model-version.js';
import { warmInstance } from './warmup.js';

export { ModelEntry, ModelVersion } from './model-version.js';

/** Packages that provide the well-known backends, for "install X" hints. */
export const KNOWN_BACKEND_PACKAGES: Readonly<Record<string, string>> = {
  onnxruntime: '@tessera/backend-onnxruntime',
  python: '@tessera/backend-python',
  remote: '@tessera/backend-remote',
  tensorrt: '@tessera/backend-tensorrt',
  vllm: '@tessera/backend-vllm',
};

/** What to do about a backend no plugin registered: install its package when it is a well-known one, else add the plugin. */
export function unknownBackendHint(backend: string): string {
  const pkg = KNOWN_BACKEND_PACKAGES[backend];
  return pkg ? `install ${pkg} (npm install ${pkg}) and list it under \`plugins:\`` : 'add the plugin that provides it to `plugins:`';
}

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
  /** The management operations (load, unload, reload), one after the other. */
  #operations: Promise<unknown> = Promise.resolve();
  /** Objects a reload replaced or removed, still finishing their requests and unloading. */
  readonly #retiring = new Set<Promise<void>>();

  constructor(opts: ModelRegistryOptions) {
    this.#opts = opts;
  }

  /**
   * Declares the configured models and checks that their backend, batcher, router and processors
   * exist and accept their options; creates each model's router. Throws a TesseraError naming the
   * first problem; loads nothing.
   */
  async configure(models: Record<string, ModelConfig>): Promise<void> {
    for (const [name, config] of Object.entries(models)) {
      const checked = this.#check(name, config);
      this.#models.set(name, new ModelEntry(name, config, await this.#createRouter(name, config, checked.router), checked.options));
    }
  }

  /**
   * A model's backend, per-version options, batching, processors and routing options, checked
   * against their plugins' schemas: the per-version backend options (validated) and the router
   * factory. Throws a TesseraError naming the first problem.
   */
  #check(name: string, config: ModelConfig): { options: Map<string, Record<string, unknown>>; router: RouterFactory } {
    const file = this.#opts.configFile ? { file: this.#opts.configFile } : {};
    const backend = this.#backend(name, config);
    // Each version runs with the model's backend keys overridden by its own: validate that merge
    // (so schema defaults never override a value the model set) and keep the result for load.
    const options = new Map<string, Record<string, unknown>>();
    for (const [v, vc] of Object.entries(config.versions)) {
      const merged = structuredClone({ ...config.options, ...vc.options });
      const at = Object.keys(vc.options).length > 0 ? `models.${name}.versions.${v}` : `models.${name}`;
      options.set(v, backend.modelConfigSchema ? validateBackendOptions(backend.modelConfigSchema, merged, at, file) : merged);
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
    const router = this.#opts.catalog.get<RouterFactory>('router', config.routing.strategy, { path: `models.${name}.routing.strategy`, ...file });
    if (router.optionsSchema) validateAgainstSchema(router.optionsSchema, config.routing.options, `models.${name}.routing`, file);
    return { options, router };
  }

  async #createRouter(name: string, config: ModelConfig, factory: RouterFactory): Promise<Router> {
    const { clock, metrics, logger } = this.#opts;
    try {
      return await factory.create({
        model: name,
        options: config.routing.options,
        versions: Object.keys(config.versions).sort(compareVersions),
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
    const hint = unknownBackendHint(config.backend);
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

  #setState(v: ModelVersion, state: ModelState, reason?: string, replaced = false): void {
    v.state = state;
    v.reason = reason;
    this.#opts.events.emit('modelState', { model: v.model, version: v.version, state, ...(reason ? { reason } : {}), ...(replaced ? { replaced } : {}) });
  }

  /** Loads the instances, warms them, then creates the batcher and the processors: ready. */
  async #load(entry: ModelEntry, v: ModelVersion): Promise<ModelVersion> {
    const { events, logger, signal } = this.#opts;
    const config = entry.config;
    const log = logger.child({ model: entry.name, version: v.version });
    const label = `${entry.name} v${v.version}`;
    const versionConfig = config.versions[v.version]!;
    this.#setState(v, 'loading');
    const started = performance.now();
    let phase: 'load' | 'warm-up' | 'start' = 'load';
    try {
      const backend = this.#backend(entry.name, config);
      const specConfig = specConfigOf(config, entry.backendOptions.get(v.version) ?? { ...config.options, ...versionConfig.options });
      v.artifact = await statArtifact(versionConfig.path);
      const base = { model: entry.name, version: v.version, ...(versionConfig.path ? { path: versionConfig.path } : {}), config: specConfig };
      const count = instanceCount(backend, config.instances, base);
      for (let i = 0; i < count; i++) {
        const spec: ModelVersionSpec = { ...base, instanceIndex: i, instanceCount: count };
        v.instances.push(await backend.load(spec, { logger: log, signal, events, metrics: this.#opts.metrics }));
      }
      checkInstances(entry.name, v);
      if (config.signature) checkDeclaredSignature(entry.name, v.version, config.signature, v.metadata!); // the inputs/outputs the config declares (config.pbtxt's input/output)
      v.requestHeaders = [...new Set(v.instances.flatMap((i) => (i.requestHeaders ?? []).map((h) => h.toLowerCase())))];
      v.warmed = false;
      if (config.warmup) {
        phase = 'warm-up';
        this.#setState(v, 'warming');
        for (const inst of v.instances) v.warmed = (await warmInstance(inst, label)) || v.warmed;
      }
      phase = 'start';
      await this.#start(entry, v, log);
      this.#setState(v, 'ready');
      const settings = v.instances[0]?.settings;
      log.info({ ms: Math.round(performance.now() - started), instances: v.instances.length, ...(config.instances === 'auto' ? { instancesAuto: true } : {}), ...(settings ? { settings } : {}), warmed: v.warmed }, 'model ready');
    } catch (err) {
      const reason = phase === 'warm-up' ? `${label}: warm-up failed: ${errorMessage(err)}` : errorMessage(err);
      log.error({ err }, `model failed to ${phase === 'load' ? 'load' : phase === 'warm-up' ? 'warm up' : 'start'}: ${reason}`);
      this.#setState(v, 'failed', reason);
      await this.#release(v);
    }
    return v;
  }

  /** On loaded instances: the processors and the batcher (tensor models; generative ones batch inside their engine). */
  async #start(entry: ModelEntry, v: ModelVersion, log: Logger): Promise<void> {
    const { catalog, events } = this.#opts;
    const metadata = v.metadata!;
    if (!v.instances[0]!.execute) return;
    const processors = await createProcessors(entry.name, v.version, entry.config, metadata, (name) => catalog.get<ProcessorFactory>('processor', name, { path: `models.${entry.name}` }), log);
    v.pre = processors.pre;
    v.post = processors.post;
    v.signature = processors.signature;
    v.batcher = catalog.get<BatcherFactory>('batcher', entry.config.batching.batcher, { path: `models.${entry.name}.batching.batcher` }).create({
      model: entry.name,
      version: v.version,
      metadata,
      instances: v.instances,
      options: entry.config.batching.options,
      events,
      logger: log,
    });
  }

  /**
   * A new object for a version whose instances can stay (same artifact and backend settings) but
   * whose processors or generation limits changed: it serves on `from`'s instances, with its own
   * processors and batcher. Throws when a step fails to start (nothing is left to release but them).
   */
  async #derive(entry: ModelEntry, from: ModelVersion): Promise<ModelVersion> {
    const v = new ModelVersion(entry.name, from.version, entry.config.generation);
    v.instances = [...from.instances];
    v.artifact = from.artifact;
    v.warmed = from.warmed;
    v.requestHeaders = from.requestHeaders;
    try {
      await this.#start(entry, v, this.#opts.logger.child({ model: entry.name, version: v.version }));
    } catch (err) {
      v.instances = [];
      await this.#release(v);
      throw err;
    }
    return v;
  }

  /** Frees a version's processors and instances (instances last first), after the object it inherited them from is done with them. */
  async #release(v: ModelVersion): Promise<void> {
    const steps = [...v.pre.splice(0), ...v.post.splice(0)];
    v.signature = undefined;
    await closeSteps(steps, this.#opts.logger);
    await v.inheritedFrom;
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
   * Runs one management operation (load, unload, reload) after those before it: they change which
   * objects serve, so they never interleave. A failed operation does not block the next.
   */
  #manage<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#operations.then(operation);
    this.#operations = run.catch(() => undefined);
    return run;
  }

  /**
   * (Re)loads every version of a configured model that is not ready (repository extension).
   * Resolves with the versions that failed.
   */
  loadModel(name: string): Promise<ModelVersion[]> {
    this.require(name);
    return this.#manage(async () => {
      const entry = this.require(name);
      entry.unloaded = false;
      const pending = [...entry.versions.values()].filter((v) => v.state === 'closed' || v.state === 'failed');
      const settled = await Promise.all(pending.map((v) => this.#load(entry, v)));
      return settled.filter((v) => v.state === 'failed');
    });
  }

  /** Drains and unloads every version of a model (repository extension); it answers 503 until loaded again. */
  unloadModel(name: string): Promise<void> {
    this.require(name);
    return this.#manage(async () => {
      const entry = this.require(name);
      entry.unloaded = true;
      await this.#unloadVersions([...entry.versions.values()].reverse());
    });
  }

  async #unloadVersions(versions: ModelVersion[], replaced = false): Promise<void> {
    for (const v of versions) if (v.state === 'ready') this.#setState(v, 'draining', undefined, replaced);
    await Promise.all(versions.flatMap((v) => [v.batcher?.drain() ?? Promise.resolve(), v.generationsDrained()]));
    for (const v of versions) {
      if (v.state === 'closed') continue;
      v.batcher = undefined;
      await this.#release(v);
      if (v.state !== 'failed') this.#setState(v, 'closed', undefined, replaced);
    }
  }

  /**
   * Applies a new set of model configs (a reload) as one change: models and versions that are new
   * or whose artifact or backend settings changed load and warm beside the serving ones; versions
   * whose processors or generation limits changed get new objects on the same instances; then the
   * new set replaces the old in one step, and what left (removed models, replaced objects) drains
   * and unloads in the background, after the requests routed to it were answered. A model that does
   * not check or a version that fails to load refuses the whole change: everything it loaded is
   * released and the old set keeps serving. Unchanged models keep their objects (and their
   * routers, statistics and in-flight requests) untouched.
   * @throws TesseraError (TESSERA_E_CONFIG_INVALID, TESSERA_E_MODEL_LOAD, …) naming each failure.
   */
  reconfigure(models: Record<string, ModelConfig>): Promise<ReloadSummary> {
    return this.#manage(() => this.#reconfigure(models));
  }

  async #reconfigure(models: Record<string, ModelConfig>): Promise<ReloadSummary> {
    const plan = await this.#plan(models);
    const loading = plan.fresh.map(({ entry, v }) => this.#load(entry, v));
    const deriving = plan.derived.map(async (d) => {
      try {
        const v = await this.#derive(d.entry, d.from);
        d.entry.versions.set(v.version, v);
        d.v = v;
        return undefined;
      } catch (err) {
        // the step's refusal names the model and version already
        return errorMessage(err);
      }
    });
    const failed = (await Promise.all(loading)).filter((v) => v.state === 'failed').map((v) => v.reason ?? `${v.model} v${v.version} failed to load`);
    failed.push(...(await Promise.all(deriving)).filter((r): r is string => r !== undefined));
    if (failed.length > 0) {
      await this.#abandon(plan);
      throw new TesseraError('TESSERA_E_MODEL_LOAD', failed.join('; '));
    }
    // the swap: from here on new requests see the new set (synchronously, so no request sees half of it)
    this.#models.clear();
    for (const [name, entry] of plan.next) this.#models.set(name, entry);
    for (const d of plan.derived) if (d.v) this.#setState(d.v, 'ready');
    const retiring = this.#retire(plan);
    this.#retiring.add(retiring);
    void retiring.finally(() => this.#retiring.delete(retiring));
    return plan.summary;
  }

  /**
   * What a new set of model configs changes, checked, with its new routers created and its new
   * version objects made (not loaded). Throws the first check that fails (nothing created is left).
   */
  async #plan(models: Record<string, ModelConfig>): Promise<ReloadPlan> {
    const plan: ReloadPlan = { next: new Map(), fresh: [], derived: [], retired: [], retiredEntries: [], newRouters: [], summary: { added: [], removed: [], changed: [], unchanged: [] } };
    try {
      for (const [name, config] of Object.entries(models)) {
        const old = this.#models.get(name);
        // checked first: the schemas fill in defaults, as they did in the serving config
        const checked = this.#check(name, config);
        if (old && (await unchanged(old, config))) {
          plan.next.set(name, old);
          plan.summary.unchanged.push(name);
          continue;
        }
        // the router stays when its settings and the version labels are the same (its state, windows and series with it)
        const sameRouting = old !== undefined && isDeepStrictEqual(old.config.routing, config.routing) && isDeepStrictEqual(Object.keys(old.config.versions).sort(), Object.keys(config.versions).sort());
        let router: Router;
        if (sameRouting) router = old.router;
        else {
          router = await this.#createRouter(name, config, checked.router);
          plan.newRouters.push(router);
        }
        const carried = new Map<string, ModelVersion>();
        const staged: { label: string; from?: ModelVersion }[] = [];
        for (const label of Object.keys(config.versions)) {
          const before = old?.versions.get(label);
          const reuse = before && before.ready ? await reusable(old!, before, config, checked.options.get(label)!) : 'no';
          if (reuse === 'same') carried.set(label, before!);
          else staged.push({ label, ...(reuse === 'instances' ? { from: before! } : {}) });
        }
        const entry = new ModelEntry(name, config, router, checked.options, carried);
        for (const { label, from } of staged) {
          if (from) plan.derived.push({ entry, from });
          else plan.fresh.push({ entry, v: entry.versions.get(label)! });
        }
        plan.next.set(name, entry);
        (old ? plan.summary.changed : plan.summary.added).push(name);
        if (old) {
          plan.retiredEntries.push({ entry: old, keepsRouter: sameRouting });
          for (const v of old.versions.values()) {
            if (carried.get(v.version) === v) continue;
            plan.retired.push({ v, replaced: entry.versions.has(v.version), lends: plan.derived.find((d) => d.from === v) });
          }
        }
      }
      for (const [name, old] of this.#models) {
        if (plan.next.has(name)) continue;
        plan.summary.removed.push(name);
        plan.retiredEntries.push({ entry: old, keepsRouter: false });
        for (const v of old.versions.values()) plan.retired.push({ v, replaced: false });
      }
    } catch (err) {
      await this.#closeRouters(plan.newRouters);
      throw err;
    }
    return plan;
  }

  /** A refused reload: what it loaded is released, the routers it created are closed. */
  async #abandon(plan: ReloadPlan): Promise<void> {
    for (const { v } of plan.fresh) {
      v.batcher = undefined;
      await this.#release(v);
    }
    for (const d of plan.derived) {
      if (!d.v) continue;
      d.v.instances = [];
      d.v.batcher = undefined;
      await this.#release(d.v);
    }
    await this.#closeRouters(plan.newRouters);
  }

  async #closeRouters(routers: readonly Router[]): Promise<void> {
    for (const router of routers) await router.close?.().catch((err: unknown) => this.#opts.logger.warn({ err }, `a router failed to close: ${errorMessage(err)}`));
  }

  /**
   * After the swap: each object that left finishes the requests routed to it, drains and unloads
   * (instances another object now serves on are handed over, not unloaded); each old entry's router
   * closes once that entry's requests were answered, unless the new entry kept it.
   */
  async #retire(plan: ReloadPlan): Promise<void> {
    const log = this.#opts.logger;
    const versions = plan.retired.map(async ({ v, replaced, lends }) => {
      if (v.state === 'ready') this.#setState(v, 'draining', undefined, replaced);
      await v.inflight.idle();
      if (lends?.v) {
        // the new object serves on these instances now: drain this one's batcher and steps only
        await v.batcher?.drain();
        v.instances = [];
      }
      await this.#unloadVersions([v], replaced);
    });
    for (const d of plan.derived) {
      const retired = versions[plan.retired.findIndex((r) => r.v === d.from)];
      if (d.v && retired) d.v.inheritedFrom = retired.catch(() => undefined);
    }
    await Promise.all(versions.map((p) => p.catch((err: unknown) => log.warn({ err }, `unloading a replaced version failed: ${errorMessage(err)}`))));
    for (const { entry, keepsRouter } of plan.retiredEntries) {
      await entry.inflight.idle();
      if (keepsRouter) continue;
      entry.routerClosed = true;
      await this.#closeRouters([entry.router]);
    }
  }

  /** Drains every batcher, then unloads instances, models in reverse order; closes the routers. Idempotent. */
  async close(): Promise<void> {
    await this.#manage(async () => undefined);
    await Promise.all([...this.#retiring]);
    const entries = [...this.#models.values()].reverse();
    await this.#unloadVersions(entries.flatMap((m) => [...m.versions.values()].reverse()));
    for (const m of entries) {
      if (m.routerClosed) continue;
      m.routerClosed = true;
      await m.router.close?.().catch((err: unknown) => this.#opts.logger.warn({ err, model: m.name }, `the router of '${m.name}' failed to close: ${errorMessage(err)}`));
    }
  }
}

/** `instances` as a count: `auto` asks the backend's sizing rule for the cores this process may use (1 without one). */
function instanceCount(backend: Backend, instances: number | 'auto', spec: Pick<ModelVersionSpec, 'model' | 'version' | 'path' | 'config'>): number {
  if (instances !== 'auto') return instances;
  const n = backend.autoInstances?.(spec, availableCores()) ?? 1;
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

function checkInstances(model: string, v: ModelVersion): void {
  const md = v.metadata;
  if (!md) throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend returned no instance`);
  if (!v.instances.every((i) => typeof i.execute === 'function' || typeof i.generate === 'function')) {
    throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${v.version}: the backend's instance implements neither execute nor generate`);
  }
}

/**
 * The backend's keys of a model, validated by its schema. Keys the core does not know go to the
 * backend, so a misspelt core key (`postprocesss`) is an unknown key of the backend's: the refusal
 * then names the core key it resembles.
 */
function validateBackendOptions(schema: JSONSchema, options: Record<string, unknown>, at: string, file: { file?: string }): Record<string, unknown> {
  try {
    return validateAgainstSchema<Record<string, unknown>>(schema, options, at, file);
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    const unknown = /unknown key "([^"]+)" \([^)]*\)(?! — did you mean)/.exec(err.message);
    const hint = unknown ? closestMatch(unknown[1]!, MODEL_CORE_KEYS) : undefined;
    if (!hint) throw err;
    throw new TesseraError(err.code, err.message.replace(unknown![0], `${unknown![0]} — did you mean "${hint}" (a model key of the core)?`), { cause: err });
  }
}

/** What a reload changed, by model name. */
export interface ReloadSummary {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

/** A reload's work: the entries after it, the objects to load or derive, what leaves. */
interface ReloadPlan {
  next: Map<string, ModelEntry>;
  fresh: { entry: ModelEntry; v: ModelVersion }[];
  /** Versions started on an old object's instances; `v` is set once started. */
  derived: DerivedVersion[];
  retired: { v: ModelVersion; replaced: boolean; lends?: DerivedVersion | undefined }[];
  retiredEntries: { entry: ModelEntry; keepsRouter: boolean }[];
  newRouters: Router[];
  summary: ReloadSummary;
}

interface DerivedVersion {
  entry: ModelEntry;
  from: ModelVersion;
  v?: ModelVersion;
}

/** The config a backend's `load` (and `build`) gets for a version: its validated options and the batching settings. */
export function specConfigOf(config: ModelConfig, options: Record<string, unknown>): Record<string, unknown> {
  return {
    ...options,
    batching: { batcher: config.batching.batcher, ...(config.batching.maxBatchSize !== undefined ? { maxBatchSize: config.batching.maxBatchSize } : {}), ...config.batching.options },
  };
}

/** The artifact's identity on disk (size, modification time, inode), so a reload sees a file replaced in place; undefined without a path or file. */
async function statArtifact(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    const s = await stat(file);
    return `${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** A model a reload leaves as it is: the same config, the same artifacts on disk, no version failed (a reload retries those). */
async function unchanged(old: ModelEntry, config: ModelConfig): Promise<boolean> {
  if (!isDeepStrictEqual(old.config, config)) return false;
  for (const v of old.versions.values()) {
    if (v.state === 'failed') return false;
    if (v.state !== 'closed' && v.artifact !== (await statArtifact(config.versions[v.version]?.path))) return false;
  }
  return true;
}

/**
 * Whether a ready version's object can serve the new config as it is (`same`), on its instances
 * with new processors or generation limits (`instances`), or must load again (`no`: another
 * artifact, backend, backend options, batching, instance count or warm-up).
 */
async function reusable(old: ModelEntry, v: ModelVersion, config: ModelConfig, options: Record<string, unknown>): Promise<'same' | 'instances' | 'no'> {
  const before = old.config;
  const oldOptions = old.backendOptions.get(v.version) ?? { ...before.options, ...before.versions[v.version]?.options };
  const loads =
    before.backend === config.backend &&
    before.instances === config.instances &&
    before.warmup === config.warmup &&
    before.versions[v.version]?.path === config.versions[v.version]?.path &&
    isDeepStrictEqual(specConfigOf(before, oldOptions), specConfigOf(config, options)) &&
    v.artifact === (await statArtifact(config.versions[v.version]?.path));
  if (!loads) return 'no';
  const serves = isDeepStrictEqual(before.preprocess, config.preprocess) && isDeepStrictEqual(before.postprocess, config.postprocess) && isDeepStrictEqual(before.generation, config.generation);
  return serves ? 'same' : 'instances';
}
