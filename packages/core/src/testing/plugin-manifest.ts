import { isTesseraPlugin } from '../plugins/define-plugin.js';

/** The fields of a plugin package's package.json that its plugin object must repeat. */
export interface PluginPackageJson {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

/**
 * Checks a plugin against its package.json — a Tessera plugin, named after the package, with its
 * version and its `@tessera/core` peer range as `core` — and returns the problems (empty when they
 * agree): `expect(checkPluginManifest(plugin, pkg)).toEqual([])` in each plugin's own tests.
 */
export function checkPluginManifest(plugin: unknown, pkg: PluginPackageJson): string[] {
  if (!isTesseraPlugin(plugin)) return ['not a Tessera plugin (definePlugin)'];
  const problems: string[] = [];
  if (plugin.name !== pkg.name) problems.push(`name is ${JSON.stringify(plugin.name)}, the package is ${JSON.stringify(pkg.name)}`);
  if (plugin.version !== pkg.version) problems.push(`version is ${JSON.stringify(plugin.version)}, the package's is ${JSON.stringify(pkg.version)}`);
  const range = pkg.peerDependencies?.['@tessera/core'];
  if (plugin.core !== range) problems.push(`core is ${JSON.stringify(plugin.core)}, the package's @tessera/core peer range is ${JSON.stringify(range)}`);
  return problems;
}
