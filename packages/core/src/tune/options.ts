import { parseDuration } from '../config/units.js';
import { TesseraError, errorMessage } from '../errors.js';

/** `tessera tune`'s options as the command line gives them (strings). */
export interface TuneArgs {
  model?: string | undefined;
  latencyBudget?: string | undefined;
  time?: string | undefined;
  out?: string | undefined;
  concurrency?: string | undefined;
  dryRun?: boolean | undefined;
  shape?: string[] | undefined;
  request?: string | undefined;
  contentType?: string | undefined;
  header?: string[] | undefined;
  maxBatch?: string | undefined;
  seed?: string | undefined;
}

/** `tessera tune`'s options, checked. */
export interface TuneOptions {
  /** `--model`; undefined: the config's only model. */
  model?: string;
  /** `--latency-budget`: the p99 the chosen point must keep, ms; undefined: the highest throughput. */
  budgetMs?: number;
  /** `--time`: the whole sweep's time, ms (default 2 min). */
  timeMs: number;
  /** `--out`: the overlay to write; default `tessera.tune.yaml` next to the (first) config file. */
  out?: string;
  /** `--concurrency 1,32,64`: concurrent clients; default from the max batch size (`defaultConcurrency`). */
  concurrency?: number[];
  /** `--dry-run`: print the plan, measure nothing. */
  dryRun: boolean;
  /** `--shape name=1x3x48x192` (repeatable): whole request shapes. */
  shapes: Record<string, number[]>;
  /** `--request FILE` with `--content-type` and `--header 'Name: value'` (repeatable): a body sent as it is. */
  request?: { file: string; contentType?: string; headers: Record<string, string> };
  /** `--max-batch N`: the largest max batch size tried; default the model's. */
  maxBatch?: number;
  /** `--seed N`: the random request data's seed (default 1). */
  seed: number;
}

/** The default `--time`. */
export const DEFAULT_TUNE_TIME_MS = 120_000;
/** The shortest `--time` that can measure anything. */
const MIN_TIME_MS = 5000;

/** Checks `tessera tune`'s options; throws `TESSERA_E_CLI_USAGE` naming the option. */
export function parseTuneArgs(args: TuneArgs): TuneOptions {
  const options: TuneOptions = { timeMs: DEFAULT_TUNE_TIME_MS, dryRun: args.dryRun === true, shapes: {}, seed: 1 };
  if (args.model !== undefined) {
    if (args.model === '') throw usage('--model: give a model name');
    options.model = args.model;
  }
  if (args.latencyBudget !== undefined) {
    const ms = duration('--latency-budget', args.latencyBudget);
    if (ms <= 0) throw usage(`--latency-budget ${args.latencyBudget}: must be more than 0`);
    options.budgetMs = ms;
  }
  if (args.time !== undefined) {
    options.timeMs = duration('--time', args.time);
    if (options.timeMs < MIN_TIME_MS) throw usage(`--time ${args.time}: must be at least ${MIN_TIME_MS / 1000}s`);
  }
  if (args.out !== undefined) options.out = args.out;
  if (args.concurrency !== undefined) {
    const values = args.concurrency.split(',').map((s) => s.trim());
    const numbers = values.map(Number);
    if (values.some((s, i) => s === '' || !Number.isInteger(numbers[i]) || numbers[i]! < 1 || numbers[i]! > 10_000)) {
      throw usage(`--concurrency ${args.concurrency}: must be a comma-separated list of integers from 1 to 10000 (e.g. 1,32,64)`);
    }
    options.concurrency = [...new Set(numbers)].sort((a, b) => a - b);
  }
  for (const spec of args.shape ?? []) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec.trim());
    if (!m) throw usage(`--shape ${spec}: write name=dims, e.g. x=1x3x48x192`);
    const dims = m[2]!.split('x').map(Number);
    if (dims.some((d) => d < 1)) throw usage(`--shape ${spec}: every dim must be at least 1`);
    options.shapes[m[1]!] = dims;
  }
  if (args.request !== undefined) {
    if (Object.keys(options.shapes).length > 0) throw usage('--shape and --request: give one (--request sends its body as it is)');
    const headers: Record<string, string> = {};
    for (const h of args.header ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw usage(`--header ${h}: write 'Name: value'`);
      headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    options.request = { file: args.request, ...(args.contentType !== undefined ? { contentType: args.contentType } : {}), headers };
  } else if (args.contentType !== undefined || (args.header?.length ?? 0) > 0) {
    throw usage('--content-type and --header go with --request');
  }
  if (args.maxBatch !== undefined) options.maxBatch = integer('--max-batch', args.maxBatch, 1);
  if (args.seed !== undefined) options.seed = integer('--seed', args.seed, 0);
  return options;
}

function duration(option: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw usage(`${option} ${value}: ${errorMessage(err)}`);
  }
}

function integer(option: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw usage(`${option} ${value}: must be an integer ≥ ${min}`);
  return n;
}

function usage(message: string): TesseraError {
  return new TesseraError('TESSERA_E_CLI_USAGE', `${message} (see tessera --help)`);
}
