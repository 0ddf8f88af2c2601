/**
 * `startTracing`: builds the OpenTelemetry tracing SDK (sdk-trace-base's BasicTracerProvider, a
 * batch span processor, an OTLP/HTTP exporter) and registers it with the global
 * `@opentelemetry/api` together with the AsyncLocalStorage context manager and the W3C
 * TraceContext + Baggage propagators. `shutdown()` undoes all of it, so that tracing can be started
 * again in the same process (tests).
 */
import { DiagLogLevel, TraceFlags, context, diag, propagation, trace } from '@opentelemetry/api';
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, ExportResultCode, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, hostDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  SamplingDecision,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, Sampler, SamplingResult, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { redactUrl } from './config/endpoint.js';
import type { Env } from './config/env.js';
import type { ResolvedTracingConfig } from './config/resolve.js';
import { resolveTracingConfig } from './config/resolve.js';
import type { SamplerSpec } from './config/sampler.js';
import { describeSampler } from './config/sampler.js';
import type { TracingConfig } from './config/schema.js';

/** The logging this package needs; a pino logger fits. */
export interface TracingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of `startTracing`: the `tracing:` config keys, plus what only code can pass. */
export interface StartTracingOptions extends Omit<TracingConfig, 'enabled'> {
  /** Environment read for the `OTEL_*` variables (default `process.env`). */
  env?: Env;
  /** Replaces the OTLP exporter (tests: `InMemorySpanExporter`). */
  exporter?: SpanExporter;
  /** `batch` (default) or `simple`: export each span as it ends (with an in-memory exporter). */
  spanProcessor?: 'batch' | 'simple';
  /** Where export failures and configuration warnings go (default: nowhere). */
  logger?: TracingLogger;
  /** Register with the global `@opentelemetry/api` (default true); false keeps the provider private. */
  registerGlobally?: boolean;
  /** Add the host.* and process.* resource attributes (default true). */
  detectResources?: boolean;
}

/** A started tracing SDK. */
export interface TracingHandle {
  readonly provider: BasicTracerProvider;
  readonly config: ResolvedTracingConfig;
  /** Whether the provider is the global one (`trace.getTracer` records through it). */
  readonly registered: boolean;
  /** Exports every ended span now; resolves after at most the export timeout. */
  forceFlush(): Promise<void>;
  /**
   * Unregisters the global tracer provider, context manager and propagator this handle
   * registered, then flushes and shuts the SDK down. Idempotent; resolves after at most the export
   * timeout even when the collector does not answer (spans still pending are dropped).
   */
  shutdown(): Promise<void>;
}

/** Thrown by `startTracing` when another tracer provider is already registered globally. */
export class TracingAlreadyRegisteredError extends Error {
  override readonly name = 'TracingAlreadyRegisteredError';
  constructor() {
    super(
      'a global OpenTelemetry tracer provider is already registered in this process (another SDK, or startTracing called twice); shut that one down first (trace.disable() unregisters any)',
    );
  }
}

const noopLogger: TracingLogger = { info: () => undefined, warn: () => undefined };

/** The sampler for a spec. */
export function createSampler(spec: SamplerSpec): Sampler {
  return new LinkedSampler(baseSampler(spec));
}

/**
 * Follows the links of a new root span: a span linked to a sampled span is sampled too. Tessera's
 * `tessera.batch` spans are roots (a batch belongs to many traces) linked to the requests they
 * carry, so a batch is recorded exactly when one of its requests is, whatever the ratio.
 */
export class LinkedSampler implements Sampler {
  constructor(private readonly inner: Sampler) {}

  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (links.length > 0 && !trace.getSpanContext(context)) {
      const sampled = links.some((l) => (l.context.traceFlags & TraceFlags.SAMPLED) !== 0);
      return { decision: sampled ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
    }
    return this.inner.shouldSample(context, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `LinkedSampler{${this.inner.toString()}}`;
  }
}

function baseSampler(spec: SamplerSpec): Sampler {
  const ratio = (): Sampler => new TraceIdRatioBasedSampler(spec.ratio ?? 1);
  switch (spec.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** The OTLP/HTTP exporter for a resolved config (protobuf or JSON encoding). */
export function createOtlpExporter(config: ResolvedTracingConfig): SpanExporter {
  const options = { url: config.url, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs };
  return config.protocol === 'http/json' ? new OTLPJsonTraceExporter(options) : new OTLPProtoTraceExporter(options);
}

/** The resource every span carries: SDK defaults, host and process, then the configured attributes. */
export function createResource(config: ResolvedTracingConfig, detect = true): Resource {
  let resource = defaultResource();
  if (detect) resource = resource.merge(detectResources({ detectors: [hostDetector, processDetector] }));
  return resource.merge(resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName }));
}

/**
 * Wraps an exporter so that export failures reach the logger once per outage (the first failure
 * warns; the next success says it recovered) and never reach the caller as exceptions.
 */
export class ReportingSpanExporter implements SpanExporter {
  private outage = false;
  private failedExports = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: TracingLogger,
    private readonly target: string,
  ) {}

  /** Whether the last export failed (an outage that has been logged). */
  get failing(): boolean {
    return this.outage;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    let done = false;
    const finish = (result: ExportResult): void => {
      if (done) return;
      done = true;
      this.observe(result, spans.length);
      resultCallback(result);
    };
    try {
      this.inner.export(spans, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(errorText(err)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  private observe(result: ExportResult, spans: number): void {
    if (result.code === ExportResultCode.SUCCESS) {
      if (this.outage) {
        this.logger.info({ target: this.target, failedExports: this.failedExports }, 'tracing: span export works again');
        this.outage = false;
        this.failedExports = 0;
      }
      return;
    }
    this.failedExports++;
    if (this.outage) return;
    this.outage = true;
    this.logger.warn(
      { target: this.target, spans, error: result.error?.message ?? 'unknown error' },
      'tracing: span export failed; these spans are dropped, and further failures are not logged until an export succeeds',
    );
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : JSON.stringify(error);
}

/** Resolves true when `promise` settles within `ms`, false otherwise; never rejects. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<{ inTime: boolean; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ inTime: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ inTime: false }), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => ({ inTime: true }), (error: unknown) => ({ inTime: true, error })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts tracing with `options` resolved against the `OTEL_*` environment (config keys win).
 * Always starts: `enabled`/`OTEL_SDK_DISABLED` are the plugin's business. Throws
 * `TracingAlreadyRegisteredError` when another tracer provider is registered globally.
 */
export function startTracing(options: StartTracingOptions = {}): TracingHandle {
  const { env, exporter, spanProcessor, logger, registerGlobally, detectResources: detect, ...config } = options;
  const resolved = resolveTracingConfig(config, env ?? process.env);
  for (const warning of resolved.warnings) (logger ?? noopLogger).warn({}, `tracing: ${warning}`);
  return startResolvedTracing(resolved, { exporter, spanProcessor, logger, registerGlobally, detectResources: detect });
}

/** `startTracing` for an already resolved config (the plugin resolves first to log and to honour `enabled`). */
export function startResolvedTracing(
  resolved: ResolvedTracingConfig,
  options: Pick<StartTracingOptions, 'exporter' | 'spanProcessor' | 'logger' | 'registerGlobally' | 'detectResources'> = {},
): TracingHandle {
  const logger = options.logger ?? noopLogger;
  const target = options.exporter ? options.exporter.constructor.name : `${resolved.protocol} ${redactUrl(resolved.url)}`;
  const exporter = new ReportingSpanExporter(options.exporter ?? createOtlpExporter(resolved), logger, target);
  const processor: SpanProcessor =
    options.spanProcessor === 'simple'
      ? new SimpleSpanProcessor(exporter)
      : new BatchSpanProcessor(exporter, {
          maxQueueSize: resolved.batch.maxQueueSize,
          maxExportBatchSize: resolved.batch.maxExportBatchSize,
          scheduledDelayMillis: resolved.batch.scheduledDelayMs,
          exportTimeoutMillis: resolved.exportTimeoutMs,
        });
  const provider = new BasicTracerProvider({
    resource: createResource(resolved, options.detectResources ?? true),
    sampler: createSampler(resolved.sampler),
    spanProcessors: [processor],
  });

  let ownsTrace = false;
  let contextManager: AsyncLocalStorageContextManager | undefined;
  let ownsPropagation = false;
  if (options.registerGlobally ?? true) {
    if (!trace.setGlobalTracerProvider(provider)) {
      void provider.shutdown().catch(() => undefined);
      throw new TracingAlreadyRegisteredError();
    }
    ownsTrace = true;
    // The SDK reports spans it had to drop (a full queue) only through `diag`: pass those on. Export
    // failures are reported by the exporter wrapper, once per outage, so they are not forwarded.
    const forwardDrops = (message: string): void => {
      if (/dropped/i.test(message)) logger.warn({}, `tracing: ${message} (raise tracing.batch.maxQueueSize or lower the sampling)`);
    };
    const ignore = (): void => undefined;
    diag.setLogger({ error: forwardDrops, warn: forwardDrops, info: ignore, debug: ignore, verbose: ignore }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    const manager = new AsyncLocalStorageContextManager().enable();
    if (context.setGlobalContextManager(manager)) {
      contextManager = manager;
    } else {
      manager.disable();
      logger.warn({}, 'tracing: a context manager is already registered globally; using it');
    }
    ownsPropagation = propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    if (!ownsPropagation) logger.warn({}, 'tracing: a propagator is already registered globally; using it instead of W3C tracecontext + baggage');
  }

  const timeoutMs = resolved.exportTimeoutMs;
  // Span processors reject flushes whose exports failed; the exporter wrapper has logged those.
  const reportUnlessExportFailure = (error: unknown, message: string): void => {
    if (error !== undefined && !exporter.failing) logger.warn({ error: errorText(error) }, message);
  };
  let shutdownPromise: Promise<void> | undefined;
  const handle: TracingHandle = {
    provider,
    config: resolved,
    registered: ownsTrace,
    async forceFlush() {
      if (shutdownPromise) return;
      const { inTime, error } = await settleWithin(provider.forceFlush({ timeoutMillis: timeoutMs }), timeoutMs);
      if (!inTime) logger.warn({ timeoutMs }, 'tracing: flushing spans took longer than the export timeout');
      else reportUnlessExportFailure(error, 'tracing: flushing spans failed');
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        // Unregister first: new `trace.getTracer()` calls become no-ops and tracing can be started
        // again while the last spans are flushed.
        if (ownsTrace) {
          trace.disable();
          diag.disable();
        }
        if (contextManager) {
          context.disable(); // also disables the manager
          contextManager = undefined;
        }
        if (ownsPropagation) propagation.disable();
        const { inTime, error } = await settleWithin(provider.shutdown(), timeoutMs);
        if (!inTime) logger.warn({ timeoutMs }, 'tracing: the last spans could not be exported within the export timeout; they are dropped');
        else reportUnlessExportFailure(error, 'tracing: shutting the tracing SDK down failed');
      })();
      return shutdownPromise;
    },
  };
  return handle;
}

/** One line describing a started configuration, without secrets, for the start-up log. */
export function describeTracing(config: ResolvedTracingConfig): Record<string, unknown> {
  return {
    endpoint: redactUrl(config.url),
    protocol: config.protocol,
    serviceName: config.serviceName,
    sampler: describeSampler(config.sampler),
    exportTimeoutMs: config.exportTimeoutMs,
    headers: Object.keys(config.headers),
    sources: config.sources,
  };
}
