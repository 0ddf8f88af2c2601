import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../config/resolve.js';
import { serveConfig, tuneTarget } from './serve-config.js';

const USER = {
  server: { port: 8000, logLevel: 'warn', metricsPort: 9464, rateLimit: { max: 10, timeWindow: '1s' } },
  hooks: [],
  models: {
    cls: {
      backend: 'onnxruntime',
      versions: { '1': { path: '/models/cls-1.onnx' }, '2': { path: '/models/cls-2.onnx' } },
      batching: { maxBatchSize: 32, maxQueueDelayMs: 2, preferredBatchSizes: [8] },
      sessionOptions: { graphOptimizationLevel: 'all', intraOpNumThreads: 8 },
      warmupShapes: { x: [1, 3, 48, 192] },
      preprocess: [{ processor: 'image', size: [48, 192] }],
      postprocess: [{ processor: 'classification', labels: ['0', '180'] }],
      routing: { strategy: 'latest' },
      timeout: '2s',
    },
    det: { backend: 'onnxruntime', path: '/models/det.onnx' },
  },
};

describe(serveConfig, () => {
  const config = resolveConfig(USER, { configDir: '/', env: {} });
  const target = tuneTarget(config, 'cls');

  it('should serve the model alone, newest version, without processors or routing, with the point\'s settings', () => {
    const tree = serveConfig(config, target, { instances: 2, threads: 3, maxBatchSize: 8, maxQueueDelayMs: 'auto' }, '/tmp/state');
    expect(Object.keys(tree['models'] as object)).toEqual(['cls']);
    const cls = (tree['models'] as Record<string, Record<string, unknown>>)['cls']!;
    expect(cls).toMatchObject({
      backend: 'onnxruntime',
      versions: { '2': { path: '/models/cls-2.onnx' } },
      instances: 2,
      batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 'auto', preferredBatchSizes: [8] },
      sessionOptions: { graphOptimizationLevel: 'all', intraOpNumThreads: 3 },
      warmupShapes: { x: [1, 3, 48, 192] },
      timeout: 2000,
    });
    expect(cls).not.toHaveProperty('preprocess');
    expect(cls).not.toHaveProperty('postprocess');
    expect(cls).not.toHaveProperty('routing');
    expect(tree['server']).toMatchObject({ host: '127.0.0.1', port: 0, logLevel: 'info', stateDir: '/tmp/state' });
    expect(tree['server']).not.toHaveProperty('metricsPort');
    expect(tree['server']).not.toHaveProperty('rateLimit');
    expect(tree['exporters']).toEqual(['prometheus']);
  });

  it('should be a valid config', () => {
    const tree = serveConfig(config, target, { instances: 1, maxQueueDelayMs: 0 }, '/tmp/state');
    const served = resolveConfig(tree, { configDir: '/tmp', env: {} });
    expect(served.models['cls']).toMatchObject({ instances: 1, batching: { batcher: 'dynamic', maxBatchSize: 32, options: { maxQueueDelayMs: 0 } } });
    expect(served.server).toMatchObject({ host: '127.0.0.1', port: 0, shutdownGracePeriodMs: 2000 });
  });

  it('should say what it leaves out', () => {
    expect(target.version).toBe('2');
    expect(target.notes.join('\n')).toMatch(/other models left out: det/);
    expect(target.notes.join('\n')).toMatch(/version 2 is measured/);
    expect(target.notes.join('\n')).toMatch(/processors removed \(preprocess image, postprocess classification\)/);
    expect(target.notes.join('\n')).toMatch(/rateLimit left out/);
    expect(target.notes.join('\n')).toMatch(/logLevel warn → info/);
  });
});
