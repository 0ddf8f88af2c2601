// What the benchmark reads from a running server besides its answers: Prometheus histograms
// (batch size, queue and inference time) and the process's CPU time.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Histograms read from `/metrics`, when the server has them (names of DESIGN §6). */
export const HISTOGRAMS = {
  batchSize: 'tessera_batch_size',
  queueSeconds: 'tessera_queue_duration_seconds',
  inferenceSeconds: 'tessera_inference_duration_seconds',
};

function labelsOf(text) {
  const labels = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
  return labels;
}

/**
 * `{ sum, count }` of each histogram in HISTOGRAMS for one model (all its versions), or null for
 * a histogram the text does not have.
 */
export function parseHistograms(text, model) {
  const out = {};
  for (const [key, name] of Object.entries(HISTOGRAMS)) {
    let sum = 0;
    let count = 0;
    let found = false;
    for (const line of text.split('\n')) {
      const m = /^(\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m || (m[1] !== `${name}_sum` && m[1] !== `${name}_count`)) continue;
      if (labelsOf(m[2]).model !== model) continue;
      found = true;
      if (m[1].endsWith('_sum')) sum += Number(m[3]);
      else count += Number(m[3]);
    }
    out[key] = found ? { sum, count } : null;
  }
  return out;
}

/** Scrapes `/metrics`; null when the server has no such endpoint. */
export async function scrapeMetrics(baseUrl, model) {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return null;
    return parseHistograms(await res.text(), model);
  } catch {
    return null;
  }
}

/** Mean of each histogram over an interval (after − before); null where either side lacks it or nothing was observed. */
export function histogramMeans(before, after) {
  const means = {};
  for (const key of Object.keys(HISTOGRAMS)) {
    const a = before?.[key];
    const b = after?.[key];
    const count = a && b ? b.count - a.count : 0;
    means[key] = a && b && count > 0 ? { mean: (b.sum - a.sum) / count, count } : null;
  }
  return means;
}

let clockTicks;
/** User + system CPU seconds of a process, all its threads (Linux /proc); null elsewhere. */
export function processCpuSeconds(pid) {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

/**
 * `pid` and every process below it (a `tessera serve` with several workers is a primary and its
 * workers), from the children files of /proc/<pid>/task; just `[pid]` where /proc lacks them.
 */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').trim().split(/\s+/)) if (child) out.push(Number(child));
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return [...new Set(out)];
}

/** User + system CPU seconds of a process and every process under it (a cluster's primary and workers); null when the process is gone. */
export function treeCpuSeconds(pid) {
  const own = processCpuSeconds(pid);
  if (own === null) return null;
  let sum = own;
  for (const child of processTree(pid).slice(1)) sum += processCpuSeconds(child) ?? 0;
  return sum;
}

/** The parent's pid of a process (Linux /proc); null elsewhere or when it is gone. */
export function parentPid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the parent's pid is the second field after the parenthesised command name
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * Busy CPU seconds of the whole machine, all cores (Linux /proc/stat: everything but idle and
 * iowait; steal counts as busy, since a neighbour had the core); null elsewhere.
 */
export function systemBusySeconds() {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const [user, nice, system, , , irq, softirq, steal = 0] = cpu;
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return null;
  }
}

/**
 * Waits until a process (with the processes under it) is idle: under `thresholdPct` of one core over two consecutive
 * `intervalMs` windows (a server still working off requests of a previous load, whose clients are
 * gone, would otherwise spill into the next measurement). Resolves with the seconds waited.
 */
export async function waitIdle(pid, { thresholdPct = 10, intervalMs = 250, maxS = 60 } = {}) {
  const start = performance.now();
  let quiet = 0;
  let last = treeCpuSeconds(pid);
  if (last === null) return 0;
  while ((performance.now() - start) / 1000 < maxS) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const now = treeCpuSeconds(pid);
    if (now === null) break;
    const pct = ((now - last) / (intervalMs / 1000)) * 100;
    last = now;
    quiet = pct < thresholdPct ? quiet + 1 : 0;
    if (quiet >= 2) break;
  }
  return (performance.now() - start) / 1000;
}

/**
 * Waits until the primary of a `tessera serve` with several workers counts `workers` of them ready
 * (`tessera_cluster_workers{state="ready"}` on `/metrics`): the first worker's readiness alone
 * does not say the others serve. Throws after `timeoutMs`, with `tail()` (the server's last output).
 */
export async function waitWorkersReady(baseUrl, workers, { timeoutMs = 60_000, label = 'server', tail = () => '' } = {}) {
  const deadline = Date.now() + timeoutMs;
  const ready = async () => {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number(/^tessera_cluster_workers\{state="ready"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  while ((await ready().catch(() => 0)) < workers) {
    if (Date.now() > deadline) throw new Error(`${label}: not all ${workers} workers became ready:\n${tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
