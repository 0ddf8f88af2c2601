import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { isTesseraPlugin } from '@tessera/core';
import { registerTestPlugins } from '@tessera/core/testing';
import plugin, { OnnxRuntimeBackend } from './index.js';

describe('@tessera/backend-onnxruntime plugin', () => {
  it('should be a Tessera plugin named after the package, with its version and core range', () => {
    const pkg = createRequire(import.meta.url)('../package.json') as { name: string; version: string; peerDependencies: Record<string, string> };
    expect(isTesseraPlugin(plugin)).toBe(true);
    expect(plugin.name).toBe(pkg.name);
    expect(plugin.version).toBe(pkg.version);
    expect(plugin.core).toBe(pkg.peerDependencies['@tessera/core']);
  });

  it("should register an OnnxRuntimeBackend as 'onnxruntime'", async () => {
    const registered = await registerTestPlugins([plugin]);
    expect(registered.names('backend')).toEqual(['onnxruntime']);
    expect(registered.get('backend', 'onnxruntime')).toBeInstanceOf(OnnxRuntimeBackend);
  });
});
