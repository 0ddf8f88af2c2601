// The streaming load generator of the LLM gateway benchmark, in a process of its own (so it never
// shares an event loop with the stand-in or the gateway). C closed-loop streams: each sends
// `POST {url}/v1/chat/completions` with `stream: true`, reads the server-sent events as they
// arrive, and sends the next request as soon as `data: [DONE]` came. Prints one JSON line.
//
//   node bench/llm-load.mjs '{"url":"http://127.0.0.1:8000","model":"chat","concurrency":16,"durationS":10,"warmupS":2,"maxTokens":64}'
// Optional: "minRequests" + "maxDurationS" (keep the window open until that many requests started
// in it), "rampS" (start the streams spread over that many seconds), "samples": true (every TTFT
// in µs in the output), "prompt", "timeoutS".
//
// Per request it records, with performance.now():
//   ttft      sending → the first event whose `choices[].delta.content` is non-empty
//   chunks    events with non-empty content (one per token for vLLM and the stand-in)
//   duration  sending → `data: [DONE]`
// The warm-up is not measured. Requests *started* in the measured window give the TTFT and
// per-stream figures (in-flight ones are awaited at the end); content chunks *received* in the
// window, from any request, give the aggregate tokens/s. On stderr it prints `MARK start` and
// `MARK end` at the edges of the measured window, so the orchestrator can read the servers' CPU
// time over exactly that window.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { summarize } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const base = new URL(args.url);
if (base.hostname !== '127.0.0.1') throw new Error(`llm-load.mjs targets 127.0.0.1 only, not ${base.hostname}`);
const concurrency = args.concurrency ?? 1;
const durationS = args.durationS ?? 10;
const warmupS = args.warmupS ?? 0;
const maxTokens = args.maxTokens ?? 64;
const timeoutS = args.timeoutS ?? 60;
// the window stays open past durationS until this many requests started in it (TTFT percentiles
// need samples; at concurrency 1 a 64-token stream takes most of a second), but not past maxDurationS
const minRequests = args.minRequests ?? 0;
const maxDurationS = Math.max(durationS, args.maxDurationS ?? durationS);
const path = args.path ?? '/v1/chat/completions';
const body = JSON.stringify({
  model: args.model,
  messages: [{ role: 'user', content: args.prompt ?? 'Summarise the benefits of continuous batching for LLM serving in one paragraph.' }],
  stream: true,
  max_tokens: maxTokens,
  temperature: 0,
});
const headers = { 'content-type': 'application/json', accept: 'text/event-stream' };

const pool = new Pool(base.origin, {
  connections: concurrency,
  pipelining: 1,
  keepAliveTimeout: 60_000,
  headersTimeout: timeoutS * 1000,
  bodyTimeout: timeoutS * 1000,
});

/** 'warmup' → 'measure' → 'drain' (no new requests; in-flight ones finish). */
let phase = warmupS > 0 ? 'warmup' : 'measure';
let t0 = 0;
let t1 = Infinity;
let windowChunks = 0;
const ttfts = [];
const durations = [];
const perStream = [];
const chunkCounts = [];
let requests = 0;
let started = 0;
let errors = 0;
const errorKinds = {};

const decoder = new TextDecoder();

/** Content of an event's data: true when some choice's delta.content (or text) is non-empty. */
function hasContent(data) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new Error(`an event that is not JSON: ${data.slice(0, 120)}`);
  }
  if (parsed.error) throw new Error(`error event: ${JSON.stringify(parsed.error).slice(0, 200)}`);
  const choices = parsed.choices;
  if (!Array.isArray(choices)) return false;
  for (const c of choices) {
    const d = c.delta;
    if (d && typeof d.content === 'string' && d.content.length > 0) return true;
    if (typeof c.text === 'string' && c.text.length > 0) return true;
  }
  return false;
}

/** One streamed request; resolves with its record (or rejects). */
function streamOnce() {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const measured = phase === 'measure';
    if (measured) started++;
    let first = -1;
    let last = -1;
    let chunks = 0;
    let buffer = '';
    let done = false;
    let status = 0;
    let failed = null;
    const fail = (controller, err) => {
      if (failed) return;
      failed = err;
      controller.abort(err);
    };
    pool.dispatch(
      { path, method: 'POST', headers, body },
      {
        onRequestStart() {},
        onResponseStart(controller, statusCode) {
          status = statusCode;
          if (statusCode !== 200) failed = new Error(`HTTP ${statusCode}`);
        },
        onResponseData(controller, chunk) {
          if (failed) return;
          const now = performance.now();
          buffer += decoder.decode(chunk, { stream: true });
          let from = 0;
          for (;;) {
            // events end with a blank line; the stand-in, vLLM and Tessera use \n\n
            let end = buffer.indexOf('\n\n', from);
            let sep = 2;
            const crlf = buffer.indexOf('\r\n\r\n', from);
            if (crlf >= 0 && (end < 0 || crlf < end)) {
              end = crlf;
              sep = 4;
            }
            if (end < 0) break;
            const event = buffer.slice(from, end);
            from = end + sep;
            let data = null;
            for (const line of event.split(/\r?\n/)) {
              if (!line.startsWith('data:')) continue;
              const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
              data = data === null ? v : `${data}\n${v}`;
            }
            if (data === null) continue;
            if (data === '[DONE]') {
              done = true;
              continue;
            }
            let content;
            try {
              content = hasContent(data);
            } catch (err) {
              fail(controller, err);
              return;
            }
            if (!content) continue;
            chunks++;
            if (first < 0) first = now;
            last = now;
            if (now >= t0 && now < t1 && phase !== 'warmup') windowChunks++;
          }
          if (from > 0) buffer = buffer.slice(from);
        },
        onResponseEnd() {
          const end = performance.now();
          if (failed) return reject(failed);
          if (!done) return reject(new Error('the stream ended without data: [DONE]'));
          if (first < 0) return reject(new Error(`no content chunk (HTTP ${status})`));
          resolve({ measured, start, ttft: first - start, duration: end - start, chunks, decodeS: (last - first) / 1000 });
        },
        onResponseError(controller, err) {
          reject(failed ?? err);
        },
      },
    );
  });
}

async function worker() {
  while (phase !== 'drain') {
    try {
      const r = await streamOnce();
      if (!r.measured) continue;
      requests++;
      ttfts.push(r.ttft);
      durations.push(r.duration);
      chunkCounts.push(r.chunks);
      if (r.chunks >= 2 && r.decodeS > 0) perStream.push((r.chunks - 1) / r.decodeS);
    } catch (err) {
      if (phase === 'measure' || phase === 'drain') {
        errors++;
        const k = String(err?.message ?? err).slice(0, 80);
        errorKinds[k] = (errorKinds[k] ?? 0) + 1;
      }
      // do not spin on a server that refuses everything
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

// Streams start spread evenly over `rampS` seconds (within the warm-up): closed-loop streams of one
// fixed length that all start at once stay in lockstep, every request of every stream arriving in
// the same instant, which real traffic does not do and which would charge each contender's
// per-request cost C times in a row.
const rampS = Math.max(0, args.rampS ?? 0);
const workers = Array.from({ length: concurrency }, (_, i) =>
  rampS > 0 ? new Promise((r) => setTimeout(r, (i / concurrency) * rampS * 1000)).then(worker) : worker(),
);
if (warmupS > 0) {
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  phase = 'measure';
}
t0 = performance.now();
const cpu0 = process.cpuUsage();
process.stderr.write('MARK start\n');
await new Promise((r) => setTimeout(r, durationS * 1000));
while (started < minRequests && performance.now() - t0 < maxDurationS * 1000) await new Promise((r) => setTimeout(r, 20));
t1 = performance.now();
const cpu = process.cpuUsage(cpu0);
process.stderr.write('MARK end\n');
phase = 'drain';
const measuredS = (t1 - t0) / 1000;
// in-flight requests started in the window still count for TTFT; they end within a stream's length
const drainTimer = setTimeout(() => pool.destroy(new Error('drain timeout')), timeoutS * 1000);
await Promise.all(workers);
clearTimeout(drainTimer);
await pool.close().catch(() => undefined);

const round3 = (v) => (v === null || v === undefined ? null : Math.round(v * 1000) / 1000);
const pct = (values) => {
  const s = summarize(values);
  return { count: s.count, mean: round3(s.mean), p50: round3(s.p50), p90: round3(s.p90), p99: round3(s.p99), max: round3(s.max) };
};
const ttftSorted = [...ttfts];
const out = {
  url: base.origin,
  model: args.model,
  concurrency,
  maxTokens,
  durationS: measuredS,
  warmupS,
  rampS,
  requests,
  errors,
  errorKinds,
  reqPerSec: requests / measuredS,
  ttftMs: pct(ttftSorted),
  durationMs: pct(durations),
  chunksPerRequest: pct(chunkCounts),
  windowChunks,
  tokensPerSec: windowChunks / measuredS,
  perStreamTokensPerSec: pct(perStream),
  loadCpuS: (cpu.user + cpu.system) / 1e6,
  loadCpuPct: ((cpu.user + cpu.system) / 1e6 / measuredS) * 100,
  // every TTFT in µs, so the orchestrator can pool rounds exactly
  ...(args.samples ? { ttftSamplesUs: ttfts.map((v) => Math.round(v * 1000)) } : {}),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
