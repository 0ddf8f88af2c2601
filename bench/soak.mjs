// The soak (`npm run bench -- --soak`, minutes, not in CI; alone: `node bench/soak.mjs`).
// Does a server on the production path (API keys and the rate limit on) keep its memory and its
// p99 over a long steady load? One `tessera serve` serves the tiny `affine` model and the PP-OCR
// classifier; a short probe measures what each can answer alone, then each gets paced load
// (autocannon's overallRate) at its share of BENCH_SOAK_LOAD × that capacity for the whole run, so
// the server is busy but never saturated and the p99 means something. Every few seconds: the
// server's RSS (/proc/<pid>/status), its V8 heap (/metrics) and each model's p50/p99 over the
// interval. Judged after the warm-up (bench/lib/soak-report.mjs): RSS growth < 5 %, a flat p99, no
// errors. See docs/benchmarks.md, "Soak: memory and p99 over time".
//
// Environment (all optional):
//   BENCH_QUICK=1                  smoke run: 30 s, 2 s samples, 1.5 s probe
//   BENCH_SOAK_DURATION=300        seconds of steady load
//   BENCH_SOAK_WARMUP=…            seconds left out of the fits (default: 20 % of the duration, at most 60)
//   BENCH_SOAK_INTERVAL=5          seconds per sample (memory, p50/p99)
//   BENCH_SOAK_LOAD=0.5            offered load as a share of the probed capacity (split between the models)
//   BENCH_SOAK_PROBE=3             seconds of the capacity probe per model (unpaced, BENCH_SOAK_CONNECTIONS connections)
//   BENCH_SOAK_CONNECTIONS=16      connections per model
//   BENCH_SOAK_MODELS=tiny,cls     the models loaded
//   BENCH_SOAK_LOG_LEVEL=warn      server.logLevel
//   BENCH_THREADS=…                intraOpNumThreads (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name             the <machine> part of bench/results/<date>-<machine>-soak.json
//   BENCH_WRITE=0                  write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1               keep the temporary folder (config, server log)
//   BENCH_SOAK_SECTION=soak        the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_SOAK_RENDER=<file>       measure nothing: write a results file (e.g. one from the device machine) into that section
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envList, envNumber, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, suiteTempDir } from './lib/common.mjs';
import { checkAnswer, describeModels, gitInfo, prepareModels, runLoad, startTessera, finishRun, renderSavedAndExit, runSuite, writeSuiteOutputs } from './lib/contest.mjs';
import { allProcessCpu, otherProcessCpu, processIds } from './lib/llm-procs.mjs';
import { parentPid, processCpuSeconds } from './lib/probe.mjs';
import { SOAK_TARGETS, evaluateSoak, renderSoakMarkdown, soakMarkers } from './lib/soak-report.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Soak: memory and p99 over time';

const section = soakMarkers(env.BENCH_SOAK_SECTION);
await renderSavedAndExit(env.BENCH_SOAK_RENDER, { section, heading: HEADING, render: renderSoakMarkdown, log });

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const RATE_LIMIT = { max: 1_000_000_000, timeWindow: '1m' };
const KEYS = 21;

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const durationS = envNumber('BENCH_SOAK_DURATION', quick ? 30 : 300, { min: 10 });
const settings = {
  quick,
  durationS,
  warmupS: envNumber('BENCH_SOAK_WARMUP', Math.round(Math.min(60, 0.2 * durationS) * 10) / 10),
  sampleS: envNumber('BENCH_SOAK_INTERVAL', quick ? 2 : 5, { min: 0.5 }),
  loadFraction: envNumber('BENCH_SOAK_LOAD', 0.5, { min: 0.01 }),
  probeS: envNumber('BENCH_SOAK_PROBE', quick ? 1.5 : 3, { min: 0.5 }),
  connections: envNumber('BENCH_SOAK_CONNECTIONS', 16, { min: 1, integer: true }),
  models: envList(env.BENCH_SOAK_MODELS, 'tiny,cls'),
  logLevel: env.BENCH_SOAK_LOG_LEVEL ?? 'warn',
  sessionOptions: sessionOptionsFromEnv(),
  batching: { batcher: 'dynamic', maxBatchSize: 32, maxQueueDelayMs: 'auto' },
};
for (const k of settings.models) if (k !== 'tiny' && k !== 'cls') throw new Error(`BENCH_SOAK_MODELS: unknown model '${k}' (tiny, cls)`);
if (settings.warmupS >= durationS) throw new Error(`BENCH_SOAK_WARMUP=${settings.warmupS}: must be shorter than the duration (${durationS} s)`);

installCleanup();
const tmp = suiteTempDir('soak');

const results = {
  ...resultsHeader('soak', 'bench/soak.mjs'),
  versions: { core: packageVersion('@tessera/core'), onnxruntime: packageVersion('onnxruntime-node'), fastifyRateLimit: packageVersion('@fastify/rate-limit'), autocannon: packageVersion('autocannon'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  targets: SOAK_TARGETS,
  rateLimit: RATE_LIMIT,
  keys: { count: KEYS, bytes: 32 },
  loads: [],
  samples: [],
};

/** RSS and its peak (bytes) of a process, from /proc/<pid>/status; nulls elsewhere. */
function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1]) * 1024 || null;
    return { rssBytes: kib('VmRSS'), rssPeakBytes: kib('VmHWM') };
  } catch {
    return { rssBytes: null, rssPeakBytes: null };
  }
}

/** V8's heap as prom-client's default metrics give it (`nodejs_heap_size_*_bytes`); nulls when /metrics lacks them. */
async function heapOf(server) {
  try {
    const text = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    const used = value('nodejs_heap_size_used_bytes');
    const total = value('nodejs_heap_size_total_bytes');
    return { heapUsedBytes: Number.isFinite(used) ? used : null, heapTotalBytes: Number.isFinite(total) ? total : null };
  } catch {
    return { heapUsedBytes: null, heapTotalBytes: null };
  }
}

function serverConfig(models, apiKeys) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel, rateLimit: RATE_LIMIT },
    auth: { apiKeys },
    models: Object.fromEntries(
      models.map((m) => [m.name, { backend: 'onnxruntime', path: m.file, batching: { ...settings.batching }, warmupShapes: m.warmupShapes, ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}) }]),
    ),
  };
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench soak: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}; ${durationS} s, warm-up ${settings.warmupS} s, a sample every ${settings.sampleS} s`);

  const prepared = await prepareModels(tmp);
  const apiKeys = Array.from({ length: KEYS }, (_, i) => ({ name: i === KEYS - 1 ? 'bench' : `other-${i + 1}`, key: randomBytes(32).toString('hex'), scopes: ['infer'] }));
  const key = apiKeys.at(-1).key;
  const models = settings.models.map((k) => {
    const md = prepared[k];
    return { ...md, body: { ...md.body, headers: { ...md.body.headers, 'x-api-key': key } } };
  });
  results.models = describeModels(Object.fromEntries(models.map((md) => [md.key, md])));
  const services = [];
  const server = await startTessera(services, tmp, 'soak', CLI, serverConfig(models, apiKeys));
  results.server = { cli: path.relative(ROOT, CLI), pid: server.pid };
  log(`  server: ${server.url} (pid ${server.pid}), models ${models.map((md) => md.name).join(', ')}`);
  const exclude = new Set([process.pid, server.pid]);

  try {
    for (const md of models) {
      const p = await checkAnswer(server, md, 'soak').catch((err) => ({ ok: false, error: String(err?.message ?? err) }));
      if (!p.ok) throw new Error(`preflight ${md.name}: ${p.error}`);
    }
    const url = (md) => `${server.url}/v2/models/${md.name}/infer`;
    // the capacity of each model alone, unpaced; the soak offers a share of it
    for (const md of models) {
      const probe = await runLoad(url(md), md.body, settings.connections, settings.probeS);
      const rate = Math.max(1, Math.round((settings.loadFraction * probe.reqPerSec) / models.length));
      results.loads.push({ model: md.key, name: md.name, capacity: probe.reqPerSec, probeP99Ms: probe.latencyMs.p99, rate });
      log(`  probe ${md.name}: ${probe.reqPerSec.toFixed(0)} requests/s alone (p99 ${probe.latencyMs.p99?.toFixed(2)} ms) → paced at ${rate}/s`);
    }
    const memStart = { ...memoryOf(server.pid), ...(await heapOf(server)) };
    results.beforeLoad = memStart;

    const t0 = Date.now();
    let running = true;
    const sampler = (async () => {
      let last = { t: performance.now(), cpu: processCpuSeconds(server.pid), all: allProcessCpu() };
      while (running) {
        await new Promise((r) => setTimeout(r, settings.sampleS * 1000));
        if (!running) break;
        const now = { t: performance.now(), cpu: processCpuSeconds(server.pid), all: allProcessCpu() };
        const wallS = (now.t - last.t) / 1000;
        const sample = { tS: (Date.now() - t0) / 1000, ...memoryOf(server.pid), ...(await heapOf(server)), serverCpuPct: now.cpu !== null && last.cpu !== null ? ((now.cpu - last.cpu) / wallS) * 100 : null };
        // the load generators are children of this process: their CPU is the benchmark's, not other work
        sample.otherProcsPct = (otherProcessCpu(last.all, now.all, new Set([...exclude, ...processIds().filter((p) => parentPid(p) === process.pid)])) / wallS) * 100;
        results.samples.push(sample);
        log(`  t=${sample.tS.toFixed(0).padStart(4)} s: RSS ${(sample.rssBytes / 2 ** 20).toFixed(1)} MiB, heap ${sample.heapUsedBytes === null ? 'n/a' : (sample.heapUsedBytes / 2 ** 20).toFixed(1)} MiB, server CPU ${sample.serverCpuPct?.toFixed(0)} %, other processes ${sample.otherProcsPct.toFixed(0)} %`);
        last = now;
      }
    })();
    const finished = await Promise.all(models.map((md, i) => runLoad(url(md), md.body, settings.connections, durationS, { rate: results.loads[i].rate, intervalS: settings.sampleS })));
    running = false;
    await sampler;
    finished.forEach((r, i) => {
      const l = results.loads[i];
      l.intervals = r.intervals.map((iv) => ({ tS: (iv.endMs - t0) / 1000, ...iv }));
      Object.assign(l, { requests: r.requests, reqPerSec: r.reqPerSec, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, statusCodes: r.statusCodes, latencyMs: r.latencyMs, loadCpuPct: r.loadCpuPct });
      log(`  ${l.name}: ${r.requests} answers (${r.reqPerSec.toFixed(1)}/s of ${l.rate} offered), p50 ${r.latencyMs.p50?.toFixed(3)} p99 ${r.latencyMs.p99?.toFixed(3)} ms, errors ${r.errors} timeouts ${r.timeouts} non-2xx ${r.non2xx}`);
    });
    results.afterLoad = { ...memoryOf(server.pid), ...(await heapOf(server)) };
  } finally {
    await server.stop();
  }

  results.otherProcsPct = results.samples.reduce((s, x) => s + x.otherProcsPct, 0) / Math.max(1, results.samples.length);
  results.evaluation = evaluateSoak(results);
  results.verdicts = results.evaluation.targets;
  finishRun(results, started);
  log('');
  for (const t of results.verdicts) log(`target ${t.verdict.padEnd(7)} ${t.target}: ${t.summary}`);
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderSoakMarkdown, log });
  log(`done in ${Math.round(results.elapsedS)} s`);
}

await runSuite('soak', main, log);
