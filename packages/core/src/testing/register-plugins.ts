import 'reflect-metadata';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { CORE_VERSION } from '../internal/core-version.js';
import { Catalog } from '../plugins/catalog.js';
import type { TesseraPlugin } from '../plugins/define-plugin.js';
import type { PluginRegistrations } from '../plugins/loader.js';
import { registerPlugins } from '../plugins/loader.js';
import { silentLogger } from './silent-logger.js';

/** What `registerTestPlugins` leaves: the registrations, and what each kind got registered under. */
export interface TestRegistrations extends PluginRegistrations {
  container: Container;
  /** Names registered per kind (`backend`, `batcher`, `router`, `processor`, `hook`, `exporter`). */
  names(kind: 'backend' | 'batcher' | 'router' | 'processor' | 'hook' | 'exporter'): string[];
  /** The value a plugin registered under a kind and name. */
  get<T>(kind: 'backend' | 'batcher' | 'router' | 'processor' | 'hook' | 'exporter', name: string): T;
}

/**
 * Registers plugins as `tessera serve` does — core range, config section against its schema, error
 * codes, `register(ctx)` — without a server: for a plugin's own tests of its registration and its
 * config schema. `sections` are the config's root sections (`{ tracing: {...} }`).
 */
export async function registerTestPlugins(
  plugins: readonly TesseraPlugin[],
  options: { sections?: Record<string, unknown>; logger?: Logger; configDir?: string; configFile?: string } = {},
): Promise<TestRegistrations> {
  const container = new Container();
  const catalog = new Catalog(container);
  const regs = await registerPlugins(
    plugins.map((plugin) => ({ plugin, source: plugin.name })),
    {
      container,
      catalog,
      logger: options.logger ?? silentLogger(),
      coreVersion: CORE_VERSION,
      configDir: options.configDir ?? process.cwd(),
      ...(options.configFile ? { configFile: options.configFile } : {}),
      sections: options.sections ?? {},
    },
  );
  return { ...regs, container, names: (kind) => catalog.names(kind), get: (kind, name) => catalog.get(kind, name, { path: kind }) };
}
