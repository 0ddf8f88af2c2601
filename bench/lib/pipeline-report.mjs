// bench/pipeline.mjs: the serving pipeline's targets judged on one run, and the Markdown written to
// docs/benchmarks.md between the bench-pipeline markers.
//
// The contenders are measured in rounds, each round one window per contender back to back, so a
// round's ratio (now ÷ base) cancels what drifts slowly (other work on the machine, CPU clocks).
// A target is judged on the rounds' ratios (or, for latency, differences) with a 95 % confidence
// interval of their mean (Student's t): met when the whole interval is inside the target, missed
// when the whole interval is outside, inconclusive otherwise. The A/A control (now-2 ÷ now, two
// identical servers) is judged the same way and should come out at 1 within its interval.

import { pointTitle } from './contest.mjs';

/** The markers of a named section: `pipeline` (the default), or e.g. `pipeline-h200` for a run made elsewhere. */
export function pipelineMarkers(section = 'pipeline') {
  if (!/^pipeline[\w-]*$/.test(section)) throw new Error(`BENCH_PIPELINE_SECTION=${section}: expected pipeline or pipeline-<name>`);
  return { start: `<!-- bench-${section}:start -->`, end: `<!-- bench-${section}:end -->` };
}

/** The issue's targets. */
export const PIPELINE_TARGETS = {
  throughputCost: 0.02,
  p50AddedUsAtC1: 20,
};

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const mean = (xs) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Two-sided 95 % quantiles of Student's t for 1…30 degrees of freedom (then 1.96). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** The two-sided 95 % quantile of Student's t with `df` degrees of freedom. */
export const t95 = (df) => T95[df - 1] ?? 1.96;

/** Mean of `xs` with a 95 % confidence interval (null bounds with fewer than 2 values). */
export function meanInterval(xs) {
  const v = xs.filter(isNum);
  const m = mean(v);
  if (v.length < 2) return { n: v.length, mean: m, low: null, high: null, sd: null };
  const sd = Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1));
  const half = t95(v.length - 1) * (sd / Math.sqrt(v.length));
  return { n: v.length, mean: m, low: m - half, high: m + half, sd };
}

/** 'met' when the whole interval is ≤ limit, 'missed' when it is all above, else 'inconclusive'. */
export function verdictAtMost(interval, limit) {
  if (!isNum(interval.low) || !isNum(interval.high)) return 'inconclusive';
  if (interval.high <= limit) return 'met';
  if (interval.low > limit) return 'missed';
  return 'inconclusive';
}

/** The throughput cost (1 − ratio) of a ratio's interval: the interval mirrored. */
export function costOf(ratio) {
  return { n: ratio.n, mean: 1 - ratio.mean, low: isNum(ratio.high) ? 1 - ratio.high : null, high: isNum(ratio.low) ? 1 - ratio.low : null };
}

const rowsOf = (results, point, contender) => results.rows.filter((r) => r.point === point && r.contender === contender).sort((a, b) => a.round - b.round);

/** Round-by-round comparison of `num` with `den` at one point. */
export function pairRounds(results, point, num, den) {
  const a = rowsOf(results, point, num);
  const b = rowsOf(results, point, den);
  if (a.length === 0 || b.length === 0) return null;
  const pairs = a.map((r) => [r, b.find((x) => x.round === r.round)]).filter(([, o]) => o);
  const throughput = pairs.map(([r, o]) => (o.samplesPerSec > 0 ? r.samplesPerSec / o.samplesPerSec : null));
  const p50Us = pairs.map(([r, o]) => (isNum(r.latencyMs.p50) && isNum(o.latencyMs.p50) ? (r.latencyMs.p50 - o.latencyMs.p50) * 1000 : null));
  const p99Us = pairs.map(([r, o]) => (isNum(r.latencyMs.p99) && isNum(o.latencyMs.p99) ? (r.latencyMs.p99 - o.latencyMs.p99) * 1000 : null));
  const cpuUs = pairs.map(([r, o]) => (isNum(r.serverCpuUsPerRequest) && isNum(o.serverCpuUsPerRequest) ? r.serverCpuUsPerRequest - o.serverCpuUsPerRequest : null));
  return {
    point,
    num,
    den,
    rounds: pairs.length,
    throughputRatio: meanInterval(throughput),
    perRoundRatio: throughput,
    p50AddedUs: meanInterval(p50Us),
    perRoundP50Us: p50Us,
    p99AddedUs: meanInterval(p99Us),
    cpuAddedUsPerRequest: meanInterval(cpuUs),
    disturbed: pairs.filter(([r, o]) => r.disturbed || o.disturbed).length,
  };
}

/** One contender at one point: means over its rounds. */
export function summarizeRows(rows) {
  const m = (k) => mean(rows.map(k).filter(isNum));
  return {
    rounds: rows.length,
    samplesPerSec: m((r) => r.samplesPerSec),
    perRound: rows.map((r) => r.samplesPerSec),
    p50Ms: m((r) => r.latencyMs.p50),
    p99Ms: m((r) => r.latencyMs.p99),
    serverCpuUsPerRequest: m((r) => r.serverCpuUsPerRequest),
    meanBatchSize: m((r) => r.meanBatchSize),
    otherProcsPct: m((r) => r.otherProcsPct),
    loadCpuPct: m((r) => r.loadCpuPct),
    requests: rows.reduce((s, r) => s + r.requests, 0),
    errors: rows.reduce((s, r) => s + r.errors + r.timeouts + r.non2xx, 0),
    disturbed: rows.filter((r) => r.disturbed).length,
  };
}

const f = (v, d = 1) => (isNum(v) ? v.toFixed(d) : 'n/a');
const signed = (v, d = 1) => (isNum(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(d)}` : 'n/a');
const int = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const range = (i, fmt) => (isNum(i.low) ? `${fmt(i.low)} … ${fmt(i.high)}` : 'n/a');

/** The comparisons (now ÷ base, now-2 ÷ now) and the targets, judged. */
export function evaluatePipeline(results) {
  const comparisons = [];
  const targets = [];
  for (const p of results.points) {
    const aa = pairRounds(results, p.id, 'now-2', 'now');
    if (aa) comparisons.push({ id: 'a-a-control', ...aa });
    const c = pairRounds(results, p.id, 'now', 'base');
    if (!c) {
      targets.push({ id: `throughput/${p.id}`, point: p.id, target: `throughput ≥ ${1 - PIPELINE_TARGETS.throughputCost} × base`, verdict: 'n/a', summary: 'base or now not measured' });
      continue;
    }
    comparisons.push({ id: 'now-vs-base', ...c });
    const tv = verdictAtMost(costOf(c.throughputRatio), PIPELINE_TARGETS.throughputCost);
    targets.push({
      id: `throughput/${p.id}`,
      point: p.id,
      target: `throughput ≥ ${1 - PIPELINE_TARGETS.throughputCost} × base`,
      verdict: tv,
      value: c.throughputRatio,
      summary: `now ÷ base = ${f(c.throughputRatio.mean, 3)} (95 % interval ${range(c.throughputRatio, (v) => f(v, 3))}, ${c.rounds} rounds)`,
    });
    if (p.connections === 1) {
      const lv = verdictAtMost(c.p50AddedUs, PIPELINE_TARGETS.p50AddedUsAtC1);
      targets.push({
        id: `p50/${p.id}`,
        point: p.id,
        target: `p50 at concurrency 1 ≤ base + ${PIPELINE_TARGETS.p50AddedUsAtC1} µs`,
        verdict: lv,
        value: c.p50AddedUs,
        summary: `p50 now − base = ${signed(c.p50AddedUs.mean)} µs (95 % interval ${range(c.p50AddedUs, (v) => signed(v))} µs, ${c.rounds} rounds)`,
      });
    }
  }
  return { comparisons, targets };
}

const LABEL = { base: 'base (before the pipeline)', now: 'now', 'now-2': 'now-2 (A/A control)' };

/** The first line of a suite's section: when, the command, the machine, the results file, the commit. */
export function runLine(results) {
  const m = results.machine;
  return (
    `Run of ${results.date.slice(0, 16).replace('T', ' ')} UTC: \`${results.command}\` (${Math.round(results.elapsedS ?? 0)} s), ` +
    `${m.cpu}, ${m.cores} cores, Node ${m.node}, load average at start ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}. ` +
    `Every figure is in [\`${results.file}\`](../${results.file}). Core at \`${results.git?.head?.slice(0, 12) ?? '?'}\`${results.git?.packagesDirty ? ` (with ${results.git.packagesDirty} uncommitted change(s) under packages/)` : ''}.`
  );
}

export function renderPipelineMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const out = [];
  out.push(runLine(results));
  out.push('');
  const b = results.baseline;
  out.push('Settings:');
  out.push('');
  out.push(`- ${s.rounds} rounds; in each round every contender gets ${s.warmupS} s of warm-up load (not measured), then a ${s.windowS} s measured window, one contender after the other, the order rotated by one each round (${s.contenders.join(', ')} first in round 1).${s.primeS > 0 ? ` Before a point's first round every contender gets ${s.primeS} s of the same load.` : ''}`);
  out.push(`- Every contender serves both models with \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`; ORT's default session options${Object.keys(s.sessionOptions ?? {}).length ? ` plus ${JSON.stringify(s.sessionOptions)}` : ''}.`);
  if (b?.ok) {
    out.push(
      `- base: \`${s.baseRef}\` = \`${String(b.sha).slice(0, 12)}\`, the build before the serving pipeline, ${b.prebuilt ? `built elsewhere and carried to \`${b.dir}\`` : `built in \`${b.dir}\` (\`git worktree add --detach\`, \`npm ci\` with onnxruntime-node's install script blocked, \`npm run build\`; ${b.reused ? 'reused from an earlier run' : `${Math.round(b.seconds)} s`})`}.` +
        (b.coreChangesSince?.length ? ` now ÷ base measures every core change since: ${b.coreChangesSince.length} commits touch packages/core/src or backend-onnxruntime/src.` : ''),
    );
  } else if (b) {
    out.push(`- base: **skipped** — ${b.reason}`);
  } else {
    out.push('- base: not measured (BENCH_PIPELINE_BASE=none).');
  }
  out.push(`- now-2 is a second server exactly like now: the A/A control, judged like the others; its interval should contain 1 (and 0 µs).`);
  out.push(`- A window during which processes outside the benchmark used more than ${results.noisyOtherCpuPct}% of a core is measured again (${s.retries} retr${s.retries === 1 ? 'y' : 'ies'}), the least disturbed kept; still disturbed windows are marked ⚠.`);
  out.push('');

  out.push('#### Targets');
  out.push('');
  out.push(
    'Each round measures the contenders back to back; a round\'s ratio (or difference) cancels what drifts slowly on the machine. The verdict uses the 95 % confidence interval of the mean over the rounds: **met** when the whole interval is inside the target, **missed** when all of it is outside, **inconclusive** when the target lies inside the interval (more rounds, or a quieter machine, would tell).',
  );
  out.push('');
  out.push('| point | target | measured | verdict |');
  out.push('| --- | --- | --- | --- |');
  for (const t of results.verdicts) {
    const v = t.verdict === 'met' ? 'met' : t.verdict === 'missed' ? '**missed**' : `**${t.verdict}**`;
    out.push(`| ${t.point} | ${t.target} | ${t.summary} | ${v} |`);
  }
  out.push('');

  for (const p of results.points) {
    out.push(`#### ${p.id}: ${pointTitle(p, results)}`);
    out.push('');
    out.push('| contender | samples/s | per round | p50 ms | p99 ms | server CPU µs/request | mean batch | errors |');
    out.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const c of s.contenders) {
      const rows = rowsOf(results, p.id, c);
      if (rows.length === 0) continue;
      const x = summarizeRows(rows);
      out.push(`| ${LABEL[c] ?? c} | ${int(x.samplesPerSec)} | ${x.perRound.map(int).join(' / ')}${x.disturbed ? ' ⚠' : ''} | ${f(x.p50Ms, 3)} | ${f(x.p99Ms, 3)} | ${f(x.serverCpuUsPerRequest, 0)} | ${f(x.meanBatchSize, 2)} | ${x.errors} |`);
    }
    out.push('');
    const comps = results.comparisons.filter((c) => c.point === p.id);
    if (comps.length > 0) {
      out.push('| comparison | samples/s ratio (95 % interval) | p50 Δ µs (95 % interval) | p99 Δ µs | server CPU Δ µs/request |');
      out.push('| --- | --- | --- | ---: | ---: |');
      for (const c of comps) {
        out.push(
          `| ${c.num} ÷ ${c.den}${c.id === 'a-a-control' ? ' (A/A control)' : ''} | ${f(c.throughputRatio.mean, 3)} (${range(c.throughputRatio, (v) => f(v, 3))}) | ${signed(c.p50AddedUs.mean)} (${range(c.p50AddedUs, (v) => signed(v))}) | ${signed(c.p99AddedUs.mean, 0)} | ${signed(c.cpuAddedUsPerRequest.mean, 1)} |`,
        );
      }
      out.push('');
    }
  }

  out.push('#### Caveats');
  out.push('');
  const rows = results.rows;
  out.push(`- One machine, ${m.cores} cores, shared by the three servers (idle while another is measured) and the load generator (autocannon in its own process, ~${f(mean(rows.map((r) => r.loadCpuPct).filter(isNum)), 0)} % of a core).`);
  out.push('- Latency is what the load generator measured per answer (bench/load.mjs, to the µs), the mean of the rounds\' percentiles; samples/s counts 2xx answers in the measured window.');
  out.push('- The tiny model makes inference nearly free, so its points show the per-request cost of the HTTP layer and the pipeline; the classifier\'s show what a real model sees.');
  const disturbed = rows.filter((r) => r.disturbed).length;
  if (disturbed > 0) out.push(`- ${disturbed} window(s) ran while other processes used > ${results.noisyOtherCpuPct}% of a core (⚠).`);
  for (const sk of results.skipped) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}
