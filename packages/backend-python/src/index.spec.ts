import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { validateAgainstSchema } from '@tessera/core';
import type { PluginPackageJson } from '@tessera/core/testing';
import { checkPluginManifest, registerTestPlugins } from '@tessera/core/testing';
import plugin, { PYTHON_MODEL_CONFIG_SCHEMA, PythonBackend } from './index.js';

describe('@tessera/backend-python plugin', () => {
  it('should be a Tessera plugin named after the package, with its version and core range', () => {
    expect(checkPluginManifest(plugin, createRequire(import.meta.url)('../package.json') as PluginPackageJson)).toEqual([]);
  });

  it("should register a PythonBackend as 'python'", async () => {
    const registered = await registerTestPlugins([plugin]);
    expect(registered.names('backend')).toEqual(['python']);
    expect(registered.get('backend', 'python')).toBeInstanceOf(PythonBackend);
  });

  it('should refuse a misspelt key and accept the documented ones', () => {
    const ok = { python: { interpreter: 'python3', path: ['lib'], env: { A: '1' }, startTimeout: '2m' }, inputs: [{ name: 'X', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'Y', datatype: 'BYTES', shape: [-1], content: 'binary' }], restart: { initialDelayMs: 10 } };
    expect(() => validateAgainstSchema(PYTHON_MODEL_CONFIG_SCHEMA, structuredClone(ok), 'models.m')).not.toThrow();
    expect(() => validateAgainstSchema(PYTHON_MODEL_CONFIG_SCHEMA, { pyhton: {} }, 'models.m')).toThrow(/pyhton/);
    expect(() => validateAgainstSchema(PYTHON_MODEL_CONFIG_SCHEMA, { inputs: [{ name: 'X', datatype: 'TYPE_FP32', shape: [4] }] }, 'models.m')).toThrow();
  });
});
