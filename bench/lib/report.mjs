// Targets of the issue, evaluated on one run's results, and the Markdown written to
// docs/benchmarks.md between the bench markers (or a named section's: `bench-ocr-h200`, …).

export const MARKER_START = '<!-- bench:start -->';
export const MARKER_END = '<!-- bench:end -->';

/**
 * The markers of the OCR suite's section: `ocr` (the default: this machine's, `bench:start`/
 * `bench:end`), or e.g. `ocr-h200` for a run made elsewhere (`bench-ocr-h200:start`/`…:end`).
 */
export function ocrMarkers(section = 'ocr') {
  if (section === 'ocr') return { start: MARKER_START, end: MARKER_END };
  if (!/^ocr-[\w-]+$/.test(section) || section === 'ocr-compare') throw new Error(`BENCH_OCR_SECTION=${section}: expected ocr or ocr-<name>`);
  return { start: `<!-- bench-${section}:start -->`, end: `<!-- bench-${section}:end -->` };
}

/** Tolerance of "adaptive ≥ best fixed delay": run-to-run noise on a shared machine. */
export const ADAPTIVE_TOLERANCE = 0.97;

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(digits));
const ms = (v) => (v === null || v === undefined ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const pct = (v) => (v === null || v === undefined ? 'n/a' : `${Math.round(v)}%`);
const ratio = (v) => (v === null || v === undefined ? 'n/a' : `${v.toFixed(2)}×`);

function row(results, id, connections) {
  return results.scenarios.find((s) => s.id === id && s.connections === connections && !s.failed);
}

/** Threads of a raw sweep point, as a label (`null`: the base options', i.e. ORT's default unless BENCH_THREADS set them). */
export function threadsLabel(threads, settings) {
  const t = threads ?? settings?.sessionOptions?.intraOpNumThreads ?? null;
  return t === null ? 'ORT default' : `${t}${threads === null ? ' (BENCH_THREADS)' : ''}`;
}

/** `S × T` of a raw sweep point. */
export const sweepPoint = (p, settings) => `${p.sessions} × ${threadsLabel(p.threads, settings)}`;

/**
 * The raw references of a model, from a results file of any age: `best` (the sweep's best over
 * sessions × threads × batch; for a file from before the sweep, the one-session best),
 * `default` (one session, default threads, its best batch), `batch1` (p50 of one session at batch
 * 1, default threads) and `batch1Best` (the threads with the lowest batch-1 p50), `swept`.
 */
export function rawReferences(raw) {
  if (!raw) return null;
  const swept = Array.isArray(raw.grid) && raw.grid.length > 1;
  const def = raw.defaultBest ?? (raw.best ? { batch: raw.best.batch, samplesPerSec: raw.best.samplesPerSec } : null);
  const best = swept ? raw.best : def ? { sessions: 1, threads: null, batch: def.batch, samplesPerSec: def.samplesPerSec } : null;
  const batch1 = raw.batch1?.default?.p50Ms ?? raw.batches?.find((b) => b.batch === 1)?.latencyMs.p50 ?? null;
  return { swept, best, default: def, batch1, batch1Best: raw.batch1?.bestThreads ?? null };
}

/** The configuration the targets are judged on: `auto` (the default config) when it ran, else the best one measured. */
function adaptiveConfig(results, model, protocol, connections) {
  const rows = results.scenarios.filter((s) => s.kind === 'tessera' && s.model === model && s.protocol === protocol && s.config !== 'tuned' && !s.failed);
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

    const refs = rawReferences(raw);
    const rawBest = refs?.best?.samplesPerSec ?? null;
    // the default config: no sessionOptions, no instances (BENCH_THREADS gives every contender threads)
    const notDefault = results.settings.sessionOptions && Object.keys(results.settings.sessionOptions).length > 0 ? `not the default config: BENCH_THREADS set ${JSON.stringify(results.settings.sessionOptions)}` : '';
    const bestNote = refs?.best
      ? `raw best ${fmt(refs.best.samplesPerSec)}/s: ${refs.best.sessions} session(s) × ${threadsLabel(refs.best.threads, results.settings)} thread(s) at batch ${refs.best.batch}${refs.swept ? '' : ' (one session: not swept)'}` +
        (refs.default ? `; raw default (1 × ${threadsLabel(null, results.settings)}) ${fmt(refs.default.samplesPerSec)}/s${served ? `: ${ratio(served.samplesPerSec / refs.default.samplesPerSec)}` : ''}` : '')
      : '';
    targets.push({
      id: `binary-vs-raw/${model}`,
      target: `binary at ${high} connections ≥ 0.9 × raw best`,
      reference: refs?.swept ? 'raw best: sessions × threads × batch swept' : 'raw best: one session, default threads (not swept)',
      scenario: label,
      measured: served && rawBest ? served.samplesPerSec / rawBest : null,
      unit: '× raw best',
      threshold: 0.9,
      pass: served && rawBest ? judge(served.samplesPerSec / rawBest >= 0.9) : null,
      note: [why, notDefault, !rawBest ? 'raw baseline not measured' : bestNote].filter(Boolean).join('; '),
    });
    targets.push({
      id: `binary-vs-naive/${model}`,
      target: `binary at ${high} connections ≥ 1.5 × naive (JSON)`,
      reference: `naive-json/${model} at ${high} connections`,
      scenario: label,
      measured: served && naive ? served.samplesPerSec / naive.samplesPerSec : null,
      unit: '× naive JSON',
      threshold: 1.5,
      pass: served && naive ? judge(served.samplesPerSec / naive.samplesPerSec >= 1.5) : null,
      note: [why, notDefault, !naive ? 'naive JSON not measured' : ''].filter(Boolean).join('; '),
    });
    const raw1 = refs?.batch1 ?? null;
    const b1 = refs?.batch1Best;
    targets.push({
      id: `binary-latency/${model}`,
      target: `binary at concurrency ${low}: p50 ≤ raw batch-1 p50 + 0.3 ms`,
      reference: `raw batch-1 p50: one session, ${threadsLabel(null, results.settings)} threads`,
      scenario: label,
      measured: servedLow && raw1 !== null ? servedLow.latencyMs.p50 - raw1 : null,
      unit: 'ms over raw batch-1 p50',
      threshold: 0.3,
      pass: servedLow && raw1 !== null ? judge(servedLow.latencyMs.p50 <= raw1 + 0.3) : null,
      note: [
        why,
        notDefault,
        raw1 === null ? 'raw batch 1 not measured' : '',
        servedLow && raw1 !== null ? `p50 ${ms(servedLow.latencyMs.p50)} ms vs raw ${ms(raw1)} ms` : '',
        servedLow && b1 && b1.threads !== null ? `lowest raw batch-1 p50: ${ms(b1.p50Ms)} ms with ${b1.threads} thread(s) (${ms(servedLow.latencyMs.p50 - b1.p50Ms)} ms over it)` : '',
      ]
        .filter(Boolean)
        .join('; '),
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
      reference: `the best tessera-${sweep}/${model}/delay-* at each concurrency`,
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

/** What the server chose for a model's config (bench/run.mjs `serverChoice`), as one line. */
export function choiceLine(c) {
  if (!c) return 'n/a';
  if (c.error) return `n/a (${c.error})`;
  const sessions = c.sessions ?? [];
  const threads = [...new Set(sessions.map((x) => (x.intraOpNumThreads === undefined ? 'ORT default' : String(x.intraOpNumThreads))))];
  const parts = [`${c.instanceGroupCount ?? c.instances ?? '?'} instance(s)${c.instances !== undefined && c.instances !== null && c.instances !== c.instanceGroupCount ? ` (\`instances: ${c.instances}\`)` : ''}`];
  parts.push(sessions.length > 0 ? `intra-op threads ${threads.join(' / ')} (${sessions.length} session(s) in the debug log)` : 'intra-op threads not in the debug log');
  // what the model's config already says (name, version, batch size, warm-up shapes) is left out
  const extra = sessions[0] ? Object.entries(sessions[0]).filter(([k]) => !CHOICE_KNOWN.has(k)) : [];
  if (extra.length > 0) parts.push(extra.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', '));
  const params = Object.entries(c.parameters ?? {}).filter(([k]) => k !== 'warmupShapes');
  if (params.length > 0) parts.push(`parameters ${params.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  return parts.join('; ');
}

/** What the server chose, in a few words: `2 × 6 threads` (instances × intra-op threads). */
export function choiceShort(c) {
  if (!c || c.error) return 'n/a';
  const threads = [...new Set((c.sessions ?? []).map((x) => (x.intraOpNumThreads === undefined ? 'ORT default' : String(x.intraOpNumThreads))))];
  return `${c.instanceGroupCount ?? c.instances ?? '?'} × ${threads.length > 0 ? threads.join(' / ') : '?'} threads`;
}

const CHOICE_KNOWN = new Set(['intraOpNumThreads', 'model', 'version', 'maxBatchSize']);

/** The raw tables: one session with the default threads at every batch size, then the sweep's best per sessions × threads. */
function rawTables(results, lines) {
  const { settings } = results;
  const entries = Object.entries(results.raw);
  lines.push('', `#### Raw \`session.run\`: one session, ${threadsLabel(null, settings)} threads ("raw default"; a process of its own)`, '');
  lines.push('| model | batch | p50 ms | p99 ms | samples/s | CPU |', '| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [model, raw] of entries) {
    const def = rawReferences(raw).default;
    for (const b of raw.batches) {
      const sps = def?.batch === b.batch ? `**${fmt(b.samplesPerSec)}**` : fmt(b.samplesPerSec);
      lines.push(`| ${model} | ${b.batch} | ${ms(b.latencyMs.p50)} | ${ms(b.latencyMs.p99)} | ${sps} | ${pct(b.cpuPct)} |`);
    }
  }
  const swept = entries.filter(([, raw]) => rawReferences(raw).swept);
  if (swept.length === 0) return;
  lines.push(
    '',
    '#### Raw sweep: S sessions at once × T intra-op threads each (each session a process of its own; the best is "raw best", the limit)',
    '',
    `Per point the best batch of ${settings.rawTop ?? 2} carried from the raw default's best (and batch 1 for one session); samples/s summed over the S sessions in one window; p50 is one run's (a batch's) time; CPU is the S processes' together (100% = one core).`,
    '',
    '| model | sessions × threads | best batch | samples/s | × raw default | p50 ms per run | batch-1 p50 ms | CPU |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const [model, raw] of swept) {
    const refs = rawReferences(raw);
    for (const g of raw.grid) {
      const isBest = refs.best && g.sessions === refs.best.sessions && g.threads === refs.best.threads;
      const sps = isBest ? `**${fmt(g.samplesPerSec)}**` : fmt(g.samplesPerSec);
      const vsDefault = refs.default && g.samplesPerSec !== null ? ratio(g.samplesPerSec / refs.default.samplesPerSec) : 'n/a';
      lines.push(`| ${model} | ${sweepPoint(g, settings)} | ${g.batch ?? 'n/a'} | ${sps} | ${vsDefault} | ${ms(g.latencyMs?.p50)} | ${g.batch1P50Ms === null ? '—' : ms(g.batch1P50Ms)} | ${pct(g.cpuPct)} |`);
    }
  }
}

/** The Markdown block between the markers. */
export function renderMarkdown(results) {
  const { machine, settings, features, versions } = results;
  const lines = [];
  const git = results.git ? ` Core at \`${results.git.head?.slice(0, 12) ?? '?'}\`${results.git.packagesDirty ? ` (with ${results.git.packagesDirty} uncommitted change(s) under packages/)` : ''}${results.git.note ? ` (${results.git.note})` : ''}.` : '';
  lines.push(`Generated by \`bench/run.mjs\` on ${results.date.slice(0, 10)} — results file [\`${results.file}\`](../${results.file}).${git}`);
  lines.push('');
  lines.push(`- **Command:** \`${results.command}\`${results.elapsedS ? ` (${Math.round(results.elapsedS)} s)` : ''}`);
  lines.push(`- **Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, Node ${machine.node} (${machine.platform})`);
  const rawSweep = settings.rawSweep === undefined ? '' : settings.rawSweep === false ? '; raw: one session only (`BENCH_RAW_SWEEP=0`)' : `; raw sweep: ${settings.rawDurationS} s a point (longer for slow runs), sessions ${settings.rawSessions?.join(', ') ?? 'powers of two up to the cores'}, threads ${settings.rawThreads?.join(', ') ?? 'cores ÷ sessions and half of it (ORT default too for one session)'}, the best ${settings.rawTop ?? 2} batch sizes carried`;
  lines.push(
    `- **Settings:** ${settings.preset ? `preset \`${settings.preset}\`; ` : ''}${settings.durationS} s measured after ${settings.warmupS} s warm-up per point; connections ${settings.connections.join(', ')}; ` +
      `${settings.samplesPerRequest} sample(s) per request; detector input [N, ${results.models.det?.sampleShape.join(', ') ?? 'n/a'}]; ` +
      `session options ${JSON.stringify(settings.sessionOptions)}; Tessera log level \`${settings.logLevel}\`${rawSweep}`,
  );
  lines.push(`- **Versions:** onnxruntime-node ${versions.onnxruntime}, ${versions.loadGenerator === 'wrk' ? 'load generator wrk (BENCH_LOADGEN=wrk)' : `autocannon ${versions.autocannon}`}, @tessera/core ${versions.core}`);
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
  const choices = Object.entries(results.serverChoice ?? {});
  if (choices.length > 0) {
    lines.push('- **What the server chose** (`GET /v2/models/<model>/config` and the debug log\'s `onnxruntime session created` lines of a server on the same config):');
    for (const [model, byConfig] of choices) {
      for (const [config, c] of Object.entries(byConfig)) lines.push(`  - \`${model}/${config}\`${config === 'auto' ? ' (the default config)' : ''}: ${choiceLine(c)}`);
    }
  }
  if (settings.quick) lines.push('', '> **Smoke run** (`BENCH_QUICK=1`): short durations and fewer scenarios. It shows the harness works; do not quote its figures.');
  if (results.partial) lines.push('', `> **Partial run**: ${results.partial}.`);
  rawTables(results, lines);
  lines.push('', '#### Served over HTTP (load generator in its own process, 127.0.0.1)', '');
  lines.push(
    `\`auto\` is the default config (\`batching: { batcher: dynamic, maxBatchSize: <largest raw batch>, maxQueueDelayMs: auto }\`, no \`instances\`, no \`sessionOptions\`${Object.keys(settings.sessionOptions ?? {}).length > 0 ? ' — but this run set BENCH_THREADS' : ''})` +
      (results.scenarios.some((s) => s.config === 'tuned') ? '; `tuned` is the same with `instances` and `intraOpNumThreads` of the raw best point, set by hand (for reference, not judged).' : '.'),
    '',
  );
  lines.push(
    '| scenario | conns | samples/s | req/s | p50 ms | p90 ms | p99 ms | errors / non-2xx | mean batch | × raw best | × raw default | × naive JSON | × naive same protocol | CPU server / load / other |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const s of results.scenarios) {
    if (s.failed) {
      lines.push(`| ${s.id} | ${s.connections ?? ''} | failed: ${s.failed.replace(/\|/g, '\\|').slice(0, 120)} | | | | | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${s.id} | ${s.connections} | ${fmt(s.samplesPerSec)} | ${fmt(s.reqPerSec)} | ${ms(s.latencyMs.p50)} | ${ms(s.latencyMs.p90)} | ${ms(s.latencyMs.p99)} | ` +
        `${s.errors + s.timeouts} / ${s.non2xx} | ${s.meanBatchSize === null ? 'n/a' : fmt(s.meanBatchSize, 2)} | ${ratio(s.ratios.rawBest)} | ${ratio(s.ratios.rawDefault ?? s.ratios.rawBest)} | ${ratio(s.ratios.naiveJson)} | ` +
        `${ratio(s.ratios.naiveSameProtocol)} | ${pct(s.serverCpuPct)} / ${pct(s.loadCpuPct)} / ${pct(s.otherCpuPct)}${s.otherCpuPct > results.noisyOtherCpuPct ? ' ⚠' : ''} |`,
    );
  }
  if (results.skipped.length > 0) {
    lines.push('', 'Skipped:', '');
    for (const s of results.skipped) lines.push(`- \`${s.id}\`: ${s.reason}`);
  }
  lines.push('', '#### Targets', '', '| target | scenario | against | measured | result |', '| --- | --- | --- | ---: | --- |');
  for (const t of results.targets) {
    const verdict = `${t.pass === null ? 'not judged' : t.pass ? 'met' : '**missed**'}${t.pass !== null && t.disturbed ? ' (disturbed run: not conclusive)' : ''}`;
    const measured = t.measured === null ? 'n/a' : `${t.measured.toFixed(2)} ${t.unit}`;
    lines.push(`| ${t.target} | \`${t.scenario}\` | ${t.reference ?? ''} | ${measured} | ${verdict}${t.note ? ` — ${t.note}` : ''} |`);
  }
  return lines.join('\n');
}
