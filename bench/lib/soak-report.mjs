// bench/soak.mjs: memory and latency over a long steady load, judged, and the Markdown written to
// docs/benchmarks.md between the bench-soak markers.
//
// After the warm-up (excluded), a least-squares line is fitted to the server's RSS (and heap)
// against time, and to each model's per-interval p99: the RSS growth is the fitted line's rise over
// the rest of the run as a share of where it started (target < 5 %, judged on the growth the slope's
// 95 % interval allows: met, missed or inconclusive as in the other suites), the p99 trend its slope with a
// 95 % interval (flat when the interval contains 0 or the fitted change is under 10 % of the mean
// p99: the noise of one interval's p99 on a shared machine), and no answer may be an error.

import { finite, fixed, plusMinus, sectionHead, suiteMarkers, whole } from './contest-report.mjs';
import { t95 } from './pipeline-report.mjs';

/** The markers of a named section: `soak` (the default), or e.g. `soak-h200` for a run made elsewhere. */
export const soakMarkers = (section) => suiteMarkers('soak', section);

/** The issue's targets: RSS growth after the warm-up, a flat p99 (within PFLAT of its mean), no errors. */
export const SOAK_TARGETS = { rssGrowthPct: 5, p99FlatPct: 10 };

/**
 * The least-squares line through the points (xs, ys): slope and intercept, the slope's 95 %
 * interval (Student's t, n − 2 degrees of freedom), and the fitted values at the first and last x.
 */
export function leastSquares(xs, ys) {
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) => finite(x) && finite(y));
  const n = pts.length;
  if (n < 3) return { n, slope: null, intercept: null, slopeLow: null, slopeHigh: null, first: null, last: null };
  const mx = pts.reduce((s, [x]) => s + x, 0) / n;
  const my = pts.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = pts.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const slope = pts.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
  const intercept = my - slope * mx;
  const residual = pts.reduce((s, [x, y]) => s + (y - (intercept + slope * x)) ** 2, 0);
  const se = Math.sqrt(residual / (n - 2) / sxx);
  const half = t95(n - 2) * se;
  const x0 = pts[0][0];
  const x1 = pts[n - 1][0];
  return { n, slope, intercept, slopeLow: slope - half, slopeHigh: slope + half, mean: my, first: intercept + slope * x0, last: intercept + slope * x1, spanX: x1 - x0 };
}

const MIB = 2 ** 20;
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** A memory series (bytes) after the warm-up: the fit in MiB per minute and the growth it gives. */
function memoryTrend(samples, key, warmupS) {
  const kept = samples.filter((s) => s.tS >= warmupS && finite(s[key]));
  const fit = leastSquares(
    kept.map((s) => s.tS / 60),
    kept.map((s) => s[key] / MIB),
  );
  const all = samples.map((s) => s[key]).filter(finite);
  return {
    samples: kept.length,
    slopeMiBPerMin: fit.slope,
    slopeInterval: [fit.slopeLow, fit.slopeHigh],
    fittedStartMiB: fit.first,
    fittedEndMiB: fit.last,
    growthPct: finite(fit.first) && fit.first > 0 ? ((fit.last - fit.first) / fit.first) * 100 : null,
    // the growth the slope's interval allows, over the same span from the same start
    growthInterval: finite(fit.first) && fit.first > 0 ? [fit.slopeLow, fit.slopeHigh].map((sl) => ((sl * fit.spanX) / fit.first) * 100) : [null, null],
    firstMiB: kept[0] ? kept[0][key] / MIB : null,
    lastMiB: kept.at(-1) ? kept.at(-1)[key] / MIB : null,
    maxMiB: all.length ? Math.max(...all) / MIB : null,
    startMiB: all.length ? all[0] / MIB : null,
  };
}

/** One model's p99 (and p50) per interval after the warm-up: the fit in ms per minute and whether it is flat. */
function latencyTrend(intervals, warmupS) {
  const kept = intervals.filter((iv) => iv.tS >= warmupS && iv.requests > 0);
  const fit = leastSquares(
    kept.map((iv) => iv.tS / 60),
    kept.map((iv) => iv.latencyMs.p99),
  );
  const changePct = finite(fit.slope) && fit.mean > 0 ? ((fit.slope * fit.spanX) / fit.mean) * 100 : null;
  const containsZero = finite(fit.slopeLow) && fit.slopeLow <= 0 && fit.slopeHigh >= 0;
  const flat = containsZero || (finite(changePct) && Math.abs(changePct) < SOAK_TARGETS.p99FlatPct);
  const p99s = kept.map((iv) => iv.latencyMs.p99);
  return {
    intervals: kept.length,
    meanP99Ms: fit.mean,
    minP99Ms: p99s.length ? Math.min(...p99s) : null,
    maxP99Ms: p99s.length ? Math.max(...p99s) : null,
    meanP50Ms: kept.length ? sum(kept.map((iv) => iv.latencyMs.p50)) / kept.length : null,
    slopeMsPerMin: fit.slope,
    slopeInterval: [fit.slopeLow, fit.slopeHigh],
    changePct,
    reads: !finite(fit.slope) ? 'n/a' : flat ? 'flat' : fit.slope > 0 ? 'rising' : 'falling',
  };
}

/** As the other suites judge: met when all of `[low, high]` is below `limit`, missed when all of it is at or above, else inconclusive. */
function verdictBelow([low, high], limit) {
  if (!finite(low) || !finite(high)) return 'n/a';
  return high < limit ? 'met' : low >= limit ? 'missed' : 'inconclusive';
}

/** The trends and the targets, judged. */
export function evaluateSoak(results) {
  const w = results.settings.warmupS;
  const rss = memoryTrend(results.samples, 'rssBytes', w);
  const heap = memoryTrend(results.samples, 'heapUsedBytes', w);
  const latency = Object.fromEntries(results.loads.map((l) => [l.model, latencyTrend(l.intervals, w)]));
  const failed = sum(results.loads.map((l) => l.errors + l.timeouts + l.non2xx));
  const targets = [
    {
      id: 'rss',
      target: `RSS growth after the warm-up < ${SOAK_TARGETS.rssGrowthPct} %`,
      verdict: verdictBelow(rss.growthInterval, SOAK_TARGETS.rssGrowthPct),
      summary: `${plusMinus(rss.growthPct, 2)} % (95 % interval ${plusMinus(rss.growthInterval[0], 1)} … ${plusMinus(rss.growthInterval[1], 1)} %; fitted ${fixed(rss.fittedStartMiB)} → ${fixed(rss.fittedEndMiB)} MiB, ${plusMinus(rss.slopeMiBPerMin, 2)} MiB/min, 95 % interval ${plusMinus(rss.slopeInterval[0], 2)} … ${plusMinus(rss.slopeInterval[1], 2)})`,
    },
    ...results.loads.map((l) => {
      const t = latency[l.model];
      return {
        id: `p99/${l.model}`,
        target: `p99 of \`${l.name}\` flat (not rising)`,
        // a p99 that falls after the warm-up is the warm-up's tail, not a regression
        verdict: t.reads === 'rising' ? 'missed' : t.reads === 'n/a' ? 'n/a' : 'met',
        summary: `${t.reads}: ${plusMinus(t.slopeMsPerMin, 3)} ms/min (95 % interval ${plusMinus(t.slopeInterval[0], 3)} … ${plusMinus(t.slopeInterval[1], 3)}), a change of ${plusMinus(t.changePct)} % of its mean ${fixed(t.meanP99Ms, 2)} ms over the run`,
      };
    }),
    { id: 'errors', target: 'errors, timeouts and non-2xx answers = 0', verdict: failed === 0 ? 'met' : 'missed', summary: `${failed} of ${whole(sum(results.loads.map((l) => l.requests + l.errors + l.timeouts + l.non2xx)))}` },
  ];
  return { rss, heap, latency, targets };
}

const verdictCell = (v) => (v === 'met' ? 'met' : `**${v}**`);
const mib = (b) => (finite(b) ? fixed(b / MIB, 1) : 'n/a');

/** The samples a table shows: every one, or every k-th (and the last) so that at most `most` rows remain. */
function thinned(rows, most) {
  const k = Math.max(1, Math.ceil(rows.length / most));
  return rows.filter((_, i) => i % k === 0 || i === rows.length - 1);
}

export function renderSoakMarkdown(results) {
  const s = results.settings;
  // judged again from the samples, so that a saved run renders with today's rules
  const e = evaluateSoak(results);
  const out = sectionHead(results);
  out.push(
    `- One \`tessera serve\` with the production path on: \`auth.apiKeys\` (${results.keys.count} keys; the load sends \`x-api-key\`) and \`server.rateLimit: ${JSON.stringify(results.rateLimit).replace(/"/g, '')}\` (in-memory store), \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`.`,
  );
  out.push(
    `- Load: ${s.durationS} s of paced load (autocannon's \`overallRate\`, ${s.connections} connections a model) at ${Math.round(s.loadFraction * 100)} % of the capacity a ${s.probeS} s probe measured, shared between the models: ` +
      results.loads.map((l) => `\`${l.name}\` ${fixed(l.rate, 0)} requests/s (probe: ${fixed(l.capacity, 0)}/s alone)`).join(', ') +
      `. Every ${s.sampleS} s: the server's RSS (\`/proc/<pid>/status\`), its V8 heap (\`nodejs_heap_size_used_bytes\` from \`/metrics\`) and each model's p50/p99 over the interval. The first ${s.warmupS} s are the warm-up, left out of the fits.`,
  );
  out.push('');
  out.push('#### Targets');
  out.push('');
  out.push('| target | measured | verdict |');
  out.push('| --- | --- | --- |');
  for (const t of e.targets) out.push(`| ${t.target} | ${t.summary} | ${verdictCell(t.verdict)} |`);
  out.push('');
  out.push(
    `RSS: ${fixed(e.rss.startMiB)} MiB at the first sample, ${fixed(e.rss.firstMiB)} MiB after the warm-up, ${fixed(e.rss.lastMiB)} MiB at the end (peak ${fixed(e.rss.maxMiB)} MiB). ` +
      `V8 heap used: ${fixed(e.heap.firstMiB)} → ${fixed(e.heap.lastMiB)} MiB after the warm-up (fitted ${plusMinus(e.heap.slopeMiBPerMin, 2)} MiB/min, ${plusMinus(e.heap.growthPct, 1)} %).`,
  );
  out.push('');
  out.push('| model | answers | answers/s | p50 ms (mean of intervals) | p99 ms: mean, min … max of intervals | errors |');
  out.push('| --- | ---: | ---: | ---: | --- | ---: |');
  for (const l of results.loads) {
    const t = e.latency[l.model];
    out.push(`| \`${l.name}\` | ${whole(l.requests)} | ${fixed(l.reqPerSec, 1)} | ${fixed(t.meanP50Ms, 3)} | ${fixed(t.meanP99Ms, 3)}, ${fixed(t.minP99Ms, 3)} … ${fixed(t.maxP99Ms, 3)} | ${l.errors + l.timeouts + l.non2xx} |`);
  }
  out.push('');
  out.push('#### Over time');
  out.push('');
  out.push(`| t (s) | RSS MiB | heap used MiB | server CPU % | ${results.loads.map((l) => `\`${l.name}\` p50 / p99 ms`).join(' | ')} |`);
  out.push(`| ---: | ---: | ---: | ---: | ${results.loads.map(() => '---').join(' | ')} |`);
  for (const smp of thinned(results.samples, 40)) {
    const cells = results.loads.map((l) => {
      const iv = l.intervals.reduce((best, x) => (best === null || Math.abs(x.tS - smp.tS) < Math.abs(best.tS - smp.tS) ? x : best), null);
      return iv && iv.requests > 0 ? `${fixed(iv.latencyMs.p50, 3)} / ${fixed(iv.latencyMs.p99, 3)}` : '—';
    });
    out.push(`| ${fixed(smp.tS, 0)}${smp.tS < s.warmupS ? ' (warm-up)' : ''} | ${mib(smp.rssBytes)} | ${mib(smp.heapUsedBytes)} | ${fixed(smp.serverCpuPct, 0)} | ${cells.join(' | ')} |`);
  }
  out.push('');
  out.push('#### Caveats');
  out.push('');
  out.push(`- One machine, ${results.machine.cores} cores, shared by the server and the load generators (one autocannon process a model). Other processes used ${fixed(results.otherProcsPct, 0)} % of a core on average over the run${results.otherProcsPct > 40 ? ' (⚠ a disturbed run: the p99 of some intervals carries their work)' : ''}.`);
  out.push('- The p99 trend is a line through per-interval p99s; neighbouring intervals are not independent (a GC, another process), so its interval is narrower than it should be: a trend is called flat when its interval contains 0 *or* it changes the p99 by less than 10 % of its mean over the run.');
  out.push('- RSS includes ONNX Runtime\'s native memory (its arenas grow with the batch sizes seen); the heap is V8\'s alone. A leak of a few bytes a request shows in the fitted slope long before it crosses 5 %.');
  return out.join('\n');
}
