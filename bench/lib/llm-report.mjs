// The LLM gateway benchmark's targets, judged on one run's results, and the Markdown written to
// docs/benchmarks.md between the bench-llm markers.

export const LLM_MARKER_START = '<!-- bench-llm:start -->';
export const LLM_MARKER_END = '<!-- bench-llm:end -->';

/** The issue's targets: added TTFT at p50 and p99 (ms), tokens/s gateway ÷ direct. */
export const LLM_TARGETS = { addedP50Ms: 0.5, addedP99Ms: 2, tokensRatio: 0.97 };

const ms3 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(3));
const ms2 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(2));
const f0 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const f1 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(1));
const pct = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : `${Math.round(v)}%`);
const signed = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`);
// "kernel & unattributed" is a difference of readings taken a few ms apart: small negatives are 0
const pos = (v) => (v === null || v === undefined ? v : Math.max(0, v));
const ratio = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : `${v.toFixed(3)}×`);

/** What the bare proxy added at the same percentile: the floor on this machine. */
const floor = (cmp, key) => (cmp.proxyAddedTtftMs ? `; bare proxy adds ${signed(cmp.proxyAddedTtftMs[key])} ms` : '');

/** Judges the three targets at every concurrency of the paced phase. */
export function evaluateLlmTargets(results) {
  const targets = [];
  for (const cmp of results.paced) {
    const c = cmp.concurrency;
    const disturbed = cmp.disturbed;
    const spread = (key) => {
      const vals = cmp.pairs.map((p) => p[key]).filter((v) => v !== null);
      return vals.length ? ` (per round: ${vals.map((v) => signed(v)).join(', ')} ms)` : '';
    };
    targets.push({
      id: `added-ttft-p50/c${c}`,
      target: `added TTFT at p50 ≤ ${LLM_TARGETS.addedP50Ms} ms`,
      concurrency: c,
      measured: cmp.addedTtftMs.p50,
      unit: 'ms',
      threshold: LLM_TARGETS.addedP50Ms,
      pass: cmp.addedTtftMs.p50 === null ? null : cmp.addedTtftMs.p50 <= LLM_TARGETS.addedP50Ms,
      disturbed,
      note: `gateway ${ms3(cmp.gateway.ttftMs.p50)} ms vs direct ${ms3(cmp.direct.ttftMs.p50)} ms${spread('addedP50')}${floor(cmp, 'p50')}`,
    });
    targets.push({
      id: `added-ttft-p99/c${c}`,
      target: `added TTFT at p99 ≤ ${LLM_TARGETS.addedP99Ms} ms`,
      concurrency: c,
      measured: cmp.addedTtftMs.p99,
      unit: 'ms',
      threshold: LLM_TARGETS.addedP99Ms,
      pass: cmp.addedTtftMs.p99 === null ? null : cmp.addedTtftMs.p99 <= LLM_TARGETS.addedP99Ms,
      disturbed,
      note: `gateway ${ms3(cmp.gateway.ttftMs.p99)} ms vs direct ${ms3(cmp.direct.ttftMs.p99)} ms${spread('addedP99')}${floor(cmp, 'p99')}`,
    });
    const pairs = cmp.pairs.map((p) => p.tokensRatio).filter((v) => v !== null);
    targets.push({
      id: `tokens-ratio/c${c}`,
      target: `streamed tokens/s ≥ ${LLM_TARGETS.tokensRatio} × direct`,
      concurrency: c,
      measured: cmp.tokensRatio,
      unit: '× direct',
      threshold: LLM_TARGETS.tokensRatio,
      pass: cmp.tokensRatio === null ? null : cmp.tokensRatio >= LLM_TARGETS.tokensRatio,
      disturbed,
      note: `gateway ${f0(cmp.gateway.tokensPerSec)} vs direct ${f0(cmp.direct.tokensPerSec)} tokens/s${pairs.length ? ` (per round: ${pairs.map((v) => v.toFixed(3)).join(', ')})` : ''}${cmp.proxy ? `; bare proxy ${ratio(cmp.proxyTokensRatio)}` : ''}`,
    });
  }
  return targets;
}

function figuresTable(cmp) {
  const d = cmp.direct;
  const x = cmp.proxy;
  const g = cmp.gateway;
  const lines = [];
  const px = (v) => (x ? ` ${v} |` : '');
  lines.push(`| figure | direct |${x ? ' bare proxy |' : ''} gateway | gateway − direct |${x ? ' gateway − proxy |' : ''}`);
  lines.push(`| --- | ---: |${x ? ' ---: |' : ''} ---: | ---: |${x ? ' ---: |' : ''}`);
  for (const [label, key] of [
    ['TTFT p50 (ms)', 'p50'],
    ['TTFT p90 (ms)', 'p90'],
    ['TTFT p99 (ms)', 'p99'],
    ['TTFT mean (ms)', 'mean'],
  ]) {
    lines.push(`| ${label} | ${ms3(d.ttftMs[key])} |${px(ms3(x?.ttftMs[key]))} ${ms3(g.ttftMs[key])} | **${signed(g.ttftMs[key] - d.ttftMs[key])}** |${px(signed(g.ttftMs[key] - x?.ttftMs[key]))}`);
  }
  lines.push(`| TTFT samples (requests) | ${d.ttftMs.count} |${px(x?.ttftMs.count)} ${g.ttftMs.count} | |${px('')}`);
  lines.push(`| streamed tokens/s (all streams) | ${f0(d.tokensPerSec)} |${px(f0(x?.tokensPerSec))} ${f0(g.tokensPerSec)} | **${ratio(cmp.tokensRatio)}** |${px(ratio(x ? g.tokensPerSec / x.tokensPerSec : null))}`);
  lines.push(`| tokens/s per stream (p50) | ${f1(d.perStreamTokensPerSec)} |${px(f1(x?.perStreamTokensPerSec))} ${f1(g.perStreamTokensPerSec)} | ${ratio(g.perStreamTokensPerSec / d.perStreamTokensPerSec)} |${px('')}`);
  lines.push(`| request duration p50 (ms) | ${ms2(d.durationMsP50)} |${px(ms2(x?.durationMsP50))} ${ms2(g.durationMsP50)} | ${signed(g.durationMsP50 - d.durationMsP50, 2)} |${px('')}`);
  lines.push(`| errors | ${d.errors} |${px(x?.errors)} ${g.errors} | |${px('')}`);
  lines.push(`| stand-in's own TTFT, mean (ms, its /metrics) | ${ms3(d.engineTtftMs)} |${px(ms3(x?.engineTtftMs))} ${ms3(g.engineTtftMs)} | ${signed(g.engineTtftMs - d.engineTtftMs)} |${px('')}`);
  lines.push(`| CPU, % of a core: stand-in | ${pct(d.cpu.standInPct)} |${px(pct(x?.cpu.standInPct))} ${pct(g.cpu.standInPct)} | |${px('')}`);
  lines.push(`| CPU, % of a core: process in the middle | — |${px(pct(x?.cpu.proxyPct))} ${pct(g.cpu.gatewayPct)} | |${px('')}`);
  lines.push(`| CPU µs per streamed token: process in the middle | — |${px(f1(x?.cpu.middleUsPerToken))} ${f1(g.cpu.middleUsPerToken)} | |${px('')}`);
  lines.push(`| CPU, % of a core: load generator | ${pct(d.cpu.loadPct)} |${px(pct(x?.cpu.loadPct))} ${pct(g.cpu.loadPct)} | |${px('')}`);
  lines.push(`| CPU, % of a core: other processes / kernel & unattributed | ${pct(d.cpu.otherProcsPct)} / ${pct(pos(d.cpu.unattributedPct))} |${px(`${pct(x?.cpu.otherProcsPct)} / ${pct(pos(x?.cpu.unattributedPct))}`)} ${pct(g.cpu.otherProcsPct)} / ${pct(pos(g.cpu.unattributedPct))} | |${px('')}`);
  lines.push(`| machine busy (% of all ${cmp.cores} cores) | ${pct(d.cpu.machineBusyPct)} |${px(pct(x?.cpu.machineBusyPct))} ${pct(g.cpu.machineBusyPct)} | |${px('')}`);
  return lines;
}

function roundsTable(cmp) {
  const lines = ['| round | contender | TTFT p50 ms | TTFT p99 ms | tokens/s | CPU stand-in / middle / load / other procs | attempt |', '| ---: | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const p of cmp.points) {
    const middle = p.target === 'gateway' ? p.cpu.gatewayPct : p.target === 'proxy' ? p.cpu.proxyPct : null;
    lines.push(
      `| ${p.round} | ${p.target} | ${ms3(p.ttftMs.p50)} | ${ms3(p.ttftMs.p99)} | ${f0(p.tokensPerSec)} | ${pct(p.cpu.standInPct)} / ${middle === null ? '—' : pct(middle)} / ${pct(p.cpu.loadPct)} / ${pct(p.cpu.otherProcsPct)}${p.disturbed ? ' ⚠' : ''} | ${p.attempt ?? 1} |`,
    );
  }
  return lines;
}

/** The Markdown block between the markers. */
export function renderLlmMarkdown(results) {
  const { machine, settings } = results;
  const lines = [];
  lines.push(`Generated by \`bench/llm.mjs\` on ${results.date.slice(0, 10)} — results file [\`${results.file}\`](../${results.file}).`, '');
  lines.push(`- **Command:** \`${results.command}\``);
  lines.push(`- **Machine:** ${machine.cpu}, ${machine.cores} cores (\`os.cpus().length\`), ${machine.memGiB} GiB, Node ${machine.node} (${machine.platform})`);
  lines.push(
    `- **Load average:** ${machine.loadavgAtStart.map((v) => v.toFixed(2)).join(', ')} at the start, ${machine.loadavgAtEnd?.map((v) => v.toFixed(2)).join(', ') ?? 'n/a'} at the end. ` +
      `${results.disturbedPoints > 0 ? `**${results.disturbedPoints} point(s) ran while other processes used over ${results.noisyOtherCpuPct}% of a core** (⚠): figures disturbed.` : `No point ran next to other processes using over ${results.noisyOtherCpuPct}% of a core.`}`,
  );
  lines.push(
    `- **Settings:** stand-in TTFT ${settings.ttftMs} ms, ${settings.tokenDelayMs} ms between tokens, \`max_tokens\` ${settings.maxTokens}, \`--max-num-seqs\` ${settings.maxNumSeqs}; ` +
      `concurrency ${settings.concurrency.join(', ')}; ${settings.rounds} rounds of ${settings.proxy ? 'direct, bare proxy, gateway' : 'direct, gateway'} (${(settings.proxy ? 'ABC' : 'AB').repeat(settings.rounds)}), ` +
      `each window ${settings.durationS} s after ${settings.warmupS} s warm-up, kept open until ${settings.minRequests} requests started in it (at most ${settings.maxDurationS} s); ` +
      `a window disturbed by other processes is measured again up to ${settings.retries} time(s); ` +
      `gateway log level \`${settings.logLevel}\`; versions: undici ${results.versions.undici}, @tessera/core ${results.versions.core}, @tessera/backend-vllm ${results.versions.backendVllm}`,
  );
  lines.push('');
  lines.push(
    `> **Caveat: ${machine.cores} cores for three processes.** The load generator, the stand-in and the gateway (or the proxy) share the same ${machine.cores} cores. ` +
      'In a gateway run, the gateway\'s CPU time is taken from the cores the stand-in and the load generator also need, so part of the "added" TTFT is ' +
      "CPU contention and process wake-up latency that a gateway on its own cores would not see. The bare proxy column measures that floor: it does nothing but pass bytes, so what it adds, any gateway adds on this machine; the gateway − proxy column is Tessera's own share.",
  );
  if (settings.quick) lines.push('', '> **Smoke run** (`BENCH_QUICK=1`): short windows. It shows the harness works; do not quote its figures.');

  lines.push('', '#### Targets', '', '| target | concurrency | measured | result |', '| --- | ---: | ---: | --- |');
  for (const t of results.targets) {
    const verdict = `${t.pass === null ? 'not judged' : t.pass ? 'met' : '**missed**'}${t.pass !== null && t.disturbed ? ' (disturbed run: not conclusive)' : ''}`;
    const measured = t.measured === null ? 'n/a' : t.unit === 'ms' ? `${signed(t.measured)} ms` : `${t.measured.toFixed(3)} ${t.unit}`;
    lines.push(`| ${t.target} | ${t.concurrency} | ${measured} | ${verdict} — ${t.note} |`);
  }

  for (const cmp of results.paced) {
    lines.push('', `#### ${cmp.concurrency} concurrent stream${cmp.concurrency === 1 ? '' : 's'} (paced: ${settings.ttftMs} ms TTFT, ${settings.tokenDelayMs} ms per token)`, '');
    lines.push('Rounds pooled: percentiles over every request of all rounds of a contender; CPU summed over the measured windows. p99 is nearest-rank over the samples shown.', '');
    lines.push(...figuresTable(cmp));
    lines.push('', '<details><summary>Per round (drift)</summary>', '');
    lines.push(...roundsTable(cmp));
    lines.push('', '</details>');
  }

  if (results.ceiling.length > 0) {
    lines.push('', `#### Streaming ceiling (stand-in without delays: TTFT 0, 0 ms per token; no target)`, '');
    lines.push(
      'How many chunks per second get through when the stand-in generates as fast as it can. Direct, two processes (stand-in, load generator) share the cores; through the proxy or the gateway, three do, so these ratios measure CPU cost per chunk more than latency.',
      '',
    );
    lines.push('| streams | chunks/s direct | chunks/s bare proxy | chunks/s gateway | gateway ÷ direct | gateway ÷ proxy | TTFT p50 direct / proxy / gateway (ms) | CPU µs per chunk: proxy / gateway | CPU % gateway run: stand-in / gateway / load |');
    lines.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const cmp of results.ceiling) {
      const d = cmp.direct;
      const x = cmp.proxy;
      const g = cmp.gateway;
      lines.push(
        `| ${cmp.concurrency} | ${f0(d.tokensPerSec)} | ${f0(x?.tokensPerSec)} | ${f0(g.tokensPerSec)} | ${ratio(cmp.tokensRatio)} | ${ratio(x ? g.tokensPerSec / x.tokensPerSec : null)} | ` +
          `${ms3(d.ttftMs.p50)} / ${ms3(x?.ttftMs.p50)} / ${ms3(g.ttftMs.p50)} | ${f1(x?.cpu.middleUsPerToken)} / ${f1(g.cpu.middleUsPerToken)} | ${pct(g.cpu.standInPct)} / ${pct(g.cpu.gatewayPct)} / ${pct(g.cpu.loadPct)} |`,
      );
    }
  }

  if (results.profile) {
    const p = results.profile;
    lines.push('', `#### Where the gateway's CPU goes (\`--cpu-prof\`, ${p.concurrency} streams, ${p.durationS} s, paced)`, '');
    if (p.error) lines.push(`Profiling failed: ${p.error}`);
    else {
      lines.push(
        `A separate run through a fresh gateway started with \`--cpu-prof\` (profiling slows it: ${f0(p.tokensPerSec)} tokens/s, TTFT p50 ${ms2(p.ttftMs?.p50)} ms in this run), ` +
          `only the measured window counted. Main thread: ${f0(p.busyMs)} ms busy of ${f0(p.sampledMs)} ms sampled (${pct((p.busyMs / p.sampledMs) * 100)}). Self time by module:`,
        '',
      );
      lines.push('| module | self ms | % of busy |', '| --- | ---: | ---: |');
      for (const m of p.modules.slice(0, 12)) lines.push(`| ${m.name} | ${f1(m.ms)} | ${f1(m.pctOfBusy)}% |`);
      lines.push('', 'Top functions by self time:', '', '| function (file:line) | self ms | % of busy |', '| --- | ---: | ---: |');
      for (const f of p.self.slice(0, 15)) lines.push(`| \`${f.name.replace(/\|/g, '\\|')}\` | ${f1(f.ms)} | ${f1(f.pctOfBusy)}% |`);
      const mine = (p.ownInclusive ?? []).slice(0, 12);
      if (mine.length) {
        lines.push('', "Tessera's own functions by inclusive time (their callees included):", '', '| function (file:line) | inclusive ms | % of busy |', '| --- | ---: | ---: |');
        for (const f of mine) lines.push(`| \`${f.name.replace(/\|/g, '\\|')}\` | ${f1(f.ms)} | ${f1(f.pctOfBusy)}% |`);
      }
    }
  }
  return lines.join('\n');
}
