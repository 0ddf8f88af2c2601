// bench/reload.mjs: the reload's figures summed up per model (SIGHUP → the new version serving
// against a cold start on the same config, both from the same run), the issue's requirement judged
// (no request failed while the config reloaded), and the Markdown written to docs/benchmarks.md
// between the bench-reload markers.

import { finite, fixed, sectionHead, suiteMarkers, whole } from './contest-report.mjs';

/** The markers of a named section: `reload` (the default), or e.g. `reload-h200` for a run made elsewhere. */
export const reloadMarkers = (section) => suiteMarkers('reload', section);

/** Issue 12: a reload applies "without dropping or failing a request". */
export const RELOAD_TARGETS = { failedRequests: 0 };

/** Median, least and largest of the finite values (nulls when there are none). */
export function spread(values) {
  const v = values.filter(finite).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, median: null, min: null, max: null };
  const mid = v.length >> 1;
  return { n: v.length, median: v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2, min: v[0], max: v[v.length - 1] };
}

const ratio = (a, b) => (finite(a) && finite(b) && b > 0 ? a / b : null);

/** Per model: the reloads' and the cold starts' spreads, the restart ÷ reload ratios, failures; and the targets. */
export function evaluateReload(results) {
  const models = [];
  const targets = [];
  for (const p of results.phases) {
    const r = p.reloads;
    const cold = (label) => {
      const runs = p.restarts.filter((x) => x.config === label);
      return { runs: runs.length, answeredMs: spread(runs.map((x) => x.answeredMs)), firstHttpMs: spread(runs.map((x) => x.firstHttpMs)), serverReadyMs: spread(runs.map((x) => x.serverReadyMs)) };
    };
    const s = {
      model: p.model,
      name: p.name,
      reloads: r.length,
      versions: p.finalVersions.length,
      servedMs: spread(r.map((x) => x.servedMs)),
      indexMs: spread(r.map((x) => x.indexMs)),
      logMs: spread(r.map((x) => x.logMs)),
      firstArrivedMs: spread(r.map((x) => x.firstArrivedMs)),
      p99Ratio: spread(r.map((x) => x.p99Ratio)),
      duringAnswers: r.reduce((n, x) => n + (x.during?.answers ?? 0), 0),
      duringFailed: r.reduce((n, x) => n + (x.during?.failed ?? 0), 0),
      loadAnswers: p.load?.answers ?? 0,
      loadFailed: p.load ? p.load.whole.failed : null,
      restartNewest: cold('newest'),
      restartFinal: cold('final'),
    };
    s.speedup = ratio(s.restartNewest.answeredMs.median, s.servedMs.median);
    s.speedupFinal = ratio(s.restartFinal.answeredMs.median, s.servedMs.median);
    models.push(s);
    const failed = s.loadFailed ?? s.duringFailed;
    targets.push({
      id: `failed/${p.model}`,
      model: p.model,
      target: `${p.name}: no request fails while the config reloads`,
      verdict: p.load === null ? 'n/a' : failed === RELOAD_TARGETS.failedRequests ? 'met' : 'missed',
      value: failed,
      summary: `${whole(failed)} of ${whole(s.loadAnswers)} answers of the steady load failed (${whole(s.duringFailed)} of the ${whole(s.duringAnswers)} sent during the ${s.reloads} reloads)`,
    });
  }
  return { models, targets };
}

const ms = (v, d = 0) => (finite(v) ? `${fixed(v, d)} ms` : 'n/a');
const times = (v) => (finite(v) ? `${fixed(v, v >= 10 ? 0 : 1)}×` : 'n/a');
const range = (sp, d = 0) => (sp.n === 0 ? 'n/a' : sp.n === 1 ? fixed(sp.median, d) : `${fixed(sp.median, d)} (${fixed(sp.min, d)} … ${fixed(sp.max, d)})`);

/** The log line of one reload. */
export function reloadLine(r) {
  return `  reload ${r.reload} → v${r.version} (generation ${r.generation}): index ${ms(r.indexMs, 1)}, first v${r.version} answer ${ms(r.servedMs, 1)} (server log: the first request v${r.version} answered arrived at ${ms(r.firstArrivedMs)}), log ${ms(r.logMs)} (${r.inferPolls} infer polls, ${r.indexPolls} index polls)`;
}

/** The log line of one cold start. */
export function restartLine(r, version) {
  return `  cold start (${r.config === 'final' ? 'final config' : 'newest version only'}) ${r.run}: first HTTP answer ${ms(r.firstHttpMs)}, server ready ${ms(r.serverReadyMs)}, v${version} answering ${ms(r.answeredMs)}`;
}

/** The headline of one model. */
export function summaryLine(s) {
  return `${s.name}: reload ${ms(s.servedMs.median)} vs restart ${ms(s.restartNewest.answeredMs.median)} (${times(s.speedup)}; restart on the final config with ${s.versions} versions ${ms(s.restartFinal.answeredMs.median)}, ${times(s.speedupFinal)}); p99 during ÷ before ${fixed(s.p99Ratio.median, 2)} (max ${fixed(s.p99Ratio.max, 2)}), ${s.loadFailed ?? 'n/a'} failed`;
}

const LABEL = { cls: 'PP-OCR classifier', det: 'PP-OCRv4 detector' };

export function renderReloadMarkdown(results) {
  const s = results.settings;
  const out = sectionHead(results);
  out.push(
    `- Per model, one \`tessera serve\` (\`server.logLevel: ${s.logLevel}\`; ORT's default session options${Object.keys(s.sessionOptions ?? {}).length ? ` plus ${JSON.stringify(s.sessionOptions)}` : ''}) starts with version 1, a copy of the model's file. Steady load: ${s.connections} connections, paced (autocannon's \`overallRate\`) at ${s.loadFraction} × the requests/s an unpaced ${s.probeS} s probe got, on \`POST /v2/models/<model>/infer\` without a version (binary tensor protocol, one sample a request), so the \`latest\` router moves the traffic to each new version once it is ready; ${s.warmupS ?? 1} s of it before the first reload.`,
  );
  out.push(
    `- ${s.reloads} reloads per model: a new copy of the file as version N+1, the config rewritten with versions 1…N+1, ${s.beforeS} s of load (**before**), then SIGHUP. Timed from the SIGHUP: **index** — \`GET /v2/repository/index\` reports the new generation (polled ${s.indexPollMs} ms apart); **serving** — the first answer saying \`model_version: N+1\` of a loop of infer requests sent back to back; **log** — the \`ms\` of the server's own \`config reloaded: generation G serving\` line; **switch** — when the first request answered by version N+1 reached the server (its request log line: \`time\` − \`ms\`), the load's or a poll's. **During** is the load's requests sent from the SIGHUP until ${s.tailS} s after the new version answered.`,
  );
  out.push(
    `- Baseline, same run: cold starts, each \`node packages/core/dist/cli.js serve\` spawned on a config and timed to the newest version answering (infer polled 5 ms apart until then), ${s.restarts} of each kind, alternated: **newest only** (a config with only the last version: the least any restart loads) and **final config** (every version the reloads added). The ratio uses *newest only*. A restart's drain of the old process and the requests refused meanwhile are not counted.`,
  );
  out.push('');

  out.push('#### Reload against restart');
  out.push('');
  out.push('Medians over the reloads (least … largest in brackets where there are several).');
  out.push('');
  out.push('| model | reload: SIGHUP → new version serving | → index | → switch (server log) | reload\'s own `ms` (log) | restart, newest only: spawn → serving | reload vs restart | restart, final config | p99 during ÷ before | failed requests |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const m of results.summary.models) {
    out.push(
      `| ${LABEL[m.model] ?? m.model} (\`${m.name}\`) | ${range(m.servedMs)} ms | ${range(m.indexMs)} ms | ${range(m.firstArrivedMs)} ms | ${range(m.logMs)} ms | ${range(m.restartNewest.answeredMs)} ms | **${times(m.speedup)}** faster | ${range(m.restartFinal.answeredMs)} ms (${m.versions} versions, ${times(m.speedupFinal)}) | ${range(m.p99Ratio, 2)} | ${m.loadFailed ?? 'n/a'} of ${whole(m.loadAnswers)} |`,
    );
  }
  out.push('');
  for (const m of results.summary.models) out.push(`- ${m.name}: reload ${ms(m.servedMs.median)} vs restart ${ms(m.restartNewest.answeredMs.median)} (${times(m.speedup)}).`);
  out.push('');
  out.push('| target | measured | verdict |');
  out.push('| --- | --- | --- |');
  for (const t of results.verdicts) out.push(`| ${t.target} | ${t.summary} | ${t.verdict === 'met' ? 'met' : `**${t.verdict}**`} |`);
  out.push('');

  for (const p of results.phases) {
    const md = results.models[p.model];
    out.push(`#### ${LABEL[p.model] ?? p.model} (\`${p.name}\`): every reload`);
    out.push('');
    out.push(
      `\`${md.file}\`, input ${md.input}, \`batching: ${JSON.stringify(md.batching).replace(/"/g, '')}\`. Probe: ${whole(p.probe?.reqPerSec)} requests/s unpaced (p99 ${ms(p.probe?.p99Ms, 1)}); the load paced at ${whole(p.rate)}/s: ${whole(p.load?.answers)} answers in ${fixed(p.load?.seconds, 0)} s, ${p.load?.whole.failed ?? 'n/a'} failed, p50 ${ms(p.load?.whole.latencyMs.p50, 1)}, p99 ${ms(p.load?.whole.latencyMs.p99, 1)}. Processes outside the benchmark used ${fixed(p.otherProcsPct, 0)} % of a core meanwhile${p.otherProcsPct > results.noisyOtherCpuPct ? ' ⚠' : ''}.`,
    );
    out.push('');
    out.push('| reload | version | → index ms | → serving ms | → switch ms | log `ms` | infer polls | before: answers, p50 / p99 ms | during: answers, p50 / p99 / max ms | p99 ratio | failed |');
    out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |');
    for (const r of p.reloads) {
      const b = r.before;
      const d = r.during;
      out.push(
        `| ${r.reload} | ${r.version} | ${fixed(r.indexMs, 1)} | ${fixed(r.servedMs, 1)} | ${fixed(r.firstArrivedMs, 0)} | ${fixed(r.logMs, 0)} | ${r.inferPolls} | ${whole(b?.answers)}, ${fixed(b?.latencyMs.p50, 1)} / ${fixed(b?.latencyMs.p99, 1)} | ${whole(d?.answers)}, ${fixed(d?.latencyMs.p50, 1)} / ${fixed(d?.latencyMs.p99, 1)} / ${fixed(d?.latencyMs.max, 1)} | ${fixed(r.p99Ratio, 2)} | ${d?.failed ?? 'n/a'} |`,
      );
    }
    out.push('');
    out.push('| cold start | config | spawn → first HTTP answer ms | spawn → `server ready` ms | spawn → newest version serving ms | sessions loaded (`model ready` ms each) |');
    out.push('| ---: | --- | ---: | ---: | ---: | --- |');
    for (const r of p.restarts) {
      out.push(`| ${r.run} | ${r.config === 'final' ? `final (${p.finalVersions.length} versions)` : 'newest only'} | ${fixed(r.firstHttpMs, 0)} | ${fixed(r.serverReadyMs, 0)} | ${fixed(r.answeredMs, 0)}${r.disturbed ? ' ⚠' : ''} | ${r.modelReady.length}: ${r.modelReady.map((x) => x.ms).join(', ')} |`);
    }
    out.push('');
  }

  out.push('#### Caveats');
  out.push('');
  const m = results.machine;
  out.push(`- One machine, ${m.cores} cores, shared by the server, the load generator (its own process), the pollers (this process) and, during a reload, the new session's load and warm-up.`);
  out.push('- The serving time is what a client sees: it includes the poll loop\'s resolution, up to two infer requests under the load (the one answered by the old version just before the switch, then its successor): on the heavier detector that is most of the gap between serving and switch. The switch time (server log, 1 ms resolution) is where the new version really took over; the index is read a few ms apart.');
  out.push('- Latency is the load generator\'s per answer (autocannon, paced: a request waits for a free connection and its turn, so a stall shows as the latency of the requests in flight, not of those not yet sent). "During" windows are short (a few hundred answers): their p99 is close to their maximum.');
  out.push('- A restart is timed from the spawn only; a real one also drains the old process first and refuses or queues requests until the new one answers (a load balancer in front hides that at the cost of a second instance).');
  if (results.phases.some((p) => p.restarts.some((r) => r.serverReadyMs === null))) out.push('- `server ready` n/a: the newest version answered before the config\'s other versions had loaded, and the server was stopped before it logged the line.');
  const disturbed = results.phases.flatMap((p) => p.restarts).filter((r) => r.disturbed).length;
  if (disturbed > 0) out.push(`- ${disturbed} cold start(s) ran while processes outside the benchmark used more than ${results.noisyOtherCpuPct} % of a core (⚠).`);
  for (const sk of results.skipped ?? []) out.push(`- Skipped ${sk.id}: ${sk.reason}`);
  return out.join('\n');
}
