/**
 * The `launch:` key of a `backend: vllm` model: replicas that Tessera starts itself (`vllm serve`
 * processes, one per GPU set), its JSON Schema, and the `vllm serve` command line it builds.
 */
import type { JSONSchema } from '@tessera/core';
import { durationSchema, parseDuration, validateAgainstSchema } from '@tessera/core';

/** A duration as the config may give it: milliseconds, or a string such as `10s`, `5m`. */
export type LaunchDuration = number | string;

/** The `launch:` section as written in the config (after schema validation durations may still be strings). */
export interface LaunchConfig {
  /** Program to run (default `vllm`); a name on the PATH or a path. */
  command?: string;
  /** Arguments before `serve` (e.g. `-m vllm.entrypoints.cli.main` with `command: python`). Default `[]`. */
  args?: string[];
  /** The model to serve: a Hugging Face id or a local path (`vllm serve MODEL`). */
  model: string;
  /** `--served-model-name`: the name requests use. Default: vLLM's default (the model). */
  servedModelName?: string;
  /** `--host` of every replica. Default `127.0.0.1`. */
  host?: string;
  /** Port of replica 0; replica i listens on `basePort + i`. 0 picks free ports. Default 8100. */
  basePort?: number;
  /** One replica per GPU set; each gets `CUDA_VISIBLE_DEVICES=<set joined by ",">`. */
  gpus: number[][];
  /** `--tensor-parallel-size`. Default: the size of each replica's GPU set. */
  tensorParallelSize?: number;
  /** `--gpu-memory-utilization` (0..1]. */
  gpuMemoryUtilization?: number;
  /** `--max-num-seqs`. */
  maxNumSeqs?: number;
  /** `--max-model-len`. */
  maxModelLen?: number;
  /** `--quantization`. */
  quantization?: string;
  /** `--enable-prefix-caching` (true) or `--no-enable-prefix-caching` (false); vLLM's default when absent. */
  enablePrefixCaching?: boolean;
  /** More `vllm serve` arguments, appended as given. */
  extraArgs?: string[];
  /** Environment variables for the replicas, on top of Tessera's own environment. */
  env?: Record<string, string>;
  /** How long a replica may take to answer `GET /health` with 200 after it was started. Default 10 minutes. */
  startupTimeout?: LaunchDuration;
  /** Time between `GET /health` polls while a replica starts. Default 1 s. */
  healthInterval?: LaunchDuration;
  /** Restarts of replicas that exited. */
  restartBackoff?: {
    /** Delay before the first restart. Default 1 s. */
    initialMs?: LaunchDuration;
    /** Longest delay between restarts (the delay doubles per failed restart). Default 30 s. */
    maxMs?: LaunchDuration;
    /** A replica that stayed up this long starts again from `initialMs` when it next exits. Default 60 s. */
    resetAfterMs?: LaunchDuration;
  };
  /** After SIGTERM, how long a replica may take to exit before it gets SIGKILL. Default 30 s. */
  stopTimeout?: LaunchDuration;
}

/** `LaunchConfig` with defaults applied and durations in milliseconds. */
export interface ResolvedLaunchConfig {
  command: string;
  args: string[];
  model: string;
  servedModelName: string | undefined;
  host: string;
  basePort: number;
  gpus: number[][];
  tensorParallelSize: number | undefined;
  gpuMemoryUtilization: number | undefined;
  maxNumSeqs: number | undefined;
  maxModelLen: number | undefined;
  quantization: string | undefined;
  enablePrefixCaching: boolean | undefined;
  extraArgs: string[];
  env: Record<string, string>;
  startupTimeoutMs: number;
  healthIntervalMs: number;
  restartBackoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  stopTimeoutMs: number;
}

/** Defaults of the `launch:` keys. */
export const LAUNCH_DEFAULTS = {
  command: 'vllm',
  host: '127.0.0.1',
  basePort: 8100,
  startupTimeoutMs: 600_000,
  healthIntervalMs: 1000,
  restartBackoff: { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 },
  stopTimeoutMs: 30_000,
} as const;

/** A duration key (ms or `500ms`/`1s`), as the core's own keys declare them. */
const duration = durationSchema;

/**
 * JSON Schema (draft-07) of the `launch:` key. Durations are milliseconds or strings with a unit
 * (`tessera-duration` format; convert with `parseDuration`).
 */
export const LAUNCH_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  description:
    'Replicas Tessera starts and supervises: one `vllm serve` process per GPU set, each in its own process group, restarted with exponential backoff when it exits, stopped (SIGTERM, then SIGKILL) when the model unloads.',
  additionalProperties: false,
  required: ['model', 'gpus'],
  properties: {
    command: {
      type: 'string',
      minLength: 1,
      default: 'vllm',
      description: 'Program to run: a name looked up on the PATH or a path (no shell is involved).',
      examples: ['vllm', '/opt/venv/bin/vllm'],
    },
    args: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description: 'Arguments placed before `serve`, for a `command` that is not `vllm` itself.',
      examples: [['-m', 'vllm.entrypoints.cli.main']],
    },
    model: {
      type: 'string',
      minLength: 1,
      description: 'The model to serve, as `vllm serve MODEL` takes it: a Hugging Face model id or a local directory.',
      examples: ['Qwen/Qwen3-8B', '/models/llama-3.1-8b-instruct'],
    },
    servedModelName: {
      type: 'string',
      minLength: 1,
      description: "`--served-model-name`: the model name the replicas answer to (and report in responses and metrics). Default: vLLM's, the `model` itself.",
      examples: ['chat'],
    },
    host: {
      type: 'string',
      minLength: 1,
      default: '127.0.0.1',
      description: '`--host` of every replica. Keep `127.0.0.1` unless other machines must reach the replicas directly.',
      examples: ['127.0.0.1', '0.0.0.0'],
    },
    basePort: {
      type: 'integer',
      minimum: 0,
      maximum: 65535,
      default: 8100,
      description: '`--port` of replica 0; replica i listens on `basePort + i`. 0 picks a free port for each replica.',
      examples: [8100, 0],
    },
    gpus: {
      type: 'array',
      minItems: 1,
      items: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 }, uniqueItems: true },
      description: 'GPU sets, one replica per set: replica i runs with `CUDA_VISIBLE_DEVICES` set to the i-th set joined by commas.',
      examples: [[[0], [1]], [[0, 1], [2, 3]]],
    },
    tensorParallelSize: {
      type: 'integer',
      minimum: 1,
      description: "`--tensor-parallel-size`. Default: the number of GPUs in each replica's set.",
      examples: [2],
    },
    gpuMemoryUtilization: {
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      description: "`--gpu-memory-utilization`: the fraction of each GPU's memory vLLM may use. Default: vLLM's (0.9).",
      examples: [0.85],
    },
    maxNumSeqs: {
      type: 'integer',
      minimum: 1,
      description: "`--max-num-seqs`: sequences a replica runs at once; more wait in its queue. Default: vLLM's.",
      examples: [128],
    },
    maxModelLen: {
      type: 'integer',
      minimum: 1,
      description: "`--max-model-len`: context length (prompt + output tokens). Default: the model's.",
      examples: [8192],
    },
    quantization: {
      type: 'string',
      minLength: 1,
      description: '`--quantization`: the weights\' quantization method. Default: read from the model\'s config.',
      examples: ['awq', 'fp8'],
    },
    enablePrefixCaching: {
      type: 'boolean',
      description: "`--enable-prefix-caching` (true) or `--no-enable-prefix-caching` (false). Default: vLLM's (on).",
      examples: [true],
    },
    extraArgs: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description: 'More `vllm serve` arguments, appended as given (after the ones built from the keys above).',
      examples: [['--enable-chunked-prefill', '--max-num-batched-tokens', '8192']],
    },
    env: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description: "Environment variables of the replicas, added to Tessera's own (`CUDA_VISIBLE_DEVICES` is always the replica's GPU set).",
      examples: [{ HF_HOME: '/models/hf', VLLM_LOGGING_LEVEL: 'WARNING' }],
    },
    startupTimeout: duration(
      'How long a replica may take, from its start, until `GET /health` answers 200. vLLM loads large models slowly; a replica that misses it fails the start (`TESSERA_E_LAUNCH_FAILED`) or, after a restart, is killed and restarted again.',
      '10m',
      ['15m', 300000],
    ),
    healthInterval: duration('Time between `GET /health` polls while a replica starts or restarts.', '1s', ['500ms']),
    restartBackoff: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Restarts of replicas that exit after the start: the delay doubles after each restart that fails, up to `maxMs`.',
      properties: {
        initialMs: duration('Delay before the first restart.', 1000, ['2s']),
        maxMs: duration('Longest delay between two restarts.', 30000, ['1m']),
        resetAfterMs: duration('A replica that stayed up at least this long is restarted after `initialMs` again when it next exits.', 60000, ['5m']),
      },
    },
    stopTimeout: duration(
      'On stop (model unload, shutdown), how long a replica may take to exit after SIGTERM before its process group gets SIGKILL.',
      '30s',
      ['10s'],
    ),
  },
};

/**
 * Validates a `launch:` section (when `validate`) and applies the defaults; durations become
 * milliseconds. Throws `TESSERA_E_CONFIG_INVALID` naming `path`.
 */
export function resolveLaunchConfig(config: LaunchConfig, path = 'launch', validate = true): ResolvedLaunchConfig {
  const c = validate ? validateAgainstSchema<LaunchConfig>(LAUNCH_CONFIG_SCHEMA, structuredClone(config), path) : config;
  const b = c.restartBackoff ?? {};
  const ms = (value: LaunchDuration | undefined, fallback: number, key: string): number => (value === undefined ? fallback : parseDuration(value, `${path}.${key}`));
  return {
    command: c.command ?? LAUNCH_DEFAULTS.command,
    args: [...(c.args ?? [])],
    model: c.model,
    servedModelName: c.servedModelName,
    host: c.host ?? LAUNCH_DEFAULTS.host,
    basePort: c.basePort ?? LAUNCH_DEFAULTS.basePort,
    gpus: c.gpus.map((set) => [...set]),
    tensorParallelSize: c.tensorParallelSize,
    gpuMemoryUtilization: c.gpuMemoryUtilization,
    maxNumSeqs: c.maxNumSeqs,
    maxModelLen: c.maxModelLen,
    quantization: c.quantization,
    enablePrefixCaching: c.enablePrefixCaching,
    extraArgs: [...(c.extraArgs ?? [])],
    env: { ...(c.env ?? {}) },
    startupTimeoutMs: ms(c.startupTimeout, LAUNCH_DEFAULTS.startupTimeoutMs, 'startupTimeout'),
    healthIntervalMs: ms(c.healthInterval, LAUNCH_DEFAULTS.healthIntervalMs, 'healthInterval'),
    restartBackoff: {
      initialMs: ms(b.initialMs, LAUNCH_DEFAULTS.restartBackoff.initialMs, 'restartBackoff.initialMs'),
      maxMs: ms(b.maxMs, LAUNCH_DEFAULTS.restartBackoff.maxMs, 'restartBackoff.maxMs'),
      resetAfterMs: ms(b.resetAfterMs, LAUNCH_DEFAULTS.restartBackoff.resetAfterMs, 'restartBackoff.resetAfterMs'),
    },
    stopTimeoutMs: ms(c.stopTimeout, LAUNCH_DEFAULTS.stopTimeoutMs, 'stopTimeout'),
  };
}

/**
 * The `vllm serve` arguments of replica `replicaIndex` listening on `port`, from `serve` on
 * (the config's `args` go before them; `CUDA_VISIBLE_DEVICES` is set in the environment):
 * `serve MODEL --host H --port P [--served-model-name N] --tensor-parallel-size T
 * [--gpu-memory-utilization G] [--max-num-seqs S] [--max-model-len L] [--quantization Q]
 * [--enable-prefix-caching | --no-enable-prefix-caching] [...extraArgs]` (flag names as in vLLM's
 * `arg_utils.py`/`cli_args.py`).
 */
export function vllmServeArgs(config: LaunchConfig | ResolvedLaunchConfig, replicaIndex: number, port: number): string[] {
  const set = config.gpus[replicaIndex];
  if (set === undefined) throw new RangeError(`replica ${replicaIndex} does not exist: launch.gpus has ${config.gpus.length} GPU set(s)`);
  const argv = ['serve', config.model, '--host', config.host ?? LAUNCH_DEFAULTS.host, '--port', String(port)];
  if (config.servedModelName !== undefined) argv.push('--served-model-name', config.servedModelName);
  argv.push('--tensor-parallel-size', String(config.tensorParallelSize ?? Math.max(1, set.length)));
  if (config.gpuMemoryUtilization !== undefined) argv.push('--gpu-memory-utilization', String(config.gpuMemoryUtilization));
  if (config.maxNumSeqs !== undefined) argv.push('--max-num-seqs', String(config.maxNumSeqs));
  if (config.maxModelLen !== undefined) argv.push('--max-model-len', String(config.maxModelLen));
  if (config.quantization !== undefined) argv.push('--quantization', config.quantization);
  if (config.enablePrefixCaching === true) argv.push('--enable-prefix-caching');
  else if (config.enablePrefixCaching === false) argv.push('--no-enable-prefix-caching');
  argv.push(...(config.extraArgs ?? []));
  return argv;
}
