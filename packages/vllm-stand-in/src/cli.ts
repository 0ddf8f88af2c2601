/**
 * `vllm-stand-in serve MODEL [options]`: the vLLM stand-in as a process, taking `vllm serve`'s
 * command line (the flags of vLLM's `FrontendArgs` and `EngineArgs`, kebab-case or snake_case,
 * `--flag value` or `--flag=value`, `--no-<flag>` for boolean flags; unknown flags exit with
 * status 2 and an argparse-style message, as vLLM does), so that launch code can be tested
 * without GPUs.
 *
 * On start it prints one line `VLLM_STAND_IN_ARGS {json}` with what it parsed (and
 * `CUDA_VISIBLE_DEVICES`), then vLLM/uvicorn-like log lines. SIGTERM or SIGINT closes the server
 * and exits 0.
 *
 * Stand-in-only environment variables (vLLM has none of these):
 * - `VLLM_STAND_IN_TTFT_MS`, `VLLM_STAND_IN_TOKEN_DELAY_MS`: prefill time and time between tokens;
 * - `VLLM_STAND_IN_DEFAULT_MAX_TOKENS`: output tokens when a request gives none (default 16;
 *   `none` = the rest of the context, as vLLM);
 * - `VLLM_STAND_IN_STARTUP_MS`: wait this long before listening (model loading);
 * - `VLLM_STAND_IN_EXIT_AFTER_MS`: exit this long after listening, with `VLLM_STAND_IN_EXIT_CODE`
 *   (default 1), as a crashed engine would; with `VLLM_STAND_IN_CRASH_MARKER=<file>` only when the
 *   file does not exist yet (it is created), so that a restarted process stays up;
 * - `VLLM_STAND_IN_UNHEALTHY=1`: `/health` answers 503 from the start;
 * - `VLLM_STAND_IN_IGNORE_SIGTERM=1`: SIGTERM is ignored (for SIGKILL escalation tests);
 * - `VLLM_STAND_IN_LEGACY_METRICS=1`: `vllm:gpu_cache_usage_perc` instead of `vllm:kv_cache_usage_perc`.
 * `VLLM_API_KEY` works as in vLLM (the `--api-key` flag wins).
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { VllmStandIn, VllmStandInOptions } from './server.js';
import { VLLM_STAND_IN_PROTOCOL_VERSION, startVllmStandIn } from './server.js';

/** How a flag takes its value. */
type FlagKind = 'value' | 'int' | 'float' | 'hint' | 'store_true' | 'bool' | 'multi' | 'optional';

/** `vllm serve`'s flags (vllm/entrypoints/openai/cli_args.py, vllm/engine/arg_utils.py), by kind. */
const FLAGS: Record<string, FlagKind> = {};
const SHORT: Record<string, string> = {
  '-tp': 'tensor-parallel-size',
  '-pp': 'pipeline-parallel-size',
  '-dp': 'data-parallel-size',
  '-dpn': 'data-parallel-rank',
  '-dpr': 'data-parallel-start-rank',
  '-dpl': 'data-parallel-size-local',
  '-dpa': 'data-parallel-address',
  '-dpp': 'data-parallel-rpc-port',
  '-dpb': 'data-parallel-backend',
  '-dph': 'data-parallel-hybrid-lb',
  '-dpe': 'data-parallel-external-lb',
  '-dcp': 'decode-context-parallel-size',
  '-q': 'quantization',
  '-O': 'compilation-config',
  '-sc': 'speculative-config',
  '-asc': 'api-server-count',
  '-ep': 'enable-expert-parallel',
};

function define(kind: FlagKind, names: string): void {
  for (const name of names.trim().split(/\s+/)) FLAGS[name] = kind;
}

define('value', `
  host uds uvicorn-log-level allowed-origins allowed-methods allowed-headers chat-template
  chat-template-content-format response-role ssl-keyfile ssl-certfile ssl-ca-certs root-path
  tool-call-parser tool-parser-plugin tool-server log-config-file config model runner convert task
  tokenizer tokenizer-mode dtype hf-config-path allowed-local-media-path allowed-media-domains revision
  code-revision rope-scaling tokenizer-revision quantization logprobs-mode config-format hf-overrides
  pooler-config logits-processor-pattern generation-config override-generation-config model-impl
  override-attention-dtype io-processor-plugin load-format download-dir safetensors-load-strategy
  model-loader-extra-config pt-load-map-location attention-backend reasoning-parser
  reasoning-parser-plugin structured-outputs-config distributed-executor-backend data-parallel-address
  data-parallel-backend eplb-config expert-placement-strategy worker-cls worker-extension-cls
  kv-cache-memory-bytes kv-cache-dtype prefix-caching-hash-algo mamba-cache-dtype mamba-ssm-cache-dtype
  limit-mm-per-prompt media-io-kwargs mm-processor-kwargs mm-encoder-tp-mode lora-dtype default-mm-loras
  show-hidden-metrics-for-version otlp-traces-endpoint collect-detailed-traces scheduling-policy
  scheduler-cls speculative-config kv-transfer-config kv-events-config compilation-config
  additional-config fingerprint-mode fingerprint-value default-chat-template-kwargs
  kv-offloading-backend kv-offloading-size
`);
define('int', `
  port ssl-cert-reqs max-log-len h11-max-incomplete-event-size h11-max-header-count api-server-count
  seed max-logprobs pipeline-parallel-size tensor-parallel-size decode-context-parallel-size
  data-parallel-size data-parallel-rank data-parallel-start-rank data-parallel-size-local
  data-parallel-rpc-port max-parallel-loading-workers block-size num-gpu-blocks-override max-loras
  max-lora-rank max-cpu-loras max-num-seqs max-num-partial-prefills max-long-partial-prefills
  long-prefill-token-threshold max-seq-len-to-capture num-lookahead-slots
`);
define('float', 'gpu-memory-utilization swap-space cpu-offload-gb mm-processor-cache-gb rope-theta');
define('hint', 'max-model-len max-num-batched-tokens');
define('store_true', 'headless disable-log-stats aggregate-engine-logging');
define('bool', `
  disable-uvicorn-access-log allow-credentials trust-request-chat-template enable-ssl-refresh
  return-tokens-as-token-ids disable-frontend-multiprocessing enable-request-id-headers
  enable-auto-tool-choice exclude-tools-when-tool-choice-none disable-fastapi-docs
  enable-prompt-tokens-details enable-server-load-tracking enable-force-include-usage
  enable-tokenizer-info-endpoint enable-log-outputs log-error-stack tokens-only enable-log-requests
  disable-log-requests trust-remote-code enforce-eager disable-sliding-window disable-cascade-attn
  skip-tokenizer-init enable-prompt-embeds enable-sleep-mode use-tqdm-on-load data-parallel-hybrid-lb
  data-parallel-external-lb enable-expert-parallel enable-eplb ray-workers-use-nsight
  disable-custom-all-reduce enable-prefix-caching calculate-kv-scales kv-sharing-fast-prefill
  interleave-mm-strings skip-mm-profiling enable-lora fully-sharded-loras enable-chunked-prefill
  disable-chunked-mm-input disable-hybrid-kv-cache-manager async-scheduling enable-dbo
  enable-return-routed-experts enable-log-deltas
`);
define('multi', 'api-key served-model-name lora-modules middleware ignore-patterns cuda-graph-sizes logits-processors');
define('optional', 'hf-token');

/** A command-line error: argparse prints the usage and the message, and exits with status 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** What `vllm serve` was given. */
export interface ParsedServeArgs {
  /** The model (positional `model_tag`, else `--model`; vLLM's default otherwise). */
  model: string;
  host: string | undefined;
  port: number;
  servedModelName: string[] | undefined;
  apiKey: string[] | undefined;
  tensorParallelSize: number | undefined;
  gpuMemoryUtilization: number | undefined;
  maxNumSeqs: number | undefined;
  maxModelLen: number | undefined;
  quantization: string | undefined;
  enablePrefixCaching: boolean | undefined;
  enableAutoToolChoice: boolean | undefined;
  toolCallParser: string | undefined;
  enableRequestIdHeaders: boolean | undefined;
  /** Every flag given, by its kebab-case name. */
  flags: Record<string, string | number | boolean | string[] | null>;
}

/** vLLM's `human_readable_int`: `4096`, `32k` (×1000), `32K` (×1024), `1m`, `1M`, `-1`. */
function humanReadableInt(text: string): number | undefined {
  const m = /^(-?\d+(?:\.\d+)?)([kKmMgGtT]?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]!;
  if (!unit) return Number.isInteger(n) ? n : undefined;
  const decimal: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
  const binary: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  if (unit in binary) return Number.isInteger(n) ? n * binary[unit]! : undefined;
  return Math.round(n * decimal[unit]!);
}

const USAGE = 'usage: vllm serve [model_tag] [options]';

/** Parses the arguments after `serve` like vLLM's FlexibleArgumentParser. Throws `CliUsageError`. */
export function parseServeArgs(argv: readonly string[]): ParsedServeArgs {
  const flags: ParsedServeArgs['flags'] = {};
  const positionals: string[] = [];
  const unknown: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    let name: string;
    if (arg.startsWith('--')) name = arg.slice(2).replace(/_/g, '-');
    else if (arg in SHORT) name = SHORT[arg]!;
    else if (arg.startsWith('-O') && arg.length > 2) {
      name = 'compilation-config';
      inline = arg.slice(2);
    } else {
      unknown.push(argv[i]!);
      continue;
    }
    let negated = false;
    let kind = FLAGS[name];
    if (kind === undefined && name.startsWith('no-') && FLAGS[name.slice(3)] === 'bool') {
      negated = true;
      name = name.slice(3);
      kind = 'bool';
    }
    if (kind === undefined) {
      unknown.push(argv[i]!);
      // Its value (if any) is left for the next round, as argparse leaves it unrecognized too.
      continue;
    }
    const display = `--${name}`;
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && !/^-\d/.test(next))) throw new CliUsageError(`argument ${display}: expected one argument`);
      i++;
      return next;
    };
    switch (kind) {
      case 'store_true':
        if (inline !== undefined) throw new CliUsageError(`argument ${display}: ignored explicit argument '${inline}'`);
        flags[name] = true;
        break;
      case 'bool':
        if (inline !== undefined) throw new CliUsageError(`argument ${display}: ignored explicit argument '${inline}'`);
        flags[name] = !negated;
        break;
      case 'value':
        flags[name] = takeValue();
        break;
      case 'optional': {
        const next = argv[i + 1];
        if (inline !== undefined) flags[name] = inline;
        else if (next !== undefined && !next.startsWith('-')) {
          flags[name] = next;
          i++;
        } else flags[name] = null;
        break;
      }
      case 'int': {
        const v = takeValue();
        if (!/^[+-]?\d+$/.test(v.trim())) throw new CliUsageError(`argument ${display}: invalid int value: '${v}'`);
        flags[name] = Number(v);
        break;
      }
      case 'float': {
        const v = takeValue();
        const n = Number(v);
        if (v.trim() === '' || Number.isNaN(n)) throw new CliUsageError(`argument ${display}: invalid float value: '${v}'`);
        flags[name] = n;
        break;
      }
      case 'hint': {
        const v = takeValue();
        const n = v === 'auto' ? -1 : humanReadableInt(v);
        if (n === undefined) throw new CliUsageError(`argument ${display}: invalid human_readable_int value: '${v}'`);
        flags[name] = n;
        break;
      }
      case 'multi': {
        const values: string[] = [];
        if (inline !== undefined) values.push(inline);
        while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) values.push(argv[++i]!);
        if (values.length === 0) throw new CliUsageError(`argument ${display}: expected at least one argument`);
        flags[name] = values;
        break;
      }
    }
  }
  if (positionals.length > 1) unknown.push(...positionals.slice(1));
  if (unknown.length > 0) throw new CliUsageError(`unrecognized arguments: ${unknown.join(' ')}`);
  const model = positionals[0] ?? (typeof flags.model === 'string' ? flags.model : 'Qwen/Qwen3-0.6B');
  const num = (k: string): number | undefined => (typeof flags[k] === 'number' ? flags[k] : undefined);
  const str = (k: string): string | undefined => (typeof flags[k] === 'string' ? flags[k] : undefined);
  const bool = (k: string): boolean | undefined => (typeof flags[k] === 'boolean' ? flags[k] : undefined);
  const list = (k: string): string[] | undefined => (Array.isArray(flags[k]) ? flags[k] : undefined);
  return {
    model,
    host: str('host'),
    port: num('port') ?? 8000,
    servedModelName: list('served-model-name'),
    apiKey: list('api-key'),
    tensorParallelSize: num('tensor-parallel-size'),
    gpuMemoryUtilization: num('gpu-memory-utilization'),
    maxNumSeqs: num('max-num-seqs'),
    maxModelLen: num('max-model-len'),
    quantization: str('quantization'),
    enablePrefixCaching: bool('enable-prefix-caching'),
    enableAutoToolChoice: bool('enable-auto-tool-choice'),
    toolCallParser: str('tool-call-parser'),
    enableRequestIdHeaders: bool('enable-request-id-headers'),
    flags,
  };
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CliUsageError(`${name} must be a non-negative number, got '${v}'`);
  return n;
}

function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = (env[name] ?? '').toLowerCase();
  return v === '1' || v === 'true' || v === 'yes';
}

/** `vllm`-like log line (vLLM's format: `INFO MM-DD HH:MM:SS [file.py:line] message`). */
function logLine(level: 'INFO' | 'WARNING' | 'ERROR', message: string): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${level} ${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} [api_server.py:1] ${message}\n`;
}

/** The options of the stand-in for parsed arguments and the environment. */
export function standInOptionsFromArgs(args: ParsedServeArgs, env: NodeJS.ProcessEnv = process.env): VllmStandInOptions {
  const defaultMaxTokens = env.VLLM_STAND_IN_DEFAULT_MAX_TOKENS;
  const apiKey = args.apiKey ?? (env.VLLM_API_KEY ? [env.VLLM_API_KEY] : undefined);
  const maxModelLen = args.maxModelLen !== undefined && args.maxModelLen > 0 ? args.maxModelLen : undefined;
  return {
    model: args.model,
    ...(args.servedModelName ? { servedModelName: args.servedModelName } : {}),
    host: args.host ?? '0.0.0.0',
    port: args.port,
    ...(maxModelLen !== undefined ? { maxModelLen } : {}),
    ...(args.maxNumSeqs !== undefined ? { maxNumSeqs: args.maxNumSeqs } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(args.tensorParallelSize !== undefined ? { tensorParallelSize: args.tensorParallelSize } : {}),
    ...(args.enableAutoToolChoice !== undefined ? { enableAutoToolChoice: args.enableAutoToolChoice } : {}),
    ...(args.toolCallParser !== undefined ? { toolCallParser: args.toolCallParser } : {}),
    ...(args.enableRequestIdHeaders !== undefined ? { enableRequestIdHeaders: args.enableRequestIdHeaders } : {}),
    ttftMs: envNumber(env, 'VLLM_STAND_IN_TTFT_MS') ?? 0,
    tokenDelayMs: envNumber(env, 'VLLM_STAND_IN_TOKEN_DELAY_MS') ?? 0,
    ...(defaultMaxTokens === undefined || defaultMaxTokens === ''
      ? {}
      : { defaultMaxTokens: defaultMaxTokens === 'none' ? null : (envNumber(env, 'VLLM_STAND_IN_DEFAULT_MAX_TOKENS') ?? 16) }),
    legacyMetricNames: envFlag(env, 'VLLM_STAND_IN_LEGACY_METRICS'),
  };
}

/** Options of `runCli`, for tests. */
export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  exit?: (code: number) => void;
  /** Install SIGTERM/SIGINT handlers that close the server and exit (default true). */
  handleSignals?: boolean;
}

/**
 * Runs `vllm-stand-in <argv>` (`argv` without the node and script paths). Resolves with the
 * running stand-in once it listens (or `undefined` when it exited: usage errors, `--help`).
 */
export async function runCli(argv: readonly string[] = process.argv.slice(2), options: RunCliOptions = {}): Promise<VllmStandIn | undefined> {
  const env = options.env ?? process.env;
  const out = options.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = options.stderr ?? ((t: string) => void process.stderr.write(t));
  const exit = options.exit ?? ((code: number) => process.exit(code));

  if (argv[0] === '--help' || argv[0] === '-h' || argv.length === 0) {
    out(`usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n\nvllm-stand-in: a stand-in for vLLM's OpenAI-compatible server (protocol of vLLM ${VLLM_STAND_IN_PROTOCOL_VERSION}). Use \`vllm-stand-in serve MODEL [options]\`.\n`);
    exit(argv.length === 0 ? 2 : 0);
    return undefined;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    out(`${VLLM_STAND_IN_PROTOCOL_VERSION}\n`);
    exit(0);
    return undefined;
  }
  if (argv[0] !== 'serve') {
    err(`usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\nvllm: error: argument subparser: invalid choice: '${argv[0]}' (choose from 'chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch')\n`);
    exit(2);
    return undefined;
  }
  const rest = argv.slice(1);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(`${USAGE}\n\nStart the vLLM stand-in (an OpenAI-compatible server for tests, no GPU). Takes vllm serve's flags.\n`);
    exit(0);
    return undefined;
  }

  let args: ParsedServeArgs;
  let standInOptions: VllmStandInOptions;
  let startupMs: number;
  let exitAfterMs: number | undefined;
  let exitCode: number;
  try {
    args = parseServeArgs(rest);
    standInOptions = standInOptionsFromArgs(args, env);
    startupMs = envNumber(env, 'VLLM_STAND_IN_STARTUP_MS') ?? 0;
    exitAfterMs = envNumber(env, 'VLLM_STAND_IN_EXIT_AFTER_MS');
    exitCode = envNumber(env, 'VLLM_STAND_IN_EXIT_CODE') ?? 1;
  } catch (e) {
    if (e instanceof CliUsageError) {
      err(`${USAGE}\nvllm serve: error: ${e.message}\n`);
      exit(2);
      return undefined;
    }
    throw e;
  }

  const printed = {
    argv: [...argv],
    model: args.model,
    host: args.host ?? null,
    port: args.port,
    servedModelName: args.servedModelName ?? null,
    apiKey: args.apiKey ? args.apiKey.map(() => '**REDACTED**') : null,
    tensorParallelSize: args.tensorParallelSize ?? null,
    gpuMemoryUtilization: args.gpuMemoryUtilization ?? null,
    maxNumSeqs: args.maxNumSeqs ?? null,
    maxModelLen: args.maxModelLen ?? null,
    quantization: args.quantization ?? null,
    enablePrefixCaching: args.enablePrefixCaching ?? null,
    flags: Object.fromEntries(Object.entries(args.flags).map(([k, v]) => [k, k === 'api-key' ? '**REDACTED**' : v])),
    env: { CUDA_VISIBLE_DEVICES: env.CUDA_VISIBLE_DEVICES ?? null },
    pid: process.pid,
  };
  out(`VLLM_STAND_IN_ARGS ${JSON.stringify(printed)}\n`);
  out(logLine('INFO', `vLLM API server version ${VLLM_STAND_IN_PROTOCOL_VERSION} (stand-in), serving model ${args.model}`));

  let standIn: VllmStandIn | undefined;
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (envFlag(env, 'VLLM_STAND_IN_IGNORE_SIGTERM') && signal === 'SIGTERM') {
      out(logLine('WARNING', 'received SIGTERM; ignoring it (VLLM_STAND_IN_IGNORE_SIGTERM)'));
      return;
    }
    if (stopping) return;
    stopping = true;
    out('INFO:     Shutting down\n');
    const done = (): void => {
      out('INFO:     Application shutdown complete.\n');
      exit(0);
    };
    if (standIn) standIn.close().then(done, done);
    else done();
  };
  if (options.handleSignals ?? true) {
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  }

  if (startupMs > 0) {
    out(logLine('INFO', `Loading model weights (stand-in: ${startupMs} ms)`));
    await new Promise((resolve) => setTimeout(resolve, startupMs));
  }
  if (stopping) return undefined;

  try {
    standIn = await startVllmStandIn(standInOptions);
  } catch (e) {
    err(logLine('ERROR', `could not listen on ${standInOptions.host}:${standInOptions.port}: ${e instanceof Error ? e.message : String(e)}`));
    exit(1);
    return undefined;
  }
  if (envFlag(env, 'VLLM_STAND_IN_UNHEALTHY')) standIn.setFaults({ unhealthy: true });
  out(`INFO:     Started server process [${process.pid}]\nINFO:     Waiting for application startup.\nINFO:     Application startup complete.\n`);
  out(`INFO:     Uvicorn running on http://${standInOptions.host ?? '0.0.0.0'}:${standIn.port} (Press CTRL+C to quit)\n`);

  if (exitAfterMs !== undefined) {
    const marker = env.VLLM_STAND_IN_CRASH_MARKER;
    const crash = marker ? !existsSync(marker) : true;
    if (crash) {
      if (marker) writeFileSync(marker, String(process.pid));
      setTimeout(() => {
        err(logLine('ERROR', `EngineCore encountered a fatal error (stand-in: VLLM_STAND_IN_EXIT_AFTER_MS=${exitAfterMs}); exiting with code ${exitCode}`));
        exit(exitCode);
      }, exitAfterMs);
    }
  }
  return standIn;
}
