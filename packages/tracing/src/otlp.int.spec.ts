/**
 * End to end over OTLP/HTTP: spans made through `@opentelemetry/api` reach a `node:http` collector
 * stand-in on 127.0.0.1, in both encodings, with the configured headers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { closedPortUrl, recordingLogger, startReceiver } from './otlp-receiver.test-support.js';
import type { Receiver } from './otlp-receiver.test-support.js';
import { startTracing } from './start.js';
import type { TracingHandle } from './start.js';

let handle: TracingHandle | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  await handle?.shutdown();
  await receiver?.close();
  handle = undefined;
  receiver = undefined;
});

function makeSpans(): { traceId: string; spanId: string } {
  const tracer = trace.getTracer('@tessera/core', '0.1.0');
  return tracer.startActiveSpan('POST /v2/models/{model}/infer', (server) => {
    server.setAttribute('tessera.model', 'text-orientation');
    tracer.startSpan('tessera.inference').end();
    server.end();
    return { traceId: server.spanContext().traceId, spanId: server.spanContext().spanId };
  });
}

describe('OTLP/HTTP export', () => {
  it('should send http/json with resourceSpans/scopeSpans/spans, hex ids, and the configured headers', async () => {
    receiver = await startReceiver();
    const logger = recordingLogger();
    handle = startTracing({
      endpoint: receiver.url,
      protocol: 'http/json',
      serviceName: 'otlp-json-test',
      headers: { authorization: 'Bearer s3cret', 'x-tenant': 'config' },
      env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=env,x-env-only=yes' },
      batch: { scheduledDelay: 50 },
      logger,
    });
    const { traceId, spanId } = makeSpans();
    await receiver.waitFor(1);

    const [request] = receiver.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/v1/traces' });
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
    expect(request!.headers).toMatchObject({ authorization: 'Bearer s3cret', 'x-tenant': 'config', 'x-env-only': 'yes' });

    const body = JSON.parse(request!.body.toString('utf8'));
    const resourceSpans = body.resourceSpans[0];
    const attributes = Object.fromEntries(resourceSpans.resource.attributes.map((a: any) => [a.key, a.value.stringValue]));
    expect(attributes['service.name']).toBe('otlp-json-test');
    const scope = resourceSpans.scopeSpans.find((s: any) => s.scope.name === '@tessera/core');
    expect(scope.scope.version).toBe('0.1.0');
    const spans = scope.spans;
    expect(spans.map((s: any) => s.name).sort()).toEqual(['POST /v2/models/{model}/infer', 'tessera.inference']);
    const server = spans.find((s: any) => s.name === 'POST /v2/models/{model}/infer');
    const inference = spans.find((s: any) => s.name === 'tessera.inference');
    expect(server.traceId).toBe(traceId);
    expect(server.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(server.spanId).toBe(spanId);
    expect(inference.parentSpanId).toBe(spanId);
    expect(server.attributes).toContainEqual({ key: 'tessera.model', value: { stringValue: 'text-orientation' } });

    expect(JSON.stringify(logger.calls)).not.toContain('s3cret');
  });

  it('should send http/protobuf (the default) with the span name and trace id bytes in the body', async () => {
    receiver = await startReceiver();
    handle = startTracing({ endpoint: `${receiver.url}/v1/traces`, headers: { 'x-api-key': 'k1' }, batch: { scheduledDelay: 50 }, env: {} });
    expect(handle.config.protocol).toBe('http/protobuf');
    const { traceId } = makeSpans();
    await receiver.waitFor(1);

    const [request] = receiver.requests;
    expect(request!.path).toBe('/v1/traces');
    expect(request!.headers['content-type']).toBe('application/x-protobuf');
    expect(request!.headers['x-api-key']).toBe('k1');
    expect(request!.body.length).toBeGreaterThan(0);
    expect(request!.body.includes(Buffer.from('POST /v2/models/{model}/infer'))).toBe(true);
    expect(request!.body.includes(Buffer.from('tessera.inference'))).toBe(true);
    expect(request!.body.includes(Buffer.from(traceId, 'hex'))).toBe(true);
    expect(request!.body.includes(Buffer.from('tessera'))).toBe(true); // service.name
  });

  it('should take endpoint and protocol from OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_PROTOCOL', async () => {
    receiver = await startReceiver();
    handle = startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/prefix`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, batch: { scheduledDelay: 50 } });
    makeSpans();
    await receiver.waitFor(1);
    expect(receiver.requests[0]).toMatchObject({ path: '/prefix/v1/traces', headers: { 'content-type': expect.stringMatching(/json/) } });
  });

  it('should flush spans still queued when it shuts down', async () => {
    receiver = await startReceiver();
    handle = startTracing({ endpoint: receiver.url, protocol: 'http/json', batch: { scheduledDelay: '1h' }, env: {} });
    makeSpans();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.requests).toHaveLength(0);
    await handle.shutdown();
    expect(receiver.requests).toHaveLength(1);
    const spans = JSON.parse(receiver.requests[0]!.body.toString()).resourceSpans[0].scopeSpans[0].spans;
    expect(spans).toHaveLength(2);
  });

  it('should export batches of at most maxExportBatchSize spans', async () => {
    receiver = await startReceiver();
    handle = startTracing({ endpoint: receiver.url, protocol: 'http/json', batch: { scheduledDelay: '1h', maxExportBatchSize: 3 }, env: {} });
    for (let i = 0; i < 7; i++) trace.getTracer('x').startSpan(`s${i}`).end();
    await handle.forceFlush();
    const counts = receiver.requests.map((r) => JSON.parse(r.body.toString()).resourceSpans[0].scopeSpans[0].spans.length);
    expect(counts).toEqual([3, 3, 1]);
  });
});

describe('a collector that is down', () => {
  it('should finish shutdown within the export timeout when the collector never answers, and warn', async () => {
    receiver = await startReceiver({ respond: 'hang' });
    const logger = recordingLogger();
    handle = startTracing({ endpoint: receiver.url, exportTimeout: 500, batch: { scheduledDelay: '1h' }, env: {}, logger });
    for (let i = 0; i < 3; i++) makeSpans();
    const started = performance.now();
    await handle.shutdown();
    const elapsed = performance.now() - started;
    expect(receiver.requests.length).toBeGreaterThanOrEqual(1);
    expect(elapsed).toBeLessThan(500 + 250);
    expect(logger.calls.some((c) => c.level === 'warn')).toBe(true);
  });

  it('should finish shutdown within the export timeout when the connection is refused', async () => {
    const url = await closedPortUrl();
    const logger = recordingLogger();
    handle = startTracing({ endpoint: url, exportTimeout: '400ms', batch: { scheduledDelay: '1h' }, env: {}, logger });
    makeSpans();
    const started = performance.now();
    await handle.shutdown();
    expect(performance.now() - started).toBeLessThan(400 + 250);
  });

  it('should log a failing collector once, not per export, and never throw into span code', async () => {
    receiver = await startReceiver({ status: 400 });
    const logger = recordingLogger();
    handle = startTracing({ endpoint: receiver.url, protocol: 'http/json', batch: { scheduledDelay: 20 }, env: {}, logger, headers: { authorization: 'Bearer s3cret' } });
    for (let i = 0; i < 3; i++) {
      expect(() => makeSpans()).not.toThrow();
      await receiver.waitFor(i + 1);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    await handle.forceFlush();
    const warnings = logger.calls.filter((c) => c.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/span export failed/);
    expect(JSON.stringify(logger.calls)).not.toContain('s3cret');
  });
});
