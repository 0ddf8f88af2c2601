/**
 * The jsonl-exporter example's exporter, in process: fed by the public `ServingEvents` hub as the
 * server feeds it, on a `FakeClock`, writing into a temporary folder — what it writes, when, that
 * `forceFlush` and `shutdown` keep their promises, and that a failing file never reaches the caller
 * (example.int.spec.ts then runs it in the CLI).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { ExporterFactory, RequestEvent } from '@tessera/core';
import { ServingEvents, validateAgainstSchema } from '@tessera/core';
import { FakeClock, InMemoryMetrics, registerTestPlugins, silentLogger } from '@tessera/core/testing';
import plugin, { DROPPED_METRIC, EXPORTER_NAME, JsonlExporter, OPTIONS_SCHEMA } from './plugin.js';

const REQUEST: RequestEvent = {
  id: 'req-1',
  method: 'POST',
  path: '/v2/models/cls/infer',
  route: '/v2/models/:model/infer',
  protocol: 'v2',
  endpoint: 'infer',
  model: 'cls',
  version: '1',
  status: 200,
  durationMs: 3.5,
};
const BATCH = { model: 'cls', version: '1', size: 3, requests: 2, queueMs: [1.5, 0.25], executeMs: 4, ok: true, failed: 0 };

async function setup(options: { events?: ('request' | 'batch' | 'modelState' | 'shadow')[]; maxBufferLines?: number; file?: string } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-jsonl-'));
  const file = options.file ?? path.join(dir, 'out/events.jsonl');
  const clock = new FakeClock(Date.UTC(2026, 11, 24, 12, 0, 0));
  const metrics = new InMemoryMetrics();
  const error = vi.fn();
  const logger = Object.assign(silentLogger(), { error });
  const exporter = new JsonlExporter({ file, flushIntervalMs: 1000, ...options }, { logger, metrics, clock });
  const events = new ServingEvents();
  const listenerErrors: unknown[] = [];
  events.onListenerError = (err) => listenerErrors.push(err);
  exporter.attach(events);
  const lines = async (): Promise<any[]> =>
    (await readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  return { dir, file, clock, metrics, error, exporter, events, listenerErrors, lines };
}

describe(EXPORTER_NAME, () => {
  describe('.attach', () => {
    it('should write request, batch and modelState events as JSON lines with a time and the event name', async () => {
      const { events, exporter, lines } = await setup();
      events.emit('modelState', { model: 'cls', version: '1', state: 'ready' });
      events.emit('batch', BATCH);
      events.emit('request', REQUEST);
      events.emit('shadow', { model: 'cls', version: '2', kind: 'tensor', status: 200, durationMs: 2 });
      await exporter.forceFlush();
      expect(await lines()).toEqual([
        { time: '2026-12-24T12:00:00.000Z', event: 'modelState', model: 'cls', version: '1', state: 'ready' },
        { time: '2026-12-24T12:00:00.000Z', event: 'batch', ...BATCH },
        { time: '2026-12-24T12:00:00.000Z', event: 'request', ...REQUEST },
      ]);
    });

    it('should write only the events it is told to', async () => {
      const { events, exporter, lines } = await setup({ events: ['shadow'] });
      events.emit('request', REQUEST);
      events.emit('shadow', { model: 'cls', version: '2', kind: 'tensor', status: 500, code: 'TESSERA_E_INFERENCE_FAILED', durationMs: 2 });
      await exporter.forceFlush();
      expect((await lines()).map((l) => [l.event, l.status])).toEqual([['shadow', 500]]);
    });
  });

  describe('buffering', () => {
    it('should keep lines in memory until the interval, then append them in order', async () => {
      const { events, clock, lines } = await setup();
      for (let i = 0; i < 5; i++) events.emit('request', { ...REQUEST, id: `r${i}` });
      expect(await lines()).toEqual([]);
      await clock.advance(1000);
      await vi.waitFor(async () => expect(await lines()).toHaveLength(5));
      events.emit('request', { ...REQUEST, id: 'r5' });
      await clock.advance(1000);
      await vi.waitFor(async () => expect((await lines()).map((l) => l.id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']));
    });

    it('should write without waiting once maxBufferLines are buffered', async () => {
      const { events, lines } = await setup({ maxBufferLines: 3 });
      for (let i = 0; i < 3; i++) events.emit('request', { ...REQUEST, id: `r${i}` });
      await vi.waitFor(async () => expect(await lines()).toHaveLength(3));
    });
  });

  describe('.forceFlush', () => {
    it('should resolve once the buffer is on disk, and do nothing when it is empty', async () => {
      const { events, exporter, lines } = await setup();
      await exporter.forceFlush();
      expect(await lines()).toEqual([]);
      events.emit('batch', BATCH);
      await exporter.forceFlush();
      expect(await lines()).toHaveLength(1);
    });
  });

  describe('.shutdown', () => {
    it('should flush once, stop listening and ignore later events; a second call returns the same promise', async () => {
      const { events, exporter, clock, lines } = await setup();
      events.emit('request', REQUEST);
      const first = exporter.shutdown();
      const second = exporter.shutdown();
      expect(second).toBe(first);
      await first;
      expect(await lines()).toHaveLength(1);
      events.emit('request', { ...REQUEST, id: 'late' });
      await exporter.forceFlush();
      await clock.advance(5000);
      expect(await lines()).toHaveLength(1);
      // the interval timer is gone
      expect(clock.pending).toBe(0);
    });
  });

  describe('failures', () => {
    it('should never throw into the serving path: a failing file is logged once and its lines counted as dropped', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-jsonl-'));
      await writeFile(path.join(dir, 'out'), 'a file where the folder should be');
      const { events, exporter, error, metrics, listenerErrors } = await setup({ file: path.join(dir, 'out/events.jsonl') });
      for (let i = 0; i < 3; i++) events.emit('request', REQUEST);
      await expect(exporter.forceFlush()).resolves.toBeUndefined();
      events.emit('batch', BATCH);
      await expect(exporter.shutdown()).resolves.toBeUndefined();
      expect(error).toHaveBeenCalledTimes(1);
      expect(error.mock.calls[0]![1]).toMatch(/cannot write .*events\.jsonl/);
      expect(metrics.value(DROPPED_METRIC)).toBe(4);
      expect(listenerErrors).toEqual([]);
    });

    it('should drop an event it cannot serialise without failing the emit', async () => {
      const { events, exporter, error, metrics, listenerErrors, lines } = await setup();
      events.emit('request', { ...REQUEST, durationMs: 10n as unknown as number });
      events.emit('request', REQUEST);
      await exporter.forceFlush();
      expect(await lines()).toHaveLength(1);
      expect(metrics.value(DROPPED_METRIC)).toBe(1);
      expect(error).toHaveBeenCalledTimes(1);
      expect(listenerErrors).toEqual([]);
    });
  });

  describe('the factory', () => {
    it('should be registered as jsonl, resolve the file against the config folder and take its options', async () => {
      const regs = await registerTestPlugins([plugin]);
      expect(regs.names('exporter')).toEqual([EXPORTER_NAME]);
      const factory = regs.get<ExporterFactory>('exporter', EXPORTER_NAME);
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-jsonl-'));
      const exporter = (await factory.create({ options: { file: 'logs/e.jsonl', events: ['request'] }, logger: silentLogger(), metrics: new InMemoryMetrics(), clock: new FakeClock(), configDir: dir })) as JsonlExporter;
      expect(exporter.file).toBe(path.join(dir, 'logs/e.jsonl'));
      const events = new ServingEvents();
      exporter.attach(events);
      events.emit('batch', BATCH);
      events.emit('request', REQUEST);
      await exporter.shutdown();
      expect((await readFile(path.join(dir, 'logs/e.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l).event)).toEqual(['request']);
    });

    it('should validate its options as the server does', () => {
      expect(validateAgainstSchema(OPTIONS_SCHEMA, { file: 'e.jsonl' }, 'exporters[1]')).toEqual({ file: 'e.jsonl', events: ['request', 'batch', 'modelState'], flushIntervalMs: 1000, maxBufferLines: 1000 });
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { file: 'e.jsonl', events: ['requests'] }, 'exporters[1]')).toThrow(/exporters\[1\]\.events\[0\]/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, {}, 'exporters[1]')).toThrow(/file/);
    });
  });
});
