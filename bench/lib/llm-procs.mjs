// Processes of the LLM gateway benchmark: the vLLM stand-in, the Tessera gateway and the load
// generator, each a child process of its own. Every child is tracked here and gets SIGKILL when
// the orchestrator exits, however it exits (bench/lib/common.mjs's installCleanup turns Ctrl-C and
// SIGTERM into process.exit, which runs this module's 'exit' handler too).
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { ROOT, trackChild } from './common.mjs';
import { processCpuSeconds, processTree } from './probe.mjs';

export { processTree };

/** True once `GET url` answers 200. */
async function answers200(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts `node [nodeArgs] script args` with stdout/stderr going to `logFile` (a file, not a pipe:
 * nothing in this process has to read a server's output while it is measured), then polls
 * `readyUrl` until it answers 200. `stop()` sends SIGTERM (a --cpu-prof profile is written on a
 * clean exit), then SIGKILL after `graceMs`.
 */
export async function startService(name, script, args, { logFile, readyUrl, env = {}, nodeArgs = [], timeoutMs = 60_000 }) {
  const fd = openSync(logFile, 'w');
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = trackChild(child);
  const tail = (n = 20) => readFileSync(logFile, 'utf8').split('\n').slice(-n).join('\n');
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(kill);
    }
    return exited;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited with ${child.exitCode ?? child.signalCode} before it was ready:\n${tail()}`);
    if (await answers200(readyUrl)) return { name, pid: child.pid, child, stop, tail, logFile, spawnedAt };
    if (Date.now() > deadline) {
      await stop(1000);
      throw new Error(`${name}: ${readyUrl} did not answer 200 within ${timeoutMs} ms:\n${tail()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs the load generator (bench/llm-load.mjs) to completion. `onMark('start' | 'end')` is called
 * when it enters and leaves its measured window (its `MARK` lines on stderr). Resolves with its
 * JSON line.
 */
export async function runLoad(script, spec, { onMark = () => {}, timeoutMs }) {
  const child = spawn(process.execPath, [script, JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = trackChild(child);
  const out = [];
  const err = [];
  createInterface({ input: child.stdout }).on('line', (line) => out.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => {
    const m = /^MARK (start|end)$/.exec(line);
    if (m) onMark(m[1], child.pid);
    else err.push(line);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  // let readline deliver the last lines
  await new Promise((r) => setImmediate(r));
  const last = out.filter((l) => l.startsWith('{')).at(-1);
  if (code !== 0 || !last) throw new Error(`${path.relative(ROOT, script)} exited with ${code}\n${err.slice(-20).join('\n')}\n${out.slice(-5).join('\n')}`);
  return { ...JSON.parse(last), pid: child.pid };
}

/**
 * CPU seconds (user + sys) of every process on the machine, by pid, from /proc/<pid>/stat; an
 * empty map where /proc is missing. Used to tell how much CPU processes *other than the
 * benchmark's* took during a point (other engineers' builds and tests on a shared machine).
 */
export function allProcessCpu() {
  const map = new Map();
  for (const pid of processIds()) {
    const s = processCpuSeconds(pid);
    if (s !== null) map.set(pid, s);
  }
  return map;
}


/** The pids of every process on the machine (Linux /proc); empty elsewhere. */
export function processIds() {
  try {
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds used between two allProcessCpu() snapshots by processes not in `exclude` (new processes count whole). */
export function otherProcessCpu(before, after, exclude) {
  let sum = 0;
  for (const [pid, s] of after) {
    if (exclude.has(pid)) continue;
    sum += s - (before.get(pid) ?? 0);
  }
  return Math.max(0, sum);
}

/**
 * Waits until processes outside `exclude` (pids) use less than `thresholdPct` of a core over a
 * `windowMs` window, for at most `maxS`. Resolves with the seconds waited and the last reading.
 */
export async function waitQuiet(exclude, { thresholdPct = 40, windowMs = 1000, maxS = 60 } = {}) {
  const start = performance.now();
  let pct = null;
  for (;;) {
    const before = allProcessCpu();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const after = allProcessCpu();
    if (after.size === 0) return { waitedS: 0, otherPct: null };
    pct = (otherProcessCpu(before, after, exclude) / ((performance.now() - t0) / 1000)) * 100;
    if (pct < thresholdPct || (performance.now() - start) / 1000 >= maxS) break;
  }
  return { waitedS: (performance.now() - start) / 1000, otherPct: pct };
}
