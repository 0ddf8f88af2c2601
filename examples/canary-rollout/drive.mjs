#!/usr/bin/env node
/**
 * Sends traffic to a running Tessera for a bounded time and prints each model's rollout as it goes:
 *
 *   node examples/canary-rollout/drive.mjs [--url http://127.0.0.1:8000] [--seconds 60] [--rate 100]
 *        [--concurrency 4] [--every 5s] [--models a,b] [--seed 1]
 *
 * Every model that `GET /v1/routing` lists (or those `--models` names) gets `--rate` requests a
 * second of random rows (x FP32 [1, 16], uniform in [-1, 1), seeded), each with its own
 * `x-request-id` and one of 500 `x-user-id`s. Every `--every` (default: the rollout's interval, as
 * the router reports it, else 5 s) it prints one line per model: the rollout's state, step and
 * weights, the last judgement, and which version answered how many requests since the last line.
 * It stops after `--seconds`, or as soon as every rollout is over (a canary succeeded or failed, an
 * A/B test concluded), and prints a summary. Exit code 0 unless the server could not be reached.
 */
import { parseArgs } from 'node:util';
import { randomRow, rng } from './models.mjs';

/** Strategies with a rollout that ends, and the states it ends in. */
const ROLLOUTS = new Set(['canary', 'ab']);
const FINAL_STATES = new Set(['succeeded', 'failed', 'concluded']);

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`drive: ${message}`);
  process.exit(1);
}

const USAGE = 'usage: node examples/canary-rollout/drive.mjs [--url URL] [--seconds 60] [--rate 100] [--concurrency 4] [--every 5s] [--models a,b] [--seed 1]';

const OPTIONS = /** @type {const} */ ({
  url: { type: 'string', default: `http://127.0.0.1:${process.env['TESSERA_PORT'] || '8000'}` },
  seconds: { type: 'string', default: '60' },
  rate: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '4' },
  every: { type: 'string' },
  models: { type: 'string' },
  seed: { type: 'string', default: '1' },
  help: { type: 'boolean', short: 'h', default: false },
});

/** The command line's options, or the usage and exit 1 when they do not parse. */
function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS }).values;
  } catch (err) {
    return fail(`${/** @type {Error} */ (err).message}\n${USAGE}`);
  }
}

const args = parseCommandLine();

if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const base = args.url.replace(/\/+$/, '');
const seconds = Number(args.seconds);
const rate = Number(args.rate);
const concurrency = Math.max(1, Math.floor(Number(args.concurrency)));
for (const [name, value] of Object.entries({ seconds, rate, concurrency })) {
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number, got ${JSON.stringify(args[/** @type {'seconds'} */ (name)])}`);
}

/**
 * Milliseconds of a duration as the config writes them: a number (ms), or '500ms', '5s', '2m'.
 * @param {unknown} value
 * @returns {number | undefined}
 */
function durationMs(value) {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  return Number(m[1]) * unit;
}

/**
 * @param {string} path
 * @returns {Promise<any>}
 */
async function getJson(path) {
  const res = await fetch(`${base}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** @type {{ models: any[] }} */
let listing;
try {
  listing = await getJson('/v1/routing');
} catch (err) {
  fail(`cannot reach ${base} (${/** @type {Error} */ (err).message}); is \`npx tessera serve -c examples/canary-rollout/tessera.config.yaml\` running?`);
}
const wanted = args.models ? args.models.split(',').map((m) => m.trim()).filter(Boolean) : listing.models.map((m) => m.model);
for (const name of wanted) if (!listing.models.some((m) => m.model === name)) fail(`the server has no model '${name}' (it has: ${listing.models.map((m) => m.model).join(', ')})`);

const every = durationMs(args.every) ?? durationMs(listing.models.find((m) => wanted.includes(m.model))?.interval) ?? durationMs(listing.models.find((m) => wanted.includes(m.model))?.intervalMs) ?? 5000;

/**
 * What one model's traffic did.
 * @typedef {{ sent: number, byVersion: Record<string, number>, errors: Record<string, number>, window: { byVersion: Record<string, number>, errors: number } }} Tally
 */

/** @type {Map<string, Tally>} */
const tallies = new Map(wanted.map((m) => [m, { sent: 0, byVersion: {}, errors: {}, window: { byVersion: {}, errors: 0 } }]));
const random = rng(Number(args.seed) || 1);
const started = Date.now();
const deadline = started + seconds * 1000;
let stopping = false;

/**
 * One request: POST /v2/models/{model}/infer with one random row.
 * @param {string} model
 * @param {number} n
 */
async function send(model, n) {
  const tally = /** @type {Tally} */ (tallies.get(model));
  tally.sent++;
  const row = randomRow(random);
  try {
    const res = await fetch(`${base}/v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': `drive-${model}-${n}`, 'x-user-id': `user-${Math.floor(random() * 500)}` },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, row.length], data: row }] }),
    });
    const body = /** @type {any} */ (await res.json());
    if (res.ok) {
      const version = String(body.model_version);
      tally.byVersion[version] = (tally.byVersion[version] ?? 0) + 1;
      tally.window.byVersion[version] = (tally.window.byVersion[version] ?? 0) + 1;
    } else {
      const key = `${res.status} ${body.code ?? ''}`.trim();
      tally.errors[key] = (tally.errors[key] ?? 0) + 1;
      tally.window.errors++;
    }
  } catch (err) {
    const key = `no answer: ${/** @type {Error} */ (err).message}`;
    tally.errors[key] = (tally.errors[key] ?? 0) + 1;
    tally.window.errors++;
  }
}

/**
 * `concurrency` loops per model, together at most `rate` requests a second.
 * @param {string} model
 */
async function traffic(model) {
  let next = 0;
  const loop = async () => {
    while (!stopping) {
      const n = next++;
      const due = started + (n * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - Date.now()))));
      if (stopping || Date.now() >= deadline) return;
      await send(model, n);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

/** @param {Record<string, number> | null | undefined} weights */
function formatWeights(weights) {
  if (!weights) return 'weights -';
  return Object.entries(weights)
    .map(([v, w]) => `${v}:${String(Math.round(w * 100)).padStart(3)}%`)
    .join(' ');
}

/** @param {Record<string, number>} counts */
function formatCounts(counts) {
  const entries = Object.entries(counts).sort(([a], [b]) => Number(a) - Number(b));
  return entries.length ? entries.map(([v, n]) => `v${v} ${n}`).join(', ') : 'none';
}

/**
 * One line about a model's routing now: strategy, state, step, weights and the last judgement.
 * @param {any} routing
 */
function describeRouting(routing) {
  const parts = [String(routing.strategy)];
  if (routing.state !== undefined) parts.push(String(routing.state));
  // the step of a rollout under way (promoting, succeeded and failed have none to speak of)
  if (typeof routing.step === 'number' && (routing.state === 'progressing' || routing.state === 'paused')) parts.push(`step ${routing.step}`);
  parts.push(formatWeights(routing.weights));
  const last = routing.lastJudgement;
  if (last?.verdict) parts.push(`last judgement: ${last.verdict} (${last.window?.canary ?? '?'} canary, ${last.window?.baseline ?? '?'} baseline requests)`);
  return parts.join('  ');
}

/**
 * Why the routing is in its state: the reason of the transition into it, from the history.
 * @param {any} routing
 * @returns {string | undefined}
 */
function whyNow(routing) {
  if (!Array.isArray(routing.history)) return undefined;
  return routing.history.findLast((/** @type {any} */ h) => h.kind === 'transition' && h.to === routing.state)?.reason;
}

/** @param {number} at */
function clock(at) {
  return `${((at - started) / 1000).toFixed(1).padStart(6)}s`;
}

const width = Math.max(...wanted.map((m) => m.length));

/** Prints one line per model; resolves with whether every rollout is over. */
async function report() {
  const now = Date.now();
  // over once every rollout (canary, A/B) has ended; models without one do not count
  let rollouts = 0;
  let allDone = true;
  for (const model of wanted) {
    const tally = /** @type {Tally} */ (tallies.get(model));
    let line;
    try {
      const routing = await getJson(`/v1/routing/${encodeURIComponent(model)}`);
      if (ROLLOUTS.has(routing.strategy)) {
        rollouts++;
        if (!FINAL_STATES.has(routing.state)) allDone = false;
      }
      line = describeRouting(routing);
    } catch (err) {
      allDone = false;
      line = `routing unavailable: ${/** @type {Error} */ (err).message}`;
    }
    console.log(`${clock(now)} ${model.padEnd(width)}  ${line}  | answered ${formatCounts(tally.window.byVersion)}, errors ${tally.window.errors}`);
    tally.window = { byVersion: {}, errors: 0 };
  }
  return rollouts > 0 && allDone;
}

console.log(`drive: ${base}, ${wanted.join(', ')}: ${rate} requests/s each for at most ${seconds} s, a line every ${(every / 1000).toFixed(1)} s`);
const loops = wanted.map(traffic);
let finished = 'time is up';
for (;;) {
  await new Promise((r) => setTimeout(r, Math.max(0, Math.min(every, deadline - Date.now()))));
  const done = await report();
  if (done) {
    finished = 'every rollout is over';
    break;
  }
  if (Date.now() >= deadline) break;
}
stopping = true;
await Promise.all(loops);

console.log(`drive: stopped (${finished}) after ${((Date.now() - started) / 1000).toFixed(1)} s`);
for (const model of wanted) {
  const tally = /** @type {Tally} */ (tallies.get(model));
  const routing = await getJson(`/v1/routing/${encodeURIComponent(model)}`).catch(() => undefined);
  const errors = Object.entries(tally.errors).map(([k, n]) => `${n}× ${k}`).join(', ') || 'none';
  console.log(`${model.padEnd(width)}  ${routing ? `${routing.state ?? routing.strategy}, ${formatWeights(routing.weights)}` : 'routing unavailable'}  | sent ${tally.sent}, answered ${formatCounts(tally.byVersion)}, errors: ${errors}`);
  const why = routing && whyNow(routing);
  if (why) console.log(`${''.padEnd(width)}  why: ${why}`);
}
