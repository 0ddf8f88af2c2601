import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { Backend, PluginContext } from '@tessera/core';
import { isTesseraPlugin } from '@tessera/core';
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
    const registered: [string, Backend][] = [];
    await plugin.register({ registerBackend: (name: string, backend: Backend) => void registered.push([name, backend]) } as unknown as PluginContext);
    expect(registered).toHaveLength(1);
    expect(registered[0]![0]).toBe('onnxruntime');
    expect(registered[0]![1]).toBeInstanceOf(OnnxRuntimeBackend);
  });
});
