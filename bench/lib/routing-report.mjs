// bench/routing.mjs: each routing strategy compared with `latest` on one run, and the Markdown
// written to docs/benchmarks.md between the bench-routing markers.
//
// The contenders are models of one server, each with its own `routing:`, measured in rounds like the
// pipeline suite's (one window per contender back to back, the order rotated each round); a
// strategy's cost is the mean over the rounds of its ratio to `latest` (throughput) or its
// difference (latency, server CPU per request), with a 95 % confidence interval (Student's t, from
// bench/lib/pipeline-report.mjs). `latest-2`, a second model routed exactly like `latest`, is the
// A/A control: its interval should contain 1 (and 0 µs). There are no targets: the table says what
// each strategy costs and whether the runs can tell it from nothing.

import { pointTitle } from './contest.mjs';
import { pairRounds, runLine, summarizeRows } from './pipeline-report.mjs';

/** The markers of a named section: `routing` (the default), or e.g. `routing-h200` for a run made elsewhere. */
export function routingMarkers(section = 'routing') {
  if (!/^routing[\w-]*$/.test(section)) throw new Error(`BENCH_ROUTING_SECTION=${section}: expected routing or routing-<name>`);
  return { start: `<!-- bench-${section}:start -->`, end: `<!-- bench-${section}:end -->` };
}

/** The reference every strategy is compared with, and its A/A twin. */
export const REFERENCE = 'latest';
export const TWIN = 'latest-2';

const finite = (v) => typeof v === 'number' && Number.isFinite(v);
const fixed = (v, digits = 1) => (finite(v) ? v.toFixed(digits) : 'n/a');
const plusMinus = (v, digits = 1) => (finite(v) ? (v < 0 ? `−${(-v).toFixed(digits)}` : `+${v.toFixed(digits)}`) : 'n/a');
const whole = (v) => (finite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
/** `mean (low … high)` of an interval, each bound written by `fmt`. */
const withInterval = (i, fmt) => `${fmt(i.mean)} (${finite(i.low) ? `${fmt(i.low)} … ${fmt(i.high)}` : 'n/a'})`;

/**
 * Whether an interval tells the strategy from `latest`: `same` when it contains `none` (1 for a
 * ratio, 0 for a difference), else `costlier` or `cheaper` (in the direction of `worse`).
 */
function reading(interval, none, worse) {
  if (!finite(interval.low) || !finite(interval.high)) return 'n/a';
  if (interval.low <= none && none <= interval.high) return 'same';
  return (worse > 0 ? interval.low > none : interval.high < none) ? 'costlier' : 'cheaper';
}

/**
 * Other comparisons than with latest: the canary against the A/B test that splits the traffic the
 * same way without judging anything (what is left is the canary's own work per request).
 */
const EXTRA = [['canary', 'ab-split']];

/** Every contender ÷ (or −) latest at every point, the A/A control first, then EXTRA. */
export function evaluateRouting(results) {
  const comparisons = [];
  const contenders = results.settings.contenders;
  for (const p of results.points) {
    const pairs = [...contenders.filter((c) => c !== REFERENCE).map((c) => [c, REFERENCE]), ...EXTRA.filter(([a, b]) => contenders.includes(a) && contenders.includes(b))];
    for (const [c, den] of pairs) {
      const pair = pairRounds(results, p.id, c, den);
      if (!pair) continue;
      comparisons.push({
        id: c === TWIN ? 'a-a-control' : `${c}-vs-${den}`,
        ...pair,
        reads: {
          throughput: reading(pair.throughputRatio, 1, -1),
          p50: reading(pair.p50AddedUs, 0, 1),
          cpu: reading(pair.cpuAddedUsPerRequest, 0, 1),
        },
      });
    }
  }
  return { comparisons };
}

/** One line per comparison for the log. */
export function comparisonLine(c) {
  return `${c.point} ${c.num.padEnd(10)} ÷ ${c.den.padEnd(8)}: samples/s ${withInterval(c.throughputRatio, (v) => fixed(v, 3))}, p50 Δ ${withInterval(c.p50AddedUs, plusMinus)} µs, CPU Δ ${withInterval(c.cpuAddedUsPerRequest, plusMinus)} µs/request`;
}

export function renderRoutingMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const out = [];
  out.push(runLine(results));
  out.push('');
  out.push('Settings:');
  out.push('');
  out.push(
    `- One server; each contender is a model of its own (the tiny \`affine\` model, the same file as versions 1 and 2) with its own \`routing:\`. ${s.rounds} rounds; in each round every contender gets ${s.warmupS} s of warm-up load (not measured), then a ${s.windowS} s measured window, one after the other, the order rotated by one each round.${s.primeS > 0 ? ` Before a point's first round every contender gets ${s.primeS} s of the same load.` : ''}`,
  );
  out.push(`- \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`; ORT's default session options${Object.keys(s.sessionOptions ?? {}).length ? ` plus ${JSON.stringify(s.sessionOptions)}` : ''}.`);
  out.push('');
  out.push('| contender | `routing:` | load sends | requests answered | shadow copies sent |');
  out.push('| --- | --- | --- | ---: | ---: |');
  for (const c of s.contenders) {
    const d = results.contenders[c];
    if (!d) continue;
    const after = d.routingAfter ?? {};
    out.push(
      `| ${c} | \`${JSON.stringify(d.routing).replace(/"/g, '')}\` | ${Object.keys(d.headers ?? {}).length ? Object.entries(d.headers).map(([k, v]) => `\`${k}: ${v}\``).join(', ') : '—'} | ${whole(after.requests)} | ${whole(after.shadowCopies)}${after.requests > 0 && after.shadowCopies > 0 ? ` (${fixed((after.shadowCopies / after.requests) * 100, 1)} %)` : ''} |`,
    );
  }
  out.push('');
  const moved = Object.entries(results.contenders).filter(([, d]) => d.routingAfter && JSON.stringify(d.routingAfter.weights) !== JSON.stringify(d.routingBefore?.weights));
  out.push(
    `Route weights before and after the run (\`GET /v1/routing/{model}\`): ${moved.length === 0 ? 'unchanged for every contender' : `**changed** for ${moved.map(([c, d]) => `${c} (${JSON.stringify(d.routingBefore?.weights)} → ${JSON.stringify(d.routingAfter.weights)})`).join(', ')}`}` +
      `${results.contenders.canary?.routingAfter ? `; the canary's state at the end: \`${results.contenders.canary.routingAfter.state ?? '?'}\`, step ${JSON.stringify(results.contenders.canary.routingAfter.step ?? null)}` : ''}.`,
  );
  out.push('');

  out.push('#### Cost of each strategy against `latest`');
  out.push('');
  out.push(
    'Per round: the contender\'s samples/s ÷ the reference\'s (latest, or ab-split for the canary\'s own work), and its p50 and server CPU per request − the reference\'s; mean over the rounds with the 95 % confidence interval. *same*: the interval contains 1 (or 0), the run cannot tell the two apart; *costlier* / *cheaper*: all of the interval is on that side.',
  );
  out.push('');
  out.push('| point | comparison | samples/s ratio (95 % interval) | p50 Δ µs (95 % interval) | p99 Δ µs | server CPU Δ µs/request (95 % interval) | reads |');
  out.push('| --- | --- | --- | --- | ---: | --- | --- |');
  for (const c of results.comparisons) {
    const r = c.reads;
    out.push(
      `| ${c.point} | ${c.num} ÷ ${c.den}${c.id === 'a-a-control' ? ' (A/A control)' : ''} | ${withInterval(c.throughputRatio, (v) => fixed(v, 3))} | ${withInterval(c.p50AddedUs, plusMinus)} | ${plusMinus(c.p99AddedUs.mean, 0)} | ${withInterval(c.cpuAddedUsPerRequest, plusMinus)} | samples/s ${r.throughput}, p50 ${r.p50}, CPU ${r.cpu} |`,
    );
  }
  out.push('');

  for (const p of results.points) {
    out.push(`#### ${p.id}: ${pointTitle({ ...p, modelName: 'affine-<contender>' }, results)}`);
    out.push('');
    out.push('| contender | samples/s | per round | p50 ms | p99 ms | server CPU µs/request | mean batch | errors |');
    out.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of s.contenders) {
      const rows = results.rows.filter((r) => r.point === p.id && r.contender === c).sort((a, b) => a.round - b.round);
      if (rows.length === 0) continue;
      const x = summarizeRows(rows);
      out.push(`| ${c} | ${whole(x.samplesPerSec)} | ${x.perRound.map(whole).join(' / ')}${x.disturbed ? ' ⚠' : ''} | ${fixed(x.p50Ms, 3)} | ${fixed(x.p99Ms, 3)} | ${fixed(x.serverCpuUsPerRequest, 0)} | ${fixed(x.meanBatchSize, 2)} | ${x.errors} |`);
    }
    out.push('');
  }

  out.push('#### Caveats');
  out.push('');
  const rows = results.rows;
  const loadPct = rows.map((r) => r.loadCpuPct).filter(finite);
  out.push(`- One machine, ${m.cores} cores, shared by the server and the load generator (autocannon in its own process, ~${fixed(loadPct.reduce((a, b) => a + b, 0) / Math.max(1, loadPct.length), 0)} % of a core).`);
  out.push('- The shadow contenders run a second inference per mirrored request after the answer (and compare the answers): their server CPU and, under load, their samples/s include that work; their latency does not wait for it. The mean batch counts the shadow batches too.');
  out.push('- `ab` with one constant `x-user-id` sends every request to the same variant: what is measured is the sticky hashing, not a mix of the variants.');
  out.push('- `canary` (at 50 %) and `ab-split` put half the requests on each version, and each version has its own batcher: under load each forms batches half the size (the mean batch column), which costs throughput and CPU by itself. `canary ÷ ab-split` compares two routers that split alike: what is left is the canary\'s own work per request (its outcome counters and statistics).');
  out.push('- Latency is what the load generator measured per answer (bench/load.mjs, to the µs), the mean of the rounds\' percentiles; samples/s counts 2xx answers in the measured window.');
  const disturbed = rows.filter((r) => r.disturbed).length;
  if (disturbed > 0) out.push(`- ${disturbed} window(s) ran while other processes used > ${results.noisyOtherCpuPct}% of a core (⚠).`);
  for (const sk of results.skipped ?? []) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}
