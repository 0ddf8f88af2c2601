import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { dynamicBatcherFactory } from './batching/dynamic-batcher.js';
import { passthroughBatcherFactory } from './batching/passthrough-batcher.js';
import { loadConfig } from './config/load.js';
import type { TesseraConfig, TlsConfig } from './config/types.js';
import type { Clock } from './contracts/clock.js';
import { systemClock } from './contracts/clock.js';
import { ServingEvents } from './contracts/events.js';
import type { Exporter } from './contracts/exporter.js';
import type { MetricRegistrar } from './contracts/metrics.js';
import type { StateStore } from './contracts/state-store.js';
import { TesseraError, errorMessage } from './errors.js';
import { installEdge } from './http/edge.js';
import { installJsonBodyParser } from './http/limits.js';
import { nodeServerLimits, serverLimitOptions } from './http/limits-server.js';
import { installOpenApi } from './http/openapi.js';
import { registerOipV2 } from './http/oip-v2.js';
import { registerOpenAI } from './http/openai.js';
import { registerPredict } from './http/predict.js';
import { registerRepository } from './http/repository.js';
import { registerRoutingApi, routeWeights } from './http/routing-api.js';
import { registerTritonExtensions } from './http/triton-extensions.js';
import { CORE_VERSION } from './internal/core-version.js';
import { bufferedStdout } from './telemetry/log-destination.js';
import type { NamedHook } from './pipeline/hooks.js';
import { HookChain } from './pipeline/hooks.js';
import { ServingPipeline } from './pipeline/serving-pipeline.js';
import { Catalog } from './plugins/catalog.js';
import type { TesseraPlugin } from './plugins/define-plugin.js';
import type { PluginRegistrations } from './plugins/loader.js';
import { classificationProcessorFactory } from './processors/classification.js';
import { imageProcessorFactory } from './processors/image.js';
import { ModelRegistry } from './registry/model-registry.js';
import { latestRouterFactory } from './routing/latest-router.js';
import { listRepository } from './repository/scan.js';
import { createExporters, createHooks } from './server/configured.js';
import { loadPlugins } from './server/load-plugins.js';
import type { ConfigGeneration, ReloadOutcome } from './server/reload.js';
import { ConfigReloader } from './server/reload.js';
import { AuthHook } from './security/auth/auth-hook.js';
import { scopesFor } from './security/auth/access.js';
import { protectMetricsListener } from './security/auth/metrics-listener.js';
import { RateLimitHook } from './security/rate-limit.js';
import { FileStateStore } from './state/file-state-store.js';
import { PromMetricRegistrar } from './telemetry/metric-registrar.js';
import { ModelStatsCollector } from './telemetry/model-stats.js';
import type { ServingSnapshot } from './telemetry/prometheus-exporter.js';
import { PrometheusExporter } from './telemetry/prometheus-exporter.js';
import { tracingEnabled } from './telemetry/tracing.js';

/** How long streams cut at the end of the grace period get to write their error event before connections close. */
const STREAM_END_MS = 1_000;

/** The server's lifecycle (DESIGN §7). */
export type ServerState = 'created' | 'starting' | 'loading' | 'ready' | 'draining' | 'closed';

export interface TesseraServerOptions {
  config: TesseraConfig;
  /** Plugins given as values (tests, embedding), registered before those named in the config. */
  plugins?: TesseraPlugin[];
  /** Where logs go; default: pino JSON on stdout at `server.logLevel`. */
  logger?: Logger;
  /** Time and timers for routers and hooks (default: the system clock; a `FakeClock` in tests). */
  clock?: Clock;
  /** The state store of a namespace (default: files under `server.stateDir`; `MemoryStateStore` in tests). */
  stateStore?: (namespace: string) => StateStore;
  /**
   * How a reload reads the config again (the CLI: the same file with the same command-line
   * overrides). Default: `loadConfig` of `config.configFiles` (or `config.configFile`); without a file, reloads are refused.
   */
  readConfig?: () => Promise<TesseraConfig>;
  /**
   * What `GET /metrics` answers instead of this process's registry: a worker of `tessera serve`'s
   * cluster (`server.workers` > 1) answers the whole server's metrics, aggregated by the primary.
   */
  metricsText?: () => Promise<string>;
}

/** Secrets that must never reach a log line, wherever a logged object carries them. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  // the cluster's secret on the management requests its primary has a worker run (server.workers)
  'req.headers["x-tessera-cluster-execute"]',
  'headers["x-tessera-cluster-execute"]',
  '*.headers["x-tessera-cluster-execute"]',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'password',
  '*.password',
];

/**
 * A Tessera server: plugins, models, the serving pipeline and HTTP wired together. `start()`
 * resolves when every model is ready (or rejects with the first model that failed, when
 * `server.exitOnModelError`); `close()` drains and releases everything, once, in reverse order.
 */
export class TesseraServer {
  #config: TesseraConfig;
  readonly container = new Container();
  readonly events = new ServingEvents();
  readonly app: FastifyInstance;
  readonly registry: ModelRegistry;
  /** The registry `/metrics` serves: the core's series and those plugins register through `metrics`. */
  readonly metricsRegistry = new Registry();
  /** Where plugins register their own metric series. */
  readonly metrics: MetricRegistrar;
  readonly #catalog: Catalog;
  readonly #options: TesseraServerOptions;
  readonly #shutdown = new AbortController();
  /** Aborted when the grace period is over: streams still running end with an error event. */
  readonly #streamsCut = new AbortController();
  #state: ServerState = 'created';
  #registrations: PluginRegistrations | undefined;
  #exporters: { name: string; exporter: Exporter }[] = [];
  #hooks: HookChain | undefined;
  /** The core's authentication (`auth`), when configured. */
  #auth: AuthHook | undefined;
  #pipeline: ServingPipeline | undefined;
  #closing: Promise<void> | undefined;
  #reloader: ConfigReloader | undefined;
  #inflight = 0;
  #idle: (() => void) | undefined;
  /** The `server.metricsPort` listener, when configured. */
  #metricsApp: FastifyInstance | undefined;
  /** The default logger's buffered stdout, when the server made its own logger. */
  readonly #logOut: ReturnType<typeof bufferedStdout> | undefined;
  /** Its URL once listening. */
  metricsUrl: string | undefined;

  constructor(options: TesseraServerOptions) {
    this.#options = options;
    this.#config = options.config;
    const { server } = options.config;
    // the default logger writes stdout through a buffer (see bufferedStdout), closed with the server
    this.#logOut = options.logger || server.logLevel === 'silent' ? undefined : bufferedStdout();
    this.app = Fastify({
      ...(options.logger
        ? { loggerInstance: options.logger }
        : { logger: { level: server.logLevel, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' }, ...(this.#logOut ? { stream: this.#logOut.stream } : {}) } }),
      bodyLimit: server.bodyLimit,
      ...serverLimitOptions(server.limits),
      ...(server.tls ? { https: { ...httpsOptions(server.tls), ...nodeServerLimits(server.limits) } } : {}),
      // fastify takes a hop count too (proxy-addr's trust by count); its https overload's type omits it
      trustProxy: server.trustProxy as boolean | string,
      // one access-log line per request is written by the edge, with the model and version
      logController: new LogController({ disableRequestLogging: true }),
      requestIdHeader: 'x-request-id',
      // a random id (not fastify's req-1, req-2, … that restart with every process): routers hash it to sample traffic
      genReqId: () => randomUUID(),
      return503OnClosing: false,
      forceCloseConnections: 'idle',
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    }) as unknown as FastifyInstance;
    this.metrics = new PromMetricRegistrar(this.metricsRegistry);
    this.#catalog = new Catalog(this.container);
    const stateDir = server.stateDir;
    this.registry = new ModelRegistry({
      catalog: this.#catalog,
      events: this.events,
      logger: this.logger,
      signal: this.#shutdown.signal,
      clock: options.clock ?? systemClock,
      metrics: this.metrics,
      stateStore: options.stateStore ?? ((namespace) => new FileStateStore(stateDir, namespace)),
      ...(options.config.configFile ? { configFile: options.config.configFile } : {}),
    });
    this.events.onListenerError = (err) => this.app.log.error({ err }, 'a telemetry listener threw; further listener errors are not logged');
    const core = 'the core';
    this.#catalog.bind('batcher', 'passthrough', passthroughBatcherFactory, core);
    this.#catalog.bind('batcher', 'dynamic', dynamicBatcherFactory, core);
    this.#catalog.bind('router', 'latest', latestRouterFactory, core);
    // sharp is imported when a model with an image step loads, not here
    this.#catalog.bind('processor', 'image', imageProcessorFactory, core);
    this.#catalog.bind('processor', 'classification', classificationProcessorFactory, core);
    this.#catalog.bind('exporter', 'prometheus', new PrometheusExporter(() => this.#snapshot(), this.metricsRegistry, options.metricsText), core);
  }

  /** What the Prometheus gauges read at scrape time. */
  #snapshot(): ServingSnapshot {
    const versions = this.registry.models().flatMap((m) =>
      [...m.versions.values()].map((v) => {
        const stats = v.batcher?.stats();
        return { model: m.name, version: v.version, ready: v.ready, queued: stats?.queued ?? 0, executing: stats?.executing ?? 0 };
      }),
    );
    const routes = this.registry.models().flatMap((m) => {
      const weights = routeWeights(m);
      return weights ? [{ model: m.name, weights }] : [];
    });
    return { inflight: this.#inflight, versions, routes };
  }

  /** Requests that arrived and are not answered yet (all endpoints). */
  get inflight(): number {
    return this.#inflight;
  }

  get state(): ServerState {
    return this.#state;
  }

  /** The config serving now (its `models` change with each applied reload). */
  get config(): TesseraConfig {
    return this.#config;
  }

  /** The config generation serving: 1 at start, one more per applied reload. */
  get generation(): ConfigGeneration {
    return this.#reloader?.generation ?? { generation: 1, configFile: this.#config.configFile, appliedAt: '' };
  }

  /**
   * Reads the config again and applies what changed in its models (SIGHUP, `serve --watch`):
   * new models and versions load and warm before they take traffic, removed ones drain and
   * unload, changed settings apply, without a request dropped. Refused as a whole (the serving
   * generation goes on) when the config is invalid or a model fails to load; refused while the
   * server starts or drains. Never rejects.
   */
  async reload(trigger = 'reload'): Promise<ReloadOutcome> {
    if (!this.#reloader || this.#state !== 'ready') {
      const why = this.#state === 'draining' || this.#state === 'closed' ? 'the server is shutting down' : 'the server is still starting';
      this.logger.warn({ trigger, state: this.#state }, `config reload (${trigger}) ignored: ${why}`);
      return { ok: false, generation: this.generation.generation, error: why, restartNeeded: [], durationMs: 0, at: new Date().toISOString() };
    }
    return this.#reloader.reload(trigger);
  }

  get logger(): Logger {
    return this.app.log as unknown as Logger;
  }

  /** The serving pipeline (after `check()`), for protocol adapters added by plugins. */
  get pipeline(): ServingPipeline {
    if (!this.#pipeline) throw new Error('the pipeline exists once check() or start() ran');
    return this.#pipeline;
  }

  /**
   * Loads plugins and checks every model's backend, batcher, router, processors and options, the
   * hooks and the exporters, and installs the HTTP routes, without loading any model or listening
   * (`tessera validate`). `start()` calls it.
   */
  async check(): Promise<void> {
    if (this.#state !== 'created') throw new Error('TesseraServer.start()/check() may be called once');
    this.#state = 'starting';
    const { config, logger } = this;
    for (const warning of config.warnings ?? []) logger.warn(warning);
    this.#registrations = await loadPlugins(config, this.#options.plugins ?? [], this.container, this.#catalog, logger);
    const tracing = tracingEnabled();
    await this.registry.configure(config.models);
    this.#reloader = new ConfigReloader({
      registry: this.registry,
      logger,
      metrics: this.metrics,
      current: () => this.#config,
      read: () => this.#readConfig(),
      apply: (next) => (this.#config = next),
    });
    const shared = { catalog: this.#catalog, config, logger, metrics: this.metrics, clock: this.#options.clock ?? systemClock };
    this.#exporters = await createExporters(shared);
    for (const { exporter } of this.#exporters) exporter.attach(this.events);
    // the core's own hooks run first, in this order: authentication, then rate limits (per principal)
    const coreHooks: NamedHook[] = [];
    if (config.auth) {
      this.#auth = await AuthHook.create(config.auth, logger, this.metrics);
      coreHooks.push({ name: 'auth', hook: this.#auth });
    }
    if (config.server.rateLimit) coreHooks.push({ name: 'rate-limit (server.rateLimit)', hook: await RateLimitHook.create(this.app, config.server.rateLimit, logger, this.metrics) });
    this.#hooks = new HookChain([...coreHooks, ...(await createHooks(shared))], logger);
    const auth = this.#auth;
    const pipeline = new ServingPipeline({
      registry: this.registry,
      events: this.events,
      hooks: this.#hooks,
      logger,
      admitting: () => this.#state !== 'draining' && this.#state !== 'closed',
      limits: config.server.limits,
      ...(auth ? { admitModel: (request, model) => auth.admitModel(request, model) } : {}),
    });
    this.#pipeline = pipeline;
    installEdge(this.app, {
      pipeline,
      tracing,
      bodyLimit: config.server.bodyLimit,
      draining: () => this.#state === 'draining' || this.#state === 'closed',
      arrived: () => void this.#inflight++,
      answered: () => {
        if (--this.#inflight === 0) this.#idle?.();
      },
    });
    installJsonBodyParser(this.app, config.server.limits);
    // before the routes: @fastify/swagger collects them as they are added
    if (config.server.openapi !== false) {
      const metricsAccess = config.auth?.metrics ?? 'open';
      await installOpenApi(this.app, { registry: this.registry, version: CORE_VERSION, auth: auth !== undefined, open: (kind) => scopesFor(kind, metricsAccess) === null });
    }
    registerOipV2(this.app, {
      limits: config.server.limits,
      registry: this.registry,
      pipeline,
      serverName: 'tessera',
      serverVersion: CORE_VERSION,
      extensions: ['binary_tensor_data', 'model_repository', 'statistics', 'model_configuration', 'classification'],
      accepting: () => this.#state === 'ready',
    });
    const reloader = this.#reloader;
    registerRepository(this.app, {
      registry: this.registry,
      generation: () => ({ generation: reloader.generation, last: reloader.last }),
      ...(this.#config.repository ? { discover: () => this.#discover() } : {}),
      ...(config.configFile || this.#options.readConfig ? { add: (model: string) => (this.#state === 'ready' ? reloader.add(model) : Promise.resolve(undefined)) } : {}),
    });
    // Triton's statistics (kept from the serving events) and model-configuration extensions
    const stats = new ModelStatsCollector();
    stats.attach(this.events);
    registerTritonExtensions(this.app, { registry: this.registry, stats });
    registerPredict(this.app, { pipeline });
    registerOpenAI(this.app, { limits: config.server.limits, registry: this.registry, pipeline, streamsCut: this.#streamsCut.signal });
    registerRoutingApi(this.app, { registry: this.registry });
    this.app.get('/health', { config: { endpoint: 'health' } }, async (_req, reply) => reply.send({ status: 'ok' }));
    await this.#exporterRoutes(this.app);
    for (const routes of this.#registrations.routes) await routes(this.app);
  }

  /** The repository folder rescanned: its models, the versions their policy serves, why one cannot be served. */
  #discover(): { name: string; versions: string[]; reason?: string }[] {
    const listing = listRepository(this.#config.repository!, { label: `${this.#config.configFile || 'config'}: repository` });
    return listing.models.map((m) => ({ name: m.name, versions: m.served, ...(m.error ? { reason: m.error.message } : {}) }));
  }

  /** The config as a reload reads it. */
  async #readConfig(): Promise<TesseraConfig> {
    if (this.#options.readConfig) return this.#options.readConfig();
    const file = this.#config.configFile;
    if (!file) throw new TesseraError('TESSERA_E_CONFIG_NOT_FOUND', 'this server was given its config as an object, not a file: there is nothing to reload from');
    return loadConfig({ files: this.#config.configFiles ?? [file], cwd: this.#config.configDir, env: process.env });
  }

  /** Exporters' routes, with the endpoint kind `metrics` unless they say otherwise. */
  async #exporterRoutes(app: FastifyInstance): Promise<void> {
    const exporters = this.#exporters.filter((e) => e.exporter.routes !== undefined);
    if (exporters.length === 0) return;
    await app.register(async (scope) => {
      scope.addHook('onRoute', (route) => {
        route.config = { endpoint: 'metrics', ...(route.config as object) };
      });
      for (const { exporter } of exporters) await exporter.routes!(scope);
    });
  }

  /**
   * Checks, listens, then loads and warms every model (so that health and readiness answer while
   * the models load). `listen: false` skips the listeners (for `app.inject()` in tests, or an
   * embedding that serves `app` itself); the URL is then empty. `loadFirst`: load and warm every
   * model before listening — a worker of `server.workers` does, since node:cluster hands new
   * connections to every worker that listens: a worker (re)starting would otherwise answer its
   * share of them 503 while its siblings serve.
   */
  async start(options: { listen?: boolean; loadFirst?: boolean } = {}): Promise<{ url: string; port: number; host: string }> {
    await this.check();
    const { host, port } = this.config.server;
    if (options.listen === false) {
      await this.app.ready();
      await this.#loadModels();
      this.#announceReady('');
      return { url: '', port: 0, host };
    }
    if (options.loadFirst) {
      await this.app.ready();
      await this.#loadModels();
    }
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    const hostPart = shownHost.includes(':') ? `[${shownHost}]` : shownHost;
    const url = `${this.config.server.tls ? 'https' : 'http'}://${hostPart}:${actualPort}`;
    if (this.config.server.metricsPort !== undefined) {
      // a bare listener for scrapes: /metrics and /health only, no access log, no hooks
      const metricsApp = Fastify({ logger: false }) as unknown as FastifyInstance;
      this.#metricsApp = metricsApp;
      if (this.#auth) protectMetricsListener(metricsApp, this.#auth);
      await this.#exporterRoutes(metricsApp);
      metricsApp.get('/health', async (_req, reply) => reply.send({ status: 'ok' }));
      await metricsApp.listen({ host, port: this.config.server.metricsPort });
      const a = metricsApp.server.address();
      this.metricsUrl = `http://${hostPart}:${typeof a === 'object' && a ? a.port : this.config.server.metricsPort}`;
    }
    if (!options.loadFirst) {
      this.logger.info({ url, ...(this.metricsUrl ? { metricsUrl: this.metricsUrl } : {}) }, 'listening; loading models');
      await this.#loadModels();
    }
    this.#announceReady(url);
    return { url, port: actualPort, host };
  }

  async #loadModels(): Promise<void> {
    this.#state = 'loading';
    const failed = await this.registry.loadAll();
    if (failed.length > 0) {
      const reasons = failed.map((v) => v.reason ?? `${v.model} v${v.version} failed`).join('; ');
      if (this.config.server.exitOnModelError) {
        throw new TesseraError('TESSERA_E_MODEL_LOAD', reasons);
      }
      this.logger.error({ failed: failed.map((v) => `${v.model}:${v.version}`) }, `serving without failed models: ${reasons}`);
    }
    if (this.#state === 'loading') this.#state = 'ready';
  }

  /** The `server ready` line (what scripts and the test kit wait for). */
  #announceReady(url: string): void {
    const models = this.registry.models().map((m) => `${m.name} (v${[...m.versions.keys()].join(', v')})`);
    this.logger.info({ url, ...(this.metricsUrl ? { metricsUrl: this.metricsUrl } : {}), models }, url ? `server ready at ${url}` : 'server ready (not listening)');
  }

  /** Resolves when no request is in flight, or after `ms`. */
  async #waitIdle(ms: number): Promise<void> {
    if (this.#inflight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((resolve) => (this.#idle = resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Flushes every exporter (`forceFlush`): what is buffered is written out now. */
  async flush(): Promise<void> {
    for (const { name, exporter } of this.#exporters) {
      await exporter.forceFlush?.().catch((err: unknown) => this.logger.warn({ err }, `exporter '${name}' failed to flush: ${errorMessage(err)}`));
    }
  }

  /**
   * Drains and stops: readiness turns 503, new serving requests get 503, in-flight requests and
   * shadow copies finish (bounded by `server.shutdownGracePeriod`), the listener closes, models
   * unload in reverse order, routers close, hooks close, plugins' close hooks run, exporters flush
   * and shut down. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const log = this.logger;
    this.#state = 'draining';
    log.info({ inflight: this.#inflight }, 'draining');
    this.#shutdown.abort();
    const grace = this.config.server.shutdownGracePeriodMs;
    await this.#waitIdle(grace);
    // past the grace period: streams still running end with an error event and [DONE] (their
    // upstream work is aborted); what is still open after a moment for that is cut
    if (this.#inflight > 0) {
      log.warn({ inflight: this.#inflight }, 'grace period over; ending the streams and closing the connections still in flight');
      this.#streamsCut.abort();
      await this.#waitIdle(STREAM_END_MS);
    }
    // Drained (or out of time): close every connection, also keep-alive ones a client holds without a
    // request on them, which `close()` would otherwise wait for indefinitely.
    const closing = this.app.close();
    this.app.server.closeAllConnections();
    await closing.catch((err: unknown) => log.warn({ err }, `closing the HTTP server failed: ${errorMessage(err)}`));
    await this.#pipeline?.drainShadows();
    await this.registry.close();
    await this.#hooks?.close();
    for (const hook of [...(this.#registrations?.closeHooks ?? [])].reverse()) {
      await hook().catch((err: unknown) => log.warn({ err }, `a plugin close hook failed: ${errorMessage(err)}`));
    }
    // the metrics listener goes last: a final scrape during the drain still works
    const metricsClosing = this.#metricsApp?.close();
    this.#metricsApp?.server.closeAllConnections();
    await metricsClosing?.catch((err: unknown) => log.warn({ err }, `closing the metrics listener failed: ${errorMessage(err)}`));
    await this.flush();
    for (const { name, exporter } of [...this.#exporters].reverse()) {
      await exporter.shutdown().catch((err: unknown) => log.warn({ err }, `exporter '${name}' failed to shut down: ${errorMessage(err)}`));
    }
    this.#state = 'closed';
    log.info('closed');
    await this.#logOut?.close();
  }
}

/**
 * `server.tls` as Node's TLS options: the PEM files read now (a missing one is a config error that
 * names it), and with `ca` a client certificate required on every connection.
 */
function httpsOptions(tls: TlsConfig): https.ServerOptions {
  const read = (file: string, key: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `server.tls.${key}: cannot read ${file}: ${errorMessage(err)}`, { cause: err });
    }
  };
  return {
    cert: read(tls.cert, 'cert'),
    key: read(tls.key, 'key'),
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
    ...(tls.ca ? { ca: read(tls.ca, 'ca'), requestCert: true, rejectUnauthorized: true } : {}),
    minVersion: 'TLSv1.2',
  };
}

/** Creates a server from a resolved config (see `loadConfig`). Call `start()` to serve. */
export function createServer(options: TesseraServerOptions): TesseraServer {
  return new TesseraServer(options);
}
