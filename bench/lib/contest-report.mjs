// Shared by the reports of the suites that compare contenders with one reference round by round
// (bench/lib/routing-report.mjs, bench/lib/security-report.mjs): the comparisons with their
// readings, the comparison table, one table per point, and the formatting they use.
//
// A comparison is pipeline-report.mjs's `pairRounds` (the mean over the rounds of the ratio or the
// difference to the reference, with a 95 % confidence interval) plus how each interval reads:
// *same* when it contains "no difference", else *costlier* or *cheaper*.

import { pointTitle } from './contest.mjs';
import { pairRounds, runLine, summarizeRows } from './pipeline-report.mjs';

/**
 * The markers of a suite's section of docs/benchmarks.md: `<suite>` (the default), or e.g.
 * `<suite>-h200` for a run made elsewhere (`variable` names the setting in the error).
 */
export function suiteMarkers(suite, section = suite, variable = `BENCH_${suite.toUpperCase().replace(/-/g, '_')}_SECTION`) {
  if (!new RegExp(`^${suite}[\\w-]*$`).test(section)) throw new Error(`${variable}=${section}: expected ${suite} or ${suite}-<name>`);
  return { start: `<!-- bench-${section}:start -->`, end: `<!-- bench-${section}:end -->` };
}

/** The first lines of a section: the run line (pipeline-report.mjs), then the heading of the settings list. */
export function sectionHead(results) {
  return [runLine(results), '', 'Settings:', ''];
}

export const finite = (v) => typeof v === 'number' && Number.isFinite(v);
export const fixed = (v, digits = 1) => (finite(v) ? v.toFixed(digits) : 'n/a');
export const plusMinus = (v, digits = 1) => (finite(v) ? (v < 0 ? `−${(-v).toFixed(digits)}` : `+${v.toFixed(digits)}`) : 'n/a');
export const whole = (v) => (finite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
/** `mean (low … high)` of an interval, each bound written by `fmt`. */
export const withInterval = (i, fmt) => `${fmt(i.mean)} (${finite(i.low) ? `${fmt(i.low)} … ${fmt(i.high)}` : 'n/a'})`;

/**
 * Whether an interval tells the contender from its reference: `same` when it contains `none` (1
 * for a ratio, 0 for a difference), else `costlier` or `cheaper` (in the direction of `worse`).
 */
export function reading(interval, none, worse) {
  if (!finite(interval.low) || !finite(interval.high)) return 'n/a';
  if (interval.low <= none && none <= interval.high) return 'same';
  return (worse > 0 ? interval.low > none : interval.high < none) ? 'costlier' : 'cheaper';
}

/**
 * Every contender of `results.settings.contenders` but `reference` compared with it at every
 * point, then the `extra` pairs `[num, den]` whose contenders were both measured. `twin` (the A/A
 * control) gets the id `a-a-control`.
 */
export function compareContenders(results, { reference, twin, extra = [] }) {
  const comparisons = [];
  const contenders = results.settings.contenders;
  for (const p of results.points) {
    const pairs = [...contenders.filter((c) => c !== reference).map((c) => [c, reference]), ...extra.filter(([a, b]) => contenders.includes(a) && contenders.includes(b))];
    for (const [c, den] of pairs) {
      const pair = pairRounds(results, p.id, c, den);
      if (!pair) continue;
      comparisons.push({
        id: c === twin ? 'a-a-control' : `${c}-vs-${den}`,
        ...pair,
        reads: {
          throughput: reading(pair.throughputRatio, 1, -1),
          p50: reading(pair.p50AddedUs, 0, 1),
          cpu: reading(pair.cpuAddedUsPerRequest, 0, 1),
        },
      });
    }
  }
  return comparisons;
}

/** One line per comparison for the log. */
export function comparisonLine(c) {
  return `${c.point} ${c.num.padEnd(10)} ÷ ${c.den.padEnd(8)}: samples/s ${withInterval(c.throughputRatio, (v) => fixed(v, 3))}, p50 Δ ${withInterval(c.p50AddedUs, plusMinus)} µs, CPU Δ ${withInterval(c.cpuAddedUsPerRequest, plusMinus)} µs/request`;
}

/** The table of every comparison (Markdown lines): ratio, p50 and CPU differences with their intervals and readings. */
export function comparisonTable(comparisons) {
  const out = [];
  out.push('| point | comparison | samples/s ratio (95 % interval) | p50 Δ µs (95 % interval) | p99 Δ µs | server CPU Δ µs/request (95 % interval) | reads |');
  out.push('| --- | --- | --- | --- | ---: | --- | --- |');
  for (const c of comparisons) {
    const r = c.reads;
    out.push(
      `| ${c.point} | ${c.num} ÷ ${c.den}${c.id === 'a-a-control' ? ' (A/A control)' : ''} | ${withInterval(c.throughputRatio, (v) => fixed(v, 3))} | ${withInterval(c.p50AddedUs, plusMinus)} | ${plusMinus(c.p99AddedUs.mean, 0)} | ${withInterval(c.cpuAddedUsPerRequest, plusMinus)} | samples/s ${r.throughput}, p50 ${r.p50}, CPU ${r.cpu} |`,
    );
  }
  return out;
}

/** Per point: a heading (`modelName` as the point should show it) and one row per contender, means over its rounds. */
export function pointTables(results, { modelName }) {
  const out = [];
  for (const p of results.points) {
    out.push(`#### ${p.id}: ${pointTitle({ ...p, modelName }, results)}`);
    out.push('');
    out.push('| contender | samples/s | per round | p50 ms | p99 ms | server CPU µs/request | mean batch | errors |');
    out.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of results.settings.contenders) {
      const rows = results.rows.filter((r) => r.point === p.id && r.contender === c).sort((a, b) => a.round - b.round);
      if (rows.length === 0) continue;
      const x = summarizeRows(rows);
      out.push(`| ${c} | ${whole(x.samplesPerSec)} | ${x.perRound.map(whole).join(' / ')}${x.disturbed ? ' ⚠' : ''} | ${fixed(x.p50Ms, 3)} | ${fixed(x.p99Ms, 3)} | ${fixed(x.serverCpuUsPerRequest, 0)} | ${fixed(x.meanBatchSize, 2)} | ${x.errors} |`);
    }
    out.push('');
  }
  return out;
}

/** The log line of one measured window. */
export function windowLine(row) {
  return (
    `  ${row.point} round ${String(row.round).padStart(2)} ${row.contender.padEnd(10)}: ${row.samplesPerSec.toFixed(1)} samples/s, p50 ${row.latencyMs.p50?.toFixed(3)} p99 ${row.latencyMs.p99?.toFixed(3)} ms, ` +
    `server CPU ${row.serverCpuUsPerRequest?.toFixed(0)} µs/req, other ${row.otherProcsPct.toFixed(0)}%${row.errors + row.timeouts + row.non2xx > 0 ? `, errors ${row.errors} timeouts ${row.timeouts} non-2xx ${row.non2xx}` : ''}${row.disturbed ? '  ⚠ disturbed' : ''}`
  );
}
