import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { closestMatch } from '../config/suggest.js';
import type { TesseraConfig } from '../config/types.js';
import type { TensorSpec } from '../contracts/tensor.js';
import { TesseraError, errorMessage } from '../errors.js';
import { availableCores } from '../internal/cores.js';
import { chooseBest, fastest } from './choose.js';
import { runLoad } from './load-generator.js';
import { type Measurement, type TuneStage, percentile, samePoint } from './measurement.js';
import type { TuneOptions } from './options.js';
import { overlayText } from './overlay-file.js';
import { DEFAULT_COSTS, type SweepCosts, type SweepPlan, pairLabel, planSweep } from './plan.js';
import { sumSamples } from './prometheus-text.js';
import { type TuneRequest, fileRequest, synthesizeRequest } from './request-body.js';
import { serveConfig, tuneTarget, type TuneTarget } from './serve-config.js';
import { ServerUnderTest } from './server-under-test.js';
import { type InstancePair, QUEUE_DELAYS, THREADED_BACKENDS, type TunePoint, batchSizes, concurrencyOrder, defaultConcurrency, describePoint, instancePairs } from './space.js';
import { formatNumber, formatTable } from './table.js';

/** Where `runTune` writes: `out` the results (header, plan, table, outcome), `progress` a line per measurement. */
export interface TuneIo {
  out(text: string): void;
  progress(text: string): void;
}

export interface RunTuneInput {
  config: TesseraConfig;
  options: TuneOptions;
  /** The command line as run, for the overlay's header. */
  command: string;
  /** The `tessera` CLI script the servers under test run. */
  cli: string;
  io: TuneIo;
  /** Aborts the sweep (Ctrl-C): the load stops, the server is stopped, `runTune` rejects. */
  signal?: AbortSignal;
  /** Cores to plan for; default `availableCores()`. */
  cores?: number;
  /** Base folder of a relative `--out` and `--request`; default `process.cwd()`. */
  cwd?: string;
}

export interface TuneOutcome {
  measurements: Measurement[];
  chosen?: Measurement;
  /** The overlay written (absolute), when a point qualified and it was not a dry run. */
  overlay?: string;
  plan: SweepPlan;
}

/** The served model's metadata (`GET /v2/models/{m}`). */
interface ModelMetadataBody {
  inputs: TensorSpec[];
  parameters?: { max_batch_size?: number };
}

/** The assumed max batch size of a model whose config does not say, until its server does. */
const ASSUMED_MAX_BATCH = 32;

/**
 * `tessera tune`: measures the model on loopback at the points of a staged search (`plan.ts`) that
 * fits `--time`, prints the table and writes the best settings for the latency budget into a config
 * overlay (see docs/tuning.md). Throws `TESSERA_E_TUNE_BUDGET_UNMET` (after printing the table) when
 * no point qualified, `TESSERA_E_TUNE_SERVER` when a server under test failed, `TESSERA_E_CLI_USAGE`
 * for options that do not fit the model.
 */
export async function runTune(input: RunTuneInput): Promise<TuneOutcome> {
  const { config, options, io } = input;
  const cwd = input.cwd ?? process.cwd();
  const name = pickModel(config, options.model);
  const target = tuneTarget(config, name);
  const cores = input.cores ?? availableCores();
  const workers = Math.max(1, config.server.workers ?? 1);
  const perWorker = Math.max(1, Math.floor(cores / workers));
  const threaded = THREADED_BACKENDS.has(target.model.backend);
  const budgetMs = options.budgetMs;
  const assumedCap = options.maxBatch ?? target.model.batching.maxBatchSize;
  let cap = assumedCap ?? ASSUMED_MAX_BATCH;
  const concurrencyFor = (c: number): number[] => options.concurrency ?? defaultConcurrency(c, cores, options.budgetMs !== undefined);
  const pairs = instancePairs(perWorker, threaded);
  const started = performance.now();
  const deadline = started + options.timeMs;
  const costs: SweepCosts = { ...DEFAULT_COSTS };
  const planFor = (timeMs: number, over: Partial<Parameters<typeof planSweep>[0]> = {}): SweepPlan =>
    planSweep({ pairs, batchSizes: batchSizes(cap), delays: QUEUE_DELAYS, concurrency: concurrencyOrder(concurrencyFor(cap)), timeMs, costs, budget: budgetMs !== undefined, ...over });

  const goal = budgetMs === undefined ? 'the highest throughput' : `the highest throughput with p99 ≤ ${budgetMs} ms`;
  io.out(`tessera tune: model '${name}' (${target.model.backend}, version ${target.version}) on ${cores} cores${workers > 1 ? ` (${workers} workers: ${perWorker} each)` : ''}; goal: ${goal}; time ${formatDuration(options.timeMs)}`);
  for (const note of target.notes) io.out(`  note: ${note}`);
  if (assumedCap === undefined) io.out(`  note: max batch size ${ASSUMED_MAX_BATCH} assumed until the model's server says its own`);
  let plan = planFor(options.timeMs);
  if (options.dryRun) {
    io.out(planText(plan, threaded));
    return { measurements: [], plan };
  }

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'tessera-tune-'));
  const serverOptions = { cli: input.cli, configFile: path.join(tmp, 'serve.yaml'), startTimeoutMs: 120_000, ...(input.signal ? { signal: input.signal } : {}) };
  const stateDir = path.join(tmp, 'state');
  const measurements: Measurement[] = [];
  let server: ServerUnderTest | undefined;
  let serving: TunePoint | undefined;
  const startTimes: number[] = [];
  const reloadTimes: number[] = [];
  const aborted = (): void => {
    if (input.signal?.aborted) throw new TuneInterrupted();
  };
  let request: TuneRequest | undefined;
  let inferUrl = '';
  let total = 0;

  const startServer = async (point: TunePoint): Promise<void> => {
    await server?.stop();
    server = undefined;
    aborted();
    try {
      server = await ServerUnderTest.start(serveConfig(config, target, point, stateDir), serverOptions);
    } catch (err) {
      aborted();
      throw err;
    }
    startTimes.push(server.startMs);
    costs.startMs = Math.max(...startTimes);
    // no reload measured yet: it loads the model again, as a start does, without the process and its plugins
    if (reloadTimes.length === 0) costs.reloadMs = Math.max(200, costs.startMs - 1000);
    serving = point;
    inferUrl = `${server.url}/v2/models/${encodeURIComponent(name)}/infer`;
  };
  const switchTo = async (point: TunePoint): Promise<void> => {
    if (serving && samePoint(serving, point)) return;
    aborted();
    const ms = await server!.reload(serveConfig(config, target, point, stateDir));
    reloadTimes.push(ms);
    costs.reloadMs = reloadTimes.reduce((a, b) => a + b, 0) / reloadTimes.length;
    serving = point;
  };
  let timeUp = false;
  /** Whether one more measurement fits the time left (with a little slack: the plan is an estimate). */
  const timeLeft = (): boolean => {
    timeUp ||= performance.now() + plan.measureMs + plan.warmupMs + costs.overheadMs > deadline + Math.min(10_000, options.timeMs * 0.05);
    return !timeUp;
  };
  const measure = async (stage: TuneStage, point: TunePoint, concurrency: number): Promise<Measurement | undefined> => {
    if (!timeLeft()) return undefined;
    aborted();
    const t0 = performance.now();
    const m = await measureOnce(server!, { stage, point, concurrency, url: inferUrl, request: request!, model: name, measureMs: plan.measureMs, warmupMs: plan.warmupMs, ...(input.signal ? { signal: input.signal } : {}) });
    aborted();
    costs.overheadMs = Math.max(100, performance.now() - t0 - plan.measureMs - plan.warmupMs);
    measurements.push(m);
    total += 1;
    io.progress(`  [${total}] ${stage}: ${describePoint(point)}, ${clients(concurrency)}: ${formatNumber(m.samplesPerSec)} samples/s, p99 ${formatNumber(m.p99Ms)} ms${m.errors > 0 ? `, ${m.errors} errors` : ''}`);
    return m;
  };

  try {
    // stage 1 starts on the first pair: its server says the model's inputs and max batch size
    const first = pairs[0]!;
    await startServer({ ...first, ...(options.maxBatch !== undefined ? { maxBatchSize: options.maxBatch } : {}), maxQueueDelayMs: 'auto' });
    const metadata = await server!.json<ModelMetadataBody>(`/v2/models/${encodeURIComponent(name)}`);
    if (metadata.inputs.length === 0) throw new TesseraError('TESSERA_E_CLI_USAGE', `model '${name}' has no tensor inputs (a generative model?): tune measures tensor models`);
    cap = metadata.parameters?.max_batch_size ?? 0;
    request = await makeRequest(metadata, target, options, cwd);
    await probe(inferUrl, request);
    io.out(`  load: autocannon, closed loop (each client sends its next request when answered) on 127.0.0.1: ${request.description}`);
    plan = planFor(deadline - performance.now());
    io.out(planText(plan, threaded));
    const high = plan.concurrency.at(-1)!;
    const capPoint = (pair: InstancePair): TunePoint => ({ ...pair, maxBatchSize: cap, maxQueueDelayMs: 'auto' });
    serving = capPoint(first);

    // stage 1: instances × threads, a server each
    for (const [i, pair] of plan.pairs.entries()) {
      if (i > 0) {
        if (!timeLeft()) break;
        await startServer(capPoint(pair));
      }
      await measure('threads', capPoint(pair), high);
    }
    const bestPair = pairOf(fastest(measurements)?.point ?? capPoint(first));

    // stages 2 and 3 on the best pair, planned again for the time left
    const restart = !serving || pairLabel(pairOf(serving)) !== pairLabel(bestPair);
    plan = planFor(deadline - performance.now(), { pairs: [bestPair], stage1: false, restart });
    if (restart && timeLeft()) await startServer(capPoint(bestPair));
    for (const size of plan.batchSizes.length > 0 ? plan.batchSizes : [cap]) {
      const point = { ...bestPair, maxBatchSize: size, maxQueueDelayMs: 'auto' as const };
      for (const c of plan.concurrency) {
        if (measurements.some((m) => samePoint(m.point, point) && m.concurrency === c)) continue;
        if (!timeLeft()) break;
        await switchTo(point);
        await measure('batch', point, c);
      }
    }
    const ofPair = (m: Measurement): boolean => pairLabel(pairOf(m.point)) === pairLabel(bestPair);
    // the delays at the best size; when that is 1 (nothing to wait for), at the best larger one
    const sizeChoice = (rows: Measurement[]): number | undefined => {
      const c = chooseBest(rows, budgetMs);
      return (c.best ?? c.closest)?.point.maxBatchSize;
    };
    const bySize = measurements.filter((m) => ofPair(m) && m.point.maxQueueDelayMs === 'auto');
    const bestSize = sizeChoice(bySize.filter((m) => (m.point.maxBatchSize ?? 0) > 1)) ?? 0;
    if (bestSize > 1) {
      for (const delay of plan.delays.filter((d) => d !== 'auto')) {
        const point = { ...bestPair, maxBatchSize: bestSize, maxQueueDelayMs: delay };
        for (const c of plan.concurrency) {
          if (!timeLeft()) break;
          await switchTo(point);
          await measure('delay', point, c);
        }
      }
    }

    // confirmation: the chosen point once more; if it no longer qualifies, the next best
    let choice = chooseBest(measurements, budgetMs);
    if (budgetMs !== undefined && choice.best && timeLeft()) {
      const best = choice.best;
      await switchTo(best.point);
      const again = await measure('confirm', best.point, best.concurrency);
      if (again && !(again.errors === 0 && again.p99Ms !== undefined && again.p99Ms <= budgetMs)) {
        choice = chooseBest(measurements.filter((m) => !(samePoint(m.point, best.point) && m.concurrency === best.concurrency)), budgetMs);
        io.out(`  note: the confirmation of ${describePoint(best.point)} at ${clients(best.concurrency)} measured p99 ${formatNumber(again.p99Ms)} ms${again.errors > 0 ? ` with ${again.errors} errors` : ''}: it is left out`);
      }
    }
    await server?.stop();
    server = undefined;

    const elapsed = performance.now() - started;
    io.out('');
    io.out(formatTable(measurements, choice.best, budgetMs));
    io.out('');
    const reload = reloadTimes.length > 0 ? `, a reload ${formatDuration(costs.reloadMs)}` : '';
    const lengths = measurements.map((m) => m.durationMs);
    const each = lengths.length === 0 ? '-' : Math.max(...lengths) - Math.min(...lengths) < 100 ? formatDuration(lengths[0]!) : `${formatDuration(Math.min(...lengths))} to ${formatDuration(Math.max(...lengths))}`;
    io.out(`measured ${measurements.length} points for ${each} each (each after an uncounted warm-up a third as long, 0.5 s at least), in ${formatDuration(elapsed)} (a server start took up to ${formatDuration(costs.startMs)}${reload})${timeUp ? '; the time was up before the plan\'s last points' : ''}`);
    if (!choice.best) {
      const closest = choice.closest;
      const near = closest ? `; closest: ${describePoint(closest.point)} at ${clients(closest.concurrency)}, p99 ${formatNumber(closest.p99Ms)} ms, ${formatNumber(closest.samplesPerSec)} samples/s${closest.errors > 0 ? `, ${closest.errors} errors` : ''}` : '';
      const why = budgetMs !== undefined ? `no point kept p99 within ${budgetMs} ms without errors` : 'no point answered every request';
      throw new TesseraError('TESSERA_E_TUNE_BUDGET_UNMET', `${why}${near}; nothing written (try a larger --latency-budget, a lower --concurrency, or look at the errors above)`);
    }
    const best = choice.best;
    io.out(`best: ${describePoint(best.point)} — ${formatNumber(best.samplesPerSec)} samples/s, p50 ${formatNumber(best.p50Ms)} ms, p99 ${formatNumber(best.p99Ms)} ms, mean batch ${formatNumber(best.meanBatch)}, at ${clients(best.concurrency)}`);
    const out = path.resolve(cwd, options.out ?? path.join(config.configDir, 'tessera.tune.yaml'));
    const configFiles = (config.configFiles ?? [config.configFile]).filter((f) => f !== '' && f !== out).map((f) => shortPath(f, cwd));
    await writeFile(
      out,
      overlayText({ model: name, config: target.model, chosen: best, ...(budgetMs !== undefined ? { budgetMs } : {}), machine: machine(cores), date: new Date(), command: input.command, configFiles, out: shortPath(out, cwd) }),
    );
    io.out(`wrote ${shortPath(out, cwd)}; serve with it: tessera serve ${[...configFiles, shortPath(out, cwd)].map((f) => `-c ${f}`).join(' ')}`);
    return { measurements, chosen: best, overlay: out, plan };
  } finally {
    await server?.stop().catch(() => {});
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

/** Thrown when the sweep was aborted (Ctrl-C); the CLI exits 130 without a message of its own. */
export class TuneInterrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'TuneInterrupted';
  }
}

/** The model to tune: `--model`, or the config's only one. */
function pickModel(config: TesseraConfig, model: string | undefined): string {
  const names = Object.keys(config.models);
  if (model !== undefined) {
    if (config.models[model]) return model;
    const guess = closestMatch(model, names);
    throw new TesseraError('TESSERA_E_CLI_USAGE', `--model ${model}: the config has no such model (models: ${names.join(', ') || 'none'})${guess ? ` — did you mean "${guess}"?` : ''}`);
  }
  if (names.length === 1) return names[0]!;
  if (names.length === 0) throw new TesseraError('TESSERA_E_CLI_USAGE', 'the config has no models to tune');
  throw new TesseraError('TESSERA_E_CLI_USAGE', `the config has ${names.length} models (${names.join(', ')}): name the one to tune with --model`);
}

function pairOf(point: TunePoint): InstancePair {
  return point.threads === undefined ? { instances: point.instances } : { instances: point.instances, threads: point.threads };
}

async function makeRequest(metadata: ModelMetadataBody, target: TuneTarget, options: TuneOptions, cwd: string): Promise<TuneRequest> {
  if (options.request) {
    const file = path.resolve(cwd, options.request.file);
    const body = await readFile(file).catch((err: unknown) => {
      throw new TesseraError('TESSERA_E_CLI_USAGE', `--request ${options.request!.file}: cannot read ${file}: ${errorMessage(err)}`);
    });
    return fileRequest(options.request.file, body, options.request.contentType, options.request.headers);
  }
  const warmupShapes = (target.model.options['warmupShapes'] ?? {}) as Record<string, number[]>;
  return synthesizeRequest({ inputs: metadata.inputs, maxBatchSize: metadata.parameters?.max_batch_size ?? 0 }, { shapes: options.shapes, warmupShapes, seed: options.seed });
}

/** Sends the request once: a body the model refuses is said at once, with the server's message, not after a sweep of errors. */
async function probe(url: string, request: TuneRequest): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(30_000) });
  const text = Buffer.from(await res.arrayBuffer()).toString('utf8', 0, 600);
  if (!res.ok) throw new TesseraError('TESSERA_E_CLI_USAGE', `the model refused the load's request (${res.status}): ${text}`);
}

interface MeasureOnce {
  stage: TuneStage;
  point: TunePoint;
  concurrency: number;
  url: string;
  request: TuneRequest;
  model: string;
  measureMs: number;
  warmupMs: number;
  signal?: AbortSignal;
}

/** One measurement: a warm-up load, a scrape, the measured load, a scrape. */
async function measureOnce(server: ServerUnderTest, m: MeasureOnce): Promise<Measurement> {
  server.checkAlive();
  const load = { url: m.url, body: m.request.body, headers: m.request.headers, connections: m.concurrency };
  await runLoad({ ...load, durationMs: m.warmupMs }, m.signal);
  if (m.signal?.aborted) throw new TuneInterrupted();
  const before = await server.metrics();
  const result = await runLoad({ ...load, durationMs: m.measureMs }, m.signal);
  const after = await server.metrics();
  server.checkAlive();
  const ofModel = (l: Record<string, string>): boolean => l['model'] === m.model;
  const delta = (metric: string, match = ofModel): number => sumSamples(after, metric, match) - sumSamples(before, metric, match);
  const batchSum = delta('tessera_batch_size_sum');
  const batches = delta('tessera_batch_size_count');
  const answered = delta('tessera_requests_total', (l) => ofModel(l) && /^2\d\d$/.test(l['code'] ?? ''));
  const samplesPerRequest = m.request.samples ?? (answered > 0 ? batchSum / answered : 1);
  const ok = result.latenciesMs.length;
  const errors = result.errors + Object.values(result.statusCodes).reduce((a, b) => a + b, 0);
  const measurement: Measurement = {
    stage: m.stage,
    point: m.point,
    concurrency: m.concurrency,
    durationMs: result.elapsedMs,
    ok,
    errors,
    samplesPerSec: (ok * samplesPerRequest) / (result.elapsedMs / 1000),
  };
  const p50 = percentile(result.latenciesMs, 0.5);
  const p99 = percentile(result.latenciesMs, 0.99);
  if (p50 !== undefined) measurement.p50Ms = p50;
  if (p99 !== undefined) measurement.p99Ms = p99;
  if (batches > 0) measurement.meanBatch = batchSum / batches;
  if (Object.keys(result.statusCodes).length > 0) measurement.errorCodes = result.statusCodes;
  return measurement;
}

/** The plan as the output says it. */
function planText(plan: SweepPlan, threaded: boolean): string {
  const lines = [
    `  plan: ${threaded ? 'instances×threads' : 'instances'} ${plan.pairs.map(pairLabel).join(', ')}; max batch ${plan.batchSizes.join(', ') || '- (the model does not batch)'}; delay ${plan.delays.join(', ')}; concurrency ${plan.concurrency.join(', ')}`,
    `        ${plan.measurements} measurements of ${formatDuration(plan.measureMs)} (after ${formatDuration(plan.warmupMs)} of warm-up), ${plan.servers} server starts, ${plan.reloads} reloads: about ${formatDuration(plan.estimatedMs)}`,
  ];
  if (plan.dropped.length > 0) lines.push(`        left out for time: ${plan.dropped.join('; ')}`);
  if (!plan.fits) lines.push('        the time is too short even for this: the sweep stops when it is up');
  return lines.join('\n');
}

/** `1 client`, `64 clients`. */
function clients(n: number): string {
  return `${n} client${n === 1 ? '' : 's'}`;
}

/** `1m52s`, `20s`, `2.5 s`, `350 ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function machine(cores: number): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cores} cores (${cpu}), Node ${process.version}, ${os.platform()} ${os.arch()}`;
}

/** A path relative to `cwd` when it is inside it, else absolute. */
function shortPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
