import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import { DEFAULT_TUNE_TIME_MS, parseTuneArgs } from './options.js';

describe(parseTuneArgs, () => {
  it('should default to two minutes, no budget, seed 1', () => {
    expect(parseTuneArgs({})).toEqual({ timeMs: DEFAULT_TUNE_TIME_MS, dryRun: false, shapes: {}, seed: 1 });
  });

  it('should read durations, lists and shapes', () => {
    expect(parseTuneArgs({ model: 'm', latencyBudget: '50ms', time: '5m', concurrency: '64, 1,32,1', shape: ['x=1x3x48x192'], maxBatch: '16', seed: '9', dryRun: true, out: 'o.yaml' })).toEqual({
      model: 'm',
      budgetMs: 50,
      timeMs: 300_000,
      concurrency: [1, 32, 64],
      shapes: { x: [1, 3, 48, 192] },
      maxBatch: 16,
      seed: 9,
      dryRun: true,
      out: 'o.yaml',
    });
    expect(parseTuneArgs({ latencyBudget: '0.2s' }).budgetMs).toBe(200);
    expect(parseTuneArgs({ request: 'r.bin', contentType: 'application/octet-stream', header: ['Inference-Header-Content-Length: 0'] }).request).toEqual({
      file: 'r.bin',
      contentType: 'application/octet-stream',
      headers: { 'inference-header-content-length': '0' },
    });
  });

  it.each([
    [{ latencyBudget: 'fast' }, /--latency-budget fast/],
    [{ latencyBudget: '0ms' }, /more than 0/],
    [{ time: '2s' }, /at least 5s/],
    [{ concurrency: '1,,4' }, /comma-separated list/],
    [{ concurrency: '0' }, /comma-separated list/],
    [{ shape: ['x=1x0'] }, /at least 1/],
    [{ shape: ['1x3'] }, /name=dims/],
    [{ request: 'r.bin', shape: ['x=1'] }, /give one/],
    [{ header: ['a: b'] }, /go with --request/],
    [{ request: 'r', header: ['nocolon'] }, /'Name: value'/],
    [{ maxBatch: '0' }, /--max-batch 0/],
    [{ model: '' }, /--model/],
  ])('should refuse %j', (args, message) => {
    expect(thrownCode(() => parseTuneArgs(args))).toBe('TESSERA_E_CLI_USAGE');
    expect(() => parseTuneArgs(args)).toThrow(message);
  });
});
