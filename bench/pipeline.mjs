// The serving-pipeline cost benchmark (part of `npm run bench`; alone: `node bench/pipeline.mjs`).
// Does the pipeline every protocol now goes through (admission, routing with readiness, one
// validation, processors, hooks, outcomes, shadows) cost anything measurable? The same load against:
//
//   base   the server built from the commit before the pipeline (4168b0b), in a cached git
//          worktree under /tmp (bench/lib/baseline.mjs); BENCH_PIPELINE_BASE_DIR: a tree built
//          elsewhere (the device machine has no npm)
//   now    today's server
//   now-2  a second process exactly like `now`: the A/A control (two identical servers measured in
//          the same run must come out equal within the interval the verdicts use)
//
// Points: the tiny `affine` model over JSON (inference is nearly free: what is left is HTTP and the
// pipeline) and the PP-OCR classifier over the binary tensor protocol, each at concurrency 1 (the
// latency target) and under load (the throughput target). Rounds: one measured window per contender
// back to back, the order rotated each round (ABC BCA CAB …); targets are judged on the rounds'
// ratios with a 95 % confidence interval (bench/lib/pipeline-report.mjs). See docs/benchmarks.md,
// "Serving pipeline cost".
//
// Environment (all optional):
//   BENCH_SUITES=ocr,llm,tracing,pipeline   suites `npm run bench` runs; this one skips itself without `pipeline`
//   BENCH_QUICK=1                     smoke run: 1.5 s windows, 3 rounds, no retries
//   BENCH_PIPELINE_WINDOW=3           seconds measured per window
//   BENCH_PIPELINE_WARMUP=0.5         seconds of warm-up load before each window (not measured)
//   BENCH_PIPELINE_PRIME=2            seconds of load on every contender before a point's first round
//   BENCH_PIPELINE_ROUNDS=10          rounds per point (≥ 2)
//   BENCH_PIPELINE_POINTS=tiny-json-c1,tiny-json-c16,cls-binary-c1,cls-binary-c64   <model>-<protocol>-c<connections>
//   BENCH_PIPELINE_BASE=4168b0b       git ref of the baseline; `none` skips it
//   BENCH_PIPELINE_BASE_DIR=/path     a baseline built elsewhere (packages/*/dist with node_modules beside)
//   BENCH_PIPELINE_LOG_LEVEL=warn     server.logLevel of every contender
//   BENCH_PIPELINE_RETRIES=1          a window during which other processes used > 40% of a core is measured again
//   BENCH_THREADS=…                   intraOpNumThreads for every contender (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name                the <machine> part of bench/results/<date>-<machine>-pipeline.json
//   BENCH_WRITE=0                     write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                  keep the temporary folder (configs, server logs)
//   BENCH_PIPELINE_SECTION=pipeline   the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_PIPELINE_RENDER=<file>      measure nothing: write a results file (e.g. one from the device machine) into that section
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envNumber, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, suiteTempDir, writeResultsFile } from './lib/common.mjs';
import { ensureBaseline, prebuiltBaseline } from './lib/baseline.mjs';
import { checkAnswer, describeBaseline, describeModels, gitInfo, measureWindow, measureWithRetries, prepareModels, runLoad, startTessera, writeDocsSection } from './lib/contest.mjs';
import { waitQuiet } from './lib/llm-procs.mjs';
import { PIPELINE_TARGETS, evaluatePipeline, pipelineMarkers, renderPipelineMarkdown } from './lib/pipeline-report.mjs';
import { waitIdle } from './lib/probe.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);

skipUnlessSuite('pipeline', 'bench/pipeline.mjs');

const section = pipelineMarkers(env.BENCH_PIPELINE_SECTION);
if (env.BENCH_PIPELINE_RENDER) {
  const { readFile } = await import('node:fs/promises');
  const saved = JSON.parse(await readFile(path.resolve(env.BENCH_PIPELINE_RENDER), 'utf8'));
  await writeDocsSection(path.join(ROOT, 'docs', 'benchmarks.md'), { ...section, heading: 'Serving pipeline cost', block: renderPipelineMarkdown(saved) });
  process.stderr.write(`wrote ${env.BENCH_PIPELINE_RENDER} into docs/benchmarks.md (${section.start})\n`);
  process.exit(0);
}

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
const NOISY_OTHER_CPU_PCT = 40;
const CONTENDERS = ['base', 'now', 'now-2'];

const number = (name, fallback, opts) => envNumber(name, fallback, opts);

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  windowS: number('BENCH_PIPELINE_WINDOW', quick ? 1.5 : 3, { min: 0.5 }),
  warmupS: number('BENCH_PIPELINE_WARMUP', 0.5, { min: 0.2 }),
  primeS: number('BENCH_PIPELINE_PRIME', quick ? 1 : 2),
  rounds: number('BENCH_PIPELINE_ROUNDS', quick ? 3 : 10, { min: 2, integer: true }),
  points: (env.BENCH_PIPELINE_POINTS ?? 'tiny-json-c1,tiny-json-c16,cls-binary-c1,cls-binary-c64').split(',').map((s) => s.trim()).filter(Boolean),
  baseRef: env.BENCH_PIPELINE_BASE ?? '4168b0b',
  baseDir: env.BENCH_PIPELINE_BASE_DIR ?? null,
  logLevel: env.BENCH_PIPELINE_LOG_LEVEL ?? 'warn',
  retries: number('BENCH_PIPELINE_RETRIES', quick ? 0 : 1, { integer: true }),
  sessionOptions: sessionOptionsFromEnv(),
  batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' },
  contenders: env.BENCH_PIPELINE_BASE === 'none' ? CONTENDERS.filter((c) => c !== 'base') : [...CONTENDERS],
};
const POINT_RE = /^(tiny|cls)-(json|binary)-c(\d+)$/;
for (const p of settings.points) {
  const m = POINT_RE.exec(p);
  if (!m || Number(m[3]) < 1) throw new Error(`BENCH_PIPELINE_POINTS: '${p}' is not <tiny|cls>-<json|binary>-c<connections>`);
}

installCleanup();
const tmp = suiteTempDir('pipeline');

const results = {
  ...resultsHeader('pipeline', 'bench/pipeline.mjs'),
  versions: { core: packageVersion('@tessera/core'), onnxruntime: packageVersion('onnxruntime-node'), autocannon: packageVersion('autocannon'), fastify: packageVersion('fastify'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  targets: PIPELINE_TARGETS,
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  baseline: null,
  contenders: {},
  points: [],
  rows: [],
  comparisons: [],
  verdicts: [],
  skipped: [],
};

const services = [];
const servers = {};

function serverConfig(models) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel },
    models: Object.fromEntries(
      Object.values(models).map((m) => [m.name, { backend: 'onnxruntime', path: m.file, batching: { ...settings.batching }, warmupShapes: m.warmupShapes, ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}) }]),
    ),
  };
}

/** Waits until every server is idle and other processes use < 40 % of a core. */
async function settle() {
  await Promise.all(Object.values(servers).map((s) => waitIdle(s.pid)));
  return waitQuiet(new Set([process.pid, ...services.map((s) => s.pid)]), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 500 });
}

async function measure(point, contender, round) {
  const once = () =>
    measureWindow({
      server: servers[contender],
      point,
      contender,
      round,
      warmupS: settings.warmupS,
      durationS: settings.windowS,
      settle,
      exclude: [process.pid, ...services.map((s) => s.pid)],
      cores: results.machine.cores,
      noisyPct: NOISY_OTHER_CPU_PCT,
    });
  const best = await measureWithRetries(once, settings.retries, { log });
  const f = (v, d = 1) => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
  log(
    `  ${point.id} round ${String(round).padStart(2)} ${contender.padEnd(5)}: ${f(best.samplesPerSec)} samples/s, p50 ${f(best.latencyMs.p50, 3)} p99 ${f(best.latencyMs.p99, 3)} ms, ` +
      `server CPU ${f(best.serverCpuUsPerRequest, 0)} µs/req, batch ${f(best.meanBatchSize, 2)}, other ${f(best.otherProcsPct, 0)}%` +
      `${best.errors + best.timeouts + best.non2xx > 0 ? `, errors ${best.errors} timeouts ${best.timeouts} non-2xx ${best.non2xx}` : ''}${best.disturbed ? '  ⚠ disturbed' : ''}`,
  );
  return best;
}

async function writeOutputs() {
  const file = await writeResultsFile(results, { quick });
  if (env.BENCH_WRITE === 'json') {
    log(`\nwrote ${path.relative(ROOT, file)} (BENCH_WRITE=json: docs/benchmarks.md left alone)`);
    return;
  }
  await writeDocsSection(DOCS, { ...section, heading: 'Serving pipeline cost', block: renderPipelineMarkdown(results) });
  log(`\nwrote ${path.relative(ROOT, file)} and ${path.relative(ROOT, DOCS)}`);
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench pipeline: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);

  // the baseline first: building it must not overlap any measurement
  let baseCli = null;
  if (settings.contenders.includes('base')) {
    const b = settings.baseDir ? prebuiltBaseline(settings.baseDir, settings.baseRef) : await ensureBaseline(ROOT, settings.baseRef, { log });
    results.baseline = b;
    if (b.ok) {
      baseCli = b.cli;
      describeBaseline(b);
      log(`  baseline ${settings.baseRef} = ${String(b.sha).slice(0, 12)}: ${b.cli}`);
    } else {
      results.skipped.push({ id: 'base', reason: b.reason });
      log(`skip base: ${b.reason}`);
      settings.contenders = settings.contenders.filter((c) => c !== 'base');
      results.settings.contenders = settings.contenders;
    }
  }

  const models = await prepareModels(tmp);
  results.models = describeModels(models);
  try {
    for (const c of settings.contenders) {
      const t = performance.now();
      servers[c] = await startTessera(services, tmp, c, c === 'base' ? baseCli : CLI, serverConfig(models));
      results.contenders[c] = { cli: c === 'base' ? baseCli : path.relative(ROOT, CLI), startS: (performance.now() - t) / 1000, preflight: {} };
      log(`  ${c}: ${servers[c].url} (pid ${servers[c].pid})`);
    }
    // every contender must give the same answers before anything is measured
    for (const c of ['now', ...settings.contenders.filter((x) => x !== 'now')]) {
      for (const md of Object.values(models)) {
        const p = await checkAnswer(servers[c], md, c).catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
        results.contenders[c].preflight[md.key] = p;
        if (!p.ok) throw new Error(`preflight ${c} ${md.name}: ${p.error}`);
      }
    }
    log('  preflight: every contender gives the same answers');

    const points = settings.points.map((id) => {
      const [, model, , c] = POINT_RE.exec(id);
      return { id, model: models[model], connections: Number(c) };
    });
    for (const p of points) {
      if (!p.id.includes(`-${p.model.protocol}-`)) throw new Error(`BENCH_PIPELINE_POINTS: ${p.id}: the ${p.model.key} model is measured over ${p.model.protocol}`);
    }
    results.points = points.map((p) => ({ id: p.id, model: p.model.key, modelName: p.model.name, protocol: p.model.protocol, connections: p.connections }));
    for (const point of points) {
      log(`${point.id}: ${point.model.name}, ${point.model.protocol}, ${point.connections} connection(s), ${settings.rounds} rounds × ${settings.contenders.join(', ')}`);
      if (settings.primeS > 0) for (const c of settings.contenders) await runLoad(`${servers[c].url}/v2/models/${point.model.name}/infer`, point.model.body, point.connections, settings.primeS);
      for (let round = 1; round <= settings.rounds; round++) {
        const k = (round - 1) % settings.contenders.length;
        for (const c of [...settings.contenders.slice(k), ...settings.contenders.slice(0, k)]) results.rows.push(await measure(point, c, round));
      }
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }

  const evaluated = evaluatePipeline(results);
  results.comparisons = evaluated.comparisons;
  results.verdicts = evaluated.targets;
  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  log('');
  for (const t of results.verdicts) log(`target ${t.verdict.padEnd(12)} ${t.point} ${t.target}: ${t.summary}`);
  for (const c of results.comparisons.filter((x) => x.id === 'a-a-control')) log(`A/A control ${c.point}: now-2 ÷ now = ${c.throughputRatio.mean?.toFixed(3)} (${c.throughputRatio.low?.toFixed(3)} … ${c.throughputRatio.high?.toFixed(3)}), p50 Δ ${c.p50AddedUs.mean?.toFixed(1)} µs`);
  if (env.BENCH_WRITE !== '0') await writeOutputs();
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench pipeline: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
