import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { PluginPackageJson } from '@tessera/core/testing';
import { checkPluginManifest, registerTestPlugins } from '@tessera/core/testing';
import plugin, { OnnxRuntimeBackend } from './index.js';

describe('@tessera/backend-onnxruntime plugin', () => {
  it('should be a Tessera plugin named after the package, with its version and core range', () => {
    expect(checkPluginManifest(plugin, createRequire(import.meta.url)('../package.json') as PluginPackageJson)).toEqual([]);
  });

  it("should register an OnnxRuntimeBackend as 'onnxruntime'", async () => {
    const registered = await registerTestPlugins([plugin]);
    expect(registered.names('backend')).toEqual(['onnxruntime']);
    expect(registered.get('backend', 'onnxruntime')).toBeInstanceOf(OnnxRuntimeBackend);
  });
});
