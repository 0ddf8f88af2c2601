// The LLM gateway benchmark's targets, judged on one run's results, the balance figures, and the
// Markdown written to docs/benchmarks.md between the bench-llm markers (or bench-<section>'s).
import { suiteMarkers } from './contest-report.mjs';

/** The markers of a named section: `llm` (the default), or e.g. `llm-h200` for a run made elsewhere. */
export const llmMarkers = (section) => suiteMarkers('llm', section ?? 'llm', 'BENCH_LLM_SECTION');

/** The first issue's targets, for the one-worker gateway: added TTFT at p50 and p99 (ms), tokens/s gateway ÷ direct. */
export const LLM_TARGETS = { addedP50Ms: 0.5, addedP99Ms: 2, tokensRatio: 0.97 };

/**
 * Issue 13's goals, for every gateway measured (one worker and several): added TTFT at p50 at most
 * `addedP50VsProxy` × what the bare proxy adds, and tokens/s at least `tokensRatio` × direct.
 */
export const WORKERS_TARGETS = { addedP50VsProxy: 2, tokensRatio: 0.99 };

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Coefficient of variation: standard deviation ÷ mean (0 = perfectly even). */
const cv = (xs) => {
  if (xs.length === 0) return null;
  const m = mean(xs);
  if (m === 0) return null;
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2))) / m;
};

/**
 * How evenly load went to the replicas: requests per replica over the window (max ÷ min, CV) and
 * the sequences each had in flight, sampled (the mean over the samples of each sample's CV and
 * max ÷ min across replicas).
 */
export function balanceFigures(requests, inFlightSamples) {
  const min = Math.min(...requests);
  const rows = inFlightSamples.filter((row) => row.some((v) => v > 0));
  const ratios = rows.filter((row) => Math.min(...row) > 0).map((row) => Math.max(...row) / Math.min(...row));
  return {
    requestsMaxOverMin: min > 0 ? Math.max(...requests) / min : null,
    requestsCv: cv(requests),
    inFlightCvMean: rows.length ? mean(rows.map(cv)) : null,
    inFlightMaxOverMinMean: ratios.length ? mean(ratios) : null,
  };
}

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

/** Every gateway a comparison measured (results from before several gateways: the one). */
export function gatewaysOf(cmp) {
  return cmp.gateways ?? [{ target: 'gateway', workers: 1, figures: cmp.gateway, addedTtftMs: cmp.addedTtftMs, tokensRatio: cmp.tokensRatio, addedP50VsProxy: null }];
}

const workersLabel = (g) => `${g.workers} worker${g.workers === 1 ? '' : 's'}`;

/** Issue 13's two goals for each gateway at each concurrency of the paced phase. */
function workersTargets(results) {
  const targets = [];
  for (const cmp of results.paced) {
    const c = cmp.concurrency;
    for (const g of gatewaysOf(cmp)) {
      const proxyP50 = cmp.proxyAddedTtftMs?.p50 ?? null;
      const bound = proxyP50 === null ? null : WORKERS_TARGETS.addedP50VsProxy * Math.max(proxyP50, 0);
      targets.push({
        id: `workers-added-ttft-p50/c${c}/${g.target}`,
        target: `${g.target} (${workersLabel(g)}): added TTFT at p50 ≤ ${WORKERS_TARGETS.addedP50VsProxy} × the bare proxy's`,
        concurrency: c,
        measured: g.addedTtftMs.p50,
        unit: 'ms',
        threshold: bound,
        pass: g.addedTtftMs.p50 === null || bound === null ? null : g.addedTtftMs.p50 <= bound,
        disturbed: cmp.disturbed,
        note: proxyP50 === null ? 'no bare proxy measured (BENCH_LLM_PROXY=0)' : `bare proxy adds ${signed(proxyP50)} ms, so ≤ ${ms3(bound)} ms; ${g.addedP50VsProxy === null ? '' : `${g.addedP50VsProxy.toFixed(2)}× the proxy's`}`,
      });
      targets.push({
        id: `workers-tokens-ratio/c${c}/${g.target}`,
        target: `${g.target} (${workersLabel(g)}): streamed tokens/s ≥ ${WORKERS_TARGETS.tokensRatio} × direct`,
        concurrency: c,
        measured: g.tokensRatio,
        unit: '× direct',
        threshold: WORKERS_TARGETS.tokensRatio,
        pass: g.tokensRatio === null ? null : g.tokensRatio >= WORKERS_TARGETS.tokensRatio,
        disturbed: cmp.disturbed,
        note: `${f0(g.figures.tokensPerSec)} vs direct ${f0(cmp.direct.tokensPerSec)} tokens/s; ${f1(g.figures.cpu.middleUsPerToken)} µs of gateway CPU per token${cmp.proxy ? ` (bare proxy ${f1(cmp.proxy.cpu.middleUsPerToken)}, ${ratio(cmp.proxyTokensRatio)} direct)` : ''}`,
      });
    }
  }
  return targets;
}

/** Judges issue 13's goals for every gateway, then the first issue's three targets for the first gateway, at every concurrency of the paced phase. */
export function evaluateLlmTargets(results) {
  const targets = workersTargets(results);
  for (const cmp of results.paced) {
    const c = cmp.concurrency;
    const disturbed = cmp.disturbed;
    const spread = (key) => {
      const vals = cmp.pairs.map((p) => p[key]).filter((v) => v !== null);
      return vals.length ? ` (per round: ${vals.map((v) => signed(v)).join(', ')} ms)` : '';
    };
    targets.push({
      id: `added-ttft-p50/c${c}`,
      target: `${cmp.gatewayTarget ?? 'gateway'}: added TTFT at p50 ≤ ${LLM_TARGETS.addedP50Ms} ms`,
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
      target: `${cmp.gatewayTarget ?? 'gateway'}: added TTFT at p99 ≤ ${LLM_TARGETS.addedP99Ms} ms`,
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
      target: `${cmp.gatewayTarget ?? 'gateway'}: streamed tokens/s ≥ ${LLM_TARGETS.tokensRatio} × direct`,
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
  const gws = gatewaysOf(cmp);
  // columns: direct, the bare proxy, then each gateway
  const cols = [{ head: 'direct', f: d }, ...(x ? [{ head: 'bare proxy', f: x }] : []), ...gws.map((g) => ({ head: `${g.target === 'gateway' ? 'gateway' : g.target} (${workersLabel(g)})`, f: g.figures, g }))];
  const lines = [`| figure | ${cols.map((c) => c.head).join(' | ')} |`, `| --- |${' ---: |'.repeat(cols.length)}`];
  const row = (label, cell) => lines.push(`| ${label} | ${cols.map((c) => cell(c.f, c)).join(' | ')} |`);
  const middle = (c) => c.f !== d;
  for (const [label, key] of [
    ['TTFT p50 (ms)', 'p50'],
    ['TTFT p90 (ms)', 'p90'],
    ['TTFT p99 (ms)', 'p99'],
    ['TTFT mean (ms)', 'mean'],
  ]) {
    row(label, (f) => ms3(f.ttftMs[key]));
  }
  row('**added TTFT p50 vs direct (ms)**', (f, c) => (middle(c) ? `**${signed(f.ttftMs.p50 - d.ttftMs.p50)}**` : '—'));
  row('added TTFT p99 vs direct (ms)', (f, c) => (middle(c) ? signed(f.ttftMs.p99 - d.ttftMs.p99) : '—'));
  if (x) row("added TTFT p50 ÷ the bare proxy's", (f, c) => (c.g ? ratio(c.g.addedP50VsProxy) : '—'));
  row('TTFT samples (requests)', (f) => String(f.ttftMs.count));
  row('streamed tokens/s (all streams)', (f) => f0(f.tokensPerSec));
  row('**tokens/s ÷ direct**', (f, c) => (middle(c) ? `**${ratio(d.tokensPerSec > 0 ? f.tokensPerSec / d.tokensPerSec : null)}**` : '—'));
  row('tokens/s per stream (p50)', (f) => f1(f.perStreamTokensPerSec));
  row('request duration p50 (ms)', (f) => ms2(f.durationMsP50));
  row('errors', (f) => String(f.errors));
  row("stand-in's own TTFT, mean (ms, its /metrics)", (f) => ms3(f.engineTtftMs));
  row('CPU, % of a core: stand-in', (f) => pct(f.cpu.standInPct));
  row('CPU, % of a core: process in the middle (a gateway: primary + workers)', (f, c) => (c.g ? pct(f.cpu.gatewayPct) : c.f === x ? pct(f.cpu.proxyPct) : '—'));
  row('**CPU µs per streamed token: process in the middle**', (f, c) => (middle(c) ? `**${f1(f.cpu.middleUsPerToken)}**` : '—'));
  row('CPU, % of a core: load generator', (f) => pct(f.cpu.loadPct));
  row('CPU, % of a core: other processes / kernel & unattributed', (f) => `${pct(f.cpu.otherProcsPct)} / ${pct(pos(f.cpu.unattributedPct))}`);
  row(`machine busy (% of all ${cmp.cores} cores)`, (f) => pct(f.cpu.machineBusyPct));
  return lines;
}

function roundsTable(cmp) {
  const lines = ['| round | contender | TTFT p50 ms | TTFT p99 ms | tokens/s | CPU stand-in / middle / load / other procs | attempt |', '| ---: | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const p of cmp.points) {
    const middle = p.target.startsWith('gateway') ? p.cpu.gatewayPct : p.target === 'proxy' ? p.cpu.proxyPct : null;
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
      `${settings.gateways?.length ? `gateways by \`server.workers\`: ${settings.gateways.map((g) => `${g.target} (${g.asked === String(g.workers) ? g.workers : `${g.asked} = ${g.workers}`})`).join(', ')}, several workers at concurrency ${settings.workersAt.join(', ')}; ` : ''}` +
      `each window ${settings.durationS} s after ${settings.warmupS} s warm-up, kept open until ${settings.minRequests} requests started in it (at most ${settings.maxDurationS} s); ` +
      `a window disturbed by other processes is measured again up to ${settings.retries} time(s); ` +
      `gateway log level \`${settings.logLevel}\`; versions: undici ${results.versions.undici}, @tessera/core ${results.versions.core}, @tessera/backend-vllm ${results.versions.backendVllm}`,
  );
  lines.push('');
  lines.push(
    `> **Caveat: ${machine.cores} cores for three processes.** The load generator, the stand-in and the gateway (or the proxy) share the same ${machine.cores} cores. ` +
      'In a gateway run, the gateway\'s CPU time is taken from the cores the stand-in and the load generator also need, so part of the "added" TTFT is ' +
      "CPU contention and process wake-up latency that a gateway on its own cores would not see. The bare proxy column measures that floor: it does nothing but pass bytes, so what it adds, any gateway adds on this machine; what a gateway adds beyond it is Tessera's own share.",
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
    lines.push('| streams | gateway | chunks/s direct | chunks/s bare proxy | chunks/s gateway | gateway ÷ direct | gateway ÷ proxy | TTFT p50 direct / proxy / gateway (ms) | CPU µs per chunk: proxy / gateway | CPU % gateway run: stand-in / gateway / load |');
    lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const cmp of results.ceiling) {
      const d = cmp.direct;
      const x = cmp.proxy;
      for (const gw of gatewaysOf(cmp)) {
        const g = gw.figures;
        lines.push(
          `| ${cmp.concurrency} | ${gw.target} (${workersLabel(gw)}) | ${f0(d.tokensPerSec)} | ${f0(x?.tokensPerSec)} | ${f0(g.tokensPerSec)} | ${ratio(gw.tokensRatio)} | ${ratio(x ? g.tokensPerSec / x.tokensPerSec : null)} | ` +
            `${ms3(d.ttftMs.p50)} / ${ms3(x?.ttftMs.p50)} / ${ms3(g.ttftMs.p50)} | ${f1(x?.cpu.middleUsPerToken)} / ${f1(g.cpu.middleUsPerToken)} | ${pct(g.cpu.standInPct)} / ${pct(g.cpu.gatewayPct)} / ${pct(g.cpu.loadPct)} |`,
        );
      }
    }
  }

  if (results.balance?.length > 0) {
    const b0 = results.balance[0];
    lines.push('', `#### Least-loaded balance with several workers (${b0.replicas} paced stand-ins, ${b0.concurrency} streams; no target)`, '');
    lines.push(
      `One window per gateway on a model whose \`upstreams\` are ${b0.replicas} stand-ins (paced as above), \`balance.strategy: least-loaded\` (the default). ` +
        'Read from the stand-ins themselves: the requests each received during the window, and the sequences each had in flight, sampled every 250 ms. ' +
        "Each worker balances with its own in-flight counts and the replicas' scraped queues (every `health.interval`), so with several workers the spread may widen. " +
        'Max ÷ min = 1 and CV (standard deviation ÷ mean) = 0 are perfectly even.',
      '',
    );
    lines.push('| gateway | requests per replica | requests max ÷ min | requests CV | in flight per replica (mean) | in flight: mean CV | in flight: mean max ÷ min | samples | tokens/s | TTFT p50 (ms) | errors |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const b of results.balance) {
      lines.push(
        `| ${b.target} (${workersLabel(b)}) | ${b.requests.join(' / ')} | ${ratio(b.requestsMaxOverMin)} | ${b.requestsCv === null ? 'n/a' : b.requestsCv.toFixed(3)} | ${b.meanInFlight.map((v) => f1(v)).join(' / ')} | ` +
          `${b.inFlightCvMean === null ? 'n/a' : b.inFlightCvMean.toFixed(3)} | ${ratio(b.inFlightMaxOverMinMean)} | ${b.samples} | ${f0(b.tokensPerSec)} | ${ms3(b.ttftMs?.p50)} | ${b.errors} |`,
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
