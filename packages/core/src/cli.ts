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
  tessera serve [-c FILE] [--port N] [--host H] [--watch]
                                                  serve the models of a config file (SIGHUP reloads it)
  tessera validate [-c FILE] [--load]             check a config (and with --load, load every model)
  tessera --help | --version

Options:
  -c, --config FILE   config file; default: searched from the current folder (tessera.config.{yaml,yml,json,js,mjs,ts},
                      .tesserarc[.json|.yaml|.yml|.js|.mjs|.ts], package.json#tessera)
  -p, --port N        listen port (overrides server.port)
  -H, --host H        listen address (overrides server.host)
      --watch         with serve: reload the config when it, a model file or the repository folder changes
      --load          with validate: also load and warm every model, then unload
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
  config?: string | undefined;
  port?: string | undefined;
  host?: string | undefined;
}

async function configFrom(values: ConfigValues): Promise<TesseraConfig> {
  const config = await loadConfig({ ...(values.config ? { file: values.config } : {}), cwd: process.cwd(), env: process.env });
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`--port ${values.port}: must be an integer from 0 to 65535`);
    config.server.port = port;
  }
  if (values.host !== undefined) config.server.host = values.host;
  return config;
}

async function serve(config: TesseraConfig, values: ConfigValues, watchFiles: boolean): Promise<void> {
  // a reload reads the same file with the same command-line overrides
  const server = new TesseraServer({ config, readConfig: () => configFrom(values) });
  const log = server.logger;
  let watcher: ConfigWatcher | undefined;
  let stopping: string | undefined;
  const stop = (signal: string, code = 0): void => {
    if (stopping) {
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
    server.close().then(
      () => process.exit(code),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: reload the config (what nginx, Prometheus and HAProxy do); a refusal is logged, the old config serves on
  const reload = (trigger: string): void => {
    void server.reload(trigger).then((outcome) => {
      if (outcome.ok) watcher?.update(watchTargets(server.config));
    });
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  // a promise nobody awaited failed: a bug, but one request's bug must not take every other request down
  process.on('unhandledRejection', (reason: unknown) => log.error({ err: reason }, `unhandled promise rejection (a bug; please report it): ${errorMessage(reason)}`));
  // after an uncaught exception the process state is unknown: drain what is in flight, then exit 1
  process.on('uncaughtException', (err: Error) => {
    log.fatal({ err }, `uncaught exception (a bug; please report it): ${err.message}; draining and exiting`);
    stop('uncaughtException', 1);
  });
  try {
    await server.start();
  } catch (err) {
    await server.close().catch(() => {});
    fail(err);
  }
  if (watchFiles && !stopping) {
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
  process.stdout.write(`${config.configFile || 'config'}: OK — ${models.length} model(s): ${models.join('; ') || 'none'}${load ? '; all loaded' : ''}\n`);
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        load: { type: 'boolean' },
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
  if (command !== 'serve' && command !== 'validate') fail(usage(`unknown command '${command}'; use serve or validate`));
  try {
    const config = await configFrom(values);
    if (values.watch && command !== 'serve') throw usage('--watch is an option of serve');
    if (command === 'serve') await serve(config, values, values.watch === true);
    else await validate(config, values.load === true);
  } catch (err) {
    fail(err);
  }
}

void main(process.argv.slice(2));
