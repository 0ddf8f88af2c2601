import type { Logger } from 'pino';
import type { Clock } from '../contracts/clock.js';
import type { Exporter, ExporterFactory } from '../contracts/exporter.js';
import type { RequestHookFactory } from '../contracts/hook.js';
import type { MetricRegistrar } from '../contracts/metrics.js';
import { validateAgainstSchema } from '../config/index.js';
import type { NamedEntryConfig, TesseraConfig } from '../config/types.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import type { NamedHook } from '../pipeline/hooks.js';
import type { Catalog, PluginKind } from '../plugins/catalog.js';

interface Shared {
  catalog: Catalog;
  config: TesseraConfig;
  logger: Logger;
  metrics: MetricRegistrar;
  clock: Clock;
}

function isExporter(value: Exporter | ExporterFactory): value is Exporter {
  return typeof (value as Exporter).attach === 'function';
}

/** The exporters `exporters:` lists, created from their factories with their options. */
export async function createExporters(shared: Shared): Promise<{ name: string; exporter: Exporter }[]> {
  const { catalog, config, logger, metrics, clock } = shared;
  const out: { name: string; exporter: Exporter }[] = [];
  for (const [i, entry] of config.exporters.entries()) {
    const at = `exporters[${i}]`;
    const value = catalog.get<Exporter | ExporterFactory>('exporter', entry.name, { path: at, ...file(config) });
    let exporter: Exporter;
    if (isExporter(value)) {
      if (Object.keys(entry.options).length > 0) {
        throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${prefix(config)}${at}: exporter '${entry.name}' takes no options (got ${Object.keys(entry.options).join(', ')})`);
      }
      exporter = value;
    } else {
      const options = value.optionsSchema ? validateAgainstSchema<Record<string, unknown>>(value.optionsSchema, entry.options, at, file(config)) : entry.options;
      exporter = await create(() => value.create({ options, logger: logger.child({ exporter: entry.name }), metrics, clock, configDir: config.configDir }), config, at, 'exporter', entry);
    }
    out.push({ name: entry.name, exporter });
  }
  warnUnlisted(shared, 'exporter', config.exporters, 'exporters');
  return out;
}

/** The request hooks `hooks:` lists, in order. */
export async function createHooks(shared: Shared): Promise<NamedHook[]> {
  const { catalog, config, logger, metrics, clock } = shared;
  const out: NamedHook[] = [];
  for (const [i, entry] of config.hooks.entries()) {
    const at = `hooks[${i}]`;
    const factory = catalog.get<RequestHookFactory>('hook', entry.name, { path: at, ...file(config) });
    const options = factory.optionsSchema ? validateAgainstSchema<Record<string, unknown>>(factory.optionsSchema, entry.options, at, file(config)) : entry.options;
    const hook = await create(() => factory.create({ options, logger: logger.child({ hook: entry.name }), clock, metrics, configDir: config.configDir }), config, at, 'request hook', entry);
    out.push({ name: entry.name, hook });
  }
  warnUnlisted(shared, 'hook', config.hooks, 'hooks');
  return out;
}

async function create<T>(make: () => T | Promise<T>, config: TesseraConfig, at: string, what: string, entry: NamedEntryConfig): Promise<T> {
  try {
    return await make();
  } catch (err) {
    if (isTesseraError(err)) throw new TesseraError(err.code, `${prefix(config)}${at}: ${what} '${entry.name}': ${err.message}`, { cause: err });
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${prefix(config)}${at}: ${what} '${entry.name}' failed to start: ${errorMessage(err)}`, { cause: err });
  }
}

/** A plugin registered something that the config does not enable: say so once, since it does nothing. */
function warnUnlisted(shared: Shared, kind: PluginKind, listed: readonly NamedEntryConfig[], key: string): void {
  for (const name of shared.catalog.names(kind)) {
    if (listed.some((e) => e.name === name)) continue;
    const owner = shared.catalog.owner(kind, name);
    if (owner === 'the core') continue;
    shared.logger.warn(`${kind} '${name}' (registered by ${owner}) is not enabled: list it under \`${key}:\` to use it`);
  }
}

function file(config: TesseraConfig): { file?: string } {
  return config.configFile ? { file: config.configFile } : {};
}

function prefix(config: TesseraConfig): string {
  return config.configFile ? `${config.configFile}: ` : '';
}
