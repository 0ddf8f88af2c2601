import { describe, expect, it } from 'vitest';
import { definePlugin } from '../plugins/define-plugin.js';
import { checkPluginManifest } from './plugin-manifest.js';

const pkg = { name: '@acme/backend-foo', version: '1.2.3', peerDependencies: { '@tessera/core': '^0.1.0' } };
const plugin = definePlugin({ name: '@acme/backend-foo', version: '1.2.3', core: '^0.1.0', register() {} });

describe('checkPluginManifest', () => {
  it('should find nothing when the plugin repeats its package.json', () => {
    expect(checkPluginManifest(plugin, pkg)).toEqual([]);
  });

  it('should name each field that differs, and a value that is not a plugin', () => {
    expect(checkPluginManifest(plugin, { ...pkg, name: '@acme/other', version: '2.0.0', peerDependencies: { '@tessera/core': '^0.2.0' } })).toEqual([
      'name is "@acme/backend-foo", the package is "@acme/other"',
      'version is "1.2.3", the package\'s is "2.0.0"',
      'core is "^0.1.0", the package\'s @tessera/core peer range is "^0.2.0"',
    ]);
    expect(checkPluginManifest({ name: '@acme/backend-foo' }, pkg)).toEqual(['not a Tessera plugin (definePlugin)']);
  });
});
