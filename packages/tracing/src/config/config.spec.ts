import { describe, expect, it } from 'vitest';
import { TesseraError, validateAgainstSchema } from '@tessera/core';
import { redactUrl, tracesUrl } from './endpoint.js';
import { parseKeyValueList } from './env.js';
import { resolveTracingConfig } from './resolve.js';
import { samplerFromEnv } from './sampler.js';
import { TRACING_CONFIG_SCHEMA } from './schema.js';
import type { TracingConfig } from './schema.js';

describe('tracesUrl', () => {
  it.each([
    ['http://collector:4318', 'http://collector:4318/v1/traces'],
    ['http://collector:4318/', 'http://collector:4318/v1/traces'],
    ['https://otlp.example.com/otlp', 'https://otlp.example.com/otlp/v1/traces'],
    ['https://otlp.example.com/otlp/', 'https://otlp.example.com/otlp/v1/traces'],
    ['http://collector:4318/v1/traces', 'http://collector:4318/v1/traces'],
    ['http://collector:4318/v1/traces/', 'http://collector:4318/v1/traces/'],
    ['http://collector:4318/api?tenant=a', 'http://collector:4318/api/v1/traces?tenant=a'],
  ])('should turn %s into %s', (base, expected) => {
    expect(tracesUrl(base)).toBe(expected);
  });

  it('should reject URLs that are not http(s)', () => {
    expect(() => tracesUrl('grpc://collector:4317')).toThrow(/not an http\(s\) URL/);
    expect(() => tracesUrl('collector:4318')).toThrow();
    expect(() => tracesUrl('not a url')).toThrow(/not a URL/);
  });
});

describe('resolveTracingConfig', () => {
  it('should default to http/protobuf on localhost:4318, service tessera, parent-based always-on sampling', () => {
    const resolved = resolveTracingConfig({}, {});
    expect(resolved).toMatchObject({
      enabled: true,
      url: 'http://localhost:4318/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'tessera',
      sampler: { name: 'parentbased_always_on' },
      headers: {},
      resourceAttributes: {},
      exportTimeoutMs: 10_000,
      batch: { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 5000 },
      warnings: [],
    });
    expect(Object.values(resolved.sources).every((source) => source === 'default')).toBe(true);
  });

  describe('endpoint', () => {
    it('should append /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT and use OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is', () => {
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/base' }).url).toBe('http://c:4318/base/v1/traces');
      const specific = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://specific:9999/custom' });
      expect(specific.url).toBe('http://specific:9999/custom');
      expect(specific.sources.url).toBe('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    });

    it('should let the config endpoint win over both variables, with or without /v1/traces', () => {
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://specific:4318/v1/traces' };
      expect(resolveTracingConfig({ endpoint: 'http://mine:4318' }, env)).toMatchObject({ url: 'http://mine:4318/v1/traces', sources: { url: 'config' } });
      expect(resolveTracingConfig({ endpoint: 'http://mine:4318/v1/traces' }, env).url).toBe('http://mine:4318/v1/traces');
    });

    it('should skip an invalid variable with a warning and fall back to the next source', () => {
      const resolved = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318' });
      expect(resolved.url).toBe('http://general:4318/v1/traces');
      expect(resolved.warnings).toEqual([expect.stringContaining('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')]);
    });

    it('should throw the plugin config error for a config endpoint that does not parse', () => {
      const error = catchError(() => resolveTracingConfig({ endpoint: 'http://' }, {}));
      expect(error).toBeInstanceOf(TesseraError);
      expect(error.code).toBe('TESSERA_E_PLUGIN_CONFIG');
      expect(error.message).toContain('tracing.endpoint');
    });
  });

  describe('protocol', () => {
    it('should read OTEL_EXPORTER_OTLP_TRACES_PROTOCOL before OTEL_EXPORTER_OTLP_PROTOCOL, and let the config win', () => {
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol).toBe('http/json');
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).protocol).toBe('http/protobuf');
      expect(resolveTracingConfig({ protocol: 'http/protobuf' }, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toMatchObject({ protocol: 'http/protobuf', sources: { protocol: 'config' } });
    });

    it('should warn about grpc and use http/protobuf', () => {
      const resolved = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
      expect(resolved.protocol).toBe('http/protobuf');
      expect(resolved.warnings[0]).toMatch(/grpc is not supported.*4318/);
    });
  });

  describe('service name and resource attributes', () => {
    it('should take config serviceName, then OTEL_SERVICE_NAME, then service.name of OTEL_RESOURCE_ATTRIBUTES, then tessera', () => {
      const env = { OTEL_SERVICE_NAME: 'from-env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' };
      expect(resolveTracingConfig({ serviceName: 'from-config' }, env).serviceName).toBe('from-config');
      expect(resolveTracingConfig({}, env).serviceName).toBe('from-env');
      expect(resolveTracingConfig({}, { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' }).serviceName).toBe('from-attrs');
      expect(resolveTracingConfig({ resourceAttributes: { 'service.name': 'attr-config' } }, env).serviceName).toBe('attr-config');
      expect(resolveTracingConfig({}, { OTEL_SERVICE_NAME: '  ' }).serviceName).toBe('tessera');
    });

    it('should merge config resource attributes over OTEL_RESOURCE_ATTRIBUTES (percent-decoded), without service.name', () => {
      const resolved = resolveTracingConfig(
        { resourceAttributes: { 'deployment.environment.name': 'prod', team: 'ml' } },
        { OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging, k8s.pod.name=pod%201,service.name=x' },
      );
      expect(resolved.resourceAttributes).toEqual({ 'deployment.environment.name': 'prod', 'k8s.pod.name': 'pod 1', team: 'ml' });
    });

    it('should discard a malformed OTEL_RESOURCE_ATTRIBUTES with a warning', () => {
      const resolved = resolveTracingConfig({}, { OTEL_RESOURCE_ATTRIBUTES: 'a=1,oops' });
      expect(resolved.resourceAttributes).toEqual({});
      expect(resolved.warnings).toEqual([expect.stringContaining('OTEL_RESOURCE_ATTRIBUTES')]);
    });
  });

  describe('sampler', () => {
    it.each([
      ['always_on', undefined, { name: 'always_on' }],
      ['always_off', undefined, { name: 'always_off' }],
      ['traceidratio', '0.25', { name: 'traceidratio', ratio: 0.25 }],
      ['parentbased_always_on', undefined, { name: 'parentbased_always_on' }],
      ['parentbased_always_off', undefined, { name: 'parentbased_always_off' }],
      ['parentbased_traceidratio', '0.5', { name: 'parentbased_traceidratio', ratio: 0.5 }],
      ['ParentBased_TraceIdRatio', '0', { name: 'parentbased_traceidratio', ratio: 0 }],
      ['traceidratio', undefined, { name: 'traceidratio', ratio: 1 }],
    ])('should parse OTEL_TRACES_SAMPLER=%s ARG=%s', (sampler, arg, expected) => {
      const warnings: string[] = [];
      expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: sampler, OTEL_TRACES_SAMPLER_ARG: arg }, warnings)).toEqual(expected);
      expect(warnings).toEqual([]);
    });

    it('should warn and fall back for unsupported samplers and out-of-range ratios', () => {
      const warnings: string[] = [];
      expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, warnings)).toEqual({ name: 'parentbased_always_on' });
      expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }, warnings)).toEqual({ name: 'traceidratio', ratio: 1 });
      expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, warnings)).toEqual({ name: 'traceidratio', ratio: 1 });
      expect(warnings).toHaveLength(3);
      expect(samplerFromEnv({})).toBeUndefined();
    });

    it('should let sampleRatio win over the variables as a parent-based ratio sampler', () => {
      const env = { OTEL_TRACES_SAMPLER: 'always_off' };
      expect(resolveTracingConfig({ sampleRatio: 0.1 }, env)).toMatchObject({ sampler: { name: 'parentbased_traceidratio', ratio: 0.1 }, sources: { sampler: 'config' } });
      expect(resolveTracingConfig({}, env)).toMatchObject({ sampler: { name: 'always_off' }, sources: { sampler: 'OTEL_TRACES_SAMPLER' } });
    });
  });

  describe('headers', () => {
    it('should merge OTEL_EXPORTER_OTLP_HEADERS < OTEL_EXPORTER_OTLP_TRACES_HEADERS < config, names without case', () => {
      const resolved = resolveTracingConfig(
        { headers: { authorization: 'Bearer config' } },
        { OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20general,x-tenant=a', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b,x-extra=1' },
      );
      expect(resolved.headers).toEqual({ authorization: 'Bearer config', 'x-tenant': 'b', 'x-extra': '1' });
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20general' }).headers).toEqual({ Authorization: 'Bearer general' });
    });

    it('should never put a header value into a warning', () => {
      const resolved = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_HEADERS: 'authorization=secret%zz' });
      expect(resolved.headers).toEqual({});
      expect(resolved.warnings).toHaveLength(1);
      expect(resolved.warnings[0]).not.toContain('secret');
    });
  });

  describe('timeouts and batching', () => {
    it('should read the export timeout from config (duration), then the trace and general variables (ms)', () => {
      expect(resolveTracingConfig({ exportTimeout: '2s' }, { OTEL_EXPORTER_OTLP_TIMEOUT: '100' }).exportTimeoutMs).toBe(2000);
      expect(resolveTracingConfig({ exportTimeout: 750 }, {}).exportTimeoutMs).toBe(750);
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '100', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '300' })).toMatchObject({
        exportTimeoutMs: 300,
        sources: { exportTimeoutMs: 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT' },
      });
      expect(resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '100' }).exportTimeoutMs).toBe(100);
      const bad = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '-5' });
      expect(bad.exportTimeoutMs).toBe(10_000);
      expect(bad.warnings).toHaveLength(1);
    });

    it('should take the batch settings from config, then OTEL_BSP_*, and cap the batch at the queue size', () => {
      const env = { OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50', OTEL_BSP_SCHEDULE_DELAY: '200' };
      expect(resolveTracingConfig({}, env).batch).toEqual({ maxQueueSize: 100, maxExportBatchSize: 50, scheduledDelayMs: 200 });
      expect(resolveTracingConfig({ batch: { maxQueueSize: 10, scheduledDelay: '1s' } }, env).batch).toEqual({ maxQueueSize: 10, maxExportBatchSize: 10, scheduledDelayMs: 1000 });
      const error = catchError(() => resolveTracingConfig({ batch: { maxQueueSize: 10, maxExportBatchSize: 20 } }, {}));
      expect(error.code).toBe('TESSERA_E_PLUGIN_CONFIG');
      expect(error.message).toContain('tracing.batch.maxExportBatchSize');
    });
  });

  it('should turn tracing off with enabled: false or OTEL_SDK_DISABLED=true, the config winning', () => {
    expect(resolveTracingConfig({ enabled: false }, {})).toMatchObject({ enabled: false, disabledBy: 'tracing.enabled' });
    expect(resolveTracingConfig({}, { OTEL_SDK_DISABLED: 'TRUE' })).toMatchObject({ enabled: false, disabledBy: 'OTEL_SDK_DISABLED' });
    expect(resolveTracingConfig({ enabled: true }, { OTEL_SDK_DISABLED: 'true' }).enabled).toBe(true);
    expect(resolveTracingConfig({}, { OTEL_SDK_DISABLED: 'false' }).enabled).toBe(true);
  });

  it('should treat empty variables as unset', () => {
    const resolved = resolveTracingConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_SERVICE_NAME: '', OTEL_TRACES_SAMPLER: ' ', OTEL_EXPORTER_OTLP_PROTOCOL: '' });
    expect(resolved).toMatchObject({ url: 'http://localhost:4318/v1/traces', serviceName: 'tessera', sampler: { name: 'parentbased_always_on' }, warnings: [] });
  });
});

describe('TRACING_CONFIG_SCHEMA', () => {
  const validate = (section: unknown): TracingConfig => validateAgainstSchema<TracingConfig>(TRACING_CONFIG_SCHEMA, section, 'tracing', { code: 'TESSERA_E_PLUGIN_CONFIG' });

  it('should accept every key, converting strings from ${VAR} substitution', () => {
    const section = validate({
      enabled: 'true',
      endpoint: 'http://collector:4318',
      protocol: 'http/json',
      serviceName: 'svc',
      sampleRatio: '0.5',
      headers: { authorization: 'Bearer x' },
      resourceAttributes: { team: 'ml' },
      exportTimeout: '5s',
      batch: { maxQueueSize: '100', maxExportBatchSize: 10, scheduledDelay: '250ms' },
    });
    expect(section).toMatchObject({ enabled: true, sampleRatio: 0.5, batch: { maxQueueSize: 100 } });
  });

  it('should leave absent keys absent (no schema defaults hide the OTEL_* variables)', () => {
    expect(validate({})).toEqual({});
  });

  it.each([
    [{ sampleRatio: 2 }, 'tracing.sampleRatio'],
    [{ protocol: 'grpc' }, 'tracing.protocol'],
    [{ endpoint: 'collector:4318' }, 'tracing.endpoint'],
    [{ exportTimeout: 'soon' }, 'tracing.exportTimeout'],
    [{ headers: { 'bad header': 'x' } }, 'tracing.headers'],
    [{ batch: { maxQueueSize: 0 } }, 'tracing.batch.maxQueueSize'],
    [{ sampling: 1 }, 'tracing'],
  ])('should reject %j naming %s', (section, path) => {
    const error = catchError(() => validate(section));
    expect(error.code).toBe('TESSERA_E_PLUGIN_CONFIG');
    expect(error.message).toContain(path);
  });
});

describe('helpers', () => {
  it('should redact credentials and query strings from URLs for logs', () => {
    expect(redactUrl('https://user:pw@otlp.example.com/v1/traces?api_key=k')).toBe('https://otlp.example.com/v1/traces?…');
  });

  it('should parse key=value lists', () => {
    const warnings: string[] = [];
    expect(parseKeyValueList('a=1, b = x%3Dy ,,c=', 'X', warnings)).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(warnings).toEqual([]);
  });
});

function catchError(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('expected an error');
}
