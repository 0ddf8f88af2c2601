// bench/security.mjs: what authentication and rate limiting cost per request, judged against the
// same server without them on one run, and the Markdown written to docs/benchmarks.md between the
// bench-security markers.
//
// Each contender is a `tessera serve` process of its own (request hooks are server-wide), measured
// in rounds like the pipeline and routing suites; a contender's cost is the mean over the rounds of
// its ratio to `plain` (throughput) or its difference (p50, server CPU per request), with a 95 %
// confidence interval. `plain-2`, a second plain server, is the A/A control. The target (issue 11):
// at most 3 % — throughput ≥ 0.97 × plain's at every point, and at concurrency 1 a p50 at most 3 %
// of plain's above it — judged met, missed or inconclusive on the whole interval.

import { comparisonLine, comparisonTable, compareContenders, finite, fixed, plusMinus, pointTables, sectionHead, suiteMarkers } from './contest-report.mjs';
import { costOf, summarizeRows, verdictAtMost } from './pipeline-report.mjs';

export { comparisonLine };

/** The markers of a named section: `security` (the default), or e.g. `security-h200` for a run made elsewhere. */
export const securityMarkers = (section) => suiteMarkers('security', section);

export const REFERENCE = 'plain';
export const TWIN = 'plain-2';

/** The issue's target: at most 3 % of throughput, and of plain's p50 at concurrency 1. */
export const SECURITY_TARGETS = { throughputCost: 0.03, p50CostAtC1: 0.03 };

const range = (i, fmt) => (finite(i.low) ? `${fmt(i.low)} … ${fmt(i.high)}` : 'n/a');

/** The comparisons with plain (the A/A control among them) and the targets of every contender but the control, judged. */
export function evaluateSecurity(results) {
  const comparisons = compareContenders(results, { reference: REFERENCE, twin: TWIN });
  const targets = [];
  for (const c of comparisons.filter((x) => x.id !== 'a-a-control')) {
    const point = results.points.find((p) => p.id === c.point);
    targets.push({
      id: `throughput/${c.point}/${c.num}`,
      point: c.point,
      contender: c.num,
      target: `samples/s ≥ ${1 - SECURITY_TARGETS.throughputCost} × plain`,
      verdict: verdictAtMost(costOf(c.throughputRatio), SECURITY_TARGETS.throughputCost),
      value: c.throughputRatio,
      summary: `${fixed(c.throughputRatio.mean, 3)} (${range(c.throughputRatio, (v) => fixed(v, 3))})`,
    });
    if (point?.connections !== 1) continue;
    const plainP50Us = summarizeRows(results.rows.filter((r) => r.point === c.point && r.contender === REFERENCE)).p50Ms * 1000;
    const limitUs = SECURITY_TARGETS.p50CostAtC1 * plainP50Us;
    targets.push({
      id: `p50/${c.point}/${c.num}`,
      point: c.point,
      contender: c.num,
      target: `p50 ≤ plain + ${SECURITY_TARGETS.p50CostAtC1 * 100} % (${fixed(limitUs, 1)} µs)`,
      verdict: finite(limitUs) ? verdictAtMost(c.p50AddedUs, limitUs) : 'inconclusive',
      value: c.p50AddedUs,
      limitUs,
      summary: `${plusMinus(c.p50AddedUs.mean)} µs (${range(c.p50AddedUs, (v) => plusMinus(v))})`,
    });
  }
  return { comparisons, targets };
}

/** One line per target for the log. */
export function targetLine(t) {
  return `target ${t.verdict.padEnd(12)} ${t.point} ${t.contender.padEnd(18)} ${t.target}: ${t.summary}`;
}

const verdictCell = (v) => (v === 'met' ? 'met' : `**${v}**`);

export function renderSecurityMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const out = sectionHead(results);
  out.push(
    `- One \`tessera serve\` process per server below, each serving the tiny \`affine\` model as \`affine\` with \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`; ORT's default session options${Object.keys(s.sessionOptions ?? {}).length ? ` plus ${JSON.stringify(s.sessionOptions)}` : ''}. ` +
      `${s.rounds} rounds; in each round every contender gets ${s.warmupS} s of warm-up load (not measured), then a ${s.windowS} s measured window, one after the other, the order rotated by one each round.${s.primeS > 0 ? ` Before a point's first round every contender gets ${s.primeS} s of the same load.` : ''}`,
  );
  out.push(
    `- \`auth.apiKeys\`: ${results.keys?.count ?? '?'} keys of 32 random bytes (hex) each, made for the run; the load's key (\`bench\`, \`scopes: [infer]\`) is the last of the list. \`server.rateLimit: ${JSON.stringify(results.rateLimit ?? {}).replace(/"/g, '')}\` (the in-memory store; it never refuses at this \`max\`).`,
  );
  out.push(`- A window during which processes outside the benchmark used more than ${results.noisyOtherCpuPct}% of a core is measured again (${s.retries} retr${s.retries === 1 ? 'y' : 'ies'}), the least disturbed kept; still disturbed windows are marked ⚠.`);
  out.push('');
  out.push('| contender | server | load sends | checked before the run |');
  out.push('| --- | --- | --- | --- |');
  for (const c of s.contenders) {
    const d = results.contenders[c];
    if (!d) continue;
    out.push(`| ${c} | ${d.server}: ${d.describe} | ${d.sends} | ${d.checks.join('; ')} |`);
  }
  out.push('');

  out.push('#### Targets');
  out.push('');
  out.push(
    'Per round: the contender\'s samples/s ÷ plain\'s and its p50 − plain\'s; mean over the rounds with the 95 % confidence interval. **met** when the whole interval is inside the target, **missed** when all of it is outside, **inconclusive** when the target lies inside the interval.',
  );
  out.push('');
  out.push('| point | contender | target | measured (95 % interval) | verdict |');
  out.push('| --- | --- | --- | --- | --- |');
  for (const t of results.verdicts) out.push(`| ${t.point} | ${t.contender} | ${t.target} | ${t.summary} | ${verdictCell(t.verdict)} |`);
  out.push('');

  out.push('#### Every contender against plain');
  out.push('');
  out.push('*same*: the interval contains 1 (or 0), the run cannot tell the two apart; *costlier* / *cheaper*: all of the interval is on that side. Server CPU per request is the server process\'s CPU time over the window ÷ the answers.');
  out.push('');
  out.push(...comparisonTable(results.comparisons));
  out.push('');
  out.push(...pointTables(results, { modelName: 'affine' }));

  out.push('#### Caveats');
  out.push('');
  const rows = results.rows;
  const loadPct = rows.map((r) => r.loadCpuPct).filter(finite);
  out.push(`- One machine, ${m.cores} cores, shared by the ${Object.keys(results.servers ?? {}).length} servers (idle while another is measured) and the load generator (autocannon in its own process, ~${fixed(loadPct.reduce((a, b) => a + b, 0) / Math.max(1, loadPct.length), 0)} % of a core).`);
  out.push('- The tiny model makes inference nearly free: what a request costs here is mostly HTTP and the pipeline, so a hook\'s cost is as large a share of it as it will ever be; on a real model the same microseconds are a smaller share.');
  out.push('- Latency is what the load generator measured per answer (bench/load.mjs, to the µs), the mean of the rounds\' percentiles; samples/s counts 2xx answers in the measured window.');
  const disturbed = rows.filter((r) => r.disturbed).length;
  if (disturbed > 0) out.push(`- ${disturbed} of ${rows.length} window(s) ran while other processes used > ${results.noisyOtherCpuPct}% of a core (⚠).`);
  for (const sk of results.skipped ?? []) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}
