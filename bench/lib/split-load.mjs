// The load of one point from several load-generator processes (bench/load.mjs each), when one
// event loop cannot load the server: on 16 cores one autocannon process sending 110 KB bodies
// tops out below what the server answers. The connections are shared out among the processes and
// their answers merged: counts and rates summed, percentiles computed over every answer's time.
import path from 'node:path';
import { BENCH_DIR, runNodeJson, summarize } from './common.mjs';
import { wrkLoad } from './wrk-load.mjs';

const LOAD = path.join(BENCH_DIR, 'load.mjs');

/**
 * Runs `processes` load generators at once against `url` (at most one per connection) and merges
 * what they measured into one bench/load.mjs answer (plus `processes`). With `BENCH_LOADGEN=wrk`
 * the load is one wrk process with `processes` threads instead (bench/lib/wrk-load.mjs).
 */
export async function splitLoad({ url, bodyFile, headers, connections, durationS, processes = 1, timeoutMs = (durationS + 90) * 1000 }) {
  if (process.env.BENCH_LOADGEN === 'wrk') return wrkLoad({ url, bodyFile, headers, connections, durationS, threads: processes, timeoutMs });
  if (process.env.BENCH_LOADGEN && process.env.BENCH_LOADGEN !== 'autocannon') throw new Error(`BENCH_LOADGEN=${process.env.BENCH_LOADGEN}: expected autocannon or wrk`);
  const n = Math.max(1, Math.min(processes, connections));
  if (n === 1) return { ...(await runNodeJson(LOAD, [JSON.stringify({ url, bodyFile, headers, connections, durationS })], { timeoutMs })), processes: 1 };
  const parts = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const share = Math.floor(connections / n) + (i < connections % n ? 1 : 0);
      return runNodeJson(LOAD, [JSON.stringify({ url, bodyFile, headers, connections: share, durationS, raw: true })], { timeoutMs });
    }),
  );
  const sum = (key) => parts.reduce((a, p) => a + (p[key] ?? 0), 0);
  const statusCodes = {};
  for (const p of parts) for (const [code, count] of Object.entries(p.statusCodes ?? {})) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  const lat = summarize(parts.flatMap((p) => p.latenciesMs));
  return {
    connections: sum('connections'),
    durationS: Math.max(...parts.map((p) => p.durationS)),
    requests: sum('requests'),
    non2xx: sum('non2xx'),
    errors: sum('errors'),
    timeouts: sum('timeouts'),
    statusCodes,
    reqPerSec: sum('reqPerSec'),
    latencyMs: { mean: lat.mean, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max },
    bytesRead: parts.every((p) => p.bytesRead !== null) ? sum('bytesRead') : null,
    loadCpuPct: sum('loadCpuPct'),
    processes: n,
  };
}
