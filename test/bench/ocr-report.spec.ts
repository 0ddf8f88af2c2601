/**
 * The OCR suite's bookkeeping (bench/lib/raw-sweep.mjs, report.mjs, ocr-compare.mjs): which raw
 * points the sweep runs, which references the targets are judged against, and the sections of
 * docs/benchmarks.md the comparison reads its results files from. The figures themselves belong
 * to the benchmark, not here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const load = async (file: string): Promise<any> => import(pathToFileURL(path.join(ROOT, 'bench', 'lib', file)).href);
const sweep = await load('raw-sweep.mjs');
const report = await load('report.mjs');
const compare = await load('ocr-compare.mjs');

/** A results file before the raw sweep existed (one session, ORT's default threads). */
const OLD_FILE = 'bench/results/2026-11-27-amd-epyc-2c.json';
const old = JSON.parse(readFileSync(path.join(ROOT, OLD_FILE), 'utf8'));

const row = (batch: number, samplesPerSec: number, p50 = batch) => ({ batch, runs: 10, samplesPerSec, latencyMs: { mean: p50, p50, p90: p50, p99: p50, max: p50 }, cpuPct: 100 });

/** A swept results file of one model: raw default 2000/s, raw best 4000/s (2 × 4 at batch 32). */
function sweptResults(): any {
  const points = [
    { sessions: 1, threads: null, rows: [row(1, 900, 1.0), row(16, 1900), row(32, 2000)] },
    { sessions: 1, threads: 8, rows: [row(1, 1100, 0.8), row(16, 2100), row(32, 2200)] },
    { sessions: 2, threads: 4, rows: [row(16, 3500), row(32, 4000)] },
  ];
  const served = (config: string, connections: number, samplesPerSec: number, p50: number) => ({
    id: `tessera-binary/cls/${config}`,
    kind: 'tessera',
    protocol: 'binary',
    model: 'cls',
    config,
    connections,
    samplesPerSec,
    reqPerSec: samplesPerSec,
    latencyMs: { p50, p90: p50, p99: p50 },
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    meanBatchSize: 1,
    ratios: {},
  });
  return {
    date: '2026-12-03T10:00:00.000Z',
    command: 'BENCH_PRESET=device node bench/run.mjs',
    file: 'bench/results/2026-12-03-h200-16c.json',
    machine: { cpu: 'x', cores: 16, memGiB: 1, node: 'v20', platform: 'linux', loadavgAtStart: [0, 0, 0] },
    versions: {},
    settings: { connections: [1, 64], sessionOptions: {}, durationS: 6, warmupS: 2, samplesPerRequest: 1, logLevel: 'info', rawSweep: true, rawTop: 2 },
    features: { dynamic: true, delays: ['auto'], binary: true, batchSizeMetric: true, sweepProtocol: 'binary' },
    models: { cls: { sampleShape: [3, 48, 192] } },
    raw: { cls: { ...sweep.summarizeSweep(points), sweep: points } },
    serverChoice: { cls: { auto: { instanceGroupCount: 2, instances: 'auto', parameters: {}, sessions: [{ intraOpNumThreads: 6 }, { intraOpNumThreads: 6 }] } } },
    scenarios: [served('auto', 1, 800, 1.25), served('auto', 64, 3000, 20), served('tuned', 64, 3900, 15)],
    skipped: [],
    targets: [],
    noisyOtherCpuPct: 40,
  };
}

describe('raw sweep points', () => {
  it('should run one session with the default threads first, then S × T ≤ cores with T = cores ÷ S and half of it', () => {
    const label = (g: any[]) => g.map((p: any) => `${p.sessions}x${p.threads ?? 'default'}`);
    expect(label(sweep.sweepGrid(16))).toEqual(['1xdefault', '1x16', '1x8', '2x8', '2x4', '4x4', '4x2', '8x2', '8x1', '16x1']);
    expect(label(sweep.sweepGrid(2))).toEqual(['1xdefault', '1x2', '1x1', '2x1']);
    expect(label(sweep.sweepGrid(6))).toEqual(['1xdefault', '1x6', '1x3', '2x3', '2x1', '4x1', '6x1']);
  });

  it('should take the sessions and threads given, dropping points over the cores and the default threads for several sessions', () => {
    const label = (g: any[]) => g.map((p: any) => `${p.sessions}x${p.threads ?? 'default'}`);
    expect(label(sweep.sweepGrid(4, { sessions: [1, 2, 8], threads: [0, 1, 3] }))).toEqual(['1xdefault', '1x1', '1x3', '2x1']);
    expect(() => sweep.sweepGrid(4, { sessions: [0] })).toThrow(/sessions 0/);
    expect(() => sweep.sweepGrid(4, { threads: [1.5] })).toThrow(/threads 1.5/);
  });

  it("should carry the default point's best batch sizes to the others, and batch 1 for one session", () => {
    const rows = [row(1, 900), row(8, 1500), row(16, 1700), row(32, 1600)];
    expect(sweep.sweepBatches(rows, { sessions: 4, top: 2 })).toEqual([16, 32]);
    expect(sweep.sweepBatches(rows, { sessions: 1, top: 2 })).toEqual([1, 16, 32]);
  });

  it('should find raw best over every point, raw default, and both batch-1 references', () => {
    const s = sweep.summarizeSweep(sweptResults().raw.cls.sweep);
    expect(s.best).toEqual({ sessions: 2, threads: 4, batch: 32, samplesPerSec: 4000 });
    expect(s.defaultBest).toEqual({ batch: 32, samplesPerSec: 2000 });
    expect(s.batch1.default.p50Ms).toBe(1.0);
    expect(s.batch1.bestThreads).toEqual({ threads: 8, p50Ms: 0.8 });
    expect(s.grid.map((g: any) => g.batch1P50Ms)).toEqual([1.0, 0.8, null]);
  });
});

describe('OCR targets', () => {
  it('should judge throughput against the sweep\'s raw best and latency against one default session at batch 1', () => {
    const results = sweptResults();
    const targets = report.evaluateTargets(results);
    const vsRaw = targets.find((t: any) => t.id === 'binary-vs-raw/cls');
    // the tuned config (0.975×) is not the judged one
    expect(vsRaw.scenario).toBe('tessera-binary/cls/auto');
    expect(vsRaw.measured).toBeCloseTo(0.75);
    expect(vsRaw.pass).toBe(false);
    expect(vsRaw.reference).toMatch(/swept/);
    const latency = targets.find((t: any) => t.id === 'binary-latency/cls');
    expect(latency.measured).toBeCloseTo(0.25);
    expect(latency.pass).toBe(true);
    expect(latency.note).toMatch(/0\.80 ms with 8 thread/);
  });

  it('should say when BENCH_THREADS made the judged config other than the default one', () => {
    const results = sweptResults();
    results.settings.sessionOptions = { intraOpNumThreads: 4 };
    const vsRaw = report.evaluateTargets(results).find((t: any) => t.id === 'binary-vs-raw/cls');
    expect(vsRaw.note).toMatch(/not the default config/);
  });

  it('should read a results file from before the sweep: raw best is one session\'s best', () => {
    const refs = report.rawReferences(old.raw.cls);
    expect(refs.swept).toBe(false);
    expect(refs.best.samplesPerSec).toBe(old.raw.cls.best.samplesPerSec);
    expect(refs.default.samplesPerSec).toBe(old.raw.cls.best.samplesPerSec);
    expect(refs.batch1).toBe(old.raw.cls.batches.find((b: any) => b.batch === 1).latencyMs.p50);
    expect(report.renderMarkdown(old)).toContain('"raw default"');
  });
});

describe('OCR sections and the comparison', () => {
  it('should name the sections: this machine\'s bench markers, or bench-ocr-<name>', () => {
    expect(report.ocrMarkers()).toEqual({ start: '<!-- bench:start -->', end: '<!-- bench:end -->' });
    expect(report.ocrMarkers('ocr-h200')).toEqual({ start: '<!-- bench-ocr-h200:start -->', end: '<!-- bench-ocr-h200:end -->' });
    expect(() => report.ocrMarkers('ocr-compare')).toThrow(/BENCH_OCR_SECTION/);
    expect(() => report.ocrMarkers('h200')).toThrow(/BENCH_OCR_SECTION/);
  });

  it('should find the results file of each OCR section, and none in the comparison or other suites (a file that is not there is left out)', () => {
    const docs = [
      compare.COMPARE_MARKERS.start,
      'from [`bench/results/a.json`](../bench/results/a.json)',
      compare.COMPARE_MARKERS.end,
      '<!-- bench-ocr-h200:start -->',
      'results file [`bench/results/2099-01-01-absent-16c.json`](../bench/results/2099-01-01-absent-16c.json)',
      '<!-- bench-ocr-h200:end -->',
      '<!-- bench-reload-h200:start -->',
      '[`bench/results/2026-12-03-h200-16c-reload.json`]',
      '<!-- bench-reload-h200:end -->',
      '<!-- bench:start -->',
      `results file [\`${OLD_FILE}\`](../${OLD_FILE})`,
      '<!-- bench:end -->',
    ].join('\n');
    expect(compare.ocrSectionFiles(docs)).toEqual([
      { section: 'ocr-h200', file: 'bench/results/2099-01-01-absent-16c.json' },
      { section: 'ocr', file: OLD_FILE },
    ]);
    expect(compare.loadSectionResults(docs, ROOT).map((e: any) => e.section)).toEqual(['ocr']);
  });

  it('should put the machines side by side, fewest cores first, with the ratios to raw best and raw default', () => {
    const block = compare.renderComparison([
      { section: 'ocr-h200', results: sweptResults() },
      { section: 'ocr', results: old },
    ]);
    const lines = block.split('\n').filter((l: string) => l.startsWith('| 2 ') || l.startsWith('| 16 '));
    expect(lines[0]).toMatch(/^\| 2 \|.*\| cls \|/);
    const device = lines.find((l: string) => l.startsWith('| 16 '));
    expect(device).toContain('4000/s (2 × 4, batch 32)');
    expect(device).toContain('| 0.75× | 1.50× | 0.97× | +0.25 ms | 2 × 6 threads |');
    expect(block).toContain('`BENCH_PRESET=device node bench/run.mjs`');
  });
});
