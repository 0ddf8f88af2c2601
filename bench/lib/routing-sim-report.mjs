// bench/canary-sim.mjs: the Markdown written to docs/benchmarks.md between the bench-canary-sim markers.

/** The markers of a named section: `canary-sim` (the default), or e.g. `canary-sim-h200`. */
export function canarySimMarkers(section = 'canary-sim') {
  if (!/^canary-sim[\w-]*$/.test(section)) throw new Error(`BENCH_CANARY_SIM_SECTION=${section}: expected canary-sim or canary-sim-<name>`);
  return { start: `<!-- bench-${section}:start -->`, end: `<!-- bench-${section}:end -->` };
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);
/** A share in percent, one decimal. */
const percentOf = (x, digits = 1) => (finite(x) ? `${(x * 100).toFixed(digits)} %` : 'n/a');
/** A Wilson interval as `rate (low … high)` in percent. */
const shareWithInterval = (w) => (finite(w?.rate) ? `${percentOf(w.rate)} (${(w.low * 100).toFixed(1)} … ${(w.high * 100).toFixed(1)})` : 'n/a');
const count = (v) => (finite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const p50p90 = (x) => (x ? `${count(x.p50)} / ${count(x.p90)}` : '—');

export function renderCanarySimMarkdown(results) {
  const s = results.settings;
  const m = results.machine;
  const o = results.options.power;
  const g = results.options.good;
  const out = [];
  out.push(
    `Run of ${results.date.slice(0, 16).replace('T', ' ')} UTC: \`${results.command}\` (${(results.elapsedS ?? 0).toFixed(1)} s on ${m.cpu}, ${m.cores} cores, Node ${m.node}). ` +
      `Every figure is in [\`${results.file}\`](../${results.file}). Router of @tessera/router-canary ${results.versions.routerCanary ?? '?'} at \`${results.git?.head?.slice(0, 12) ?? '?'}\`${results.git?.packagesDirty ? ` (with ${results.git.packagesDirty} uncommitted change(s) under packages/)` : ''}. The simulation is deterministic: the same settings give the same figures on any machine.`,
  );
  out.push('');
  out.push(
    `Baseline: ${percentOf(s.baseline.errorRate)} server faults, latency lognormal with median ${s.baseline.latencyMedianMs} ms and log-sd ${s.baseline.latencySigma}. ` +
      `Rollout of (a): \`steps: ${JSON.stringify(o.steps)}, interval: ${o.interval}, minRequests: ${o.minRequests}, threshold: ${o.threshold}, confidence: ${o.confidence}, metrics: ${JSON.stringify(o.metrics).replace(/"/g, '')}, maxLatencyRatio: ${o.maxLatencyRatio}\` (the router's defaults but for the steps and interval). ` +
      `A rollout still undecided after ${s.maxIntervals} intervals counts as undecided.`,
  );
  out.push('');

  out.push('#### (a) A worse canary: rollbacks and how long they take');
  out.push('');
  out.push(
    `${s.seeds} rollouts per row. *rolled back* and *promoted*: shares of the rollouts, with Wilson 95 % intervals; *undecided*: rollouts still going after ${s.maxIntervals} intervals; *canary requests* and *intervals to rollback* (to promotion): median / p90 over the rollouts rolled back (promoted); *holds*: judgements per rollout that held the step (fewer than minRequests canary requests in the interval, or the canary not yet shown within the limits).`,
  );
  out.push('');
  out.push('| canary worse by | requests / interval | rolled back (95 % interval) | promoted (95 % interval) | undecided | canary requests to rollback p50 / p90 | intervals to rollback p50 / p90 | intervals to promotion p50 / p90 | holds / rollout |');
  out.push('| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const c of results.power) {
    const what = c.metric === 'errorRate' ? `error rate × ${(1 + c.effectPct / 100).toFixed(2)} (${percentOf(s.baseline.errorRate * (1 + c.effectPct / 100), 2)})` : `latency × ${(1 + c.effectPct / 100).toFixed(2)}`;
    out.push(`| ${what} | ${count(c.perInterval)} | ${shareWithInterval(c.rolledBack)} | ${shareWithInterval(c.promoted)} | ${c.undecided} | ${p50p90(c.canaryRequestsToRollback)} | ${p50p90(c.intervalsToRollback)} | ${p50p90(c.intervalsToPromote)} | ${c.holds.toFixed(1)} |`);
  }
  out.push('');

  const good = results.good;
  out.push('#### (b) A good canary: false rollbacks');
  out.push('');
  out.push(
    `The router over a long rollout (\`stepWeight: ${g.stepWeight}, maxWeight: ${g.maxWeight}\`: ${Math.round(g.maxWeight / g.stepWeight)} steps, then one interval at 100 %), ${count(good.perInterval)} requests per interval, both versions drawn alike, ${good.seeds} rollouts of at most ${s.maxIntervals} intervals, judged every interval. ` +
      'Beside it, each of its looks (every judgement that compared the versions, holds included) replayed with the fixed-horizon z-test (`fixedHorizonZTest`) on the same step\'s data at the α the router used for that test, the canary failing when the z-test rejects on its worse side.',
  );
  out.push('');
  out.push('| judge | looks per rollout | a failed look (95 % interval) | rolled back (≥ threshold failed looks) |');
  out.push('| --- | ---: | --- | --- |');
  out.push(`| the router (sequential tests) | ${good.z.looks.toFixed(1)} | ${shareWithInterval(good.router.anyFailedJudgement)} | ${shareWithInterval(good.router.rolledBack)} |`);
  out.push(`| z-test at the router's looks | ${good.z.looks.toFixed(1)} | ${shareWithInterval(good.z.anyFailedLook)} | ${shareWithInterval(good.z.wouldRollBack)} |`);
  out.push('');
  out.push(
    `Promoted: ${shareWithInterval(good.router.promoted)}; still rolling out after ${s.maxIntervals} intervals: ${shareWithInterval(good.router.undecided)} (step reached p50 / p90 ${p50p90(good.router.stepReached)}); holds per rollout ${good.router.holds.toFixed(1)}, passed or failed judgements ${good.router.judgements.toFixed(1)}.`,
  );
  out.push('');

  const h = results.held;
  out.push(
    `One step held and judged at every interval (${count(h.perInterval)} requests per interval, ${percentOf(h.canaryShare)} to the canary, both alike, ${h.seeds} seeds): the router's tests (\`compareProportions\` on the error rate, \`compareMeans\` on log latency against the margin log ${h.maxLatencyRatio}, τ as the router's) and the z-test, each test at α = ${h.alpha} (what the router gives each of its two tests in a one-step rollout); rolled back once ${h.threshold} looks failed (the router's \`threshold\`).`,
  );
  out.push('');
  out.push('| looks | sequential: a failed look | sequential: rolled back | z-test: a failed look | z-test: rolled back |');
  out.push('| ---: | --- | --- | --- | --- |');
  for (const r of h.rows) out.push(`| ${r.looks} | ${shareWithInterval(r.sequential.anyFail)} | ${shareWithInterval(r.sequential.rollback)} | ${shareWithInterval(r.z.anyFail)} | ${shareWithInterval(r.z.rollback)} |`);
  return out.join('\n');
}
