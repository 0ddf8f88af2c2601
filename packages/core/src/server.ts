import 'reflect-metadata';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { dynamicBatcherFactory } from './batching/dynamic-batcher.js';
import { passthroughBatcherFactory } from './batching/passthrough-batcher.js';
import type { TesseraConfig } from './config/types.js';
import { closestMatch } from './config/suggest.js';
import { BATCHER_FACTORY } from './contracts/batcher.js';
import { ServingEvents } from './contracts/events.js';
import type { Exporter } from './contracts/exporter.js';
import { EXPORTER } from './contracts/exporter.js';
import type { RouteCandidate, Router } from './contracts/router.js';
import { ROUTER_FACTORY } from './contracts/router.js';
import { TesseraError, errorMessage } from './errors.js';
import type { RequestContext } from './http/context.js';
import { sendError, toTesseraError } from './http/errors.js';
import { registerOipV2 } from './http/oip-v2.js';
import { registerOpenAI, sendOpenAIError } from './http/openai.js';
import { registerPredict } from './http/predict.js';
import { registerRepository } from './http/repository.js';
import { CORE_VERSION } from './internal/core-version.js';
import type { TesseraPlugin } from './plugins/define-plugin.js';
import type { LoadedPlugin, PluginRegistrations } from './plugins/loader.js';
import { importPlugin, registerPlugins } from './plugins/loader.js';
import { KNOWN_BACKEND_PACKAGES, ModelRegistry } from './registry/model-registry.js';
import { latestRouterFactory } from './routing/latest-router.js';
import type { ServingSnapshot } from './telemetry/prometheus-exporter.js';
import { PrometheusExporter } from './telemetry/prometheus-exporter.js';
import { ATTR, endServerSpan, startServerSpan, tracingEnabled } from './telemetry/tracing.js';

/** The server's lifecycle (DESIGN §7). */
export type ServerState = 'created' | 'starting' | 'loading' | 'ready' | 'draining' | 'closed';

export interface TesseraServerOptions {
  config: TesseraConfig;
  /** Plugins given as values (tests, embedding), registered before those named in the config. */
  plugins?: TesseraPlugin[];
  /** Where logs go; default: pino JSON on stdout at `server.logLevel`. */
  logger?: Logger;
}

/** Secrets that must never reach a log line, wherever a logged object carries them. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'password',
  '*.password',
];

/** Root keys the core itself owns. */
const CORE_KEYS = ['server', 'plugins', 'models'];

/**
 * A Tessera server: plugins, models and HTTP wired together. `start()` resolves when every model is
 * ready (or rejects with the first model that failed, when `server.exitOnModelError`); `close()`
 * drains and releases everything, once.
 */
export class TesseraServer {
  readonly config: TesseraConfig;
  readonly container = new Container();
  readonly events = new ServingEvents();
  readonly app: FastifyInstance;
  readonly registry: ModelRegistry;
  readonly #options: TesseraServerOptions;
  readonly #shutdown = new AbortController();
  #state: ServerState = 'created';
  #registrations: PluginRegistrations | undefined;
  #exporters: Exporter[] = [];
  #closing: Promise<void> | undefined;
  #inflight = 0;
  #idle: (() => void) | undefined;
  /** Whether a tracing SDK is registered (checked once, after the plugins registered). */
  #tracing = false;
  /** The `server.metricsPort` listener, when configured. */
  #metricsApp: FastifyInstance | undefined;
  /** Its URL once listening. */
  metricsUrl: string | undefined;

  constructor(options: TesseraServerOptions) {
    this.#options = options;
    this.config = options.config;
    const { server } = options.config;
    this.app = Fastify({
      ...(options.logger ? { loggerInstance: options.logger } : { logger: { level: server.logLevel, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } } }),
      bodyLimit: server.bodyLimit,
      // one access-log line per request is written in onResponse, with the model and version
      logController: new LogController({ disableRequestLogging: true }),
      requestIdHeader: 'x-request-id',
      return503OnClosing: false,
      forceCloseConnections: 'idle',
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    }) as unknown as FastifyInstance;
    this.registry = new ModelRegistry({ container: this.container, events: this.events, logger: this.logger, signal: this.#shutdown.signal, ...(options.config.configFile ? { configFile: options.config.configFile } : {}) });
    this.events.onListenerError = (err) => this.app.log.error({ err }, 'a telemetry listener threw; further listener errors are not logged');
    this.container.bind(BATCHER_FACTORY).toConstantValue(passthroughBatcherFactory).whenNamed('passthrough');
    this.container.bind(BATCHER_FACTORY).toConstantValue(dynamicBatcherFactory).whenNamed('dynamic');
    this.container.bind(ROUTER_FACTORY).toConstantValue(latestRouterFactory).whenNamed('latest');
    this.container.bind(EXPORTER).toConstantValue(new PrometheusExporter(() => this.#snapshot())).whenNamed('prometheus');
  }

  /** What the Prometheus gauges read at scrape time. */
  #snapshot(): ServingSnapshot {
    const versions = this.registry.models().flatMap((m) =>
      [...m.versions.values()].map((v) => {
        const stats = v.batcher?.stats();
        return { model: m.name, version: v.version, ready: v.ready, queued: stats?.queued ?? 0, executing: stats?.executing ?? 0 };
      }),
    );
    const routes = this.registry.models().map((m) => {
      const candidates = m.candidates();
      return { model: m.name, weights: m.router.weights?.(candidates) ?? fallbackWeights(m.router, m.name, candidates) };
    });
    return { inflight: this.#inflight, versions, routes };
  }

  get state(): ServerState {
    return this.#state;
  }

  get logger(): Logger {
    return this.app.log as unknown as Logger;
  }

  /**
   * Loads plugins, checks every model's backend and options, listens, then loads and warms the
   * models. Resolves with the address once every model is ready.
   */
  /**
   * Loads plugins and checks every model's backend, batcher, router and options without loading
   * any model or listening (`tessera validate`). `start()` calls it.
   */
  async check(): Promise<void> {
    if (this.#state !== 'created') throw new Error('TesseraServer.start()/check() may be called once');
    this.#state = 'starting';
    for (const warning of this.config.warnings ?? []) this.logger.warn(warning);
    await this.#loadPlugins();
    this.#tracing = tracingEnabled();
    this.registry.configure(this.config.models);
    this.#exporters = ['prometheus', ...(this.#registrations?.exporters ?? [])].map((name) => this.container.get<Exporter>(EXPORTER, { name }));
    for (const e of this.#exporters) e.attach(this.events);
    this.#installHttp();
    registerOipV2(this.app, {
      registry: this.registry,
      serverName: 'tessera',
      serverVersion: CORE_VERSION,
      extensions: ['binary_tensor_data', 'model_repository'],
      accepting: () => this.#state === 'ready',
      draining: () => this.#state === 'draining' || this.#state === 'closed',
    });
    registerRepository(this.app, { registry: this.registry });
    registerPredict(this.app, { registry: this.registry, draining: () => this.#state === 'draining' || this.#state === 'closed' });
    registerOpenAI(this.app, { registry: this.registry, events: this.events, draining: () => this.#state === 'draining' || this.#state === 'closed' });
    this.app.get('/health', async (_req, reply) => reply.send({ status: 'ok' }));
    for (const e of this.#exporters) await e.routes?.(this.app);
    for (const routes of this.#registrations?.routes ?? []) await routes(this.app);
  }

  async start(): Promise<{ url: string; port: number; host: string }> {
    await this.check();
    const { host, port } = this.config.server;
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    const hostPart = shownHost.includes(':') ? `[${shownHost}]` : shownHost;
    const url = `http://${hostPart}:${actualPort}`;
    if (this.config.server.metricsPort !== undefined) {
      // a bare listener for scrapes: /metrics and /health only, no access log
      const metricsApp = Fastify({ logger: false }) as unknown as FastifyInstance;
      this.#metricsApp = metricsApp;
      for (const e of this.#exporters) await e.routes?.(metricsApp);
      metricsApp.get('/health', async (_req, reply) => reply.send({ status: 'ok' }));
      await metricsApp.listen({ host, port: this.config.server.metricsPort });
      const a = metricsApp.server.address();
      this.metricsUrl = `http://${hostPart}:${typeof a === 'object' && a ? a.port : this.config.server.metricsPort}`;
    }
    this.logger.info({ url, ...(this.metricsUrl ? { metricsUrl: this.metricsUrl } : {}) }, 'listening; loading models');

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
    const models = this.registry.models().map((m) => `${m.name} (v${[...m.versions.keys()].join(', v')})`);
    this.logger.info({ url, ...(this.metricsUrl ? { metricsUrl: this.metricsUrl } : {}), models }, `server ready at ${url}`);
    return { url, port: actualPort, host };
  }

  async #loadPlugins(): Promise<void> {
    const { config } = this;
    const loaded: LoadedPlugin[] = (this.#options.plugins ?? []).map((plugin) => ({ plugin, source: plugin.name }));
    for (const spec of config.plugins) loaded.push({ plugin: await importPlugin(spec, config.configDir), source: spec });
    // A model on a well-known backend (onnxruntime, vllm, …) loads its package when it is installed,
    // without listing it under `plugins:`.
    const named = new Set(loaded.map((l) => l.plugin.name));
    for (const model of Object.values(config.models)) {
      const pkg = KNOWN_BACKEND_PACKAGES[model.backend];
      if (pkg && !named.has(pkg)) {
        try {
          loaded.push({ plugin: await importPlugin(pkg, config.configDir), source: pkg });
          named.add(pkg);
        } catch (err) {
          if (!(err instanceof TesseraError && err.code === 'TESSERA_E_PLUGIN_NOT_FOUND')) throw err;
          // reported by the registry as an unknown backend, with the install hint
        }
      }
    }
    this.#registrations = await registerPlugins(loaded, {
      container: this.container,
      logger: this.logger,
      coreVersion: CORE_VERSION,
      configDir: config.configDir,
      ...(config.configFile ? { configFile: config.configFile } : {}),
      sections: config.sections,
    });
    const claimed = this.#registrations.configKeys;
    for (const key of Object.keys(config.sections)) {
      if (!claimed.has(key)) {
        const allowed = [...CORE_KEYS, ...claimed];
        const guess = closestMatch(key, allowed);
        const file = config.configFile ? `${config.configFile}: ` : '';
        throw new TesseraError(
          'TESSERA_E_CONFIG_INVALID',
          `${file}${key}: unknown key at the root of the config (allowed: ${allowed.join(', ')})${guess ? ` — did you mean "${guess}"?` : '; a plugin section needs its plugin under `plugins:`'}`,
        );
      }
    }
  }

  #installHttp(): void {
    const { app } = this;
    app.decorateRequest('tessera', null as unknown as RequestContext);
    app.addHook('onRequest', async (request, reply) => {
      const ctx: RequestContext = { protocol: 'http', started: performance.now() };
      request.tessera = ctx;
      this.#inflight++;
      if (this.#tracing) {
        const path = request.url.split('?')[0]!;
        const { span, context } = startServerSpan(request.method, request.routeOptions.url, path, request.headers, ctx.started);
        ctx.span = span;
        ctx.trace = context;
        void reply.header('x-trace-id', span.spanContext().traceId);
      }
      // A response the client cut off (a stream it left) fires neither `finish` nor onResponse, and
      // a hijacked one (server-sent events) no onResponse: `close` always comes, once.
      const res = reply.raw;
      res.once('close', () => {
        this.#finish(request, res.writableFinished ? res.statusCode : 499, performance.now() - request.tessera.started);
      });
    });
    app.addHook('onResponse', async (request, reply) => {
      const ctx = request.tessera;
      this.#finish(request, ctx.signal?.aborted ? 499 : reply.statusCode, reply.elapsedTime);
    });
    // A client that goes away while its body is still arriving gets no onResponse: count it here
    // (499), or drain would wait for it until the grace period ends.
    app.addHook('onRequestAbort', async (request) => {
      this.#finish(request, 499, performance.now() - request.tessera.started);
    });
    app.setErrorHandler((err, request, reply) => sendError(request, reply, toTesseraError(err, this.config.server.bodyLimit)));
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0]!;
      const err = new TesseraError('TESSERA_E_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${path}`);
      // OpenAI clients parse errors under /v1 in OpenAI's shape
      return path.startsWith('/v1/') && path !== '/v1/predict' ? sendOpenAIError(request, reply, err) : sendError(request, reply, err);
    });
  }

  /** Ends a request exactly once: in-flight count, the `request` event, the access-log line. */
  #finish(request: FastifyRequest, status: number, durationMs: number): void {
    const ctx = request.tessera;
    if (ctx.finished) return;
    ctx.finished = true;
    this.#inflight--;
    if (this.#inflight === 0) this.#idle?.();
    this.events.emit('request', { model: ctx.model, version: ctx.version, protocol: ctx.protocol, status, ...(ctx.code ? { code: ctx.code } : {}), durationMs });
    if (ctx.span) {
      endServerSpan(
        ctx.span,
        status,
        { [ATTR.protocol]: ctx.protocol, ...(ctx.model ? { [ATTR.model]: ctx.model } : {}), ...(ctx.version ? { [ATTR.version]: ctx.version } : {}), ...ctx.spanAttributes },
        ctx.code,
      );
    }
    request.log.info(
      {
        method: request.method,
        // the path only: query strings can carry tokens
        url: request.url.split('?')[0],
        status,
        model: ctx.model,
        version: ctx.version,
        code: ctx.code,
        ms: Math.round(durationMs * 100) / 100,
        ...(ctx.span ? { traceId: ctx.span.spanContext().traceId } : {}),
      },
      'request',
    );
  }

  /**
   * Drains and stops: readiness turns 503, new inference requests get 503, in-flight requests finish
   * (bounded by `server.shutdownGracePeriod`), the listener closes, models unload in reverse order,
   * plugins' close hooks and exporters run. Idempotent.
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
    if (this.#inflight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.server.shutdownGracePeriodMs))),
      ]);
      clearTimeout(timer);
    }
    // past the grace period: cut what is still open (long streams); their upstream work is aborted
    if (this.#inflight > 0) log.warn({ inflight: this.#inflight }, 'grace period over; closing the connections still in flight');
    // Drained (or out of time): close every connection, also keep-alive ones a client holds without a
    // request on them, which `close()` would otherwise wait for indefinitely.
    const closing = this.app.close();
    this.app.server.closeAllConnections();
    await closing.catch((err: unknown) => log.warn({ err }, `closing the HTTP server failed: ${errorMessage(err)}`));
    await this.registry.close();
    for (const hook of [...(this.#registrations?.closeHooks ?? [])].reverse()) {
      await hook().catch((err: unknown) => log.warn({ err }, `a plugin close hook failed: ${errorMessage(err)}`));
    }
    // the metrics listener goes last: a final scrape during the drain still works
    const metricsClosing = this.#metricsApp?.close();
    this.#metricsApp?.server.closeAllConnections();
    await metricsClosing?.catch((err: unknown) => log.warn({ err }, `closing the metrics listener failed: ${errorMessage(err)}`));
    for (const e of this.#exporters) await e.shutdown().catch((err: unknown) => log.warn({ err }, `an exporter failed to shut down: ${errorMessage(err)}`));
    this.#state = 'closed';
    log.info('closed');
  }
}

/** Weights of a router that declares none: 1 for the version a request without a version gets. */
function fallbackWeights(router: Router, model: string, candidates: RouteCandidate[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(candidates.map((c) => [c.version, 0]));
  try {
    out[router.select({ model, headers: {} }, candidates).version] = 1;
  } catch {
    // no version is ready: every weight is 0
  }
  return out;
}

/** Creates a server from a resolved config (see `loadConfig`). Call `start()` to serve. */
export function createServer(options: TesseraServerOptions): TesseraServer {
  return new TesseraServer(options);
}
