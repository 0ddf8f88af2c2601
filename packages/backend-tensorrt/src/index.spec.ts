import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { Backend } from '@tessera/core';
import { isTesseraPlugin } from '@tessera/core';
import { registerTestPlugins } from '@tessera/core/testing';
import plugin, { TENSORRT_MODEL_CONFIG_SCHEMA, TensorRtBackend } from './index.js';

describe('@tessera/backend-tensorrt plugin', () => {
  it('should be a Tessera plugin named after the package, with its version and core range', () => {
    const pkg = createRequire(import.meta.url)('../package.json') as { name: string; version: string; peerDependencies: Record<string, string> };
    expect(isTesseraPlugin(plugin)).toBe(true);
    expect(plugin.name).toBe(pkg.name);
    expect(plugin.version).toBe(pkg.version);
    expect(plugin.core).toBe(pkg.peerDependencies['@tessera/core']);
  });

  it("should register a TensorRtBackend as 'tensorrt', with its schema and a build step", async () => {
    const registered = await registerTestPlugins([plugin]);
    expect(registered.names('backend')).toEqual(['tensorrt']);
    const backend = registered.get<Backend>('backend', 'tensorrt');
    expect(backend).toBeInstanceOf(TensorRtBackend);
    expect(backend.modelConfigSchema).toBe(TENSORRT_MODEL_CONFIG_SCHEMA);
    expect(typeof backend.build).toBe('function');
  });
});
