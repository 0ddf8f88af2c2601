/**
 * The plugin's export path over real HTTP: registered as `tessera serve` does, its spans reach a
 * collector stand-in on 127.0.0.1 when the close hook flushes them. The rest of the plugin is
 * unit-tested in index.spec.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { trace } from '@opentelemetry/api';
import type { PluginRegistrations } from '@tessera/core';
import { startReceiver } from './otlp-receiver.test-support.js';
import type { Receiver } from './otlp-receiver.test-support.js';
import { close, register } from './plugin-host.test-support.js';

let receiver: Receiver | undefined;
let regs: PluginRegistrations | undefined;
beforeEach(() => {
  // the plugin reads process.env; keep the machine's OTEL_* out of these tests
  for (const name of Object.keys(process.env)) if (name.startsWith('OTEL_')) vi.stubEnv(name, '');
});
afterEach(async () => {
  if (regs) await close(regs);
  await receiver?.close();
  regs = undefined;
  receiver = undefined;
  vi.unstubAllEnvs();
});

describe('@tessera/tracing plugin', () => {
  it('should start tracing at register and flush and stop it in its close hook', async () => {
    receiver = await startReceiver();
    ({ regs } = await register({ tracing: { endpoint: receiver.url, protocol: 'http/json', serviceName: 'plugin-test', batch: { scheduledDelay: '1h' } } }));
    expect(regs.configKeys.has('tracing')).toBe(true);
    expect(regs.closeHooks).toHaveLength(1);

    trace.getTracer('@tessera/core').startSpan('tessera.route').end();
    expect(receiver.requests).toHaveLength(0);
    await close(regs);
    regs = undefined;
    expect(receiver.requests).toHaveLength(1);
    const body = JSON.parse(receiver.requests[0]!.body.toString());
    expect(body.resourceSpans[0].scopeSpans[0].spans[0].name).toBe('tessera.route');
    // the global API is back to its no-op
    expect(trace.getTracer('x').startSpan('after').isRecording()).toBe(false);
  });

  it('should use the OTEL_* environment for keys the section leaves out', async () => {
    receiver = await startReceiver();
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', receiver.url);
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'http/json');
    vi.stubEnv('OTEL_SERVICE_NAME', 'from-env');
    ({ regs } = await register({ tracing: { serviceName: 'from-config' } }));
    trace.getTracer('x').startSpan('op').end();
    await close(regs);
    regs = undefined;
    const body = JSON.parse(receiver.requests[0]!.body.toString());
    const attributes = body.resourceSpans[0].resource.attributes;
    expect(attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'from-config' } });
  });
});
