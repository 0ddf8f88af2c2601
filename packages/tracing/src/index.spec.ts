import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { CORE_VERSION, TesseraError, isTesseraPlugin, registerPlugins } from '@tessera/core';
import type { PluginRegistrations } from '@tessera/core';
import plugin, { TRACING_CONFIG_SCHEMA, startTracing } from './index.js';
import { recordingLogger, startReceiver } from './otlp-receiver.test-support.js';
import type { Receiver } from './otlp-receiver.test-support.js';

type Host = Parameters<typeof registerPlugins>[1];

/** Registers the plugin through the core's loader (schema validation included), as `tessera serve` does. */
async function register(sections: Record<string, unknown>, logger = recordingLogger()): Promise<{ regs: PluginRegistrations; logger: ReturnType<typeof recordingLogger> }> {
  const host: Host = {
    container: {} as Host['container'], // the plugin binds nothing
    logger: logger as unknown as Host['logger'],
    coreVersion: CORE_VERSION,
    configDir: process.cwd(),
    configFile: '/srv/tessera.config.yaml',
    sections,
  };
  const regs = await registerPlugins([{ plugin, source: '@tessera/tracing' }], host);
  return { regs, logger };
}

async function close(regs: PluginRegistrations): Promise<void> {
  for (const hook of [...regs.closeHooks].reverse()) await hook();
}

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
  it('should be a Tessera plugin named after the package, with its version, core range and config key', () => {
    const pkg = createRequire(import.meta.url)('../package.json') as { name: string; version: string; peerDependencies: Record<string, string> };
    expect(isTesseraPlugin(plugin)).toBe(true);
    expect(plugin.name).toBe(pkg.name);
    expect(plugin.version).toBe(pkg.version);
    expect(plugin.core).toBe(pkg.peerDependencies['@tessera/core']);
    expect(plugin.configKey).toBe('tracing');
    expect(plugin.configSchema).toBe(TRACING_CONFIG_SCHEMA);
  });

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

  it('should log where it exports to, without header values', async () => {
    const logger = recordingLogger();
    ({ regs } = await register({ tracing: { endpoint: 'https://user:pw@otlp.example.com', headers: { authorization: 'Bearer s3cret' } } }, logger));
    const info = logger.calls.find((c) => c.level === 'info');
    expect(info?.obj).toMatchObject({ endpoint: 'https://otlp.example.com/v1/traces', protocol: 'http/protobuf', serviceName: 'tessera', headers: ['authorization'] });
    const logged = JSON.stringify(logger.calls);
    expect(logged).not.toContain('s3cret');
    expect(logged).not.toContain('pw@');
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

  it('should reject an invalid section with the loader error, naming the key and the file', async () => {
    const error = await register({ tracing: { sampleRatio: 2 } }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TesseraError);
    expect((error as TesseraError).code).toBe('TESSERA_E_PLUGIN_CONFIG');
    expect((error as TesseraError).message).toContain('tracing.sampleRatio');
    expect((error as TesseraError).message).toContain('/srv/tessera.config.yaml');
    expect(trace.getTracer('x').startSpan('op').isRecording()).toBe(false);
  });

  it('should start with no section at all (everything from the environment and defaults)', async () => {
    ({ regs } = await register({}));
    expect(regs.closeHooks).toHaveLength(1);
    expect(trace.getTracer('x').startSpan('op').isRecording()).toBe(true);
  });

  it('should stay off with enabled: false or OTEL_SDK_DISABLED=true', async () => {
    ({ regs } = await register({ tracing: { enabled: false } }));
    expect(regs.closeHooks).toHaveLength(0);
    expect(trace.getTracer('x').startSpan('op').isRecording()).toBe(false);

    vi.stubEnv('OTEL_SDK_DISABLED', 'true');
    const { regs: second, logger } = await register({});
    expect(second.closeHooks).toHaveLength(0);
    expect(logger.calls.find((c) => c.level === 'info')?.obj).toEqual({ disabledBy: 'OTEL_SDK_DISABLED' });
  });

  it('should leave another SDK in place, with a warning, rather than fail the server', async () => {
    const other = new BasicTracerProvider();
    expect(trace.setGlobalTracerProvider(other)).toBe(true);
    try {
      const { regs: result, logger } = await register({ tracing: {} });
      expect(result.closeHooks).toHaveLength(0);
      expect(logger.calls.filter((c) => c.level === 'warn').map((c) => c.msg)).toEqual([expect.stringMatching(/already registered.*leaves it in place/)]);
      expect(trace.getTracerProvider()).not.toBeUndefined();
    } finally {
      trace.disable();
      await other.shutdown();
    }
    // and the programmatic API can start afterwards
    const handle = startTracing({ env: {} });
    await handle.shutdown();
  });

  it('should log environment problems as warnings', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc');
    const logger = recordingLogger();
    ({ regs } = await register({ tracing: {} }, logger));
    expect(logger.calls.filter((c) => c.level === 'warn').map((c) => c.msg)).toEqual([expect.stringMatching(/grpc is not supported/)]);
  });
});
