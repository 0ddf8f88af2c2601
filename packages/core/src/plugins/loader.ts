import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container } from 'inversify';
import { resolve as resolveSpecifier } from 'import-meta-resolve';
import type { Logger } from 'pino';
import semver from 'semver';
import type { FastifyInstance } from 'fastify';
import { validateAgainstSchema } from '../config/index.js';
import { ERROR_CODES, TesseraError, errorCodeInfo, errorMessage, isTesseraError } from '../errors.js';
import type { Catalog } from './catalog.js';
import type { PluginContext, TesseraPlugin } from './define-plugin.js';
import { isTesseraPlugin } from './define-plugin.js';

/** A plugin as the loader resolved it. */
export interface LoadedPlugin {
  plugin: TesseraPlugin;
  /** What the config named (package or path), or the plugin's name for in-process plugins. */
  source: string;
}

/** What registering plugins leaves behind for the server to use. */
export interface PluginRegistrations {
  routes: ((app: FastifyInstance) => void | Promise<void>)[];
  closeHooks: (() => Promise<void>)[];
  /** Root config keys claimed by plugins. */
  configKeys: Set<string>;
  /** Error codes plugins declared, with the plugin that owns each. */
  errorCodes: Map<string, string>;
  plugins: LoadedPlugin[];
}

export interface PluginHost {
  container: Container;
  /** Where registrations go, by kind and name. */
  catalog: Catalog;
  logger: Logger;
  coreVersion: string;
  configDir: string;
  /** The config file, named in validation errors. */
  configFile?: string;
  sections: Record<string, unknown>;
}

function isPath(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || spec.startsWith('file:');
}

/**
 * Finds a plugin module: paths resolve against the config file's folder; package names resolve
 * from there first (the user's project), then from the core's own location (a global install or
 * this monorepo).
 */
export function resolvePluginUrl(spec: string, configDir: string): string {
  if (/\.[cm]?tsx?$/.test(spec)) {
    throw new TesseraError(
      'TESSERA_E_PLUGIN_INVALID',
      `plugin '${spec}' is TypeScript, but plugins are loaded as JavaScript by Node: compile it (\`tsc\`) and list the .js file, or write it in JavaScript with JSDoc types (see examples/custom-backend/plugin.js)`,
    );
  }
  if (isPath(spec)) {
    const file = spec.startsWith('file:') ? new URL(spec) : path.resolve(configDir, spec);
    if (typeof file === 'string' && !existsSync(file)) {
      throw new TesseraError('TESSERA_E_PLUGIN_NOT_FOUND', `plugin '${spec}' not found: ${file} does not exist (relative paths resolve against ${configDir})`);
    }
    return typeof file === 'string' ? pathToFileURL(file).href : file.href;
  }
  const parents = [pathToFileURL(path.join(configDir, 'noop.js')).href, import.meta.url];
  for (const parent of parents) {
    try {
      return resolveSpecifier(spec, parent);
    } catch {
      // try the next parent
    }
  }
  throw new TesseraError('TESSERA_E_PLUGIN_NOT_FOUND', `plugin '${spec}' is not installed; run \`npm install ${spec}\` in ${configDir}`);
}

/** Imports a plugin module and checks that it default-exports a `definePlugin(...)` value. */
export async function importPlugin(spec: string, configDir: string): Promise<TesseraPlugin> {
  const url = resolvePluginUrl(spec, configDir);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new TesseraError('TESSERA_E_PLUGIN_INVALID', `plugin '${spec}' failed to import: ${errorMessage(err)}`, { cause: err });
  }
  const candidate = mod.default ?? mod.plugin;
  if (!isTesseraPlugin(candidate)) {
    throw new TesseraError(
      'TESSERA_E_PLUGIN_INVALID',
      `plugin '${spec}' does not default-export a Tessera plugin; export \`default definePlugin({...})\` from '@tessera/core'`,
    );
  }
  return candidate;
}

/**
 * Checks each plugin's core range and config section, then calls `register` in order. Bindings go
 * into the container by name; a name bound twice is an error that names both plugins.
 */
export async function registerPlugins(loaded: LoadedPlugin[], host: PluginHost): Promise<PluginRegistrations> {
  const regs: PluginRegistrations = { routes: [], closeHooks: [], configKeys: new Set(), errorCodes: new Map(), plugins: [] };
  for (const { plugin, source } of loaded) {
    if (regs.plugins.some((p) => p.plugin.name === plugin.name)) continue;
    if (!semver.validRange(plugin.core) || !semver.satisfies(host.coreVersion, plugin.core, { includePrerelease: true })) {
      throw new TesseraError(
        'TESSERA_E_PLUGIN_CORE_RANGE',
        `plugin ${plugin.name}@${plugin.version} needs @tessera/core ${plugin.core}, but this is ${host.coreVersion}; install a ${plugin.name} release made for core ${host.coreVersion}`,
      );
    }
    let section: unknown;
    if (plugin.configKey) {
      regs.configKeys.add(plugin.configKey);
      section = host.sections[plugin.configKey];
      if (plugin.configSchema) {
        section ??= {};
        section = validateAgainstSchema(plugin.configSchema, section, plugin.configKey, { code: 'TESSERA_E_PLUGIN_CONFIG', ...(host.configFile ? { file: host.configFile } : {}) });
      }
    }
    registerErrorCodes(plugin, regs.errorCodes);
    const ctx: PluginContext = {
      config: section,
      container: host.container,
      logger: host.logger.child({ plugin: plugin.name }),
      coreVersion: host.coreVersion,
      configDir: host.configDir,
      registerBackend: (name, backend) => host.catalog.bind('backend', name, backend, plugin.name),
      registerBatcher: (name, factory) => host.catalog.bind('batcher', name, factory, plugin.name),
      registerRouter: (name, factory) => host.catalog.bind('router', name, factory, plugin.name),
      registerProcessor: (name, factory) => host.catalog.bind('processor', name, factory, plugin.name),
      registerHook: (name, factory) => host.catalog.bind('hook', name, factory, plugin.name),
      registerExporter: (name, exporter) => host.catalog.bind('exporter', name, exporter, plugin.name),
      addRoutes: (routes) => regs.routes.push(routes),
      onClose: (hook) => regs.closeHooks.push(hook),
    };
    try {
      await plugin.register(ctx);
    } catch (err) {
      if (isTesseraError(err)) throw err;
      throw new TesseraError('TESSERA_E_PLUGIN_REGISTER', `plugin ${plugin.name} failed to register: ${errorMessage(err)}`, { cause: err });
    }
    regs.plugins.push({ plugin, source });
  }
  return regs;
}

/**
 * Records a plugin's declared error codes (made with `defineErrorCodes`): each must be registered
 * with the status it declares, and owned by one plugin only. `TESSERA_E_` is the core's namespace
 * and `@tessera/` plugins'; others pick their own (`ACME_E_...`).
 */
function registerErrorCodes(plugin: TesseraPlugin, owners: Map<string, string>): void {
  const declared = plugin.errorCodes?.codes ?? {};
  for (const [code, info] of Object.entries(declared)) {
    const fail = (why: string): never => {
      throw new TesseraError('TESSERA_E_PLUGIN_INVALID', `plugin ${plugin.name} declares error code '${code}': ${why}`);
    };
    if (code in ERROR_CODES) fail("it is one of the core's codes");
    if (code.startsWith('TESSERA_E_') && !plugin.name.startsWith('@tessera/')) fail('the TESSERA_E_ namespace belongs to Tessera; use a prefix of your own (e.g. ACME_E_...)');
    const registered = errorCodeInfo(code);
    if (!registered || registered.status !== info.status) fail('declare it with defineErrorCodes() from @tessera/core and pass the result as `errorCodes`');
    const owner = owners.get(code);
    if (owner !== undefined && owner !== plugin.name) fail(`plugin ${owner} declares it too`);
    owners.set(code, plugin.name);
  }
}
