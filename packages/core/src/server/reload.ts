import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { CounterMetric, GaugeMetric, MetricRegistrar } from '../contracts/metrics.js';
import type { TesseraConfig } from '../config/types.js';
import { errorMessage, isTesseraError } from '../errors.js';
import type { ModelRegistry, ReloadSummary } from '../registry/model-registry.js';

/** The config generation that serves: 1 at start, one more per applied reload. */
export interface ConfigGeneration {
  generation: number;
  configFile: string;
  /** When it began to serve (ISO 8601). */
  appliedAt: string;
}

/** How one reload ended. */
export interface ReloadOutcome {
  ok: boolean;
  /** The generation serving after it (unchanged when refused). */
  generation: number;
  /** What it did to the models (applied reloads). */
  summary?: ReloadSummary;
  /** Why it was refused. */
  error?: string;
  code?: string;
  /** Config keys outside `models` that changed and are not applied until a restart. */
  restartNeeded: string[];
  durationMs: number;
  /** When it ended (ISO 8601). */
  at: string;
}

export interface ConfigReloaderOptions {
  registry: ModelRegistry;
  logger: Logger;
  metrics: MetricRegistrar;
  /** The config serving now. */
  current: () => TesseraConfig;
  /** Reads the config again (the same file, the same command-line overrides). */
  read: () => Promise<TesseraConfig>;
  /** Makes an applied config the server's. */
  apply: (config: TesseraConfig) => void;
}

/**
 * Reloads the config (SIGHUP, `serve --watch`, a model loaded from the repository folder): reads it
 * again, applies the models' difference through the registry as one change, and counts
 * generations. A config that does not resolve, or whose models do not check or load, is refused as
 * a whole and the generation serving goes on. Reloads run one at a time, each reading the config
 * when it starts.
 */
export class ConfigReloader {
  readonly #opts: ConfigReloaderOptions;
  #generation: ConfigGeneration;
  #last: ReloadOutcome | undefined;
  /** The reload running or queued last: the next one starts after it (and reads the config after it). */
  #tail: Promise<unknown> = Promise.resolve();
  readonly #reloads: CounterMetric;
  readonly #generationGauge: GaugeMetric;
  readonly #successful: GaugeMetric;
  readonly #timestamp: GaugeMetric;

  constructor(options: ConfigReloaderOptions) {
    this.#opts = options;
    this.#generation = { generation: 1, configFile: options.current().configFile, appliedAt: new Date().toISOString() };
    const { metrics } = options;
    this.#reloads = metrics.counter({ name: 'tessera_config_reloads_total', help: 'Config reloads (SIGHUP, serve --watch, repository loads), by result: applied, or refused (the previous config kept serving).', labelNames: ['result'] });
    this.#generationGauge = metrics.gauge({ name: 'tessera_config_generation', help: 'The config generation serving: 1 at start, one more per applied reload.', aggregator: 'max' });
    this.#successful = metrics.gauge({ name: 'tessera_config_last_reload_successful', help: 'Whether the last config reload was applied (1) or refused (0); 1 before any reload.', aggregator: 'min' });
    this.#timestamp = metrics.gauge({ name: 'tessera_config_last_reload_timestamp_seconds', help: 'When the last config reload ended (applied or refused), Unix seconds; the start time before any reload.', aggregator: 'max' });
    this.#generationGauge.set({}, 1);
    this.#successful.set({}, 1);
    this.#timestamp.set({}, Date.now() / 1000);
  }

  get generation(): ConfigGeneration {
    return this.#generation;
  }

  /** The last reload's outcome, if any ran. */
  get last(): ReloadOutcome | undefined {
    return this.#last;
  }

  /**
   * Reloads now, or after the reload running (which would not see a change made after it read the
   * config). Never rejects: a refusal is an outcome with `ok: false`, logged with the config file.
   */
  reload(trigger: string): Promise<ReloadOutcome> {
    return this.#serialised(() => this.#run(trigger, (_current, next) => next.models, true));
  }

  /**
   * Adds one model that the config (or its repository folder) has now and the server does not
   * serve — the repository extension's load of a model never configured — leaving every other
   * model as it serves. A new generation when applied; `undefined` when the config does not have it.
   */
  async add(model: string): Promise<ReloadOutcome | undefined> {
    let found = false;
    const outcome = await this.#serialised(() =>
      this.#run(`load of '${model}' from the config`, (current, next) => {
        const config = next.models[model];
        if (!config) return undefined;
        found = true;
        return { ...current.models, [model]: config };
      }, false),
    );
    return found || !outcome.ok ? outcome : undefined;
  }

  #serialised(run: () => Promise<ReloadOutcome>): Promise<ReloadOutcome> {
    const next = this.#tail.then(run);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /** Reads the config, picks the models to serve from it (`undefined`: nothing to do), applies them, counts. */
  async #run(trigger: string, pick: (current: TesseraConfig, next: TesseraConfig) => TesseraConfig['models'] | undefined, whole: boolean): Promise<ReloadOutcome> {
    const { logger: log, registry } = this.#opts;
    const started = performance.now();
    const current = this.#opts.current();
    const file = current.configFile || 'the config';
    log.info({ trigger, configFile: current.configFile, generation: this.#generation.generation }, `reloading the config (${trigger})`);
    let outcome: ReloadOutcome;
    try {
      const next = await this.#opts.read();
      const models = pick(current, next);
      if (!models) return { ok: true, generation: this.#generation.generation, restartNeeded: [], durationMs: performance.now() - started, at: new Date().toISOString() };
      const restartNeeded = whole ? changedOutsideModels(current, next) : [];
      const summary = await registry.reconfigure(models);
      this.#opts.apply({ ...current, models, ...(whole && next.warnings ? { warnings: next.warnings } : {}) });
      this.#generation = { generation: this.#generation.generation + 1, configFile: next.configFile, appliedAt: new Date().toISOString() };
      outcome = { ok: true, generation: this.#generation.generation, summary, restartNeeded, durationMs: performance.now() - started, at: new Date().toISOString() };
      if (whole) for (const warning of next.warnings ?? []) log.warn(warning);
      if (restartNeeded.length > 0) log.warn({ keys: restartNeeded }, `${file}: ${restartNeeded.join(', ')} changed; only models are reloaded, so these apply at the next restart`);
      log.info({ generation: outcome.generation, ...summary, ms: Math.round(outcome.durationMs) }, `config reloaded: generation ${outcome.generation} serving`);
    } catch (err) {
      const code = isTesseraError(err) ? err.code : undefined;
      outcome = { ok: false, generation: this.#generation.generation, error: errorMessage(err), ...(code ? { code } : {}), restartNeeded: [], durationMs: performance.now() - started, at: new Date().toISOString() };
      log.error({ err, configFile: current.configFile, generation: outcome.generation }, `config reload refused, generation ${outcome.generation} keeps serving: ${errorMessage(err)}`);
    }
    this.#last = outcome;
    this.#reloads.inc({ result: outcome.ok ? 'applied' : 'refused' });
    this.#generationGauge.set({}, this.#generation.generation);
    this.#successful.set({}, outcome.ok ? 1 : 0);
    this.#timestamp.set({}, Date.now() / 1000);
    return outcome;
  }
}

/** The keys outside `models` whose values differ (`server.port`, `auth`, `plugins`, …): a reload does not apply them. */
export function changedOutsideModels(current: TesseraConfig, next: TesseraConfig): string[] {
  const changed: string[] = [];
  const serverKeys = new Set([...Object.keys(current.server), ...Object.keys(next.server)]);
  for (const key of serverKeys) {
    if (!isDeepStrictEqual((current.server as unknown as Record<string, unknown>)[key], (next.server as unknown as Record<string, unknown>)[key])) changed.push(`server.${key}`);
  }
  for (const key of ['plugins', 'exporters', 'hooks', 'auth'] as const) {
    if (!isDeepStrictEqual(current[key], next[key])) changed.push(key);
  }
  const sections = new Set([...Object.keys(current.sections), ...Object.keys(next.sections)]);
  for (const key of sections) if (!isDeepStrictEqual(current.sections[key], next.sections[key])) changed.push(key);
  return changed;
}
