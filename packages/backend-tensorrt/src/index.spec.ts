import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { Backend } from '@tessera/core';
import type { PluginPackageJson } from '@tessera/core/testing';
import { checkPluginManifest, registerTestPlugins } from '@tessera/core/testing';
import plugin, { TENSORRT_MODEL_CONFIG_SCHEMA, TensorRtBackend } from './index.js';

describe('@tessera/backend-tensorrt plugin', () => {
  it('should be a Tessera plugin named after the package, with its version and core range', () => {
    expect(checkPluginManifest(plugin, createRequire(import.meta.url)('../package.json') as PluginPackageJson)).toEqual([]);
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
