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

import { comparisonLine, comparisonTable, compareContenders, finite, fixed, pointTables, sectionHead, suiteMarkers, whole } from './contest-report.mjs';

export { comparisonLine };

/** The markers of a named section: `routing` (the default), or e.g. `routing-h200` for a run made elsewhere. */
export const routingMarkers = (section) => suiteMarkers('routing', section);

/** The reference every strategy is compared with, and its A/A twin. */
export const REFERENCE = 'latest';
export const TWIN = 'latest-2';

/**
 * Other comparisons than with latest: the canary against the A/B test that splits the traffic the
 * same way without judging anything (what is left is the canary's own work per request).
 */
const EXTRA = [['canary', 'ab-split']];

/** Every contender ÷ (or −) latest at every point, the A/A control first, then EXTRA. */
export function evaluateRouting(results) {
  return { comparisons: compareContenders(results, { reference: REFERENCE, twin: TWIN, extra: EXTRA }) };
}

export function renderRoutingMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const out = sectionHead(results);
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
  out.push(...comparisonTable(results.comparisons));
  out.push('');

  out.push(...pointTables(results, { modelName: 'affine-<contender>' }));

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
