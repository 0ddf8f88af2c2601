// Steady load that records every answer with its time (bench/reload.mjs): autocannon in a process
// of its own, paced at `rate` requests a second over `connections` connections, running until a
// `stop` line arrives on stdin (or stdin closes). Every answer is kept as three float64 values —
// when it arrived (ms on CLOCK_MONOTONIC, process.hrtime: the same clock in every process of the
// machine, so the orchestrator can cut the answers into windows around the moments it signalled),
// its latency in ms, its HTTP status (0: a connection error or a timeout) — and written to
// `samplesFile` when the load stops; then one JSON line with the totals.
//   node bench/lib/recorded-load.mjs '{"url":"http://127.0.0.1:8000/v2/models/m/infer","bodyFile":"/tmp/b.bin","connections":16,"rate":500,"samplesFile":"/tmp/s.f64"}'
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

const args = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(args.url);
if (url.hostname !== '127.0.0.1') throw new Error(`recorded-load.mjs targets 127.0.0.1 only, not ${url.hostname}`);
const body = readFileSync(args.bodyFile);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Answers in chunks of 3 × 65,536 float64s, so a long run never copies one huge array. */
const CHUNK = 3 * 65_536;
const chunks = [new Float64Array(CHUNK)];
let used = 0;
const record = (latencyMs, status) => {
  if (used === CHUNK) {
    chunks.push(new Float64Array(CHUNK));
    used = 0;
  }
  const c = chunks[chunks.length - 1];
  c[used] = nowMs();
  c[used + 1] = latencyMs;
  c[used + 2] = status;
  used += 3;
};

const cpu0 = process.cpuUsage();
const startedMs = nowMs();
const instance = autocannon({
  url: url.href,
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(args.headers ?? {}) },
  body,
  connections: args.connections ?? 16,
  pipelining: 1,
  // stopped from stdin; the duration is only a bound
  duration: args.maxDurationS ?? 3600,
  timeout: args.timeoutS ?? 30,
  ...(args.rate ? { overallRate: args.rate } : {}),
});
instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => record(responseTimeMs, statusCode));
instance.on('reqError', () => record(Number.NaN, 0));

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === 'stop') instance.stop();
  })
  .on('close', () => instance.stop());
process.stdout.write(`${JSON.stringify({ started: true, startedMs })}\n`);

const result = await instance;
const endedMs = nowMs();
const parts = chunks.map((c, i) => (i === chunks.length - 1 ? c.subarray(0, used) : c));
const count = parts.reduce((n, p) => n + p.length / 3, 0);
writeFileSync(args.samplesFile, Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({
    startedMs,
    endedMs,
    connections: result.connections,
    rate: args.rate ?? null,
    answers: count,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, v]) => [code, v.count])),
    loadCpuPct: ((cpu.user + cpu.system) / 1e6 / ((endedMs - startedMs) / 1000)) * 100,
  })}\n`,
);
process.exit(0);
