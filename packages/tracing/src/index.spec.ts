import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { TesseraError } from '@tessera/core';
import type { PluginRegistrations } from '@tessera/core';
import type { PluginPackageJson } from '@tessera/core/testing';
import { checkPluginManifest } from '@tessera/core/testing';
import plugin, { TRACING_CONFIG_SCHEMA, startTracing } from './index.js';
import { recordingLogger } from './otlp-receiver.test-support.js';
import { close, register } from './plugin-host.test-support.js';

let regs: PluginRegistrations | undefined;
beforeEach(() => {
  // the plugin reads process.env; keep the machine's OTEL_* out of these tests
  for (const name of Object.keys(process.env)) if (name.startsWith('OTEL_')) vi.stubEnv(name, '');
});
afterEach(async () => {
  if (regs) await close(regs);
  regs = undefined;
  vi.unstubAllEnvs();
});

describe('@tessera/tracing plugin', () => {
  it('should be a Tessera plugin named after the package, with its version, core range and config key', () => {
    expect(checkPluginManifest(plugin, createRequire(import.meta.url)('../package.json') as PluginPackageJson)).toEqual([]);
    expect(plugin.configKey).toBe('tracing');
    expect(plugin.configSchema).toBe(TRACING_CONFIG_SCHEMA);
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
