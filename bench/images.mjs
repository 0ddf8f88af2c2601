// The image-serving benchmark (part of `npm run bench`; alone: `node bench/images.mjs`).
// How many images a second does `POST /v1/predict` classify, against doing the same work directly
// in one Node process — measured in the same run, on the same machine. The model is the PP-OCR
// text-orientation classifier (x FP32 [N, 3, 48, 192] → softmax [N, 2], classes 0° and 180°).
//
//   served   `tessera serve` (packages/core/dist/cli.js) with the model as tessera.config.yaml
//            serves it: the built-in `image` pre step (decode, resize to height 48 keeping the
//            aspect, width ≤ 192, pad right, (p/255 − 0.5)/0.5, BGR, NCHW) and `classification`
//            post step (labels 0 and 180, top-1), the dynamic batcher (maxBatchSize 32, auto
//            delay). The load: autocannon (bench/load.mjs, its own process) sending
//            `{model, inputs: {image: <base64 PNG>}}` over C connections.
//   direct   bench/lib/images-direct.mjs, its own process: sharp + onnxruntime-node written
//            independently of the server, C images in flight as C/B workers of B images (decoded
//            concurrently, run as one batch of B); every B of {1, C/2, C} up to the largest batch is
//            measured and the best kept (the server may batch the same way).
//
// Images (bench/lib/images-render.mjs): rendered with sharp's text (DejaVu Sans) and encoded as PNG,
// a fixed set per kind — line (48 × 160), photo (200 × 800, a noisy lit background), page
// (1000 × 1000). Before anything is measured, every image of the set (upright and turned 180°) is
// classified both ways and the answers must agree. Per kind and concurrency: images/s, p50/p99 and
// the ratio served ÷ direct; the share of the time spent decoding and preprocessing (the server's
// Triton statistics, compute_input against compute_infer; the direct workers' own clocks).
// Reported by bench/lib/images-report.mjs; see docs/benchmarks.md, "Images through /v1/predict".
//
// Environment (all optional):
//   BENCH_SUITES=…,images             suites `npm run bench` runs; this one skips itself without `images`
//   BENCH_QUICK=1                     smoke run: line and page, concurrency 1 and 8, direct batches 1 and C, 0.5 s windows, no retries
//   BENCH_IMAGES_KINDS=line,photo,page   the image kinds measured
//   BENCH_IMAGES_CONCURRENCY=1,8,32,64   images in flight (connections, or the direct side's workers × batch)
//   BENCH_IMAGES_WINDOW=1.5           seconds measured per window
//   BENCH_IMAGES_WARMUP=0.4           seconds of the same load before each window (not measured)
//   BENCH_IMAGES_ROUNDS=1             windows per side and row; the order of the sides alternates by round
//   BENCH_IMAGES_MAX_BATCH=32         the server's maxBatchSize and the largest direct batch
//   BENCH_IMAGES_RETRIES=1            a window during which other processes used > 40% of a core is measured again
//   BENCH_IMAGES_LOG_LEVEL=warn       server.logLevel
//   BENCH_THREADS=…                   intraOpNumThreads on both sides (default: ORT's), as in run.mjs
//   BENCH_MACHINE=name                the <machine> part of bench/results/<date>-<machine>-images.json
//   BENCH_WRITE=0                     write neither the results file nor docs/benchmarks.md; `json`: the results file only
//   BENCH_KEEP_TMP=1                  keep the temporary folder (images, request bodies, config, server log)
//   BENCH_IMAGES_SECTION=images       the docs/benchmarks.md section written (markers bench-<section>:start/end)
//   BENCH_IMAGES_RENDER=<file>        measure nothing: write a results file (e.g. one from the device machine) into that section
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { benchModels, envList, envNumber, installCleanup, packageVersion, resultsHeader, ROOT, sessionOptionsFromEnv, skipUnlessSuite, suiteTempDir, trackChild } from './lib/common.mjs';
import { finishRun, gitInfo, measureWithRetries, renderSavedAndExit, runLoad, runSuite, startTessera, writeSuiteOutputs } from './lib/contest.mjs';
import { hasInk, IMAGE_KINDS, renderKind } from './lib/images-render.mjs';
import { evaluateImages, imagesMarkers, renderImagesMarkdown, rowLine, windowLine } from './lib/images-report.mjs';
import { allProcessCpu, otherProcessCpu, processIds, waitQuiet } from './lib/llm-procs.mjs';
import { parentPid, processCpuSeconds, waitIdle } from './lib/probe.mjs';

const env = process.env;
const log = (line) => process.stderr.write(`${line}\n`);
const HEADING = 'Images through /v1/predict';

skipUnlessSuite('images', 'bench/images.mjs');

const section = imagesMarkers(env.BENCH_IMAGES_SECTION);
await renderSavedAndExit(env.BENCH_IMAGES_RENDER, { section, heading: HEADING, render: renderImagesMarkdown, log });

const CLI = path.join(ROOT, 'packages', 'core', 'dist', 'cli.js');
const IMAGE_STEP = path.join(ROOT, 'packages', 'core', 'dist', 'processors', 'image.js');
const DIRECT = path.join(ROOT, 'bench', 'lib', 'images-direct.mjs');
const NOISY_OTHER_CPU_PCT = 40;
const MODEL = 'text-orientation';
const SCORE_TOLERANCE = 1e-3;

const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const maxBatch = envNumber('BENCH_IMAGES_MAX_BATCH', 32, { min: 1, integer: true });
const settings = {
  quick,
  kinds: envList(env.BENCH_IMAGES_KINDS, quick ? 'line,page' : 'line,photo,page'),
  concurrency: envList(env.BENCH_IMAGES_CONCURRENCY, quick ? '1,8' : '1,8,32,64').map(Number),
  windowS: envNumber('BENCH_IMAGES_WINDOW', quick ? 0.5 : 1.5, { min: 0.3 }),
  warmupS: envNumber('BENCH_IMAGES_WARMUP', quick ? 0.2 : 0.4, { min: 0.1 }),
  rounds: envNumber('BENCH_IMAGES_ROUNDS', 1, { min: 1, integer: true }),
  retries: envNumber('BENCH_IMAGES_RETRIES', quick ? 0 : 1, { integer: true }),
  maxBatch,
  logLevel: env.BENCH_IMAGES_LOG_LEVEL ?? 'warn',
  sessionOptions: sessionOptionsFromEnv(),
  batching: { batcher: 'dynamic', maxBatchSize: maxBatch, maxQueueDelayMs: 'auto' },
  // as tessera.config.yaml serves text-orientation
  preprocess: [{ processor: 'image', size: [48, 192], resize: 'pad', channels: 'bgr', mean: 0.5, std: 0.5 }],
  postprocess: [{ processor: 'classification', labels: ['0', '180'] }],
};
for (const k of settings.kinds) if (!IMAGE_KINDS[k]) throw new Error(`BENCH_IMAGES_KINDS: unknown kind '${k}' (${Object.keys(IMAGE_KINDS).join(', ')})`);
if (settings.concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_IMAGES_CONCURRENCY=${env.BENCH_IMAGES_CONCURRENCY}: expected positive integers`);

installCleanup();
const tmp = suiteTempDir('images');

const results = {
  ...resultsHeader('images', 'bench/images.mjs'),
  versions: { core: packageVersion('@tessera/core'), onnxruntime: packageVersion('onnxruntime-node'), sharp: packageVersion('sharp'), autocannon: packageVersion('autocannon'), node: process.version },
  git: gitInfo(),
  settings: { ...settings },
  noisyOtherCpuPct: NOISY_OTHER_CPU_PCT,
  scoreTolerance: SCORE_TOLERANCE,
  model: null,
  images: {},
  preflight: {},
  windows: [],
  rows: [],
  skipped: [],
};

/** The direct side's batch sizes at concurrency `c`: 1, c/2 (not in a quick run) and c, those that divide c and fit the largest batch. */
function directBatches(c, largest = maxBatch) {
  return [...new Set(quick ? [1, c] : [1, c / 2, c])].filter((b) => Number.isInteger(b) && b >= 1 && b <= largest && c % b === 0).sort((a, b) => a - b);
}

/** Starts bench/lib/images-direct.mjs; `ask(cmd)` sends one command and resolves with its answer. */
async function startDirect(spec) {
  // libuv's pool sized to the cores, as `tessera serve` sizes its own (packages/core/src/internal/threadpool.ts), unless set
  const uv = process.env.UV_THREADPOOL_SIZE ?? String(Math.min(128, Math.max(4, os.availableParallelism())));
  const child = spawn(process.execPath, [DIRECT, JSON.stringify(spec)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: uv } });
  const exited = trackChild(child);
  const err = [];
  const waiting = [];
  const early = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    err.push(l);
    if (err.length > 50) err.shift();
  });
  createInterface({ input: child.stdout }).on('line', (l) => {
    if (!l.startsWith('{')) return;
    const msg = JSON.parse(l);
    const w = waiting.shift();
    if (w) w(msg);
    else early.push(msg);
  });
  const next = () => (early.length ? Promise.resolve(early.shift()) : new Promise((resolve) => waiting.push(resolve)));
  const failed = exited.then((code) => {
    throw new Error(`bench/lib/images-direct.mjs exited with ${code}:\n${err.join('\n')}`);
  });
  failed.catch(() => {});
  const hello = await Promise.race([next(), failed]);
  const ask = async (cmd) => {
    child.stdin.write(`${JSON.stringify(cmd)}\n`);
    const msg = await Promise.race([next(), failed]);
    if (msg.error) throw new Error(`images-direct ${cmd.op}: ${msg.error}`);
    return msg;
  };
  const stop = async () => {
    if (child.exitCode === null) child.stdin.write('{"op":"exit"}\n');
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  };
  return { pid: child.pid, hello, ask, stop };
}

/** `POST /v1/predict` with one image; resolves with the answer's `predictions[0]`. */
async function predict(server, png) {
  const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, inputs: { image: png.toString('base64') } }), signal: AbortSignal.timeout(60_000) });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`POST /v1/predict: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  const p = Array.isArray(body.predictions?.[0]) ? body.predictions[0][0] : body.predictions?.[0];
  if (!p) throw new Error(`POST /v1/predict answered no predictions: ${JSON.stringify(body).slice(0, 300)}`);
  return p;
}

/** The model version's Triton statistics (`GET /v2/models/<m>/stats`): the sums a window's difference is taken of. */
async function stats(server) {
  const res = await fetch(`${server.url}/v2/models/${MODEL}/stats`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) return null;
  const s = (await res.json()).model_stats?.[0];
  if (!s) return null;
  const i = s.inference_stats;
  return { executions: s.execution_count, inferences: s.inference_count, success: i.success, queue: i.queue, input: i.compute_input, infer: i.compute_infer, output: i.compute_output };
}

/** Per request over a window (after − before): the mean ms of each phase, and the mean batch. */
function statsDiff(a, b) {
  if (!a || !b) return null;
  const n = b.success.count - a.success.count;
  if (n <= 0) return null;
  const per = (k) => (b[k].ns - a[k].ns) / 1e6 / n;
  const executions = b.executions - a.executions;
  const totalMs = per('success');
  const inputMs = per('input');
  const inferMs = per('infer');
  return { requests: n, totalMs, queueMs: per('queue'), inputMs, inferMs, outputMs: per('output'), meanBatch: executions > 0 ? (b.inferences - a.inferences) / executions : null, decodeShare: inputMs + inferMs > 0 ? inputMs / (inputMs + inferMs) : null };
}

/** CPU of processes other than this one, its children (load generators), the server and the direct process, as % of a core. */
function otherPct(before, after, wallS, exclude) {
  const mine = new Set([...exclude, ...processIds().filter((p) => parentPid(p) === process.pid)]);
  return (otherProcessCpu(before, after, mine) / wallS) * 100;
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm run bench does)`);
  if (!existsSync(IMAGE_STEP)) throw new Error(`${path.relative(ROOT, IMAGE_STEP)} is missing: this core has no built-in image processor (build it: npm run build)`);
  const started = performance.now();
  const m = results.machine;
  log(`bench images: ${results.command}\n  ${m.cpu}, ${m.cores} cores, load average ${m.loadavgAtStart.map((v) => v.toFixed(2)).join(' ')}`);

  const cls = benchModels().cls;
  results.model = { name: MODEL, file: path.relative(ROOT, cls.file) };
  // the images: the set of each kind, and its first (upright) image as the load's
  const files = {};
  const load = {};
  const sets = {};
  const bodies = {};
  for (const kind of settings.kinds) {
    const set = await renderKind(kind);
    sets[kind] = set;
    files[kind] = [];
    for (const img of set) {
      const f = path.join(tmp, `${img.id}.png`);
      await writeFile(f, img.png);
      files[kind].push(f);
    }
    load[kind] = files[kind][0];
    const text = JSON.stringify({ model: MODEL, inputs: { image: set[0].png.toString('base64') } });
    bodies[kind] = path.join(tmp, `predict-${kind}.json`);
    await writeFile(bodies[kind], text);
    const { height, width, describe } = IMAGE_KINDS[kind];
    results.images[kind] = { height, width, describe, count: set.length, pngBytes: set.map((i) => i.png.length), loadPngBytes: set[0].png.length, bodyBytes: Buffer.byteLength(text), glyphs: await hasInk(set[0].png) };
    if (!results.images[kind].glyphs) log(`  ${kind}: the text rendered no glyphs (no DejaVu Sans or other font here?): the images decode the same, but show no text`);
    log(`  ${kind}: ${height} × ${width}, ${set.length} images, PNG ${set[0].png.length.toLocaleString('en-US')} bytes (request body ${results.images[kind].bodyBytes.toLocaleString('en-US')})`);
  }

  const direct = await startDirect({ model: cls.file, sessionOptions: settings.sessionOptions, images: files, load });
  results.direct = { onnxruntime: direct.hello.onnxruntime, libvips: direct.hello.sharp?.vips ?? null, input: direct.hello.input, output: direct.hello.output };
  const services = [];
  const config = {
    server: { host: '127.0.0.1', port: 0, logLevel: settings.logLevel },
    models: {
      [MODEL]: {
        backend: 'onnxruntime',
        path: cls.file,
        batching: { ...settings.batching },
        warmupShapes: { x: [1, 3, 48, 192] },
        preprocess: settings.preprocess,
        postprocess: settings.postprocess,
        ...(Object.keys(settings.sessionOptions).length > 0 ? { sessionOptions: settings.sessionOptions } : {}),
      },
    },
  };
  let server;
  try {
    server = await startTessera(services, tmp, 'images', CLI, config);
    results.server = { cli: path.relative(ROOT, CLI), pid: server.pid, config: config.models[MODEL] };
    log(`  server: ${server.url} (pid ${server.pid}); direct: pid ${direct.pid}`);

    // the same answers both ways, on every image of every set
    for (const kind of settings.kinds) {
      const mine = (await direct.ask({ op: 'classify', kind })).predictions;
      const served = [];
      for (const img of sets[kind]) served.push(await predict(server, img.png));
      const rows = sets[kind].map((img, i) => ({ id: img.id, truth: img.upright ? '0' : '180', served: served[i], direct: mine[i], agree: served[i].label === mine[i].label && Math.abs(served[i].score - mine[i].score) <= SCORE_TOLERANCE }));
      const disagree = rows.filter((r) => !r.agree);
      results.preflight[kind] = { images: rows.length, agree: rows.length - disagree.length, correct: rows.filter((r) => r.served.label === r.truth).length, maxScoreDiff: Math.max(...rows.map((r) => Math.abs(r.served.score - r.direct.score))), rows };
      if (disagree.length > 0) throw new Error(`preflight ${kind}: served and direct answers differ on ${disagree.map((r) => `${r.id} (served ${JSON.stringify(r.served)}, direct ${JSON.stringify(r.direct)})`).join('; ')}`);
      log(`  preflight ${kind}: served and direct agree on ${rows.length} images (|Δscore| ≤ ${results.preflight[kind].maxScoreDiff.toExponential(1)}); ${results.preflight[kind].correct} of ${rows.length} classified correctly`);
    }

    const exclude = [process.pid, server.pid, direct.pid];
    const settle = async () => {
      await Promise.all([waitIdle(server.pid), waitIdle(direct.pid)]);
      return waitQuiet(new Set(exclude), { thresholdPct: NOISY_OTHER_CPU_PCT, windowMs: 400, maxS: quick ? 1 : 3 });
    };
    const body = (kind) => ({ file: bodies[kind], headers: {} });
    const servedWindow = async (kind, c, round) => {
      const quiet = await settle();
      await runLoad(`${server.url}/v1/predict`, body(kind), c, settings.warmupS);
      await waitIdle(server.pid);
      const s0 = await stats(server);
      const cpu0 = processCpuSeconds(server.pid);
      const all0 = allProcessCpu();
      const t0 = performance.now();
      const r = await runLoad(`${server.url}/v1/predict`, body(kind), c, settings.windowS);
      const wallS = (performance.now() - t0) / 1000;
      const cpu1 = processCpuSeconds(server.pid);
      const other = otherPct(all0, allProcessCpu(), wallS, exclude);
      const phases = statsDiff(s0, await stats(server));
      return {
        side: 'served', kind, concurrency: c, round, batch: null,
        images: r.requests, imagesPerSec: r.reqPerSec, latencyMs: r.latencyMs, failed: r.errors + r.timeouts + r.non2xx,
        serverCpuUsPerImage: cpu0 !== null && cpu1 !== null && r.requests > 0 ? ((cpu1 - cpu0) / r.requests) * 1e6 : null,
        loadCpuPct: r.loadCpuPct, phases, decodeShare: phases?.decodeShare ?? null, meanBatch: phases?.meanBatch ?? null,
        otherProcsPct: other, disturbed: other > NOISY_OTHER_CPU_PCT, waitedForQuietS: quiet.waitedS,
      };
    };
    const directWindow = async (kind, c, batch, round) => {
      const quiet = await settle();
      const all0 = allProcessCpu();
      const t0 = performance.now();
      const r = await direct.ask({ op: 'measure', kind, concurrency: c, batch, warmupS: settings.warmupS, durationS: settings.windowS });
      // the window is the last windowS of the call (the warm-up came first)
      const other = otherPct(all0, allProcessCpu(), (performance.now() - t0) / 1000, exclude);
      return { side: 'direct', kind, concurrency: c, round, batch, images: r.images, imagesPerSec: r.imagesPerSec, latencyMs: r.latencyMs, failed: 0, cpuUsPerImage: r.cpuUsPerImage, cpuPct: r.cpuPct, decodeShare: r.decodeShare, decodeMsPerBatch: r.decodeMsPerBatch, runMsPerBatch: r.runMsPerBatch, workers: r.workers, otherProcsPct: other, disturbed: other > NOISY_OTHER_CPU_PCT, waitedForQuietS: quiet.waitedS };
    };

    for (const kind of settings.kinds) {
      for (const c of settings.concurrency) {
        for (let round = 1; round <= settings.rounds; round++) {
          const sides = [() => measureWithRetries(() => servedWindow(kind, c, round), settings.retries, { log })];
          for (const b of directBatches(c)) sides.push(() => measureWithRetries(() => directWindow(kind, c, b, round), settings.retries, { log }));
          // odd rounds start with the server, even rounds with the direct side
          const order = round % 2 === 1 ? sides : [...sides.slice(1), sides[0]];
          for (const run of order) {
            const w = await run();
            results.windows.push(w);
            log(windowLine(w));
          }
        }
      }
    }
  } finally {
    if (server) await server.stop();
    await direct.stop();
  }

  results.rows = evaluateImages(results);
  finishRun(results, started);
  log('');
  for (const r of results.rows) log(rowLine(r));
  await writeSuiteOutputs(results, { quick, section, heading: HEADING, render: renderImagesMarkdown, log });
  log(`done in ${Math.round(results.elapsedS)} s`);
}

await runSuite('images', main, log);
