// The raw baseline of the OCR suite as a sweep: S sessions running at once (each in a process of
// its own, bench/lib/raw-worker.mjs), each with T intra-op threads, S × T ≤ the cores, at the batch
// sizes. The best aggregate samples/s over the whole sweep is "raw best", the true limit of the
// model on these cores; one session with ORT's default threads (today's reference, "raw default")
// is the sweep's first line and runs at every batch size.
import { fork } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_DIR, summarize, trackChild } from './common.mjs';

const WORKER = path.join(BENCH_DIR, 'lib', 'raw-worker.mjs');

/** Powers of two from 1 up to `cores`, and `cores` itself when it is not one. */
export function powersOfTwo(cores) {
  const out = [];
  for (let s = 1; s <= cores; s *= 2) out.push(s);
  if (out.at(-1) !== cores) out.push(cores);
  return out;
}

/**
 * The (sessions, threads) points of the sweep on `cores` cores, the default one (1 session, the
 * base options' threads: `threads: null`) first. `sessions`: the S values (default: powers of two
 * up to the cores). `threads`: the T values tried for every S (kept where S × T ≤ cores; 0 or
 * `default` is the base options' threads, for S = 1 only); by default T = cores ÷ S (every core
 * busy) and half of it (room for the rest of a server).
 */
export function sweepGrid(cores, { sessions, threads } = {}) {
  const grid = [{ sessions: 1, threads: null }];
  const seen = new Set(['1×null']);
  const add = (s, t) => {
    const key = `${s}×${t}`;
    if (seen.has(key)) return;
    seen.add(key);
    grid.push({ sessions: s, threads: t });
  };
  for (const s of sessions ?? powersOfTwo(cores)) {
    if (!Number.isInteger(s) || s < 1) throw new Error(`raw sweep: sessions ${s}: expected integers ≥ 1`);
    if (s > cores) continue;
    const ts = threads ?? [Math.floor(cores / s), Math.floor(cores / s / 2)];
    for (const t of ts) {
      if (t === null || t === 0) {
        if (s === 1) add(1, null);
        continue;
      }
      if (!Number.isInteger(t) || t < 1) throw new Error(`raw sweep: threads ${t}: expected integers ≥ 0`);
      if (s * t <= cores) add(s, t);
    }
  }
  return grid;
}

/**
 * The batch sizes of a point other than the default one: the `top` best of the default sweep (by
 * samples/s), plus batch 1 for one session (its latency is a reference).
 */
export function sweepBatches(defaultRows, { sessions, top = 2 }) {
  const best = [...defaultRows].sort((a, b) => b.samplesPerSec - a.samplesPerSec).slice(0, top).map((r) => r.batch);
  const out = new Set(sessions === 1 ? [1, ...best] : best);
  return [...out].sort((a, b) => a - b);
}

/** A point's settings as one short label: `1 × ORT default`, `2 × 6`. */
export function pointLabel(p, base = {}) {
  const t = p.threads ?? base.intraOpNumThreads ?? null;
  return `${p.sessions} × ${t === null ? 'ORT default' : t}${p.threads === null && t !== null ? ' (BENCH_THREADS)' : ''}`;
}

/** Sessions of one point: forks them, waits until each has loaded (and the first written the reference). */
async function startSessions({ model, sessions, threads, sessionOptions, referenceFile, log }) {
  const options = { ...sessionOptions, ...(threads === null ? {} : { intraOpNumThreads: threads }) };
  const workers = [];
  for (let i = 0; i < sessions; i++) {
    const args = { model, sessionOptions: options, ...(i === 0 && referenceFile ? { referenceFile } : {}) };
    const child = fork(WORKER, [JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    const exited = trackChild(child);
    const queue = [];
    let waiting = null;
    child.on('message', (m) => {
      if (waiting) {
        const w = waiting;
        waiting = null;
        w.resolve(m);
      } else queue.push(m);
    });
    void exited.then((code) => {
      if (waiting) waiting.reject(new Error(`raw session ${i + 1}/${sessions} (${model}) exited with ${code}`));
      waiting = null;
    });
    const next = (timeoutMs) =>
      new Promise((resolve, reject) => {
        if (queue.length > 0) return resolve(queue.shift());
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`raw session ${i + 1}/${sessions} (${model}) has exited`));
        const timer = setTimeout(() => {
          waiting = null;
          reject(new Error(`raw session ${i + 1}/${sessions} (${model}): no answer within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting = {
          resolve: (m) => {
            clearTimeout(timer);
            if (m.type === 'error') reject(new Error(`raw session ${i + 1}/${sessions} (${model}): ${m.error}`));
            else resolve(m);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
      });
    workers.push({ child, exited, next, send: (m) => child.send(m) });
  }
  const ready = await Promise.all(workers.map((w) => w.next(120_000)));
  log?.(`  raw ${model} ${pointLabel({ sessions, threads }, sessionOptions)}: ${sessions} session(s) loaded`);
  return { workers, onnxruntime: ready[0]?.onnxruntime ?? null };
}

async function stopSessions(workers) {
  for (const w of workers) {
    try {
      w.send({ type: 'exit' });
    } catch {
      // already gone
    }
  }
  const timer = setTimeout(() => {
    for (const w of workers) w.child.kill('SIGKILL');
  }, 10_000);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(timer);
}

/** Wall-clock milliseconds (sub-ms): the workers' clock too. */
const now = () => performance.timeOrigin + performance.now();

/**
 * One batch size on running sessions: a warm-up until `warmupMs` from now, then every session
 * measured over the same window — at least `durationMs`, longer (up to 4×) when a run takes more
 * than a tenth of it, so that each session completes about ten runs or more.
 */
async function measureBatch(workers, { batch, durationMs, warmupMs }) {
  const untilMs = now() + warmupMs;
  for (const w of workers) w.send({ type: 'warm', batch, untilMs });
  const warmed = await Promise.all(workers.map((w) => w.next(warmupMs + 120_000)));
  const slowest = Math.max(...warmed.map((m) => m.lastRunMs));
  const windowMs = Math.min(4 * durationMs, Math.max(durationMs, 10 * slowest));
  // a few ms for the messages to arrive: the sessions run on until the window opens
  const startMs = now() + 20;
  const endMs = startMs + windowMs;
  for (const w of workers) w.send({ type: 'measure', batch, startMs, endMs });
  const measured = await Promise.all(workers.map((w) => w.next(windowMs + 120_000)));
  const latencies = measured.flatMap((m) => m.latencies);
  const lat = summarize(latencies);
  const runs = measured.reduce((n, m) => n + m.completions, 0);
  const cpus = measured.map((m) => m.cpuPct);
  return {
    batch,
    runs,
    windowS: windowMs / 1000,
    latencyMs: { mean: lat.mean, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max },
    samplesPerSec: (batch * runs) / (windowMs / 1000),
    perSampleMs: lat.p50 === null ? null : lat.p50 / batch,
    cpuPct: cpus.every((c) => c !== null) ? cpus.reduce((a, b) => a + b, 0) : null,
    perSession: measured.map((m) => ({ runs: m.completions, samplesPerSec: (batch * m.completions) / (windowMs / 1000) })),
  };
}

/** One (sessions, threads) point at each of `batches`. */
/** One grid point (`{ sessions, threads }`: that many sessions at once, threads each; `threads: null` = the base options'), at each batch size. */
export async function runPoint({ model, point, batches, durationMs, warmupMs, sessionOptions, referenceFile, log }) {
  const { workers, onnxruntime } = await startSessions({ model, ...point, sessionOptions, referenceFile, log });
  const rows = [];
  try {
    for (const batch of batches) {
      const row = await measureBatch(workers, { batch, durationMs, warmupMs });
      rows.push(row);
      log?.(
        `raw ${model} ${pointLabel(point, sessionOptions)} batch ${batch}: ${row.samplesPerSec.toFixed(1)} samples/s, ` +
          `p50 ${row.latencyMs.p50?.toFixed(3) ?? 'n/a'} ms per run, ${row.runs} runs in ${row.windowS.toFixed(1)} s, CPU ${row.cpuPct === null ? 'n/a' : Math.round(row.cpuPct)}%`,
      );
    }
  } finally {
    await stopSessions(workers);
  }
  return { rows, onnxruntime };
}

/** The fastest row of a list (null for none). */
const fastest = (rows) => rows.reduce((a, b) => (a === null || b.samplesPerSec > a.samplesPerSec ? b : a), null);

/**
 * The sweep's summary, from its points (each `{ sessions, threads, rows }`, the default first):
 * `batches` (the default point's rows: today's raw table), `defaultBest`, `best` (over every
 * point), `batch1` (batch-1 latency of one session with the default threads and with the threads
 * that gave the lowest p50), and `grid` (the best row of each point).
 */
export function summarizeSweep(points) {
  const def = points[0];
  const defaultBest = fastest(def.rows);
  const grid = points.map((p) => {
    const b = fastest(p.rows);
    const one = p.sessions === 1 ? p.rows.find((r) => r.batch === 1) : undefined;
    return {
      sessions: p.sessions,
      threads: p.threads,
      batch: b?.batch ?? null,
      samplesPerSec: b?.samplesPerSec ?? null,
      latencyMs: b?.latencyMs ?? null,
      cpuPct: b?.cpuPct ?? null,
      batch1P50Ms: one?.latencyMs.p50 ?? null,
    };
  });
  const best = grid.reduce((a, g) => (g.samplesPerSec !== null && (a === null || g.samplesPerSec > a.samplesPerSec) ? g : a), null);
  const ones = grid.filter((g) => g.batch1P50Ms !== null);
  const lowest = ones.reduce((a, g) => (a === null || g.batch1P50Ms < a.batch1P50Ms ? g : a), null);
  const defOne = def.rows.find((r) => r.batch === 1);
  return {
    batches: def.rows,
    defaultBest: defaultBest ? { batch: defaultBest.batch, samplesPerSec: defaultBest.samplesPerSec } : null,
    best: best ? { sessions: best.sessions, threads: best.threads, batch: best.batch, samplesPerSec: best.samplesPerSec } : null,
    batch1: {
      default: defOne ? { threads: null, p50Ms: defOne.latencyMs.p50, p99Ms: defOne.latencyMs.p99 } : null,
      bestThreads: lowest ? { threads: lowest.threads, p50Ms: lowest.batch1P50Ms } : null,
    },
    grid,
  };
}

/**
 * Runs the sweep for one model: the default point at `batches`, then the other points of
 * `sweepGrid` at `sweepBatches` of the default's results (none with `sweep: false`).
 */
export async function rawSweep({ model, batches, cores, durationMs, warmupMs, sessionOptions = {}, referenceFile, sweep = true, sessions, threads, top = 2, log }) {
  const started = performance.now();
  const grid = sweep ? sweepGrid(cores, { sessions, threads }) : [{ sessions: 1, threads: null }];
  const points = [];
  let onnxruntime = null;
  for (const [i, point] of grid.entries()) {
    const at = i === 0 ? batches : sweepBatches(points[0].rows, { sessions: point.sessions, top });
    if (at.length === 0 && i > 0) continue;
    const r = await runPoint({ model, point, batches: at, durationMs, warmupMs, sessionOptions, referenceFile: i === 0 ? referenceFile : undefined, log });
    onnxruntime ??= r.onnxruntime;
    points.push({ ...point, rows: r.rows });
  }
  return { cores, onnxruntime, points, ...summarizeSweep(points), elapsedS: (performance.now() - started) / 1000 };
}
