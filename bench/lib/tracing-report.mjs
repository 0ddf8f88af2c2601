// bench/tracing.mjs: the targets of the issue judged on one run, with the run-to-run spread as the
// noise band, and the Markdown written to docs/benchmarks.md between the bench-tracing markers.

import { pointTitle } from './contest.mjs';

export const TRACING_MARKER_START = '<!-- bench-tracing:start -->';
export const TRACING_MARKER_END = '<!-- bench-tracing:end -->';

/** The issue's targets, as a cost (1 − ratio) limit. */
export const TARGETS = [
  { id: 'on-cost', num: 'on-1.0', den: 'absent', limit: 0.1, target: 'tracing on (sampling 1.0) costs ≤ 10 % of the throughput without the plugin' },
  { id: 'absent-cost', num: 'absent', den: 'base', limit: 0.02, target: 'plugin absent: ≥ 0.98 × the server from before tracing (cost ≤ 2 %)' },
];
/** Ratios shown for context, without a target. */
const CONTEXT = [
  { id: 'sampled-out', num: 'on-0.0', den: 'absent' },
  { id: 'a-a-control', num: 'absent-2', den: 'absent' },
];

const mean = (xs) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** Relative spread of a contender across rounds: (max − min) / mean; null with fewer than 2 rounds. */
function spread(values) {
  if (values.length < 2) return null;
  const m = mean(values);
  return m > 0 ? (Math.max(...values) - Math.min(...values)) / m : null;
}

/** One contender at one point, its rounds pooled. */
export function summarizeContender(rows) {
  const sps = rows.map((r) => r.samplesPerSec);
  const requests = rows.reduce((s, r) => s + r.requests, 0);
  const cpuRows = rows.filter((r) => isNum(r.serverCpuUsPerRequest));
  const cpuS = cpuRows.reduce((s, r) => s + (r.serverCpuUsPerRequest * r.requests) / 1e6, 0);
  const cpuReq = cpuRows.reduce((s, r) => s + r.requests, 0);
  const m = (k) => mean(rows.map(k).filter(isNum));
  return {
    rounds: rows.length,
    samplesPerSec: mean(sps),
    perRound: sps,
    spread: spread(sps),
    p50Ms: m((r) => r.latencyMs.p50),
    p99Ms: m((r) => r.latencyMs.p99),
    perRoundP50: rows.map((r) => r.latencyMs.p50),
    perRoundP99: rows.map((r) => r.latencyMs.p99),
    serverCpuPct: m((r) => r.serverCpuPct),
    serverCpuUsPerRequest: cpuReq > 0 ? (cpuS / cpuReq) * 1e6 : null,
    perRoundCpuUsPerRequest: rows.map((r) => r.serverCpuUsPerRequest),
    cpuSpread: spread(rows.map((r) => r.serverCpuUsPerRequest).filter(isNum)),
    sinkCpuPct: m((r) => r.sinkCpuPct),
    loadCpuPct: m((r) => r.loadCpuPct),
    otherProcsPct: m((r) => r.otherProcsPct),
    machineBusyPct: m((r) => r.machineBusyPct),
    meanBatchSize: m((r) => r.meanBatchSize),
    requests,
    errors: rows.reduce((s, r) => s + r.errors + r.timeouts + r.non2xx, 0),
    disturbed: rows.filter((r) => r.disturbed).length,
  };
}

/**
 * A verdict that does not pass or fail by accident: with `noise` the largest run-to-run spread of
 * the two contenders, the target is met only if cost + noise ≤ limit, missed only if
 * cost − noise > limit, and "within noise" when the limit lies inside [cost − noise, cost + noise].
 */
export function judge(cost, limit, noise) {
  if (!isNum(cost)) return { verdict: 'n/a', upper: null, lower: null, differenceWithinNoise: null };
  const n = isNum(noise) ? noise : 0;
  const upper = cost + n;
  const lower = cost - n;
  const verdict = !isNum(noise) ? 'within noise' : upper <= limit ? 'met' : lower > limit ? 'missed' : 'within noise';
  return { verdict, upper, lower, differenceWithinNoise: isNum(noise) ? Math.abs(cost) <= noise : null };
}

/**
 * The same target judged on the rounds paired in time (each round's ratio of the two contenders,
 * measured one after the other, so drift common to both cancels): met when every round's cost is
 * within the limit, missed when every round's cost is beyond it.
 */
export function judgePaired(perRound, limit) {
  const costs = perRound.filter(isNum).map((r) => 1 - r);
  if (costs.length < 2) return 'n/a';
  if (costs.every((c) => c <= limit)) return 'met in every round';
  if (costs.every((c) => c > limit)) return 'missed in every round';
  return 'mixed';
}

function compare(results, point, num, den) {
  const rowsOf = (c) => results.rows.filter((r) => r.point === point && r.contender === c).sort((a, b) => a.round - b.round);
  const a = rowsOf(num);
  const b = rowsOf(den);
  if (a.length === 0 || b.length === 0) return null;
  const sa = summarizeContender(a);
  const sb = summarizeContender(b);
  const ratio = sb.samplesPerSec > 0 ? sa.samplesPerSec / sb.samplesPerSec : null;
  const perRound = a.map((r) => {
    const o = b.find((x) => x.round === r.round);
    return o && o.samplesPerSec > 0 ? r.samplesPerSec / o.samplesPerSec : null;
  });
  const noise = sa.spread === null && sb.spread === null ? null : Math.max(sa.spread ?? 0, sb.spread ?? 0);
  return {
    point,
    num,
    den,
    ratio,
    cost: ratio === null ? null : 1 - ratio,
    perRound,
    spreadNum: sa.spread,
    spreadDen: sb.spread,
    noise,
    cpuPerRequestRatio: isNum(sa.serverCpuUsPerRequest) && isNum(sb.serverCpuUsPerRequest) ? sa.serverCpuUsPerRequest / sb.serverCpuUsPerRequest : null,
    cpuUsPerRequestAdded: isNum(sa.serverCpuUsPerRequest) && isNum(sb.serverCpuUsPerRequest) ? sa.serverCpuUsPerRequest - sb.serverCpuUsPerRequest : null,
    cpuNoise: sa.cpuSpread === null && sb.cpuSpread === null ? null : Math.max(sa.cpuSpread ?? 0, sb.cpuSpread ?? 0),
    p50Delta: isNum(sa.p50Ms) && isNum(sb.p50Ms) ? sa.p50Ms - sb.p50Ms : null,
    p99Delta: isNum(sa.p99Ms) && isNum(sb.p99Ms) ? sa.p99Ms - sb.p99Ms : null,
    disturbed: sa.disturbed + sb.disturbed,
  };
}

export function evaluateTracing(results) {
  const comparisons = [];
  const targets = [];
  for (const p of results.points) {
    for (const t of TARGETS) {
      const c = compare(results, p.id, t.num, t.den);
      if (!c) {
        const missing = [t.num, t.den].filter((x) => !results.rows.some((r) => r.contender === x));
        targets.push({ id: `${t.id}/${p.id}`, point: p.id, target: t.target, verdict: 'n/a', summary: `not measured (${missing.join(', ')} skipped)`, limit: t.limit });
        continue;
      }
      comparisons.push({ id: t.id, ...c });
      const j = judge(c.cost, t.limit, c.noise);
      const paired = judgePaired(c.perRound, t.limit);
      const pc = (v) => `${(v * 100).toFixed(1)} %`;
      const rounds = c.perRound.map((r) => (r === null ? 'n/a' : r.toFixed(3))).join(', ');
      const why =
        j.verdict === 'met'
          ? `cost + noise = ${pc(j.upper)} ≤ ${pc(t.limit)}`
          : j.verdict === 'missed'
            ? `cost − noise = ${pc(j.lower)} > ${pc(t.limit)}`
            : `${pc(t.limit)} lies within ${pc(j.lower)} … ${pc(j.upper)}`;
      targets.push({
        id: `${t.id}/${p.id}`,
        point: p.id,
        target: t.target,
        limit: t.limit,
        ratio: c.ratio,
        cost: c.cost,
        noise: c.noise,
        perRound: c.perRound,
        ...j,
        paired,
        disturbed: c.disturbed,
        summary: `${t.num} ÷ ${t.den} = ${c.ratio.toFixed(3)} (cost ${pc(c.cost)}; per round ${rounds}); spread ${c.spreadNum === null ? 'n/a' : pc(c.spreadNum)} / ${c.spreadDen === null ? 'n/a' : pc(c.spreadDen)}: ${why}${j.differenceWithinNoise ? '; the difference itself is within noise' : ''}; paired rounds: ${paired}`,
      });
    }
    for (const t of CONTEXT) {
      const c = compare(results, p.id, t.num, t.den);
      if (c) comparisons.push({ id: t.id, ...c });
    }
  }
  return { comparisons, targets };
}

// ---------------------------------------------------------------------------------------------
// Markdown

const f = (v, d = 1) => (isNum(v) ? v.toFixed(d) : 'n/a');
const int = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const pct = (v, d = 1) => (isNum(v) ? `${(v * 100).toFixed(d)} %` : 'n/a');
const signedPct = (v, d = 1) => (isNum(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v * 100).toFixed(d)} %` : 'n/a');
const signed = (v, d = 2) => (isNum(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(d)}` : 'n/a');
const LABEL = { base: 'base (before tracing)', absent: 'absent (no plugin)', 'on-1.0': 'on-1.0 (sampling 1.0)', 'on-0.0': 'on-0.0 (sampling 0)', 'absent-2': 'absent-2 (A/A control)' };

export function renderTracingMarkdown(results) {
  const s = results.settings;
  const out = [];
  const m = results.machine;
  out.push(
    `Run of ${results.date.slice(0, 16).replace('T', ' ')} UTC: \`${results.command}\` (${Math.round(results.elapsedS ?? 0)} s), ` +
      `${m.cpu}, ${m.cores} cores, Node ${m.node}, load average at start ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}. ` +
      `Every figure is in [\`${results.file}\`](../${results.file}). Core at \`${results.git?.head?.slice(0, 12) ?? '?'}\`${results.git?.packagesDirty ? ` (with ${results.git.packagesDirty} uncommitted change(s) under packages/)` : ''}.`,
  );
  out.push('');
  out.push('```bash');
  out.push('node bench/tracing.mjs                  # this suite alone (npm run bench runs it last)');
  out.push('BENCH_QUICK=1 node bench/tracing.mjs    # smoke run');
  out.push('BENCH_TRACING_BASE=none node bench/tracing.mjs   # without the baseline build');
  out.push('```');
  out.push('');
  const b = results.baseline;
  out.push('Settings:');
  out.push('');
  out.push(`- ${s.rounds} rounds; per point and contender ${s.warmupS} s warm-up, then ${s.durationS} s measured${s.primeS > 0 ? `; before a point's first round every contender gets ${s.primeS} s of the same load, not measured` : ''}. Order in each round: ${s.contenders.join(', ')}${s.order === 'rotate' ? ', rotated by one contender each round' : ''} (the servers run side by side, idle while another is measured).`);
  out.push(`- Every contender serves both models with \`batching: ${JSON.stringify(s.batching).replace(/"/g, '')}\`, \`server.logLevel: ${s.logLevel}\`; ORT's default session options.`);
  out.push(
    `- on-*: \`plugins: ['${s.plugin ?? '@tessera/tracing'}']\`, \`tracing: { endpoint: <sink>/<contender>, protocol: ${s.otlpProtocol}, sampleRatio: 1 | 0, batch: ${JSON.stringify(s.exportBatch).replace(/"/g, '')} }\` (the plugin's defaults). ` +
      'The sink is [`bench/lib/otlp-sink.mjs`](../bench/lib/otlp-sink.mjs), a node:http process on the same machine that counts the spans it receives by name and answers 200.',
  );
  if (b?.ok) {
    out.push(
      `- base: \`${s.baseRef}\` = \`${b.sha.slice(0, 12)}\`, built in \`${b.dir}\` (\`git worktree add --detach\`, \`npm ci\` with onnxruntime-node's install script blocked, \`npm run build\`; ${b.reused ? 'reused from an earlier run' : `${Math.round(b.seconds)} s`}). ` +
        `onnxruntime-node ${b.versions?.onnxruntime ?? '?'} / fastify ${b.versions?.fastify ?? '?'} there, ${results.versions.onnxruntime} / ${results.versions.fastify ?? '?'} here.` +
        (b.coreChangesSince?.length ? ` absent ÷ base measures every core change since, not only tracing: ${b.coreChangesSince.length} commits touch packages/core/src or backend-onnxruntime/src (${b.coreChangesSince.map((l) => `\`${l.slice(0, 7)}\``).join(', ')}).` : ''),
    );
  } else if (b) {
    out.push(`- base: **skipped** — ${b.reason}`);
  } else {
    out.push(`- base: not measured (BENCH_TRACING_BASE=none or not selected).`);
  }
  out.push(`- A point during which processes outside the benchmark used more than ${results.noisyOtherCpuPct}% of a core is measured again (${s.retries} retr${s.retries === 1 ? 'y' : 'ies'}), the least disturbed attempt kept; still disturbed points are marked ⚠.`);
  out.push('');

  // targets
  out.push('#### Targets');
  out.push('');
  out.push(
    'Verdicts allow for the run-to-run spread: *noise* is the larger relative spread ((max − min) ÷ mean of samples/s over the rounds) of the two contenders compared. ' +
      'A target is **met** when cost + noise is within it, **missed** when cost − noise is beyond it, and **within noise** otherwise (this run cannot tell). ' +
      'The last column judges the rounds paired in time instead (each round\'s ratio of the two contenders, measured back to back, so drift common to both cancels out).',
  );
  out.push('');
  out.push('| point | target | ratio (pooled) | cost | per round | noise | verdict | paired rounds |');
  out.push('| --- | --- | ---: | ---: | --- | ---: | --- | --- |');
  for (const t of results.targets) {
    if (t.verdict === 'n/a') {
      out.push(`| ${t.point} | ${t.target} | n/a | n/a | | | n/a — ${t.summary} | |`);
      continue;
    }
    const v = t.verdict === 'met' ? 'met' : t.verdict === 'missed' ? '**missed**' : '**within noise**';
    const extra = t.differenceWithinNoise ? ' (the difference is within noise)' : '';
    out.push(
      `| ${t.point} | ${t.target} | ${f(t.ratio, 3)} | ${signedPct(t.cost)} | ${t.perRound.map((r) => f(r, 3)).join(', ')} | ±${pct(t.noise)} | ${v}${extra}${t.disturbed ? ' ⚠' : ''} | ${t.paired} |`,
    );
  }
  out.push('');

  // per point
  for (const p of results.points) {
    out.push(`#### ${p.id}: ${pointTitle(p, results)}`);
    out.push('');
    out.push('| contender | samples/s | per round | spread | p50 ms | p99 ms | server CPU | server CPU µs/request | mean batch | errors |');
    out.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const c of s.contenders) {
      const rows = results.rows.filter((r) => r.point === p.id && r.contender === c).sort((a, x) => a.round - x.round);
      if (rows.length === 0) continue;
      const x = summarizeContender(rows);
      out.push(
        `| ${LABEL[c] ?? c} | ${int(x.samplesPerSec)} | ${x.perRound.map(int).join(' / ')}${x.disturbed ? ' ⚠' : ''} | ${pct(x.spread)} | ${f(x.p50Ms, 2)} | ${f(x.p99Ms, 2)} | ${f(x.serverCpuPct, 0)} % | ${f(x.serverCpuUsPerRequest, 0)} | ${f(x.meanBatchSize, 2)} | ${x.errors} |`,
      );
    }
    out.push('');
    const comps = results.comparisons.filter((c) => c.point === p.id);
    if (comps.length > 0) {
      out.push('| ratio | samples/s | per round | server CPU µs/request | p50 Δ ms | p99 Δ ms |');
      out.push('| --- | ---: | --- | ---: | ---: | ---: |');
      for (const c of comps) {
        out.push(
          `| ${c.num} ÷ ${c.den}${c.id === 'a-a-control' ? ' (A/A control)' : ''} | ${f(c.ratio, 3)} | ${c.perRound.map((r) => f(r, 3)).join(', ')} | ${f(c.cpuPerRequestRatio, 3)} (${signed(c.cpuUsPerRequestAdded, 0)} µs) | ${signed(c.p50Delta)} | ${signed(c.p99Delta)} |`,
        );
      }
      out.push('');
    }
    const rowsHere = results.rows.filter((r) => r.point === p.id);
    out.push(
      `CPU beside the server (means over the rounds): load generator ${f(mean(rowsHere.map((r) => r.loadCpuPct).filter(isNum)), 0)} %, ` +
        `OTLP sink ${f(mean(rowsHere.filter((r) => r.contender === 'on-1.0').map((r) => r.sinkCpuPct).filter(isNum)), 0)} % during on-1.0, ` +
        `other processes ${f(mean(rowsHere.map((r) => r.otherProcsPct).filter(isNum)), 0)} %; machine busy ${f(mean(rowsHere.map((r) => r.machineBusyPct).filter(isNum)), 0)} % of ${m.cores} cores.`,
    );
    out.push('');
  }

  // spans
  const spans = results.spans.filter((x) => x.point);
  if (spans.length > 0) {
    out.push('#### Spans exported');
    out.push('');
    out.push(
      'Per window (warm-up + measured load of one point and round): spans the server made — per request a server span and `tessera.route`, per request that reached a batch `tessera.queue` (requests whose client left while queued, at the end of a load, get none), per batch `tessera.batch` and `tessera.inference`; counted from its `/metrics` — against spans the sink received.',
    );
    out.push('');
    out.push('<details><summary>Spans per window</summary>');
    out.push('');
    out.push('| contender | point | round | requests | batches | spans made | spans received | exported | export requests | KB sent |');
    out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const x of spans) {
      out.push(
        `| ${x.contender} | ${x.point} | ${x.round} | ${int(x.requests)} | ${int(x.batches)} | ${x.contender === 'on-0.0' ? '0 sampled' : int(x.expectedSpans)} | ${int(x.receivedSpans)} | ${x.contender === 'on-0.0' ? '—' : pct(x.exportedFraction)} | ${int(x.exportRequests)} | ${int(isNum(x.bytes) ? x.bytes / 1024 : null)} |`,
      );
    }
    out.push('');
    out.push('</details>');
    out.push('');
    const traced = spans.filter((x) => x.contender === 'on-1.0');
    const made = traced.reduce((a, x) => a + (x.expectedSpans ?? 0), 0);
    const got = traced.reduce((a, x) => a + x.receivedSpans, 0);
    if (traced.length > 0) out.push(`- on-1.0, all windows: ${int(got)} of ${int(made)} spans the server made reached the sink (${pct(made ? got / made : null, 2)}); on-0.0 exported ${int(spans.filter((x) => x.contender === 'on-0.0').reduce((a, x) => a + x.receivedSpans, 0))} spans.`);
    for (const [c, info] of Object.entries(results.contenders)) {
      if (!info.sinkTotal) continue;
      out.push(`- ${c}, whole run (after the server's shutdown flush): ${int(info.sinkTotal.spans)} spans in ${int(info.sinkTotal.requests)} export requests (${f(info.sinkTotal.bytes / 2 ** 20, 1)} MiB${info.sinkTotal.decodeErrors ? `, ${info.sinkTotal.decodeErrors} undecodable` : ''}); the server answered ${int(info.serverTotal?.requests)} inference requests in ${int(info.serverTotal?.batches)} batches.${info.exportWarnings?.length ? ` Its log: ${info.exportWarnings.map((l) => `\`${l.slice(0, 160)}\``).join('; ')}` : ''}`);
    }
    out.push('');
  }

  // caveats
  out.push('#### Caveats');
  out.push('');
  out.push(
    `- One machine, ${m.cores} cores, shared by the server, the load generator (autocannon, ~${f(mean(results.rows.map((r) => r.loadCpuPct).filter(isNum)), 0)} % of a core) and, for on-1.0, the OTLP sink. ` +
      'In production the collector runs elsewhere; here the sink\'s CPU (column above) is taken from the same two cores, so on-1.0\'s cost includes a little of the collector\'s.',
  );
  out.push('- The tiny model makes inference nearly free, so per-request costs (HTTP, JSON, spans) dominate it: its ratio is the upper bound of the tracing cost; the OCR classifier, where inference dominates, is what a real model sees.');
  const aa = results.comparisons.filter((c) => c.id === 'a-a-control');
  if (aa.length > 0) {
    out.push(
      `- A/A control: absent-2 is a second process exactly like absent. absent-2 ÷ absent came out ${aa.map((c) => `${f(c.ratio, 3)} (${c.point})`).join(', ')}, per round ${f(Math.min(...aa.flatMap((c) => c.perRound).filter(isNum)), 3)} … ${f(Math.max(...aa.flatMap((c) => c.perRound).filter(isNum)), 3)}: ` +
        'differences of this size arise here between two identical servers, so a smaller difference between two contenders is not evidence of anything.',
    );
  }
  out.push('- Samples/s counts 2xx answers inside the measured window; latency percentiles are over every answer of a round (load.mjs), shown as the mean of the rounds.');
  if (results.disturbedPoints > 0) out.push(`- ${results.disturbedPoints} point(s) ran while other processes used > ${results.noisyOtherCpuPct}% of a core (⚠): other engineers' builds and tests share this machine.`);
  for (const sk of results.skipped) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}

