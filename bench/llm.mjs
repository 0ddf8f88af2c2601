// The LLM gateway benchmark (part of `npm run bench`; alone: `node bench/llm.mjs`). What Tessera's
// `vllm` backend adds in front of a vLLM replica: the same streaming load is sent to the replica
// directly, through a bare pass-through proxy (the floor) and through the gateway, in turn, for
// several rounds (ABCABC: drift shows), in one run; the gateway with one worker and, at the highest
// concurrency, with several (`server.workers`). The replica is the vLLM
// stand-in, @tessera/vllm-stand-in (vLLM's protocol with a fixed prefill delay and a fixed delay
// between tokens). See docs/benchmarks.md, "LLM gateway".
//
// Environment (all optional):
//   BENCH_SUITES=ocr,llm        suites `npm run bench` runs; this one skips itself without `llm`
//   BENCH_QUICK=1               smoke run: 3 s windows after 1 s warm-up
//   BENCH_LLM_CONCURRENCY=1,256 concurrent streams (closed loop: a stream sends its next request at [DONE])
//   BENCH_LLM_DURATION=10       seconds measured per point
//   BENCH_LLM_WARMUP=2          seconds of warm-up load per point (not measured)
//   BENCH_LLM_MIN_REQUESTS=100  a window stays open past BENCH_LLM_DURATION until this many requests
//                               started in it (TTFT percentiles at concurrency 1), at most
//   BENCH_LLM_MAX_DURATION=90   seconds
//   BENCH_LLM_RETRIES=2         a point during which other processes used > 40% of a core is measured
//                               again (the least disturbed attempt is kept); each point first waits
//                               (≤ 60 s) for other processes to go under 40%
//   BENCH_LLM_ROUNDS=2          rounds of direct, proxy, gateway per concurrency (ABCABC: drift shows)
//   BENCH_LLM_TTFT_MS=20        the stand-in's prefill delay (VLLM_STAND_IN_TTFT_MS)
//   BENCH_LLM_TOKEN_DELAY_MS=10 the stand-in's delay between tokens (VLLM_STAND_IN_TOKEN_DELAY_MS)
//   BENCH_LLM_MAX_TOKENS=64     max_tokens of every request
//   BENCH_LLM_MAX_NUM_SEQS=1024 the stand-in's --max-num-seqs (≥ the concurrency, so nothing queues)
//   BENCH_LLM_CEILING=1         also measure with a stand-in without delays (the streaming ceiling); 0: skip
//   BENCH_LLM_PROXY=1           also measure a bare node:http pass-through proxy (the floor any gateway
//                               pays on this machine: one more process); 0: skip
//   BENCH_LLM_WORKERS=1,auto    gateways by `server.workers` (auto: what `server.workers: auto` resolves to
//                               on this machine; a count already listed, or 1, is not measured twice)
//   BENCH_LLM_WORKERS_AT=<max>  concurrencies at which gateways with several workers are measured
//                               (default: the highest of BENCH_LLM_CONCURRENCY); the one-worker gateway runs at all
//   BENCH_LLM_BALANCE_REPLICAS=4 the balance phase: that many paced stand-ins behind one least-loaded model,
//                               one window per gateway at the highest concurrency, each replica's requests
//                               and in-flight sequences read from the stand-ins themselves; 0: skip
//   BENCH_LLM_PROFILE=auto      --cpu-prof the gateway for one run at the highest concurrency:
//                               auto (when a target is missed), 1 (always), 0 (never)
//   BENCH_LLM_LOG_LEVEL=warn    the gateway's server.logLevel
//   BENCH_MACHINE=name          the <machine> part of bench/results/<date>-<machine>-llm.json
//   BENCH_LLM_TAG=name          appended to the results file name: bench/results/<date>-<machine>-llm-<name>.json
//   BENCH_WRITE=0               write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1            keep the temporary folder (configs, logs, the .cpuprofile)
//   BENCH_LLM_SECTION=llm       the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_LLM_RENDER=<file>     measure nothing: write a results file (e.g. one from the device machine) into that section
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_DIR, envNumber, freePort, installCleanup, machineSlug, packageVersion, resultsHeader, ROOT, skipUnlessSuite, spawnNode, suiteTempDir, summarize, writePartialOnSignal, writeResultsFile } from './lib/common.mjs';
import { pathToFileURL } from 'node:url';
import { renderSavedAndExit, writeDocsSection } from './lib/contest.mjs';
import { allProcessCpu, otherProcessCpu, processTree, runLoad, startService, waitQuiet } from './lib/llm-procs.mjs';
import { summarizeCpuProfile } from './lib/llm-profile.mjs';
import { balanceFigures, evaluateLlmTargets, llmMarkers, renderLlmMarkdown } from './lib/llm-report.mjs';
import { processCpuSeconds, systemBusySeconds, waitIdle, waitWorkersReady } from './lib/probe.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);

skipUnlessSuite('llm', 'bench/llm.mjs');

const section = llmMarkers(env.BENCH_LLM_SECTION);
const HEADING = section.start === '<!-- bench-llm:start -->' ? 'LLM gateway: latest results' : `LLM gateway: ${env.BENCH_LLM_SECTION}`;
await renderSavedAndExit(env.BENCH_LLM_RENDER, { section, heading: HEADING, render: renderLlmMarkdown, log });

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const STAND_IN = path.join(ROOT, 'packages', 'vllm-stand-in', 'bin', 'vllm-stand-in.js');
const PLUGIN_DIST = path.join(ROOT, 'packages', 'backend-vllm', 'dist', 'index.js');
const LOAD = path.join(BENCH_DIR, 'llm-load.mjs');
const PROXY = path.join(BENCH_DIR, 'lib', 'llm-proxy.mjs');
const DOCS = path.join(ROOT, 'docs', 'benchmarks.md');
const WORKERS_JS = path.join(ROOT, 'packages', 'core', 'dist', 'config', 'workers.js');
const SERVED_NAME = 'bench/llm';
/** Above this much CPU (100 = one core) used by processes outside the benchmark, a point is flagged disturbed. */
const NOISY_OTHER_CPU_PCT = 40;

const number = (name, fallback, opts) => envNumber(name, fallback, opts);

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const settings = {
  quick,
  concurrency: (env.BENCH_LLM_CONCURRENCY ?? '1,256').split(',').map((s) => Number(s.trim())),
  durationS: number('BENCH_LLM_DURATION', quick ? 3 : 10, { min: 0.1 }),
  warmupS: number('BENCH_LLM_WARMUP', quick ? 1 : 2),
  rounds: number('BENCH_LLM_ROUNDS', 2, { min: 1, integer: true }),
  ttftMs: number('BENCH_LLM_TTFT_MS', 20),
  tokenDelayMs: number('BENCH_LLM_TOKEN_DELAY_MS', 10),
  maxTokens: number('BENCH_LLM_MAX_TOKENS', 64, { min: 1, integer: true }),
  maxNumSeqs: 0,
  ceiling: env.BENCH_LLM_CEILING !== '0',
  proxy: env.BENCH_LLM_PROXY !== '0',
  minRequests: number('BENCH_LLM_MIN_REQUESTS', quick ? 10 : 100, { integer: true }),
  maxDurationS: number('BENCH_LLM_MAX_DURATION', quick ? 15 : 90, { min: 0.1 }),
  retries: number('BENCH_LLM_RETRIES', quick ? 0 : 2, { integer: true }),
  profile: env.BENCH_LLM_PROFILE ?? 'auto',
  logLevel: env.BENCH_LLM_LOG_LEVEL ?? 'warn',
  /** As asked (`1`, `auto`, `4`); `gateways` below is what they resolved to. */
  workers: (env.BENCH_LLM_WORKERS ?? '1,auto').split(',').map((s) => s.trim()).filter(Boolean),
  workersAt: null,
  balanceReplicas: number('BENCH_LLM_BALANCE_REPLICAS', 4, { integer: true }),
  /** The gateways measured: `{ target, workers, asked }`, filled in by main(). */
  gateways: [],
};
settings.workersAt = env.BENCH_LLM_WORKERS_AT ? env.BENCH_LLM_WORKERS_AT.split(',').map((s) => Number(s.trim())) : [Math.max(...settings.concurrency)];
if (settings.workers.some((w) => w !== 'auto' && !(Number.isInteger(Number(w)) && Number(w) >= 1))) throw new Error(`BENCH_LLM_WORKERS=${env.BENCH_LLM_WORKERS}: expected integers ≥ 1 or auto`);
if (settings.concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_LLM_CONCURRENCY=${env.BENCH_LLM_CONCURRENCY}: expected positive integers`);
if (!['auto', '0', '1'].includes(settings.profile)) throw new Error(`BENCH_LLM_PROFILE=${settings.profile}: expected auto, 0 or 1`);
settings.maxNumSeqs = number('BENCH_LLM_MAX_NUM_SEQS', Math.max(1024, ...settings.concurrency), { min: 1, integer: true });
if (settings.maxNumSeqs < Math.max(...settings.concurrency)) log(`WARN BENCH_LLM_MAX_NUM_SEQS=${settings.maxNumSeqs} < concurrency: requests will queue in the stand-in`);

const tmp = suiteTempDir('llm');

const results = {
  ...resultsHeader('llm', 'bench/llm.mjs'),
  versions: { undici: packageVersion('undici'), core: packageVersion('@tessera/core'), backendVllm: packageVersion('@tessera/backend-vllm'), node: process.version },
  settings: { ...settings },
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  preflight: {},
  paced: [],
  ceiling: [],
  balance: [],
  targets: [],
  profile: null,
};
// A run stopped from outside (`timeout` around a device machine's 10-minute command, Ctrl-C) still
// leaves what it measured: registered before installCleanup's handler, which kills the children and exits.
writePartialOnSignal(results, {
  label: 'bench llm',
  measured: () => results.paced.length + results.ceiling.length + results.balance.length > 0,
  finish: () => (results.targets = evaluateLlmTargets(results)),
  name: () => `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}-llm${env.BENCH_LLM_TAG ? `-${env.BENCH_LLM_TAG.replace(/[^\w.-]+/g, '-')}` : ''}.json`,
});
installCleanup();


// ---------------------------------------------------------------------------------------------
// Processes

async function startStandIn(label, { ttftMs, tokenDelayMs }) {
  const port = await freePort();
  const args = ['serve', 'bench-model', '--host', '127.0.0.1', '--port', String(port), '--served-model-name', SERVED_NAME, '--max-num-seqs', String(settings.maxNumSeqs)];
  const s = await startService(`stand-in (${label})`, STAND_IN, args, {
    logFile: path.join(tmp, `stand-in-${label}.log`),
    readyUrl: `http://127.0.0.1:${port}/health`,
    env: { VLLM_STAND_IN_TTFT_MS: String(ttftMs), VLLM_STAND_IN_TOKEN_DELAY_MS: String(tokenDelayMs) },
  });
  services.push(s);
  return { ...s, url: `http://127.0.0.1:${port}`, port, args, ttftMs, tokenDelayMs };
}

/** `upstreams`: model name → a replica's URL, or several (`balance.strategy` stays the default, least-loaded). */
function gatewayConfig(plugin, upstreams, workers = 1) {
  return {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel, workers },
    plugins: [plugin],
    models: Object.fromEntries(Object.entries(upstreams).map(([name, url]) => [name, { backend: 'vllm', upstreams: [url].flat(), servedModelName: SERVED_NAME }])),
  };
}

/** The plugin as a package name when it resolves from the temp folder (or core), else by absolute path. */
async function pluginSpecifier(upstreams) {
  for (const plugin of ['@tessera/backend-vllm', PLUGIN_DIST]) {
    const file = path.join(tmp, 'validate.json');
    await writeFile(file, JSON.stringify(gatewayConfig(plugin, upstreams)));
    const proc = spawnNode(CLI, ['validate', '-c', file]);
    if ((await proc.exited) === 0) return plugin;
    log(`  tessera validate with plugin ${plugin}: ${proc.stderr.at(-1) ?? 'failed'}`);
  }
  throw new Error('tessera validate rejects the gateway config with the plugin by name and by path');
}

/** Every server started (their pids are not "other processes"). */
const services = [];

let gatewayCount = 0;
async function startGateway(plugin, upstreams, { nodeArgs = [], label = 'gateway', workers = 1 } = {}) {
  const port = await freePort();
  const file = path.join(tmp, `gateway-${++gatewayCount}.json`);
  await writeFile(file, JSON.stringify(gatewayConfig(plugin, upstreams, workers), null, 2));
  const logFile = path.join(tmp, `${label}-${gatewayCount}.log`);
  const s = await startService(label, CLI, ['serve', '-c', file, '--port', String(port)], { logFile, readyUrl: `http://127.0.0.1:${port}/v2/health/ready`, nodeArgs });
  services.push(s);
  // the first worker answers readiness; the primary counts the ready ones
  if (workers > 1) await waitWorkersReady(`http://127.0.0.1:${port}`, workers, { label, tail: () => s.tail() });
  return { ...s, url: `http://127.0.0.1:${port}`, port, configFile: file, workers, pids: () => processTree(s.pid) };
}

/** The bare pass-through proxy (bench/lib/llm-proxy.mjs) in front of one stand-in: the floor. */
async function startProxy(label, standIn) {
  const port = await freePort();
  const s = await startService(`proxy (${label})`, PROXY, [JSON.stringify({ port, upstream: standIn.url })], {
    logFile: path.join(tmp, `proxy-${label}.log`),
    readyUrl: `http://127.0.0.1:${port}/health`,
  });
  services.push(s);
  return { ...s, url: `http://127.0.0.1:${port}`, port };
}

// ---------------------------------------------------------------------------------------------
// Checks and measurements

/** One streamed request read whole: the content and how many content chunks came. */
async function streamOnce(url, model) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Summarise the benefits of continuous batching for LLM serving in one paragraph.' }], stream: true, max_tokens: settings.maxTokens, temperature: 0 }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  let content = '';
  let chunks = 0;
  let done = false;
  for (const event of text.split('\n\n')) {
    const data = event.startsWith('data: ') ? event.slice(6) : null;
    if (data === null) continue;
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const parsed = JSON.parse(data);
    if (parsed.error) throw new Error(`${url}: error event ${JSON.stringify(parsed.error)}`);
    const piece = parsed.choices?.[0]?.delta?.content;
    if (typeof piece === 'string' && piece.length > 0) {
      content += piece;
      chunks++;
    }
  }
  return { content, chunks, done };
}

/** Direct and gateway must stream the same tokens before anything is measured. */
async function preflight(standIn, gateway, model) {
  const direct = await streamOnce(standIn.url, SERVED_NAME);
  const via = await streamOnce(gateway.url, model);
  const ok = direct.done && via.done && direct.content === via.content && direct.chunks === settings.maxTokens && via.chunks === settings.maxTokens;
  const r = { ok, chunksDirect: direct.chunks, chunksGateway: via.chunks, sameContent: direct.content === via.content, sample: direct.content.slice(0, 60) };
  if (!ok) throw new Error(`preflight (${model}): direct and gateway streams differ or are short: ${JSON.stringify(r)}`);
  return r;
}

/** `{ ttftSum, ttftCount, queueSum, queueCount }` from the stand-in's /metrics (its own view). */
async function standInMetrics(url) {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    const value = (name) => {
      let sum = 0;
      for (const m of text.matchAll(new RegExp(`^${name.replace(/:/g, ':')}(?:\\{[^}]*\\})?\\s+(\\S+)$`, 'gm'))) sum += Number(m[1]);
      return sum;
    };
    return {
      ttftSum: value('vllm:time_to_first_token_seconds_sum'),
      ttftCount: value('vllm:time_to_first_token_seconds_count'),
      queueSum: value('vllm:request_queue_time_seconds_sum'),
      queueCount: value('vllm:request_queue_time_seconds_count'),
    };
  } catch {
    return null;
  }
}

/** CPU seconds by key; a key's value is a pid or a list of them (a gateway's primary and workers), summed. */
function cpuSnapshot(pids) {
  const snap = { t: performance.now(), system: systemBusySeconds(), own: process.cpuUsage(), all: allProcessCpu() };
  for (const [k, pid] of Object.entries(pids)) {
    const list = [pid].flat().filter(Boolean);
    const seconds = list.map((p) => processCpuSeconds(p)).filter((v) => v !== null);
    snap[k] = seconds.length === 0 ? null : seconds.reduce((a, b) => a + b, 0);
  }
  return snap;
}

/** Every process of the benchmark's servers, gateways' workers included (they are not "other processes"). */
function benchPids() {
  return [process.pid, ...services.flatMap((s) => processTree(s.pid))];
}

/**
 * The contenders at one concurrency: where the load generator sends its streams, and the model
 * name it asks for. Gateways with several workers run at BENCH_LLM_WORKERS_AT only.
 */
function contenders(setup, concurrency) {
  return [
    { target: 'direct', url: setup.standIn.url, model: SERVED_NAME },
    ...(setup.proxy ? [{ target: 'proxy', url: setup.proxy.url, model: SERVED_NAME }] : []),
    ...setup.gateways.filter((g) => g.workers === 1 || settings.workersAt.includes(concurrency)).map((g) => ({ target: g.target, url: g.url, model: setup.model, gateway: g })),
  ];
}

/** One point: the load generator against one contender for warm-up + window; every server's CPU over the window. */
/**
 * Seconds over which the load generator spreads the start of its streams: one request's expected
 * length, within the warm-up (so that the streams do not run in lockstep; see llm-load.mjs).
 */
function rampFor(standIn) {
  const requestS = (standIn.ttftMs + (settings.maxTokens - 1) * standIn.tokenDelayMs) / 1000;
  return Math.min(settings.warmupS, requestS);
}

async function measurePoint({ phase, target, round, concurrency, url, model, gateway }, setup) {
  const { standIn, proxy } = setup;
  for (const pid of [standIn.pid, proxy?.pid, ...setup.gateways.flatMap((g) => g.pids())]) if (pid) await waitIdle(pid);
  const quiet = await waitQuiet(new Set(benchPids()), { thresholdPct: NOISY_OTHER_CPU_PCT });
  if (quiet.waitedS > 1.5) log(`  (waited ${quiet.waitedS.toFixed(1)} s for other processes to calm down: ${quiet.otherPct?.toFixed(0)}% of a core)`);
  // the process in the middle: the measured gateway's primary and workers; for direct and proxy points, the idle gateways
  const pids = { standIn: standIn.pid, proxy: proxy?.pid, gateway: gateway ? gateway.pids() : setup.gateways.flatMap((g) => g.pids()) };
  let before = null;
  let after = null;
  let mBefore = null;
  let mAfter = null;
  const r = await runLoad(
    LOAD,
    {
      url,
      model,
      concurrency,
      durationS: settings.durationS,
      warmupS: settings.warmupS,
      rampS: rampFor(standIn),
      maxTokens: settings.maxTokens,
      minRequests: settings.minRequests,
      maxDurationS: settings.maxDurationS,
      samples: true,
    },
    {
      timeoutMs: (settings.maxDurationS + settings.warmupS + 120) * 1000,
      onMark: (mark) => {
        if (mark === 'start') {
          before = cpuSnapshot(pids);
          mBefore = standInMetrics(standIn.url);
        } else {
          after = cpuSnapshot(pids);
          mAfter = standInMetrics(standIn.url);
        }
      },
    },
  );
  if (!before || !after) throw new Error('the load generator printed no MARK lines');
  const [m0, m1] = await Promise.all([mBefore, mAfter]);
  const wallS = (after.t - before.t) / 1000;
  const d = (k) => (before[k] === null || after[k] === null ? null : after[k] - before[k]);
  const own = (after.own.user + after.own.system - before.own.user - before.own.system) / 1e6;
  const otherProcsS = otherProcessCpu(before.all, after.all, new Set([...benchPids(), r.pid]));
  const standInS = d('standIn');
  const proxyS = d('proxy');
  const gatewayS = d('gateway');
  const systemS = d('system');
  const toPct = (v) => (v === null ? null : (v / wallS) * 100);
  const unattributedS = systemS === null ? null : systemS - (standInS ?? 0) - (proxyS ?? 0) - (gatewayS ?? 0) - r.loadCpuS - own - otherProcsS;
  const cpu = {
    wallS,
    standInS,
    proxyS,
    gatewayS,
    loadS: r.loadCpuS,
    orchestratorS: own,
    otherProcsS,
    unattributedS,
    systemS,
    standInPct: toPct(standInS),
    proxyPct: toPct(proxyS),
    gatewayPct: toPct(gatewayS),
    loadPct: toPct(r.loadCpuS),
    otherProcsPct: toPct(otherProcsS),
    unattributedPct: toPct(unattributedS),
    machineBusyPct: systemS === null ? null : (systemS / wallS / results.machine.cores) * 100,
  };
  const engine =
    m0 && m1
      ? {
          engineTtftMs: m1.ttftCount > m0.ttftCount ? ((m1.ttftSum - m0.ttftSum) / (m1.ttftCount - m0.ttftCount)) * 1000 : null,
          engineQueueMs: m1.queueCount > m0.queueCount ? ((m1.queueSum - m0.queueSum) / (m1.queueCount - m0.queueCount)) * 1000 : null,
          engineRequests: m1.ttftCount - m0.ttftCount,
        }
      : { engineTtftMs: null, engineQueueMs: null, engineRequests: null };
  const point = {
    phase,
    target,
    workers: gateway?.workers ?? null,
    round,
    concurrency,
    durationS: r.durationS,
    requests: r.requests,
    errors: r.errors,
    errorKinds: r.errorKinds,
    ttftMs: r.ttftMs,
    durationMs: r.durationMs,
    chunksPerRequest: r.chunksPerRequest,
    windowChunks: r.windowChunks,
    tokensPerSec: r.tokensPerSec,
    perStreamTokensPerSec: r.perStreamTokensPerSec,
    ...engine,
    cpu,
    waitedForQuietS: quiet.waitedS,
    disturbed: cpu.otherProcsPct !== null && cpu.otherProcsPct > NOISY_OTHER_CPU_PCT,
  };
  const f3 = (v) => (v === null ? 'n/a' : v.toFixed(3));
  const f0 = (v) => (v === null ? 'n/a' : v.toFixed(0));
  log(
    `  ${phase} c=${concurrency} round ${round} ${target.padEnd(10)}: TTFT p50 ${f3(r.ttftMs.p50)} p99 ${f3(r.ttftMs.p99)} ms, ${f0(r.tokensPerSec)} tokens/s, ` +
      `${r.requests} req, ${r.errors} err; CPU stand-in ${f0(cpu.standInPct)}%${proxy ? ` proxy ${f0(cpu.proxyPct)}%` : ''} gateway ${f0(cpu.gatewayPct)}% load ${f0(cpu.loadPct)}% other procs ${f0(cpu.otherProcsPct)}%` +
      `${point.disturbed ? '  ⚠ disturbed' : ''}`,
  );
  return { point, samplesUs: r.ttftSamplesUs ?? [] };
}

/** Pools the rounds of one contender: percentiles over every request, sums over the windows. */
function pool(target, points, samplesUs) {
  const ttft = summarize(samplesUs.flat().map((us) => us / 1000));
  const sum = (f) => points.reduce((s, p) => s + (f(p) ?? 0), 0);
  const wallS = sum((p) => p.cpu.wallS);
  const durationS = sum((p) => p.durationS);
  const chunks = sum((p) => p.windowChunks);
  const engineMean = (key) => {
    const vals = points.filter((p) => p[key] !== null && p.engineRequests > 0);
    const n = vals.reduce((s, p) => s + p.engineRequests, 0);
    return n > 0 ? vals.reduce((s, p) => s + p[key] * p.engineRequests, 0) / n : null;
  };
  const cpuS = (k) => (points.some((p) => p.cpu[k] === null) ? null : sum((p) => p.cpu[k]));
  const pctOf = (v) => (v === null ? null : (v / wallS) * 100);
  const round3 = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  const middleS = target.startsWith('gateway') ? cpuS('gatewayS') : target === 'proxy' ? cpuS('proxyS') : null;
  const durations = points.map((p) => p.durationMs.p50).sort((a, b) => a - b);
  return {
    requests: sum((p) => p.requests),
    errors: sum((p) => p.errors),
    ttftMs: { count: ttft.count, mean: round3(ttft.mean), p50: round3(ttft.p50), p90: round3(ttft.p90), p99: round3(ttft.p99), max: round3(ttft.max) },
    durationMsP50: durations[Math.floor((durations.length - 1) / 2)],
    tokensPerSec: chunks / durationS,
    perStreamTokensPerSec: points.reduce((s, p) => s + (p.perStreamTokensPerSec.p50 ?? 0), 0) / points.length,
    engineTtftMs: engineMean('engineTtftMs'),
    engineQueueMs: engineMean('engineQueueMs'),
    cpu: {
      wallS,
      standInS: cpuS('standInS'),
      proxyS: cpuS('proxyS'),
      gatewayS: cpuS('gatewayS'),
      loadS: sum((p) => p.cpu.loadS),
      standInPct: pctOf(cpuS('standInS')),
      proxyPct: pctOf(cpuS('proxyS')),
      gatewayPct: pctOf(cpuS('gatewayS')),
      loadPct: pctOf(sum((p) => p.cpu.loadS)),
      otherProcsPct: pctOf(sum((p) => p.cpu.otherProcsS)),
      unattributedPct: pctOf(cpuS('unattributedS')),
      machineBusyPct: cpuS('systemS') === null ? null : (cpuS('systemS') / wallS / results.machine.cores) * 100,
      // CPU of the process in the middle (gateway or proxy) per streamed token
      middleUsPerToken: middleS === null || chunks === 0 ? null : (middleS / chunks) * 1e6,
      standInUsPerToken: cpuS('standInS') === null || chunks === 0 ? null : (cpuS('standInS') / chunks) * 1e6,
    },
  };
}

const minus = (a, b) => (a === null || a === undefined || b === null || b === undefined ? null : a - b);

/** Every contender in turn (direct, proxy, the gateways), `rounds` times, at one concurrency. */
async function compare(phase, concurrency, setup) {
  const points = [];
  const samples = {};
  const list = contenders(setup, concurrency);
  for (let round = 1; round <= settings.rounds; round++) {
    for (const c of list) {
      let best = null;
      for (let attempt = 1; attempt <= 1 + settings.retries; attempt++) {
        const m = await measurePoint({ phase, round, concurrency, ...c }, setup);
        m.point.attempt = attempt;
        if (!best || (m.point.cpu.otherProcsS ?? 0) < (best.point.cpu.otherProcsS ?? 0)) best = m;
        if (!m.point.disturbed) break;
        if (attempt <= settings.retries) log('  disturbed by other processes: measuring this point again');
      }
      points.push(best.point);
      (samples[c.target] ??= []).push(best.samplesUs);
    }
  }
  const pooled = Object.fromEntries(
    Object.keys(samples).map((t) => [
      t,
      pool(
        t,
        points.filter((p) => p.target === t),
        samples[t],
      ),
    ]),
  );
  const { direct, proxy = null } = pooled;
  const added = (x) => ({ p50: minus(x.ttftMs.p50, direct.ttftMs.p50), p99: minus(x.ttftMs.p99, direct.ttftMs.p99), mean: minus(x.ttftMs.mean, direct.ttftMs.mean) });
  const proxyAddedTtftMs = proxy ? added(proxy) : null;
  // each gateway measured here against direct (and the bare proxy)
  const gateways = list
    .filter((c) => c.gateway)
    .map((c) => {
      const g = pooled[c.target];
      const a = added(g);
      return {
        target: c.target,
        workers: c.gateway.workers,
        figures: g,
        addedTtftMs: a,
        tokensRatio: direct.tokensPerSec > 0 ? g.tokensPerSec / direct.tokensPerSec : null,
        // added TTFT p50 as a multiple of what the bare proxy adds (the floor any gateway pays here)
        addedP50VsProxy: proxyAddedTtftMs && proxyAddedTtftMs.p50 > 0 && a.p50 !== null ? a.p50 / proxyAddedTtftMs.p50 : null,
      };
    });
  const first = gateways[0];
  const pairs = [];
  for (let round = 1; round <= settings.rounds; round++) {
    const a = points.find((p) => p.round === round && p.target === 'direct');
    const x = points.find((p) => p.round === round && p.target === 'proxy');
    const byGateway = {};
    for (const g of gateways) {
      const b = points.find((p) => p.round === round && p.target === g.target);
      byGateway[g.target] = { addedP50: minus(b.ttftMs.p50, a.ttftMs.p50), addedP99: minus(b.ttftMs.p99, a.ttftMs.p99), tokensRatio: a.tokensPerSec > 0 ? b.tokensPerSec / a.tokensPerSec : null };
    }
    const b0 = byGateway[first.target];
    pairs.push({
      round,
      // the first gateway's (one worker), as before several gateways were measured
      addedP50: b0.addedP50,
      addedP99: b0.addedP99,
      tokensRatio: b0.tokensRatio,
      proxyAddedP50: x ? minus(x.ttftMs.p50, a.ttftMs.p50) : null,
      proxyAddedP99: x ? minus(x.ttftMs.p99, a.ttftMs.p99) : null,
      gateways: byGateway,
    });
  }
  const cmp = {
    phase,
    concurrency,
    cores: results.machine.cores,
    direct,
    proxy,
    // the first gateway (one worker unless BENCH_LLM_WORKERS leaves it out): the figures reports before workers read
    gateway: first.figures,
    gatewayTarget: first.target,
    addedTtftMs: first.addedTtftMs,
    proxyAddedTtftMs,
    tokensRatio: first.tokensRatio,
    proxyTokensRatio: proxy && direct.tokensPerSec > 0 ? proxy.tokensPerSec / direct.tokensPerSec : null,
    gateways,
    pairs,
    disturbed: points.some((p) => p.disturbed),
    points,
  };
  for (const g of gateways) {
    log(
      `  => ${phase} c=${concurrency} ${g.target}: adds TTFT p50 ${g.addedTtftMs.p50?.toFixed(3)} ms, p99 ${g.addedTtftMs.p99?.toFixed(3)} ms` +
        `${proxy ? ` (bare proxy: p50 ${proxyAddedTtftMs.p50?.toFixed(3)}, p99 ${proxyAddedTtftMs.p99?.toFixed(3)}; ${g.addedP50VsProxy?.toFixed(2)}× the proxy's p50)` : ''}; ` +
        `tokens/s ${g.figures.tokensPerSec.toFixed(0)} vs ${direct.tokensPerSec.toFixed(0)} direct (${g.tokensRatio?.toFixed(3)}×)${proxy ? `, proxy ${cmp.proxyTokensRatio?.toFixed(3)}×` : ''}; ` +
        `${g.figures.cpu.middleUsPerToken?.toFixed(1)} µs CPU per token${proxy ? `, proxy ${proxy.cpu.middleUsPerToken?.toFixed(1)}` : ''}`,
    );
  }
  return cmp;
}

/** A stand-in's counters (`/stand-in/stats`): generation requests received, sequences running now. */
async function standInStats(url) {
  const res = await fetch(`${url}/stand-in/stats`, { signal: AbortSignal.timeout(2000) });
  const { received, running, waiting } = await res.json();
  return { received, running, waiting };
}

/**
 * The balance phase: one window per gateway at the highest concurrency on `chat-pool`, a
 * least-loaded model over BENCH_LLM_BALANCE_REPLICAS paced stand-ins. Each replica's own counters
 * say how evenly the requests (received during the window) and the sequences in flight (sampled
 * every 250 ms) were spread: with several workers each one sees only its own in-flight requests
 * (and the replicas' scraped queues), so the spread may widen.
 */
async function measureBalance(gateway, pool, concurrency) {
  for (const pid of [...pool.map((s) => s.pid), ...gateway.pids()]) await waitIdle(pid);
  await waitQuiet(new Set(benchPids()), { thresholdPct: NOISY_OTHER_CPU_PCT });
  let start = null;
  let end = null;
  const running = [];
  let sampling = null;
  const sample = async () => {
    const stats = await Promise.all(pool.map((s) => standInStats(s.url).catch(() => null)));
    if (stats.every(Boolean)) running.push(stats.map((x) => x.running + x.waiting));
  };
  const r = await runLoad(
    LOAD,
    { url: gateway.url, model: 'chat-pool', concurrency, durationS: settings.durationS, warmupS: settings.warmupS, rampS: rampFor(pool[0]), maxTokens: settings.maxTokens },
    {
      timeoutMs: (settings.durationS + settings.warmupS + 120) * 1000,
      onMark: (mark) => {
        if (mark === 'start') {
          start = Promise.all(pool.map((s) => standInStats(s.url)));
          sampling = setInterval(() => void sample(), 250);
        } else {
          clearInterval(sampling);
          end = Promise.all(pool.map((s) => standInStats(s.url)));
        }
      },
    },
  );
  const [s0, s1] = await Promise.all([start, end]);
  const requests = pool.map((_, i) => s1[i].received - s0[i].received);
  const figures = balanceFigures(requests, running);
  const b = {
    target: gateway.target,
    workers: gateway.workers,
    concurrency,
    replicas: pool.length,
    requests,
    meanInFlight: pool.map((_, i) => (running.length ? running.reduce((sum, row) => sum + row[i], 0) / running.length : null)),
    samples: running.length,
    ...figures,
    tokensPerSec: r.tokensPerSec,
    ttftMs: r.ttftMs,
    errors: r.errors,
  };
  log(
    `  balance c=${concurrency} ${gateway.target.padEnd(10)}: requests per replica ${requests.join(' / ')} (max ÷ min ${figures.requestsMaxOverMin?.toFixed(3)}, CV ${figures.requestsCv?.toFixed(3)}); ` +
      `in flight: mean CV ${figures.inFlightCvMean?.toFixed(3)}, mean max ÷ min ${figures.inFlightMaxOverMinMean?.toFixed(3)} over ${running.length} samples; ${r.errors} errors`,
  );
  return b;
}

/** One run through a gateway started with --cpu-prof, at the highest concurrency, paced. */
async function profileGateway(plugin, standIn) {
  const dir = path.join(tmp, 'cpuprof');
  const concurrency = Math.max(...settings.concurrency);
  const gw = await startGateway(plugin, { chat: standIn.url }, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], label: 'gateway-profiled' });
  const marks = {};
  let load;
  try {
    log(`profiling the gateway (--cpu-prof) at ${concurrency} streams for ${settings.durationS} s`);
    load = await runLoad(
      LOAD,
      { url: gw.url, model: 'chat', concurrency, durationS: settings.durationS, warmupS: settings.warmupS, rampS: rampFor(standIn), maxTokens: settings.maxTokens },
      { timeoutMs: (settings.durationS + settings.warmupS + 120) * 1000, onMark: (mark) => (marks[mark] = performance.now() - gw.spawnedAt) },
    );
  } finally {
    await gw.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  // only the measured window: not start-up, warm-up or shutdown (times from spawn ≈ from the profile's start)
  const summary = summarizeCpuProfile(path.join(dir, file), { top: 30, windowMs: marks.start && marks.end ? [marks.start, marks.end] : null });
  summary.ttftMs = load.ttftMs;
  summary.tokensPerSec = load.tokensPerSec;
  const keep = path.join(BENCH_DIR, 'results', `${results.date.slice(0, 10)}-${machineSlug(results.machine)}${quick ? '-quick' : ''}-llm-gateway.cpuprofile`);
  if (env.BENCH_KEEP_PROFILE === '1') await writeFile(keep, await readFile(path.join(dir, file)));
  return { concurrency, durationS: settings.durationS, ...summary, file: env.BENCH_KEEP_PROFILE === '1' ? path.relative(ROOT, keep) : null };
}

// ---------------------------------------------------------------------------------------------
// Output

async function writeOutputs() {
  const file = await writeResultsFile(results, { quick, tag: env.BENCH_LLM_TAG });
  if (env.BENCH_WRITE === 'json') {
    log(`\nwrote ${path.relative(ROOT, file)} (BENCH_WRITE=json: docs/benchmarks.md left alone)`);
    return;
  }
  // read just before writing: other suites may have rewritten their own section meanwhile
  await writeDocsSection(DOCS, { ...section, heading: HEADING, block: renderLlmMarkdown(results) });
  log(`\nwrote ${path.relative(ROOT, file)} and ${path.relative(ROOT, DOCS)} (${section.start})`);
}

/** The gateways of BENCH_LLM_WORKERS: `auto` as `server.workers: auto` resolves it here; each count once. */
async function gatewaysToMeasure() {
  const { resolveWorkers } = await import(pathToFileURL(WORKERS_JS).href);
  const out = [];
  for (const asked of settings.workers) {
    const workers = resolveWorkers(asked === 'auto' ? 'auto' : Number(asked));
    if (out.some((g) => g.workers === workers)) {
      log(`  BENCH_LLM_WORKERS: ${asked} is ${workers} worker(s) on ${results.machine.cores} cores, measured already`);
      continue;
    }
    out.push({ target: workers === 1 ? 'gateway' : `gateway-${workers}w`, workers, asked });
  }
  return out;
}

async function main() {
  for (const f of [CLI, STAND_IN.replace(/bin\/vllm-stand-in\.js$/, 'dist/cli.js'), PLUGIN_DIST, WORKERS_JS]) {
    if (!existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  const started = performance.now();
  const m = results.machine;
  log(`bench llm: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);
  if (m.loadavgAtStart[0] > m.cores * 0.25) log(`  WARN load average ${m.loadavgAtStart[0].toFixed(2)} on ${m.cores} cores before the run: other work is running, figures will be disturbed`);
  log(`  the load generator, the stand-in and the gateway share these ${m.cores} cores`);
  settings.gateways = await gatewaysToMeasure();
  results.settings.gateways = settings.gateways;
  results.settings.workersAt = settings.workersAt;

  const paced = await startStandIn('paced', { ttftMs: settings.ttftMs, tokenDelayMs: settings.tokenDelayMs });
  const fast = settings.ceiling ? await startStandIn('fast', { ttftMs: 0, tokenDelayMs: 0 }) : null;
  const pool = [];
  for (let i = 0; i < settings.balanceReplicas; i++) pool.push(await startStandIn(`pool-${i + 1}`, { ttftMs: settings.ttftMs, tokenDelayMs: settings.tokenDelayMs }));
  const upstreams = { chat: paced.url, ...(fast ? { 'chat-fast': fast.url } : {}), ...(pool.length ? { 'chat-pool': pool.map((s) => s.url) } : {}) };
  const plugin = await pluginSpecifier(upstreams);
  results.settings.plugin = plugin;
  const pacedProxy = settings.proxy ? await startProxy('paced', paced) : null;
  const fastProxy = settings.proxy && fast ? await startProxy('fast', fast) : null;
  const gateways = [];
  try {
    for (const g of settings.gateways) gateways.push({ ...(await startGateway(plugin, upstreams, { workers: g.workers, label: g.target })), target: g.target });
    log(
      `  stand-in ${paced.url} (pid ${paced.pid})${fast ? `, fast stand-in ${fast.url} (pid ${fast.pid})` : ''}${pool.length ? `, ${pool.length} pool stand-ins` : ''}` +
        `${pacedProxy ? `, proxies ${pacedProxy.url}${fastProxy ? ` ${fastProxy.url}` : ''}` : ''}, ` +
        `${gateways.map((g) => `${g.target} ${g.url} (pid ${g.pid}${g.workers > 1 ? `, ${g.workers} workers` : ''})`).join(', ')}, plugin ${plugin}`,
    );
    for (const g of gateways) {
      results.preflight[`paced/${g.target}`] = await preflight(paced, g, 'chat');
      if (fast) results.preflight[`fast/${g.target}`] = await preflight(fast, g, 'chat-fast');
    }

    for (const c of settings.concurrency) {
      log(`paced (TTFT ${settings.ttftMs} ms, ${settings.tokenDelayMs} ms per token), ${c} streams:`);
      results.paced.push(await compare('paced', c, { standIn: paced, proxy: pacedProxy, gateways, model: 'chat' }));
    }
    if (fast) {
      for (const c of settings.concurrency) {
        log(`ceiling (no delays), ${c} streams:`);
        results.ceiling.push(await compare('ceiling', c, { standIn: fast, proxy: fastProxy, gateways, model: 'chat-fast' }));
      }
    }
    if (pool.length > 0) {
      const c = Math.max(...settings.concurrency);
      log(`balance (least-loaded over ${pool.length} paced stand-ins), ${c} streams:`);
      for (const g of gateways) results.balance.push(await measureBalance(g, pool, c));
    }
    results.targets = evaluateLlmTargets(results);
    const missed = results.targets.some((t) => t.pass === false);
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
    if (settings.profile === '1' || (settings.profile === 'auto' && missed)) {
      try {
        results.profile = await profileGateway(plugin, paced);
      } catch (err) {
        results.profile = { concurrency: Math.max(...settings.concurrency), durationS: settings.durationS, error: String(err?.message ?? err) };
      }
    }
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all([paced.stop(), fast?.stop(), pacedProxy?.stop(), fastProxy?.stop(), ...pool.map((s) => s.stop())]);
  }

  results.elapsedS = (performance.now() - started) / 1000;
  results.machine.loadavgAtEnd = os.loadavg();
  results.disturbedPoints = [...results.paced, ...results.ceiling].flatMap((c) => c.points).filter((p) => p.disturbed).length;
  log('');
  for (const t of results.targets) {
    log(`target ${t.pass === null ? 'n/a ' : t.pass ? 'MET ' : 'MISS'}${t.disturbed && t.pass !== null ? ' (disturbed)' : ''} c=${t.concurrency} ${t.target}: ${t.measured === null ? 'n/a' : `${t.measured.toFixed(3)} ${t.unit}`} — ${t.note}`);
  }
  for (const c of results.ceiling) for (const g of c.gateways) log(`ceiling c=${c.concurrency} ${g.target}: ${c.direct.tokensPerSec.toFixed(0)} chunks/s direct, ${g.figures.tokensPerSec.toFixed(0)} via the gateway (${g.tokensRatio.toFixed(3)}×)`);
  if (results.profile && !results.profile.error) {
    log(`gateway profile: top self time`);
    for (const f of results.profile.self.slice(0, 10)) log(`  ${f.ms.toFixed(0).padStart(6)} ms ${String(f.pctOfBusy).padStart(5)}%  ${f.name}`);
  }
  if (env.BENCH_WRITE !== '0') await writeOutputs();
  log(`done in ${Math.round(results.elapsedS)} s`);
}

try {
  await main();
} catch (err) {
  log(`bench llm: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
