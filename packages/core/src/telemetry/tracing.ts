import type { Attributes, Context, Link, Span, Tracer } from '@opentelemetry/api';
import { ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, propagation, trace } from '@opentelemetry/api';
import { errorMessage, isTesseraError } from '../errors.js';
import { CORE_VERSION } from '../internal/core-version.js';

/**
 * The core's spans, through `@opentelemetry/api` only. Without an SDK (the `@tessera/tracing`
 * plugin, or one the embedding app registers) the API is a no-op, and the server does not even call
 * it: `tracingEnabled()` is checked once at start and requests then carry no trace context, so
 * every helper here returns at its first line.
 *
 * Span tree of one tensor request:
 *   `POST /v2/models/{model}/infer` (server) ─┬─ `tessera.route`
 *                                              └─ `tessera.queue` (from enqueue to batch start)
 *   `tessera.batch` (one per executed batch, a root span **linked** to each request it carries)
 *     └─ `tessera.inference`
 * and of a generation: server span ─┬─ `tessera.route` └─ `POST /v1/chat/completions` (client, to
 * the replica, `traceparent` injected).
 */

/** The core's tracer (a proxy: it follows whichever provider is registered globally). */
export function coreTracer(): Tracer {
  return trace.getTracer('@tessera/core', CORE_VERSION);
}

/**
 * Whether a tracing SDK is registered globally. Creates no span: the API's proxy provider has a
 * delegate only once an SDK registered one.
 */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  if (!(provider instanceof ProxyTracerProvider)) return true;
  return provider.getDelegateTracer('@tessera/core') !== undefined;
}

/**
 * Span times as epoch milliseconds from the monotonic clock. The SDK converts `performance.now()`
 * values, and takes end times, through `Date.now()` per span, which puts sibling spans up to a
 * millisecond apart; giving every start and end from one clock keeps the tree consistent.
 */
export function spanTime(perfNow: number = performance.now()): number {
  return performance.timeOrigin + perfNow;
}

/** Attribute names (OpenTelemetry semantic conventions where they exist). */
export const ATTR = {
  model: 'tessera.model',
  version: 'tessera.version',
  protocol: 'tessera.protocol',
  batchSize: 'tessera.batch.size',
  batchRequests: 'tessera.batch.requests',
  errorCode: 'tessera.error.code',
  upstream: 'tessera.upstream',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
} as const;

/** The server span of one request, parented on the caller's `traceparent`/`tracestate`. */
export function startServerSpan(method: string, route: string | undefined, path: string, headers: Record<string, string | string[] | undefined>, startTime: number): { span: Span; context: Context } {
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  // no route matched: the method alone, so probed URLs do not create span names
  const span = coreTracer().startSpan(
    route ? `${method} ${route}` : method,
    { kind: SpanKind.SERVER, startTime: spanTime(startTime), attributes: { 'http.request.method': method, 'url.path': path, ...(route ? { 'http.route': route } : {}) } },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends the server span with the response status (5xx = error). */
export function endServerSpan(span: Span, status: number, attributes: Attributes, code?: string): void {
  span.setAttributes(attributes);
  span.setAttribute('http.response.status_code', status);
  if (code) span.setAttribute(ATTR.errorCode, code);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(code ? { message: code } : {}) });
  span.end(spanTime());
}

/** Records a failure on a span: the exception event and the error status. */
export function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(errorMessage(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: isTesseraError(err) ? err.code : errorMessage(err) });
  if (isTesseraError(err)) span.setAttribute(ATTR.errorCode, err.code);
}

/** A zero-work span for the router's choice, under the request's span. */
export function traceRoute(parent: Context | undefined, model: string, version: string, shadow?: readonly string[]): void {
  if (!parent) return;
  const now = spanTime();
  const span = coreTracer().startSpan('tessera.route', { startTime: now, attributes: { [ATTR.model]: model, [ATTR.version]: version, ...(shadow?.length ? { 'tessera.route.shadow': shadow.join(',') } : {}) } }, parent);
  span.end(now);
}

/** One request of a batch, as the batch tracer sees it. */
export interface TracedEntry {
  /** The request's trace context (absent when tracing is off). */
  trace?: Context | undefined;
  /** performance.now() when it was queued. */
  enqueuedAt: number;
}

/** The spans of one executed batch; `end` once, after execution. */
export interface BatchSpans {
  /** The context to run the backend in (the inference span is active in it). */
  context: Context;
  end(ok: boolean, error?: unknown): void;
}

/**
 * At the start of a batch: a `tessera.queue` span per traced request (enqueue → now, under the
 * request's span), and the `tessera.batch` span — a root span linked to every request span, since a
 * batch belongs to many traces — with its `tessera.inference` child. Undefined when no request of
 * the batch is traced.
 */
export function startBatchSpans(model: string, version: string, entries: readonly TracedEntry[], size: number, startedAt: number): BatchSpans | undefined {
  let links: Link[] | undefined;
  const tracer = coreTracer();
  const start = spanTime(startedAt);
  for (const e of entries) {
    if (!e.trace) continue;
    const parent = trace.getSpanContext(e.trace);
    // only sampled requests: a batch span linked to spans nobody records would dangle
    if (!parent || (parent.traceFlags & TraceFlags.SAMPLED) === 0) continue;
    (links ??= []).push({ context: parent });
    tracer.startSpan('tessera.queue', { startTime: spanTime(e.enqueuedAt), attributes: { [ATTR.model]: model, [ATTR.version]: version } }, e.trace).end(start);
  }
  if (!links) return undefined;
  const attributes = { [ATTR.model]: model, [ATTR.version]: version, [ATTR.batchSize]: size, [ATTR.batchRequests]: entries.length };
  const batch = tracer.startSpan('tessera.batch', { root: true, startTime: start, links, attributes }, ROOT_CONTEXT);
  const batchContext = trace.setSpan(ROOT_CONTEXT, batch);
  const inference = tracer.startSpan('tessera.inference', { startTime: start, attributes }, batchContext);
  return {
    context: trace.setSpan(batchContext, inference),
    end(ok, error) {
      if (!ok) {
        recordError(inference, error);
        recordError(batch, error);
      }
      const end = spanTime();
      inference.end(end);
      batch.end(end);
    },
  };
}

/** Runs `fn` with `ctx` active (when tracing is on), so backends' own spans nest under it. */
export function withContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn();
}

/**
 * A client span for a call to an upstream replica, with `traceparent`/`tracestate` injected into
 * `headers`. For remote backends (vLLM now); returns undefined when the request is not traced.
 */
export function startClientSpan(parent: Context | undefined, name: string, attributes: Attributes, headers: Record<string, string>): Span | undefined {
  if (!parent) return undefined;
  const span = coreTracer().startSpan(name, { kind: SpanKind.CLIENT, startTime: spanTime(), attributes }, parent);
  propagation.inject(trace.setSpan(parent, span), headers);
  return span;
}
