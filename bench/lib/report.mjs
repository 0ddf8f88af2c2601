// Targets of the issue, evaluated on one run's results, and the Markdown written to
// docs/benchmarks.md between the bench markers.

export const MARKER_START = '<!-- bench:start -->';
export const MARKER_END = '<!-- bench:end -->';

/** Tolerance of "adaptive ≥ best fixed delay": run-to-run noise on a shared machine. */
export const ADAPTIVE_TOLERANCE = 0.97;

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(digits));
const ms = (v) => (v === null || v === undefined ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const pct = (v) => (v === null || v === undefined ? 'n/a' : `${Math.round(v)}%`);
const ratio = (v) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}×`);

function row(results, id, connections) {
  return results.scenarios.find((s) => s.id === id && s.connections === connections && !s.failed);
}

/** The configuration the targets are judged on: `auto` when it ran, else the best one measured. */
function adaptiveConfig(results, model, protocol, connections) {
  const rows = results.scenarios.filter((s) => s.kind === 'tessera' && s.model === model && s.protocol === protocol && !s.failed);
  if (rows.some((s) => s.config === 'auto')) return { config: 'auto', note: '' };
  const at = rows.filter((s) => s.connections === connections).sort((a, b) => b.samplesPerSec - a.samplesPerSec);
  if (at.length === 0) return null;
  return { config: at[0].config, note: ` (no adaptive delay measured: best of ${[...new Set(rows.map((r) => r.config))].join(', ')})` };
}

/** Every target of the issue, for each model measured: `pass` true/false, or null when not measurable. */
export function evaluateTargets(results) {
  const targets = [];
  const conns = results.settings.connections;
  const high = Math.max(...conns);
  const low = Math.min(...conns);
  for (const model of Object.keys(results.models)) {
    const raw = results.raw[model];
    const naive = row(results, `naive-json/${model}`, high);
    const binaryRan = results.scenarios.some((s) => s.kind === 'tessera' && s.model === model && s.protocol === 'binary' && !s.failed);
    const protocol = binaryRan ? 'binary' : 'json';
    const why = binaryRan ? '' : `binary not measured (${results.features.binaryReason ?? 'skipped'}); JSON shown for reference`;
    const cfg = adaptiveConfig(results, model, protocol, high);
    const served = cfg && row(results, `tessera-${protocol}/${model}/${cfg.config}`, high);
    const servedLow = cfg && row(results, `tessera-${protocol}/${model}/${cfg.config}`, low);
    const label = cfg ? `tessera-${protocol}/${model}/${cfg.config}${cfg.note}` : `tessera-${protocol}/${model}`;
    const judge = (ok) => (binaryRan ? ok : null);

    const rawBest = raw?.best?.samplesPerSec ?? null;
    targets.push({
      id: `binary-vs-raw/${model}`,
      target: `binary at ${high} connections ≥ 0.9 × raw best batch throughput`,
      scenario: label,
      measured: served && rawBest ? served.samplesPerSec / rawBest : null,
      unit: '× raw best',
      threshold: 0.9,
      pass: served && rawBest ? judge(served.samplesPerSec / rawBest >= 0.9) : null,
      note: [why, !rawBest ? 'raw baseline not measured' : ''].filter(Boolean).join('; '),
    });
    targets.push({
      id: `binary-vs-naive/${model}`,
      target: `binary at ${high} connections ≥ 1.5 × naive (JSON)`,
      scenario: label,
      measured: served && naive ? served.samplesPerSec / naive.samplesPerSec : null,
      unit: '× naive JSON',
      threshold: 1.5,
      pass: served && naive ? judge(served.samplesPerSec / naive.samplesPerSec >= 1.5) : null,
      note: [why, !naive ? 'naive JSON not measured' : ''].filter(Boolean).join('; '),
    });
    const raw1 = raw?.batches?.find((b) => b.batch === 1)?.latencyMs.p50 ?? null;
    targets.push({
      id: `binary-latency/${model}`,
      target: `binary at concurrency ${low}: p50 ≤ raw batch-1 p50 + 0.3 ms`,
      scenario: label,
      measured: servedLow && raw1 !== null ? servedLow.latencyMs.p50 - raw1 : null,
      unit: 'ms over raw batch-1 p50',
      threshold: 0.3,
      pass: servedLow && raw1 !== null ? judge(servedLow.latencyMs.p50 <= raw1 + 0.3) : null,
      note: [why, raw1 === null ? 'raw batch 1 not measured' : '', servedLow && raw1 !== null ? `p50 ${ms(servedLow.latencyMs.p50)} ms vs raw ${ms(raw1)} ms` : ''].filter(Boolean).join('; '),
    });

    // adaptive vs the best fixed delay, on the protocol the delays were swept on
    const sweep = results.features.sweepProtocol ?? protocol;
    const fixed = results.scenarios.filter((s) => s.kind === 'tessera' && s.model === model && s.protocol === sweep && /^delay-/.test(s.config) && !s.failed);
    const auto = results.scenarios.filter((s) => s.kind === 'tessera' && s.model === model && s.protocol === sweep && s.config === 'auto' && !s.failed);
    let worst = null;
    const parts = [];
    for (const c of conns) {
      const a = auto.find((s) => s.connections === c);
      const best = fixed.filter((s) => s.connections === c).sort((x, y) => y.samplesPerSec - x.samplesPerSec)[0];
      if (!a || !best) continue;
      const r = a.samplesPerSec / best.samplesPerSec;
      parts.push(`c=${c}: ${r.toFixed(2)}× ${best.config}`);
      worst = worst === null ? r : Math.min(worst, r);
    }
    targets.push({
      id: `adaptive-vs-fixed/${model}`,
      target: `adaptive delay ≥ best fixed delay at every concurrency (samples/s, ${Math.round((1 - ADAPTIVE_TOLERANCE) * 100)}% noise allowance)`,
      scenario: `tessera-${sweep}/${model}/auto`,
      measured: worst,
      unit: '× best fixed (worst concurrency)',
      threshold: ADAPTIVE_TOLERANCE,
      pass: worst === null ? null : worst >= ADAPTIVE_TOLERANCE,
      note: worst === null ? (results.features.dynamic ? 'adaptive or fixed delays not measured' : `no dynamic batcher (${results.features.dynamicReason})`) : parts.join(', '),
    });
  }
  return targets;
}

/** Marks each target of a model any of whose served points was disturbed by other processes. */
export function markDisturbed(results, targets, limitPct) {
  for (const t of targets) {
    const model = t.id.split('/')[1];
    t.disturbed = results.scenarios.some((s) => s.model === model && s.otherCpuPct > limitPct);
  }
  return targets;
}

/** The Markdown block between the markers. */
export function renderMarkdown(results) {
  const { machine, settings, features, versions } = results;
  const lines = [];
  lines.push(`Generated by \`bench/run.mjs\` on ${results.date.slice(0, 10)} — results file [\`${results.file}\`](../${results.file}).`);
  lines.push('');
  lines.push(`- **Command:** \`${results.command}\``);
  lines.push(`- **Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, Node ${machine.node} (${machine.platform})`);
  lines.push(
    `- **Settings:** ${settings.durationS} s measured after ${settings.warmupS} s warm-up per point; connections ${settings.connections.join(', ')}; ` +
      `${settings.samplesPerRequest} sample(s) per request; detector input [N, ${results.models.det?.sampleShape.join(', ') ?? 'n/a'}]; ` +
      `session options ${JSON.stringify(settings.sessionOptions)}; Tessera log level \`${settings.logLevel}\``,
  );
  lines.push(`- **Versions:** onnxruntime-node ${versions.onnxruntime}, autocannon ${versions.autocannon}, @tessera/core ${versions.core}`);
  lines.push(
    `- **Found at run time:** dynamic batcher ${features.dynamic ? `yes (delays: ${features.delays.join(', ')})` : `no — ${features.dynamicReason}`}; ` +
      `binary tensor extension ${features.binary ? 'yes' : `no — ${features.binaryReason}`}; ` +
      `\`tessera_batch_size\` ${features.batchSizeMetric ? 'yes' : `no — ${features.batchSizeMetricReason}`}`,
  );
  const disturbed = results.scenarios.filter((s) => s.otherCpuPct > results.noisyOtherCpuPct).length;
  lines.push(
    `- **Load on the machine:** load average ${machine.loadavgAtStart?.map((v) => v.toFixed(2)).join(', ') ?? 'n/a'} at the start; ` +
      (disturbed > 0 ? `**${disturbed} point(s) ran while other processes used over ${results.noisyOtherCpuPct}% of a core** (⚠ below): their figures are disturbed.` : `no point was disturbed by other processes (> ${results.noisyOtherCpuPct}% of a core).`),
  );
  if (settings.quick) lines.push('', '> **Smoke run** (`BENCH_QUICK=1`): short durations and fewer scenarios. It shows the harness works; do not quote its figures.');
  lines.push('', '#### Raw `session.run` (separate process; the best samples/s is the limit)', '');
  lines.push('| model | batch | p50 ms | p99 ms | samples/s |', '| --- | ---: | ---: | ---: | ---: |');
  for (const [model, raw] of Object.entries(results.raw)) {
    for (const b of raw.batches) {
      const best = raw.best?.batch === b.batch;
      const sps = best ? `**${fmt(b.samplesPerSec)}**` : fmt(b.samplesPerSec);
      lines.push(`| ${model} | ${b.batch} | ${ms(b.latencyMs.p50)} | ${ms(b.latencyMs.p99)} | ${sps} |`);
    }
  }
  lines.push('', '#### Served over HTTP (load generator in its own process, 127.0.0.1)', '');
  lines.push(
    '| scenario | conns | samples/s | req/s | p50 ms | p90 ms | p99 ms | errors / non-2xx | mean batch | × raw best | × naive JSON | × naive same protocol | CPU server / load / other |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const s of results.scenarios) {
    if (s.failed) {
      lines.push(`| ${s.id} | ${s.connections ?? ''} | failed: ${s.failed.replace(/\|/g, '\\|').slice(0, 120)} | | | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${s.id} | ${s.connections} | ${fmt(s.samplesPerSec)} | ${fmt(s.reqPerSec)} | ${ms(s.latencyMs.p50)} | ${ms(s.latencyMs.p90)} | ${ms(s.latencyMs.p99)} | ` +
        `${s.errors + s.timeouts} / ${s.non2xx} | ${s.meanBatchSize === null ? 'n/a' : fmt(s.meanBatchSize, 2)} | ${ratio(s.ratios.rawBest)} | ${ratio(s.ratios.naiveJson)} | ` +
        `${ratio(s.ratios.naiveSameProtocol)} | ${pct(s.serverCpuPct)} / ${pct(s.loadCpuPct)} / ${pct(s.otherCpuPct)}${s.otherCpuPct > results.noisyOtherCpuPct ? ' ⚠' : ''} |`,
    );
  }
  if (results.skipped.length > 0) {
    lines.push('', 'Skipped:', '');
    for (const s of results.skipped) lines.push(`- \`${s.id}\`: ${s.reason}`);
  }
  lines.push('', '#### Targets', '', '| target | scenario | measured | result |', '| --- | --- | ---: | --- |');
  for (const t of results.targets) {
    const verdict = `${t.pass === null ? 'not judged' : t.pass ? 'met' : '**missed**'}${t.pass !== null && t.disturbed ? ' (disturbed run: not conclusive)' : ''}`;
    const measured = t.measured === null ? 'n/a' : `${t.measured.toFixed(2)} ${t.unit}`;
    lines.push(`| ${t.target} | \`${t.scenario}\` | ${measured} | ${verdict}${t.note ? ` — ${t.note}` : ''} |`);
  }
  return lines.join('\n');
}
