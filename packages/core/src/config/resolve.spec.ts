import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { DEFAULT_LIMITS } from '../http/limits.js';
import { resolveConfig } from './resolve.js';

const dir = path.resolve('/srv/tessera');

describe(resolveConfig, () => {
  describe('having an empty config', () => {
    it('should give every default', () => {
      expect(resolveConfig({}, { configDir: dir, env: {} })).toEqual({
        server: { host: '0.0.0.0', port: 8000, bodyLimit: 64 * 1024 * 1024, limits: DEFAULT_LIMITS, logLevel: 'info', openapi: true, shutdownGracePeriodMs: 30_000, workers: 1, exitOnModelError: true, trustProxy: false, stateDir: path.join(dir, '.tessera/state') },
        plugins: [],
        models: {},
        exporters: [{ name: 'prometheus', options: {} }],
        hooks: [],
        configFile: '',
        configDir: dir,
        sections: {},
        warnings: ['models: no models are configured; the server will start and serve none'],
      });
    });

    it('should treat null and undefined (an empty file) as {}', () => {
      expect(resolveConfig(null, { configDir: dir, env: {} }).server.port).toBe(8000);
      expect(resolveConfig(undefined, { configDir: dir, env: {} }).models).toEqual({});
    });
  });

  describe('having a model with a path', () => {
    it('should make it version 1 with an absolute path, and give the model defaults', () => {
      const config = resolveConfig({ models: { cls: { path: './models/cls.onnx' } } }, { configDir: dir, env: {} });
      expect(config.models['cls']).toEqual({
        backend: 'onnxruntime',
        versions: { '1': { path: path.join(dir, 'models/cls.onnx'), options: {} } },
        batching: { batcher: 'passthrough', options: {} },
        instances: 'auto',
        routing: { strategy: 'latest', options: {} },
        warmup: true,
        preprocess: [],
        postprocess: [],
        timeoutMs: 0,
        generation: { maxConcurrent: 1024, maxQueued: 64 },
        options: {},
        configDir: dir,
      });
      expect(config.warnings).toEqual([]);
    });
  });

  describe('having versions and backend-specific keys', () => {
    it('should split core keys from options at every level', () => {
      const config = resolveConfig(
        {
          models: {
            cls: {
              backend: 'tensorrt',
              versions: { '1': { path: 'v1.onnx' }, '2': { path: 'v2.onnx', sessionOptions: { intraOpNumThreads: 2 } } },
              sessionOptions: { intraOpNumThreads: 4 },
              warmupShapes: { x: [1, 3, 48, 192] },
              batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 2, preferredBatchSizes: [8, 16] },
              routing: { strategy: 'canary', baseline: '1', canary: '2', steps: [5, 50, 100], interval: '30s' },
              instances: 2,
              warmup: false,
            },
          },
        },
        { configDir: dir, env: {} },
      );
      expect(config.models['cls']).toEqual({
        backend: 'tensorrt',
        versions: {
          '1': { path: path.join(dir, 'v1.onnx'), options: {} },
          '2': { path: path.join(dir, 'v2.onnx'), options: { sessionOptions: { intraOpNumThreads: 2 } } },
        },
        batching: { batcher: 'dynamic', maxBatchSize: 32, options: { maxQueueDelayMs: 2, preferredBatchSizes: [8, 16] } },
        instances: 2,
        routing: { strategy: 'canary', options: { baseline: '1', canary: '2', steps: [5, 50, 100], interval: '30s' } },
        warmup: false,
        preprocess: [],
        postprocess: [],
        timeoutMs: 0,
        generation: { maxConcurrent: 1024, maxQueued: 64 },
        options: { sessionOptions: { intraOpNumThreads: 4 }, warmupShapes: { x: [1, 3, 48, 192] } },
        configDir: dir,
      });
    });
  });

  describe('having batching keys without a batcher', () => {
    it('should choose the dynamic batcher (Triton\'s habit: maxQueueDelayMs alone)', () => {
      const config = resolveConfig({ models: { cls: { path: 'm.onnx', batching: { maxBatchSize: 32, maxQueueDelayMs: 2 } } } }, { configDir: dir, env: {} });
      expect(config.models['cls']!.batching).toEqual({ batcher: 'dynamic', maxBatchSize: 32, options: { maxQueueDelayMs: 2 } });
    });

    it('should keep passthrough when only maxBatchSize is set, and an explicit batcher always', () => {
      const only = resolveConfig({ models: { cls: { path: 'm.onnx', batching: { maxBatchSize: 8 } } } }, { configDir: dir, env: {} });
      expect(only.models['cls']!.batching.batcher).toBe('passthrough');
      const explicit = resolveConfig({ models: { cls: { path: 'm.onnx', batching: { batcher: 'passthrough', maxQueueDelayMs: 2 } } } }, { configDir: dir, env: {} });
      expect(explicit.models['cls']!.batching.batcher).toBe('passthrough');
    });
  });

  describe('having processors, hooks and exporters', () => {
    it('should take names or objects with options, in order', () => {
      const config = resolveConfig(
        {
          models: { cls: { path: 'm.onnx', preprocess: ['decode', { processor: 'scale', factor: 2 }], postprocess: [{ processor: 'top-k', k: 3 }] } },
          hooks: [{ hook: 'auth', keys: ['k'] }, 'audit'],
          exporters: ['prometheus', { exporter: 'jsonl', file: 'a.jsonl' }],
          server: { stateDir: '/var/lib/tessera' },
        },
        { configDir: dir, env: {} },
      );
      expect(config.models['cls']!.preprocess).toEqual([{ name: 'decode', options: {} }, { name: 'scale', options: { factor: 2 } }]);
      expect(config.models['cls']!.postprocess).toEqual([{ name: 'top-k', options: { k: 3 } }]);
      expect(config.hooks).toEqual([{ name: 'auth', options: { keys: ['k'] } }, { name: 'audit', options: {} }]);
      expect(config.exporters).toEqual([{ name: 'prometheus', options: {} }, { name: 'jsonl', options: { file: 'a.jsonl' } }]);
      expect(config.server.stateDir).toBe(path.resolve('/var/lib/tessera'));
      expect(config.sections).toEqual({});
    });

    it('should refuse an entry without its name key', () => {
      expect(() => resolveConfig({ hooks: [{ keys: [] }] }, { configDir: dir, env: {} })).toThrow(/hooks\[0\]/);
    });
  });

  describe('having a model without path or versions', () => {
    it('should give it version 1 without a path (the backend decides whether it needs one)', () => {
      const config = resolveConfig({ models: { chat: { backend: 'vllm', upstreams: ['http://a'] } } }, { configDir: dir, env: {} });
      expect(config.models['chat']!.versions).toEqual({ '1': { options: {} } });
      expect(config.models['chat']!.options).toEqual({ upstreams: ['http://a'] });
    });

    it('should keep a version without a path', () => {
      const config = resolveConfig({ models: { chat: { backend: 'vllm', versions: { '3': { upstreams: ['http://b'] } } } } }, { configDir: dir, env: {} });
      expect(config.models['chat']!.versions).toEqual({ '3': { options: { upstreams: ['http://b'] } } });
    });
  });

  describe('having relative paths', () => {
    it('should resolve model paths against configDir and keep absolute paths and URLs', () => {
      const absolute = path.resolve('/models/abs.onnx');
      const config = resolveConfig(
        {
          models: {
            rel: { path: '../shared/m.onnx' },
            bare: { path: 'm.onnx' },
            abs: { path: absolute },
            url: { path: 's3://bucket/m.onnx' },
            file: { path: pathToFileURL(absolute).href },
          },
        },
        { configDir: dir, env: {} },
      );
      const paths = Object.fromEntries(Object.entries(config.models).map(([name, m]) => [name, m.versions['1']!.path]));
      expect(paths).toEqual({
        rel: path.resolve(dir, '../shared/m.onnx'),
        bare: path.join(dir, 'm.onnx'),
        abs: absolute,
        url: 's3://bucket/m.onnx',
        file: absolute,
      });
    });

    it('should resolve plugin paths starting with . and keep package names', () => {
      const config = resolveConfig({ plugins: ['@tessera/router-canary', './plugins/auth.js', '../x.mjs', path.resolve('/opt/p.js')] }, { configDir: dir, env: {} });
      expect(config.plugins).toEqual(['@tessera/router-canary', path.join(dir, 'plugins/auth.js'), path.resolve(dir, '../x.mjs'), path.resolve('/opt/p.js')]);
    });

    it('should make configFile and configDir absolute', () => {
      const config = resolveConfig({}, { configFile: 'tessera.config.yaml', configDir: '.', env: {} });
      expect(config.configFile).toBe(path.resolve('tessera.config.yaml'));
      expect(config.configDir).toBe(process.cwd());
    });
  });

  describe('having durations and sizes', () => {
    it('should resolve them to milliseconds and bytes', () => {
      const config = resolveConfig({ server: { shutdownGracePeriod: '1m30s', bodyLimit: '10MB' } }, { configDir: dir, env: {} });
      expect(config.server.shutdownGracePeriodMs).toBe(90_000);
      expect(config.server.bodyLimit).toBe(10_000_000);
      expect(resolveConfig({ server: { shutdownGracePeriod: 250, bodyLimit: 1024 } }, { configDir: dir, env: {} }).server).toMatchObject({ shutdownGracePeriodMs: 250, bodyLimit: 1024 });
    });
  });

  describe('having environment references', () => {
    const raw = {
      server: { host: '${HOST:-127.0.0.1}', port: '${PORT:-8000}', logLevel: '${LOG:-info}', exitOnModelError: '${STRICT:-true}', shutdownGracePeriod: '${GRACE:-5s}' },
      plugins: '${PLUGINS:-}',
      models: { chat: { backend: 'vllm', upstreams: '${UPSTREAMS}', apiKey: '${KEY:-}' } },
      tracing: { endpoint: '${OTLP:-http://collector:4318}' },
    };

    it('should substitute them and convert strings where the schema wants numbers, booleans or lists', () => {
      const config = resolveConfig(raw, { configDir: dir, env: { PORT: '9000', STRICT: 'false', PLUGINS: '@tessera/tracing, ./p.js', UPSTREAMS: 'http://a,http://b' } });
      expect(config.server).toEqual({ host: '127.0.0.1', port: 9000, logLevel: 'info', openapi: true, exitOnModelError: false, shutdownGracePeriodMs: 5000, workers: 1, bodyLimit: 64 * 1024 * 1024, limits: DEFAULT_LIMITS, trustProxy: false, stateDir: path.join(dir, '.tessera/state') });
      expect(config.plugins).toEqual(['@tessera/tracing', path.join(dir, 'p.js')]);
      // Backend keys are converted when the backend's schema is applied (validateAgainstSchema).
      expect(config.models['chat']!.options).toEqual({ upstreams: 'http://a,http://b', apiKey: '' });
      expect(config.sections).toEqual({ tracing: { endpoint: 'http://collector:4318' } });
    });

    it('should give an empty list for an empty string where a list is wanted', () => {
      expect(resolveConfig(raw, { configDir: dir, env: { UPSTREAMS: 'x' } }).plugins).toEqual([]);
    });

    it('should report a value that does not convert with its path', () => {
      expect(() => resolveConfig(raw, { configDir: dir, env: { UPSTREAMS: 'x', PORT: 'eighty' } })).toThrow('server.port: must be an integer from 0 to 65535, got "eighty"');
    });

    it('should throw TESSERA_E_CONFIG_ENV prefixed by the file for unset variables', () => {
      try {
        resolveConfig(raw, { configFile: '/srv/tessera.config.yaml', configDir: '/srv', env: {} });
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(TesseraError);
        expect((err as TesseraError).code).toBe('TESSERA_E_CONFIG_ENV');
        expect((err as TesseraError).message).toBe(
          `${path.resolve('/srv/tessera.config.yaml')}: models.chat.upstreams: environment variable UPSTREAMS is not set (use \${UPSTREAMS:-default} to give a default)`,
        );
      }
    });
  });

  describe('having plugin sections', () => {
    it('should return unknown root keys as sections and drop $schema', () => {
      const config = resolveConfig({ $schema: './schema.json', tracing: { sampler: 0.1 }, acme: { tokens: ['a'] } }, { configDir: dir, env: {} });
      expect(config.sections).toEqual({ tracing: { sampler: 0.1 }, acme: { tokens: ['a'] } });
    });
  });

  it('should not change the object it is given', () => {
    const raw = { server: { port: '${PORT:-1}' }, models: { m: { path: 'a.onnx', batching: {} } } };
    const copy = structuredClone(raw);
    resolveConfig(raw, { configDir: dir, env: {} });
    expect(raw).toEqual(copy);
  });

  it('should not share default objects between results', () => {
    const a = resolveConfig({}, { configDir: dir, env: {} });
    const b = resolveConfig({}, { configDir: dir, env: {} });
    a.plugins.push('x');
    expect(b.plugins).toEqual([]);
  });
});
