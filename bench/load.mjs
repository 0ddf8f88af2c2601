// The load generator: autocannon in a process of its own (so it never shares the server's event
// loop), sending one precomputed body for a fixed duration. Prints one JSON line.
// Latency percentiles are computed here from every response's own time (autocannon's histogram
// rounds to whole milliseconds; the targets need tenths).
//   node bench/load.mjs '{"url":"http://127.0.0.1:8000/v2/models/m/infer","bodyFile":"/tmp/b.json","connections":16,"durationS":10}'
// With `rate` the load is paced (autocannon's overallRate: that many requests a second over all
// connections); with `intervalS` the line also has `intervals`, the answers of each interval of that
// length on their own (the soak's p50/p99 over time). With `raw` it also has every answer's time
// (bench/lib/split-load.mjs runs several of these processes and merges them).
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { summarize } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(args.url);
if (url.hostname !== '127.0.0.1') throw new Error(`load.mjs targets 127.0.0.1 only, not ${url.hostname}`);
const body = readFileSync(args.bodyFile);

const latencies = [];
const cpu0 = process.cpuUsage();
const instance = autocannon({
  url: url.href,
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(args.headers ?? {}) },
  body,
  connections: args.connections ?? 1,
  pipelining: 1,
  duration: args.durationS ?? 10,
  timeout: args.timeoutS ?? 30,
  ...(args.rate ? { overallRate: args.rate } : {}),
});
const intervals = [];
let current = null;
/** Closes the interval being filled (its answers summarised) and opens the next one. */
const nextInterval = () => {
  if (current) intervals.push({ startMs: current.startMs, endMs: Date.now(), requests: current.ok.length, non2xx: current.non2xx, errors: current.errors, latencyMs: summarize(current.ok) });
  current = { startMs: Date.now(), ok: [], non2xx: 0, errors: 0 };
};
let ticker;
if (args.intervalS) {
  nextInterval();
  ticker = setInterval(nextInterval, args.intervalS * 1000);
  instance.on('reqError', () => current.errors++);
}
instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
  const ok = statusCode >= 200 && statusCode < 300;
  if (ok) latencies.push(responseTimeMs);
  if (current) {
    if (ok) current.ok.push(responseTimeMs);
    else current.non2xx++;
  }
});
const result = await instance;
if (ticker) {
  clearInterval(ticker);
  nextInterval();
}
const cpu = process.cpuUsage(cpu0);
const lat = summarize(latencies);
const ok = result['2xx'];
process.stdout.write(
  `${JSON.stringify({
    connections: result.connections,
    durationS: result.duration,
    requests: ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, v]) => [code, v.count])),
    reqPerSec: ok / result.duration,
    latencyMs: { mean: lat.mean, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max },
    bytesRead: result.throughput?.total ?? null,
    loadCpuPct: ((cpu.user + cpu.system) / 1e6 / result.duration) * 100,
    ...(args.intervalS ? { intervals } : {}),
    // every answer's time, for bench/lib/split-load.mjs to merge several generators' percentiles exactly
    ...(args.raw ? { latenciesMs: latencies } : {}),
  })}\n`,
);
