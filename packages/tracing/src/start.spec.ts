import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { recordingLogger } from './otlp-receiver.test-support.js';
import { TracingAlreadyRegisteredError, startTracing } from './start.js';
import type { StartTracingOptions, TracingHandle } from './start.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

// The global API is per process and vitest gives each spec file its own fork: every test here
// shuts its handle down, so the next one can register again.
let handle: TracingHandle | undefined;
afterEach(async () => {
  await handle?.shutdown();
  handle = undefined;
});

function start(options: StartTracingOptions = {}): { exporter: InMemorySpanExporter; handle: TracingHandle } {
  const exporter = new InMemorySpanExporter();
  handle = startTracing({ exporter, spanProcessor: 'simple', env: {}, detectResources: false, ...options });
  return { exporter, handle };
}

describe('startTracing with an in-memory exporter', () => {
  it('should record spans created through @opentelemetry/api, with the service name and resource attributes', () => {
    const { exporter } = start({ serviceName: 'tessera-test', resourceAttributes: { 'deployment.environment.name': 'test' } });
    trace.getTracer('x').startActiveSpan('op', (span) => {
      span.setAttribute('tessera.model', 'm');
      span.end();
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['op']);
    expect(spans[0]!.attributes['tessera.model']).toBe('m');
    expect(spans[0]!.instrumentationScope.name).toBe('x');
    expect(spans[0]!.resource.attributes).toMatchObject({
      'service.name': 'tessera-test',
      'deployment.environment.name': 'test',
      'telemetry.sdk.language': 'nodejs',
    });
  });

  it('should take the service name from the env option when the config has none', () => {
    const { exporter } = start({ env: { OTEL_SERVICE_NAME: 'from-env', OTEL_RESOURCE_ATTRIBUTES: 'team=ml' } });
    trace.getTracer('x').startSpan('op').end();
    expect(exporter.getFinishedSpans()[0]!.resource.attributes).toMatchObject({ 'service.name': 'from-env', team: 'ml' });
  });

  it('should add host and process attributes unless told not to', async () => {
    const { exporter, handle: h } = start({ detectResources: true });
    trace.getTracer('x').startSpan('op').end();
    await h.forceFlush(); // the host detector resolves host.id asynchronously; export waits for it
    expect(exporter.getFinishedSpans()[0]!.resource.attributes).toMatchObject({ 'process.pid': process.pid, 'host.name': expect.any(String) });
  });

  it('should keep the active span across awaits (AsyncLocalStorage context manager)', async () => {
    const { exporter } = start();
    const tracer = trace.getTracer('x');
    await tracer.startActiveSpan('parent', async (parent) => {
      await sleep(5);
      await Promise.all(
        [1, 2].map(async (i) => {
          await sleep(i);
          tracer.startSpan(`child-${i}`).end();
        }),
      );
      parent.end();
    });
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((s) => s.name === 'parent')!;
    const children = spans.filter((s) => s.name.startsWith('child-'));
    expect(children).toHaveLength(2);
    for (const child of children) {
      expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
    }
  });

  it('should record errors set on spans', () => {
    const { exporter } = start();
    const span = trace.getTracer('x').startSpan('failing');
    span.recordException(new Error('boom'));
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    span.end();
    const [recorded] = exporter.getFinishedSpans();
    expect(recorded!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'boom' });
    expect(recorded!.events[0]!.name).toBe('exception');
  });
});

describe('W3C propagation', () => {
  it('should extract traceparent (and tracestate, baggage) into the parent of new spans', () => {
    const { exporter } = start();
    const carrier = { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, tracestate: 'vendor=abc', baggage: 'tenant=acme' };
    const extracted = propagation.extract(ROOT_CONTEXT, carrier);
    expect(trace.getSpanContext(extracted)).toMatchObject({ traceId: TRACE_ID, spanId: PARENT_ID, isRemote: true });
    expect(propagation.getBaggage(extracted)?.getEntry('tenant')?.value).toBe('acme');

    const span = trace.getTracer('x').startSpan('server', {}, extracted);
    span.end();
    const [recorded] = exporter.getFinishedSpans();
    expect(recorded!.spanContext().traceId).toBe(TRACE_ID);
    expect(recorded!.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(recorded!.spanContext().traceState?.get('vendor')).toBe('abc');
  });

  it('should inject traceparent and baggage for upstream calls', () => {
    start();
    const span = trace.getTracer('x').startSpan('client');
    const ctx = propagation.setBaggage(trace.setSpan(context.active(), span), propagation.createBaggage({ tenant: { value: 'acme' } }));
    const headers: Record<string, string> = {};
    propagation.inject(ctx, headers);
    span.end();
    expect(headers.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
    expect(headers.baggage).toBe('tenant=acme');
  });

  it('should follow a sampled parent even when the ratio is 0, and drop new roots', () => {
    const { exporter } = start({ sampleRatio: 0 });
    const tracer = trace.getTracer('x');
    tracer.startSpan('root').end();
    tracer.startSpan('child-of-sampled', {}, propagation.extract(ROOT_CONTEXT, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` })).end();
    tracer.startSpan('child-of-unsampled', {}, propagation.extract(ROOT_CONTEXT, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` })).end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['child-of-sampled']);
  });

  it('should honour OTEL_TRACES_SAMPLER=always_off from the environment', () => {
    const { exporter } = start({ env: { OTEL_TRACES_SAMPLER: 'always_off' } });
    const span = trace.getTracer('x').startSpan('op');
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('registration', () => {
  it('should unregister on shutdown so that tracing can start again in the same process', async () => {
    const first = start();
    await first.handle.shutdown();
    const after = trace.getTracer('x').startSpan('after-shutdown');
    expect(after.isRecording()).toBe(false);
    after.end();
    expect(propagation.fields()).toEqual([]);

    const second = start({ serviceName: 'second' });
    trace.getTracer('x').startSpan('again').end();
    expect(second.exporter.getFinishedSpans()[0]!.resource.attributes['service.name']).toBe('second');
    expect(first.exporter.getFinishedSpans()).toEqual([]);
  });

  it('should refuse to start twice, leaving the first registration in place', () => {
    const { exporter } = start();
    expect(() => startTracing({ exporter: new InMemorySpanExporter(), env: {} })).toThrow(TracingAlreadyRegisteredError);
    trace.getTracer('x').startSpan('still-first').end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['still-first']);
  });

  it('should keep the provider private with registerGlobally: false', async () => {
    const exporter = new InMemorySpanExporter();
    const local = startTracing({ exporter, spanProcessor: 'simple', registerGlobally: false, env: {}, detectResources: false });
    expect(local.registered).toBe(false);
    expect(trace.getTracer('x').startSpan('global').isRecording()).toBe(false);
    local.provider.getTracer('x').startSpan('local').end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['local']);
    await local.shutdown();
  });

  it('should make shutdown idempotent', async () => {
    const { handle: h } = start();
    const a = h.shutdown();
    const b = h.shutdown();
    expect(a).toBe(b);
    await a;
    await h.shutdown();
  });
});

describe('batching and export errors', () => {
  it('should hold spans in the batch processor until forceFlush or shutdown', async () => {
    // InMemorySpanExporter forgets its spans on shutdown: collect them here instead
    const exported: string[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans.map((s) => s.name));
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: async () => undefined,
    };
    handle = startTracing({ exporter, env: {}, detectResources: false, batch: { scheduledDelay: '1h' } });
    trace.getTracer('x').startSpan('a').end();
    expect(exported).toEqual([]);
    await handle.forceFlush();
    expect(exported).toEqual(['a']);
    trace.getTracer('x').startSpan('b').end();
    await handle.shutdown();
    expect(exported).toEqual(['a', 'b']);
  });

  it('should report spans dropped by a full queue in the log', async () => {
    const logger = recordingLogger();
    const exporter = new InMemorySpanExporter();
    handle = startTracing({ exporter, env: {}, logger, detectResources: false, batch: { maxQueueSize: 2, maxExportBatchSize: 2, scheduledDelay: '1h' } });
    const tracer = trace.getTracer('x');
    for (let i = 0; i < 10; i++) tracer.startSpan(`s${i}`).end();
    await handle.forceFlush();
    // the SDK reports the count when the queue takes a span again
    tracer.startSpan('after').end();
    const drops = logger.calls.filter((c) => c.level === 'warn' && /dropped/i.test(c.msg ?? ''));
    expect(drops.length).toBeGreaterThan(0);
    expect(drops[0]!.msg).toMatch(/maxQueueSize/);
    expect(drops[0]!.msg).toMatch(/Dropped \d+ spans/);
    expect(exporter.getFinishedSpans().length).toBeLessThan(10);
  });

  it('should log a failing exporter once per outage and never throw into the caller', async () => {
    const logger = recordingLogger();
    let fail = true;
    const exported: string[] = [];
    const flaky: SpanExporter = {
      export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
        if (fail) {
          done({ code: ExportResultCode.FAILED, error: new Error('collector unavailable') });
          return;
        }
        exported.push(...spans.map((s) => s.name));
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: async () => undefined,
    };
    const throwing: SpanExporter = {
      export() {
        throw new Error('exporter bug');
      },
      shutdown: async () => undefined,
    };
    handle = startTracing({ exporter: flaky, spanProcessor: 'simple', env: {}, logger, detectResources: false });
    const tracer = trace.getTracer('x');
    for (let i = 0; i < 5; i++) expect(() => tracer.startSpan(`lost-${i}`).end()).not.toThrow();
    await handle.forceFlush();
    const warnings = logger.calls.filter((c) => c.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/span export failed/);
    expect(warnings[0]!.obj).toMatchObject({ error: 'collector unavailable' });

    fail = false;
    tracer.startSpan('delivered').end();
    await handle.forceFlush();
    expect(exported).toEqual(['delivered']);
    expect(logger.calls.filter((c) => c.level === 'info').map((c) => c.msg)).toEqual([expect.stringMatching(/works again/)]);
    await handle.shutdown();

    handle = startTracing({ exporter: throwing, spanProcessor: 'simple', env: {}, logger, detectResources: false });
    expect(() => trace.getTracer('x').startSpan('x').end()).not.toThrow();
    await handle.forceFlush();
    expect(logger.calls.filter((c) => c.level === 'warn').at(-1)!.obj).toMatchObject({ error: 'exporter bug' });
  });
});
