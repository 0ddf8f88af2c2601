import { describe, expect, it } from 'vitest';
import type { RequestEvent, ServingEventMap } from '../contracts/events.js';
import { ServingEvents } from '../contracts/events.js';
import { ModelStatsCollector } from './model-stats.js';

type BatchEvent = ServingEventMap['batch'][0];

function request(overrides: Partial<RequestEvent> = {}): RequestEvent {
  return {
    id: 'r',
    method: 'POST',
    path: '/v2/models/m/infer',
    route: '/v2/models/:model/infer',
    protocol: 'v2',
    endpoint: 'infer',
    model: 'm',
    version: '1',
    status: 200,
    durationMs: 4,
    tensor: { inputMs: 0.5, outputMs: 0.25 },
    ...overrides,
  };
}

function batch(overrides: Partial<BatchEvent> = {}): BatchEvent {
  return { model: 'm', version: '1', size: 1, requests: 1, queueMs: [1], executeMs: 2, ok: true, failed: 0, ...overrides };
}

function collector(now = () => 1_700_000_000_000): { events: ServingEvents; stats: ModelStatsCollector } {
  const events = new ServingEvents();
  const stats = new ModelStatsCollector(now);
  stats.attach(events);
  return { events, stats };
}

describe(ModelStatsCollector, () => {
  describe('.report', () => {
    it('should answer zeros in Triton\'s full shape for a version without traffic', () => {
      const { stats } = collector();
      const zero = { count: 0, ns: 0 };
      expect(stats.report('m', '3')).toEqual({
        name: 'm',
        version: '3',
        last_inference: 0,
        inference_count: 0,
        execution_count: 0,
        inference_stats: { success: zero, fail: zero, queue: zero, compute_input: zero, compute_infer: zero, compute_output: zero, cache_hit: zero, cache_miss: zero },
        response_stats: {},
        batch_stats: [],
        memory_usage: [],
      });
    });

    it('should return copies: a report is not changed by later traffic', () => {
      const { events, stats } = collector();
      events.emit('request', request());
      const before = stats.report('m', '1');
      events.emit('request', request());
      expect(before.inference_stats.success.count).toBe(1);
      expect(stats.report('m', '1').inference_stats.success.count).toBe(2);
    });
  });

  describe('having successful requests and executions', () => {
    it('should map requests and batches onto Triton\'s phases, in nanoseconds', () => {
      const { events, stats } = collector();
      // three requests of 1, 2 and 1 samples: one execution of 3 samples (two requests), one of 1
      events.emit('batch', batch({ size: 3, requests: 2, queueMs: [1.5, 0.5], executeMs: 4 }));
      events.emit('batch', batch({ size: 1, requests: 1, queueMs: [0.25], executeMs: 1 }));
      for (const durationMs of [10, 8, 3]) events.emit('request', request({ durationMs, tensor: { inputMs: 0.5, outputMs: 0.125 } }));
      const r = stats.report('m', '1');
      expect(r.inference_count).toBe(4);
      expect(r.execution_count).toBe(2);
      expect(r.last_inference).toBe(1_700_000_000_000);
      expect(r.inference_stats).toMatchObject({
        success: { count: 3, ns: 21_000_000 },
        fail: { count: 0, ns: 0 },
        queue: { count: 3, ns: 2_250_000 },
        compute_input: { count: 3, ns: 1_500_000 },
        // each request of a batch waited for the whole execution: 4 + 4 + 1 ms
        compute_infer: { count: 3, ns: 9_000_000 },
        compute_output: { count: 3, ns: 375_000 },
      });
      expect(r.batch_stats).toEqual([
        { batch_size: 1, compute_input: { count: 1, ns: 0 }, compute_infer: { count: 1, ns: 1_000_000 }, compute_output: { count: 1, ns: 0 } },
        { batch_size: 3, compute_input: { count: 1, ns: 0 }, compute_infer: { count: 1, ns: 4_000_000 }, compute_output: { count: 1, ns: 0 } },
      ]);
    });

    it('should keep versions and models apart', () => {
      const { events, stats } = collector();
      events.emit('request', request({ version: '2' }));
      events.emit('request', request({ model: 'other' }));
      events.emit('batch', batch({ version: '2', size: 5 }));
      expect(stats.report('m', '1').inference_stats.success.count).toBe(0);
      expect(stats.report('m', '2')).toMatchObject({ inference_count: 5, inference_stats: { success: { count: 1 } } });
      expect(stats.report('other', '1').inference_stats.success.count).toBe(1);
    });

    it('should round nanoseconds to integers', () => {
      const { events, stats } = collector();
      events.emit('request', request({ durationMs: 1 / 3 }));
      expect(stats.report('m', '1').inference_stats.success.ns).toBe(333_333);
    });

    it('should set last_inference from the clock at each successful execution', () => {
      let now = 1000;
      const { events, stats } = collector(() => now);
      events.emit('batch', batch());
      now = 2000;
      events.emit('batch', batch({ ok: false }));
      expect(stats.report('m', '1').last_inference).toBe(1000);
      events.emit('batch', batch());
      expect(stats.report('m', '1').last_inference).toBe(2000);
    });
  });

  describe('having failures', () => {
    it('should count validated requests answered ≥ 400 as fail, with their duration and no phase', () => {
      const { events, stats } = collector();
      events.emit('request', request({ status: 504, durationMs: 2, code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED' }));
      events.emit('request', request({ status: 499, durationMs: 1 }));
      const r = stats.report('m', '1');
      expect(r.inference_stats.fail).toEqual({ count: 2, ns: 3_000_000 });
      expect(r.inference_stats.success.count).toBe(0);
      expect(r.inference_stats.compute_input.count).toBe(0);
    });

    it('should not count requests refused before validation, generations or other endpoints', () => {
      const { events, stats } = collector();
      const { tensor: _, ...untimed } = request();
      events.emit('request', { ...untimed, status: 400, code: 'TESSERA_E_INPUT_SHAPE' });
      events.emit('request', { ...untimed, status: 503, code: 'TESSERA_E_MODEL_NOT_READY' });
      events.emit('request', { ...untimed, protocol: 'openai', path: '/v1/chat/completions', route: '/v1/chat/completions' });
      events.emit('request', { ...untimed, endpoint: 'metadata', method: 'GET', path: '/v2/models/m/stats' });
      events.emit('request', request({ model: undefined, version: undefined }));
      const r = stats.report('m', '1');
      expect(r.inference_stats.success.count + r.inference_stats.fail.count).toBe(0);
    });

    it('should not count an execution that was rejected, or whose every request failed', () => {
      const { events, stats } = collector();
      events.emit('batch', batch({ ok: false, size: 2, requests: 2, queueMs: [1, 1] }));
      events.emit('batch', batch({ failed: 1 }));
      const r = stats.report('m', '1');
      expect(r).toMatchObject({ inference_count: 0, execution_count: 0, batch_stats: [] });
      expect(r.inference_stats.queue.count).toBe(0);
      expect(r.inference_stats.compute_infer.count).toBe(0);
    });

    it('should count an execution in which some requests failed (the batch ran)', () => {
      const { events, stats } = collector();
      events.emit('batch', batch({ size: 2, requests: 2, queueMs: [1, 2], failed: 1 }));
      expect(stats.report('m', '1')).toMatchObject({ inference_count: 2, execution_count: 1, inference_stats: { queue: { count: 2, ns: 3_000_000 } } });
    });
  });

  describe('having shadow copies', () => {
    it('should count tensor copies as requests of the version they ran on: 2xx success, 5xx fail, 4xx not at all', () => {
      const { events, stats } = collector();
      const shadow = { model: 'm', version: '2', kind: 'tensor' as const, durationMs: 2 };
      events.emit('shadow', { ...shadow, status: 200 });
      events.emit('shadow', { ...shadow, status: 500, code: 'TESSERA_E_BACKEND_FAILED' });
      events.emit('shadow', { ...shadow, status: 400, code: 'TESSERA_E_INPUT_SHAPE' });
      events.emit('shadow', { ...shadow, kind: 'generate', status: 200 });
      const r = stats.report('m', '2');
      expect(r.inference_stats.success).toEqual({ count: 1, ns: 2_000_000 });
      expect(r.inference_stats.fail).toEqual({ count: 1, ns: 2_000_000 });
      expect(r.inference_stats.compute_input.count).toBe(0);
    });
  });

  describe('having a version closed', () => {
    it('should drop its stats when it closes, and start from zero when it loads again', () => {
      const { events, stats } = collector();
      events.emit('request', request());
      events.emit('request', request({ version: '2' }));
      events.emit('modelState', { model: 'm', version: '1', state: 'draining' });
      expect(stats.report('m', '1').inference_stats.success.count).toBe(1);
      events.emit('modelState', { model: 'm', version: '1', state: 'closed' });
      expect(stats.report('m', '1').inference_stats.success.count).toBe(0);
      expect(stats.report('m', '2').inference_stats.success.count).toBe(1);
      events.emit('modelState', { model: 'm', version: '1', state: 'loading' });
      events.emit('request', request());
      expect(stats.report('m', '1').inference_stats.success.count).toBe(1);
    });

    it('should keep them when a reload replaced the object (the label goes on serving)', () => {
      const { events, stats } = collector();
      events.emit('request', request());
      events.emit('modelState', { model: 'm', version: '1', state: 'closed', replaced: true });
      expect(stats.report('m', '1').inference_stats.success.count).toBe(1);
    });
  });

  describe('.detach', () => {
    it('should stop counting', () => {
      const { events, stats } = collector();
      stats.detach();
      events.emit('request', request());
      expect(stats.report('m', '1').inference_stats.success.count).toBe(0);
      expect(() => stats.attach(events)).not.toThrow();
      expect(() => stats.attach(events)).toThrow(/attached already/);
    });
  });
});
