import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../config/resolve.js';
import type { Measurement } from './measurement.js';
import { overlayText } from './overlay-file.js';
import { formatTable } from './table.js';

const CHOSEN: Measurement = { stage: 'delay', point: { instances: 2, threads: 3, maxBatchSize: 16, maxQueueDelayMs: 2 }, concurrency: 32, durationMs: 2500, ok: 1000, errors: 0, samplesPerSec: 412.3, p50Ms: 30.5, p99Ms: 44.25, meanBatch: 11.2 };

function text(batcher: string, chosen = CHOSEN): string {
  return overlayText({
    model: 'cls',
    config: resolveConfig({ models: { cls: { path: '/m.onnx', batching: { batcher } } } }, { configDir: '/', env: {} }).models['cls']!,
    chosen,
    budgetMs: 50,
    machine: '16 cores (x), Node v20, linux x64',
    date: new Date('2026-12-03T10:00:00Z'),
    command: 'tessera tune -c a.yaml',
    configFiles: ['a.yaml'],
    out: 'tessera.tune.yaml',
  });
}

describe(overlayText, () => {
  it('should hold only the chosen settings, under a header saying the machine, date, command and figures', () => {
    const out = text('dynamic');
    expect(parse(out)).toEqual({ models: { cls: { instances: 2, sessionOptions: { intraOpNumThreads: 3 }, batching: { maxBatchSize: 16, maxQueueDelayMs: 2 } } } });
    expect(out).toMatch(/^# Written by tessera tune: the highest throughput with p99 ≤ 50 ms for model 'cls'\.$/m);
    expect(out).toMatch(/^# Machine: 16 cores/m);
    expect(out).toMatch(/^# Date: 2026-12-03T10:00:00.000Z$/m);
    expect(out).toMatch(/^# Command: tessera tune -c a.yaml$/m);
    expect(out).toMatch(/^# Measured: 412 samples\/s, p50 30.5 ms, p99 44.3 ms, mean batch 11.2, 0 errors, at 32 concurrent clients/m);
    expect(out).toMatch(/^# Use: tessera serve -c a.yaml -c tessera.tune.yaml$/m);
  });

  it('should choose the dynamic batcher when the base config has another, and leave batching alone for a model that does not batch', () => {
    expect(parse(text('passthrough')).models.cls.batching).toEqual({ batcher: 'dynamic', maxBatchSize: 16, maxQueueDelayMs: 2 });
    const flat = parse(text('passthrough', { ...CHOSEN, point: { instances: 4, maxBatchSize: 0, maxQueueDelayMs: 'auto' } }));
    expect(flat).toEqual({ models: { cls: { instances: 4 } } });
  });
});

describe(formatTable, () => {
  it('should align the columns and mark the best, the rows over budget and those with errors', () => {
    const rows: Measurement[] = [
      { ...CHOSEN, stage: 'threads', samplesPerSec: 300, p99Ms: 80 },
      CHOSEN,
      { ...CHOSEN, stage: 'batch', errors: 4, errorCodes: { '503': 4 } },
    ];
    const lines = formatTable(rows, CHOSEN, 50).split('\n');
    expect(lines[0]).toMatch(/^#\s+stage\s+instances\s+threads\s+max batch\s+delay\s+conc\s+samples\/s\s+p50 ms\s+p99 ms\s+errors\s+mean batch$/);
    expect(lines[1]).toMatch(/over budget$/);
    expect(lines[2]).toMatch(/← best$/);
    expect(lines[3]).toMatch(/errors \(503×4\)$/);
    // numbers end in the same column as their header
    const end = lines[0]!.indexOf('samples/s') + 'samples/s'.length;
    for (const line of lines.slice(1)) expect(line[end - 1]).toMatch(/\d/);
  });
});
