import type { Container } from 'inversify';
import type { Logger } from 'pino';
import type { TesseraConfig } from '../config/types.js';
import { ROOT_CORE_KEYS } from '../config/schema.js';
import { closestMatch } from '../config/suggest.js';
import { TesseraError } from '../errors.js';
import { CORE_VERSION } from '../internal/core-version.js';
import type { Catalog } from '../plugins/catalog.js';
import type { TesseraPlugin } from '../plugins/define-plugin.js';
import type { LoadedPlugin, PluginRegistrations } from '../plugins/loader.js';
import { importPlugin, registerPlugins } from '../plugins/loader.js';
import { KNOWN_BACKEND_PACKAGES } from '../registry/model-registry.js';

/**
 * Loads the plugins: those given as values, those the config lists, and the package of every
 * well-known backend a model names (onnxruntime, vllm, …) when it is installed. Then checks that
 * every root key of the config is the core's or claimed by a plugin.
 */
export async function loadPlugins(config: TesseraConfig, given: readonly TesseraPlugin[], container: Container, catalog: Catalog, logger: Logger): Promise<PluginRegistrations> {
  const loaded: LoadedPlugin[] = given.map((plugin) => ({ plugin, source: plugin.name }));
  for (const spec of config.plugins) loaded.push({ plugin: await importPlugin(spec, config.configDir), source: spec });
  const named = new Set(loaded.map((l) => l.plugin.name));
  for (const model of Object.values(config.models)) {
    const pkg = KNOWN_BACKEND_PACKAGES[model.backend];
    if (pkg && !named.has(pkg)) {
      try {
        loaded.push({ plugin: await importPlugin(pkg, config.configDir), source: pkg });
        named.add(pkg);
      } catch (err) {
        if (!(err instanceof TesseraError && err.code === 'TESSERA_E_PLUGIN_NOT_FOUND')) throw err;
        // reported by the registry as an unknown backend, with the install hint
      }
    }
  }
  const registrations = await registerPlugins(loaded, {
    container,
    catalog,
    logger,
    coreVersion: CORE_VERSION,
    configDir: config.configDir,
    ...(config.configFile ? { configFile: config.configFile } : {}),
    sections: config.sections,
  });
  const claimed = registrations.configKeys;
  for (const key of Object.keys(config.sections)) {
    if (!claimed.has(key)) {
      const allowed = [...ROOT_CORE_KEYS.filter((k) => k !== '$schema'), ...claimed];
      const guess = closestMatch(key, allowed);
      const file = config.configFile ? `${config.configFile}: ` : '';
      throw new TesseraError(
        'TESSERA_E_CONFIG_INVALID',
        `${file}${key}: unknown key at the root of the config (allowed: ${allowed.join(', ')})${guess ? ` — did you mean "${guess}"?` : '; a plugin section needs its plugin under `plugins:`'}`,
      );
    }
  }
  return registrations;
}
