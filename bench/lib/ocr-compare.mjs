// The OCR suite's comparison across machines (2 cores here, 16 on the device machine, …): one
// table filled from the results files that the OCR sections of docs/benchmarks.md were rendered
// from, written between the bench-ocr-compare markers whenever one of those sections is written.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { choiceShort, rawReferences, threadsLabel } from './report.mjs';

export const COMPARE_MARKERS = { start: '<!-- bench-ocr-compare:start -->', end: '<!-- bench-ocr-compare:end -->' };

/** The start markers of the OCR suite's sections: this machine's (`bench:start`) and the named ones (`bench-ocr-<name>:start`). */
const SECTION_START = /<!-- (bench|bench-ocr-(?!compare:)[\w-]+):start -->/g;

/**
 * The results file of each OCR section of `docs` (the Markdown text): the first
 * `bench/results/….json` between its markers, in the page's order.
 */
export function ocrSectionFiles(docs) {
  const out = [];
  for (const m of docs.matchAll(SECTION_START)) {
    const name = m[1];
    const end = docs.indexOf(`<!-- ${name}:end -->`, m.index);
    if (end < 0) continue;
    const file = /bench\/results\/[\w.-]+\.json/.exec(docs.slice(m.index, end))?.[0];
    if (file) out.push({ section: name === 'bench' ? 'ocr' : name.slice('bench-'.length), file });
  }
  return out;
}

/** The results files of the OCR sections that exist under `root`, parsed (unreadable ones left out). */
export function loadSectionResults(docs, root) {
  const out = [];
  for (const { section, file } of ocrSectionFiles(docs)) {
    const full = path.join(root, file);
    if (!existsSync(full)) continue;
    try {
      out.push({ section, results: JSON.parse(readFileSync(full, 'utf8')) });
    } catch {
      // not a results file we can read: left out of the comparison
    }
  }
  return out;
}

const fmt = (v) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(0) : 'n/a');
const times = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');
const msOver = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(2)} ms` : 'n/a');

/** One row per model of one results file: raw default and raw best, the default config served, the ratios. */
export function comparisonRows(results) {
  const conns = results.settings.connections;
  const high = Math.max(...conns);
  const low = Math.min(...conns);
  const find = (id, c) => results.scenarios.find((s) => s.id === id && s.connections === c && !s.failed);
  return Object.keys(results.models).map((model) => {
    const refs = rawReferences(results.raw[model]);
    const served = find(`tessera-binary/${model}/auto`, high);
    const servedLow = find(`tessera-binary/${model}/auto`, low);
    const tuned = find(`tessera-binary/${model}/tuned`, high);
    return {
      model,
      cores: results.machine.cores,
      rawDefault: refs?.default?.samplesPerSec ?? null,
      rawDefaultBatch: refs?.default?.batch ?? null,
      rawBest: refs?.best?.samplesPerSec ?? null,
      rawBestPoint: refs?.best ? `${refs.best.sessions} × ${threadsLabel(refs.best.threads, results.settings)}, batch ${refs.best.batch}${refs.swept ? '' : '; not swept'}` : 'n/a',
      high,
      low,
      served: served?.samplesPerSec ?? null,
      vsBest: served && refs?.best ? served.samplesPerSec / refs.best.samplesPerSec : null,
      vsDefault: served && refs?.default ? served.samplesPerSec / refs.default.samplesPerSec : null,
      tunedVsBest: tuned && refs?.best ? tuned.samplesPerSec / refs.best.samplesPerSec : null,
      c1OverRaw: servedLow && refs?.batch1 !== null && refs?.batch1 !== undefined ? servedLow.latencyMs.p50 - refs.batch1 : null,
      choice: results.serverChoice?.[model]?.auto ?? null,
      defaultConfig: Object.keys(results.settings.sessionOptions ?? {}).length === 0,
    };
  });
}

/** The comparison block: the table, then where each column comes from and each run's command. */
export function renderComparison(entries) {
  const sorted = [...entries].sort((a, b) => a.results.machine.cores - b.results.machine.cores);
  const lines = [];
  if (sorted.length === 0) return 'No OCR results file is referenced by the sections below yet.';
  const anyTuned = sorted.some(({ results }) => results.scenarios.some((s) => s.config === 'tuned'));
  lines.push(
    `| cores | run | model | raw default (1 session, default threads) | raw best (sessions × threads, batch) | served, default config (binary, max conns) | × raw best | × raw default |${anyTuned ? ' `tuned` × raw best |' : ''} c=1 p50 − raw batch-1 p50 | server's choice (default config): instances × threads |`,
    `| ---: | --- | --- | ---: | --- | ---: | ---: | ---: |${anyTuned ? ' ---: |' : ''} ---: | --- |`,
  );
  for (const { section, results } of sorted) {
    for (const r of comparisonRows(results)) {
      lines.push(
        `| ${r.cores} | ${results.date.slice(0, 10)}, \`${section}\` | ${r.model} | ${fmt(r.rawDefault)}/s (batch ${r.rawDefaultBatch ?? 'n/a'}) | ${fmt(r.rawBest)}/s (${r.rawBestPoint}) | ${fmt(r.served)}/s @${r.high}${r.defaultConfig ? '' : ' (BENCH_THREADS set)'} | ` +
          `${times(r.vsBest)} | ${times(r.vsDefault)} |${anyTuned ? ` ${times(r.tunedVsBest)} |` : ''} ${msOver(r.c1OverRaw)} | ${r.choice ? choiceShort(r.choice) : 'not recorded'} |`,
      );
    }
  }
  lines.push('', 'Targets: × raw best ≥ 0.9 and c=1 p50 − raw batch-1 p50 (one session, default threads) ≤ +0.3 ms. Runs:', '');
  for (const { section, results } of sorted) {
    lines.push(`- ${results.machine.cores} cores, ${results.date.slice(0, 10)}: \`${results.command}\` — [\`${results.file}\`](../${results.file}) (section \`${section}\`${results.partial ? `; partial: ${results.partial}` : ''})`);
  }
  return lines.join('\n');
}
