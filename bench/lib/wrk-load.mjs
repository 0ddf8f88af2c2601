// A second load generator beside autocannon (bench/load.mjs): wrk (Debian's `wrk`, C, one event
// loop per thread), so that a figure can be checked with a client that shares no code with ours.
// `BENCH_LOADGEN=wrk` makes bench/lib/split-load.mjs use it (the point's load-generator processes
// become wrk threads); `BENCH_WRK` names the binary (default: `wrk` on the PATH). Closed loop, one
// request in flight per connection, like autocannon. Latency percentiles are wrk's own (µs).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A Lua string literal of `value` (wrk's scripts are Lua). */
const lua = (value) => `"${String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** The script: the body read once from `bodyFile`, the headers, and one JSON line at the end. */
function script(bodyFile, headers) {
  const lines = [`local f = assert(io.open(${lua(bodyFile)}, "rb"))`, 'wrk.body = f:read("*a")', 'f:close()', 'wrk.method = "POST"'];
  for (const [name, value] of Object.entries({ 'content-type': 'application/json', ...headers })) lines.push(`wrk.headers[${lua(name)}] = ${lua(value)}`);
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mean":%.3f,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n\',',
    '    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * Runs wrk with `threads` threads (at most one per connection) against `url` for `durationS` and
 * answers in bench/load.mjs's shape (no per-answer times: `latenciesMs` is absent). `loadCpuPct` is
 * wrk's CPU (bash's `times` of its child) over the run.
 */
export async function wrkLoad({ url, bodyFile, headers = {}, connections, durationS, threads = 1, timeoutMs = (durationS + 60) * 1000 }) {
  if (new URL(url).hostname !== '127.0.0.1') throw new Error(`wrk-load targets 127.0.0.1 only, not ${url}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tessera-wrk-'));
  try {
    const file = path.join(dir, 'load.lua');
    writeFileSync(file, script(bodyFile, headers));
    const bin = process.env.BENCH_WRK ?? 'wrk';
    const t = Math.max(1, Math.min(threads, connections));
    // bash's `times` prints the children's user and system CPU after wrk exits
    const cmd = `"$0" -t${t} -c${connections} -d${durationS}s --timeout 30s -s "$1" "$2"; rc=$?; times; exit $rc`;
    const child = spawn('bash', ['-c', cmd, bin, file, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (code !== 0 || !line) throw new Error(`wrk exited with ${code}:\n${out.slice(-2000)}\n${err.slice(-2000)}`);
    const r = JSON.parse(line.slice('WRKJSON '.length));
    // `times`: two lines, the shell's then its children's: "0m1.234s 0m0.567s"
    const child2 = out.trim().split('\n').at(-1).match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
    const cpuS = child2 ? Number(child2[1]) * 60 + Number(child2[2]) + Number(child2[3]) * 60 + Number(child2[4]) : null;
    const seconds = r.durationUs / 1e6;
    const errors = r.connect + r.read + r.write + r.timeout;
    return {
      loadGenerator: 'wrk',
      connections,
      durationS: seconds,
      requests: r.requests,
      non2xx: r.status,
      errors,
      timeouts: r.timeout,
      statusCodes: {},
      // wrk counts every answer in `requests`, non-2xx included: the rate is of 2xx answers, as bench/load.mjs's
      reqPerSec: (r.requests - r.status) / seconds,
      latencyMs: { mean: r.mean / 1000, p50: r.p50 / 1000, p90: r.p90 / 1000, p99: r.p99 / 1000, max: r.max / 1000 },
      bytesRead: r.bytes,
      loadCpuPct: cpuS === null ? null : (cpuS / seconds) * 100,
      processes: 1,
      threads: t,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
