import type { Measurement } from './measurement.js';

/** A number as the table shows it: three significant figures, whole numbers from 100. */
export function formatNumber(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const HEADER = ['#', 'stage', 'instances', 'threads', 'max batch', 'delay', 'conc', 'samples/s', 'p50 ms', 'p99 ms', 'errors', 'mean batch', ''];
/** Columns aligned left (the rest are numbers, aligned right). */
const LEFT = new Set([1, 5, 12]);

/** The note of one row: the chosen one, over the budget, or its errors by status. */
export function rowNote(m: Measurement, chosen: Measurement | undefined, budgetMs: number | undefined): string {
  if (m === chosen) return '← best';
  if (m.errors > 0) {
    const codes = Object.entries(m.errorCodes ?? {}).map(([code, n]) => `${code}×${n}`);
    return `errors${codes.length > 0 ? ` (${codes.join(', ')})` : ''}`;
  }
  if (budgetMs !== undefined && m.p99Ms !== undefined && m.p99Ms > budgetMs) return 'over budget';
  return '';
}

/** The measurements as a plain-text table, columns aligned, one row per measurement in the order measured. */
export function formatTable(rows: readonly Measurement[], chosen: Measurement | undefined, budgetMs?: number): string {
  const cells = rows.map((m, i) => [
    String(i + 1),
    m.stage,
    String(m.point.instances),
    m.point.threads === undefined ? '-' : String(m.point.threads),
    m.point.maxBatchSize === undefined ? '-' : String(m.point.maxBatchSize),
    m.point.maxBatchSize === 0 ? '-' : String(m.point.maxQueueDelayMs),
    String(m.concurrency),
    formatNumber(m.samplesPerSec),
    formatNumber(m.p50Ms),
    formatNumber(m.p99Ms),
    String(m.errors),
    formatNumber(m.meanBatch),
    rowNote(m, chosen, budgetMs),
  ]);
  const all = [HEADER, ...cells];
  const widths = HEADER.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  return all
    .map((r) =>
      r
        .map((cell, c) => (LEFT.has(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
