#!/usr/bin/env node
// first: sets UV_THREADPOOL_SIZE before anything uses libuv's pool
import './internal/threadpool.js';
import { existsSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/index.js';
import type { TesseraConfig } from './config/types.js';
import { TesseraError, errorMessage, isTesseraError } from './errors.js';
import { CORE_VERSION } from './internal/core-version.js';
import { TesseraServer } from './server.js';
import { ConfigWatcher, watchTargets } from './server/watch.js';
import { isClusterPrimary, serveCluster } from './server/cluster.js';
import { ClusterWorker } from './server/cluster-worker.js';
import { PARENT_PID_ENV, watchParent } from './server/parent-watch.js';
import { resolveWorkers } from './config/workers.js';

/**
 * Where the user docs are on this machine: the copy packed into @tessera/core (an installed
 * package, `docs/` beside `dist/`), else the repository's `docs/` (a clone of this monorepo).
 */
function docsFolder(): string | undefined {
  for (const relative of ['../docs/', '../../../docs/']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${folder}configuration.md`)) return folder;
  }
  return undefined;
}

/** The help's last lines: the absolute paths of the docs and of the package README, when they exist. */
function docsHelp(): string {
  const folder = docsFolder();
  const readme = fileURLToPath(new URL('../README.md', import.meta.url));
  if (!folder) return 'Docs: docs/configuration.md, docs/protocols.md and docs/errors.md in the Tessera repository';
  return [
    'Docs (Markdown; start with configuration.md, protocols.md and errors.md):',
    `  ${folder}`,
    ...(existsSync(readme) ? [`  ${readme}`] : []),
  ].join('\n');
}

const HELP = `tessera ${CORE_VERSION} — a model server composed from npm plugins

Usage:
  tessera serve [-c FILE] [--port N] [--host H] [--workers N|auto] [--watch]
                                                  serve the models of a config file (SIGHUP reloads it)
  tessera validate [-c FILE] [--load]             check a config (and with --load, load every model)
  tessera tune [-c FILE] [--model M] [--latency-budget 50ms] [--time 2m] [--out FILE] [--dry-run]
                                                  measure the model on loopback over instances × threads × max batch ×
                                                  queue delay; write the best settings into a config overlay (docs/tuning.md)
  tessera build-engine [-c FILE] [--model M]      build ahead of time what backends build (TensorRT engines and their caches)
                                                  for every version of every model, or of M; report the time and the files
  tessera --help | --version

Options:
  -c, --config FILE   config file; default: searched from the current folder (tessera.config.{yaml,yml,json,js,mjs,ts},
                      .tesserarc[.json|.yaml|.yml|.js|.mjs|.ts], package.json#tessera). Repeat it for overlays:
                      -c base.yaml -c tessera.tune.yaml merges the later files over the earlier ones (objects key by key,
                      arrays and values replaced, null removes a key); each file's relative paths resolve against its folder
  -p, --port N        listen port (overrides server.port)
  -H, --host H        listen address (overrides server.host)
      --workers N     with serve: HTTP worker processes sharing the port, or auto (overrides server.workers)
      --watch         with serve: reload the config when it, a model file or the repository folder changes
      --load          with validate: also load and warm every model, then unload
  build-engine: --model M     only this model (default: every model whose backend builds; the others print
                              "nothing to build"); exits 1 when a build fails, e.g. TensorRT missing here
  tune: --model M             the model to tune (required when the config has several)
        --latency-budget D    the p99 the chosen settings must keep (50ms, 0.2s); default: the highest throughput
        --time D              the whole sweep's time (default 2m); the plan fits its points into it
        --out FILE            the overlay to write (default tessera.tune.yaml next to the config)
        --concurrency LIST    concurrent clients to measure at, e.g. 1,32,64 (default: 1, max batch, 2 × max batch)
        --max-batch N         the largest max batch size to try (default: the model's)
        --shape NAME=DIMS     a request input's whole shape, e.g. x=1x3x48x192 (default: from warmupShapes)
        --request FILE        send this body instead of random tensors (with --content-type T, --header 'Name: value')
        --seed N              the random tensors' seed (default 1)
        --dry-run             print the plan only
  -h, --help          this help
  -v, --version       the version

${docsHelp()}`;

/** What shutdown may take beyond `server.shutdownGracePeriod` (unloading, flushing) before the process exits anyway. */
const SHUTDOWN_MARGIN_MS = 10_000;

/** A mistake on the command line. */
function usage(message: string): TesseraError {
  return new TesseraError('TESSERA_E_CLI_USAGE', `${message} (see tessera --help)`);
}

/** Prints one line — the cause, no stack — and exits non-zero. */
function fail(err: unknown): never {
  if (isTesseraError(err)) {
    process.stderr.write(`tessera: ${err.code}: ${err.message}\n`);
  } else {
    process.stderr.write(`tessera: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
}

/** The options that make the config: the file and the overrides. */
interface ConfigValues {
  /** `-c` files, in order: later ones deep-merged over earlier ones. */
  config?: string[] | undefined;
  port?: string | undefined;
  host?: string | undefined;
  workers?: string | undefined;
}

async function configFrom(values: ConfigValues): Promise<TesseraConfig> {
  const config = await loadConfig({ ...(values.config ? { files: values.config } : {}), cwd: process.cwd(), env: process.env });
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`--port ${values.port}: must be an integer from 0 to 65535`);
    config.server.port = port;
  }
  if (values.host !== undefined) config.server.host = values.host;
  if (values.workers !== undefined) {
    const n = values.workers === 'auto' ? 'auto' : Number(values.workers);
    if (n !== 'auto' && (!Number.isInteger(n) || n < 1)) throw usage(`--workers ${values.workers}: must be an integer ≥ 1 or auto`);
    config.server.workers = resolveWorkers(n, undefined, { localRateLimit: config.server.rateLimit !== undefined && config.server.rateLimit.redis === undefined });
  }
  return config;
}

async function serve(config: TesseraConfig, values: ConfigValues, watchFiles: boolean): Promise<void> {
  // several workers (server.workers): this process is their primary and serves nothing itself
  if (isClusterPrimary(config)) return serveCluster({ config, watch: watchFiles });
  const worker = ClusterWorker.current();
  // a reload reads the same files with the same command-line overrides
  const server = new TesseraServer({ config, readConfig: () => configFrom(values), ...worker?.serverOptions() });
  const log = server.logger;
  let watcher: ConfigWatcher | undefined;
  let stopping: string | undefined;
  // settles when start() has (loaded, warmed and listened, or failed): a stop that arrives during the
  // start closes after it — fastify cannot close while its plugins are still registering (a worker
  // told to stop by its primary while it starts would hang with the closing and the starting
  // waiting for each other), and the deadline below still bounds the whole shutdown
  let startup: Promise<void> = Promise.resolve();
  const stop = (signal: string, code = 0): void => {
    if (stopping) {
      // a worker gets a terminal's signal twice, from the process group and from the primary: the
      // same signal again is that one (a second one from the operator comes as the primary's `now`)
      if (worker && signal === stopping) return;
      // a second signal: the operator does not want to wait for the drain
      log.warn({ signal, inflight: server.inflight }, `${signal} during shutdown (after ${stopping}): exiting now without finishing the drain`);
      process.exit(code === 0 ? 1 : code);
    }
    stopping = signal;
    watcher?.close();
    log.info({ signal, gracePeriodMs: config.server.shutdownGracePeriodMs }, 'shutting down');
    // past the grace period (and a margin for unloading) nothing more will finish: exit anyway
    const deadline = setTimeout(() => {
      log.error({ inflight: server.inflight }, 'shutdown did not finish within server.shutdownGracePeriod and its margin; exiting');
      process.exit(1);
    }, config.server.shutdownGracePeriodMs + SHUTDOWN_MARGIN_MS);
    deadline.unref();
    startup.then(() => server.close()).then(
      () => process.exit(code),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // started by another process for its own use (tessera tune): stop when it is gone, even killed with SIGKILL
  if (!worker) watchParent((pid) => stop(`${PARENT_PID_ENV} ${pid} exited`));
  // a worker of a cluster: the primary says when to stop and reload
  worker?.attach(server, (signal) => stop(signal));
  // SIGHUP: reload the config (what nginx, Prometheus and HAProxy do); a refusal is logged, the old config serves on
  const reload = (trigger: string): void => {
    void server.reload(trigger).then((outcome) => {
      if (outcome.ok) watcher?.update(watchTargets(server.config));
    });
  };
  process.on('SIGHUP', () => (worker ? worker.ignoredSignal('SIGHUP') : reload('SIGHUP')));
  // a promise nobody awaited failed: a bug, but one request's bug must not take every other request down
  process.on('unhandledRejection', (reason: unknown) => log.error({ err: reason }, `unhandled promise rejection (a bug; please report it): ${errorMessage(reason)}`));
  // after an uncaught exception the process state is unknown: drain what is in flight, then exit 1
  process.on('uncaughtException', (err: Error) => {
    log.fatal({ err }, `uncaught exception (a bug; please report it): ${err.message}; draining and exiting`);
    stop('uncaughtException', 1);
  });
  try {
    // a worker of a cluster listens once it serves: node:cluster hands connections to every worker that listens
    const starting = server.start({ loadFirst: worker !== undefined });
    startup = starting.then(
      () => undefined,
      () => undefined,
    );
    const { url } = await starting;
    if (!stopping) worker?.ready(url);
  } catch (err) {
    // a stop during the start closes the server itself (and exits)
    if (stopping) return;
    await server.close().catch(() => {});
    fail(err);
  }
  if (watchFiles && !stopping && !worker) {
    const targets = watchTargets(server.config);
    watcher = new ConfigWatcher(targets, () => reload('a watched file changed'), { onError: (err, target) => log.warn({ err, target }, `--watch: cannot watch ${target}: ${errorMessage(err)}`) });
    log.info({ files: targets.files, folders: targets.trees }, 'watching the config, the model files and the repository folder for changes');
  }
}

async function validate(config: TesseraConfig, load: boolean): Promise<void> {
  for (const [name, model] of Object.entries(config.models)) {
    for (const [version, v] of Object.entries(model.versions)) {
      if (v.path) {
        await access(v.path).catch(() => {
          throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${config.configFile ? `${config.configFile}: ` : ''}models.${name}.versions.${version}.path: ${v.path} does not exist (relative paths resolve against ${config.configDir})`);
        });
      }
    }
  }
  const server = new TesseraServer({ config: { ...config, server: { ...config.server, logLevel: 'silent', port: 0, host: '127.0.0.1' } } });
  try {
    if (load) await server.start();
    else await server.check();
  } finally {
    await server.close();
  }
  const models = Object.entries(config.models).map(([n, m]) => {
    const versions = `v${Object.keys(m.versions).join(', v') || '-'}`;
    if (!load) return `${n} (${m.backend}, ${versions})`;
    // what --load did, as it was: a version is "warmed" only when a warm-up really ran
    const entry = server.registry.get(n);
    const warm = [...(entry?.versions.values() ?? [])].map((v) => (v.warmed ? 'warmed' : m.warmup ? 'loaded, not warmed (its backend has no warm-up)' : 'loaded (warmup: false)'));
    return `${n} (${m.backend}, ${versions}: ${[...new Set(warm)].join(', ')})`;
  });
  // what `serve` would log as warnings (skipped repository folders, unmapped config.pbtxt fields), once the config passed
  for (const warning of config.warnings ?? []) process.stderr.write(`tessera: warning: ${warning}\n`);
  process.stdout.write(`${config.configFiles?.join(' + ') ?? (config.configFile || 'config')}: OK — ${models.length} model(s): ${models.join('; ') || 'none'}${load ? '; all loaded' : ''}\n`);
}

/** Options only `tune` takes. */
const TUNE_OPTIONS = ['model', 'latency-budget', 'time', 'out', 'concurrency', 'max-batch', 'shape', 'request', 'content-type', 'header', 'seed', 'dry-run'] as const;

/** `tessera build-engine` (src/build/): exits 1 when a build failed (each failure printed as one line). */
async function buildEngine(config: TesseraConfig, model: string | undefined): Promise<void> {
  const { buildEngineCommand } = await import('./build/command.js');
  const code = await buildEngineCommand(config, { model }, { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) });
  if (code !== 0) process.exit(code);
}

/** `tessera tune` (src/tune/): loaded only when run, with autocannon behind it. */
async function tune(config: TesseraConfig, values: Partial<Record<(typeof TUNE_OPTIONS)[number], string | string[] | boolean | undefined>>, argv: readonly string[]): Promise<void> {
  const { tuneCommand } = await import('./tune/command.js');
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? (v as string[]) : undefined);
  await tuneCommand(
    config,
    {
      model: str(values.model),
      latencyBudget: str(values['latency-budget']),
      time: str(values.time),
      out: str(values.out),
      concurrency: str(values.concurrency),
      maxBatch: str(values['max-batch']),
      shape: list(values.shape),
      request: str(values.request),
      contentType: str(values['content-type']),
      header: list(values.header),
      seed: str(values.seed),
      dryRun: values['dry-run'] === true,
    },
    argv,
  );
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c', multiple: true },
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        workers: { type: 'string' },
        load: { type: 'boolean' },
        // tune
        model: { type: 'string' },
        'latency-budget': { type: 'string' },
        time: { type: 'string' },
        out: { type: 'string' },
        concurrency: { type: 'string' },
        'max-batch': { type: 'string' },
        shape: { type: 'string', multiple: true },
        request: { type: 'string' },
        'content-type': { type: 'string' },
        header: { type: 'string', multiple: true },
        seed: { type: 'string' },
        'dry-run': { type: 'boolean' },
        watch: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    fail(usage(err instanceof Error ? err.message : String(err)));
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${CORE_VERSION}\n`);
    return;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (positionals.length > 1) fail(usage(`unexpected argument '${positionals[1]}'`));
  if (command !== 'serve' && command !== 'validate' && command !== 'tune' && command !== 'build-engine') fail(usage(`unknown command '${command}'; use serve, validate, tune or build-engine`));
  const tuneOnly = TUNE_OPTIONS.filter((o) => values[o] !== undefined && !(command === 'build-engine' && o === 'model'));
  if (command !== 'tune' && tuneOnly.length > 0) fail(usage(`--${tuneOnly[0]} is an option of tune`));
  if (command === 'build-engine' && (values.port !== undefined || values.host !== undefined || values.load)) fail(usage('build-engine serves nothing: --port, --host and --load are not its options'));
  if (command === 'tune' && (values.port !== undefined || values.host !== undefined || values.load)) fail(usage('tune serves on 127.0.0.1 at a free port itself: --port, --host and --load are not its options'));
  try {
    const config = await configFrom(values);
    if (values.watch && command !== 'serve') throw usage('--watch is an option of serve');
    if (values.workers !== undefined && command !== 'serve') throw usage('--workers is an option of serve');
    if (command === 'serve') await serve(config, values, values.watch === true);
    else if (command === 'tune') await tune(config, values, argv);
    else if (command === 'build-engine') await buildEngine(config, values.model);
    else await validate(config, values.load === true);
  } catch (err) {
    fail(err);
  }
}

void main(process.argv.slice(2));
