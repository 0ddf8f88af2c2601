import { describe, expect, it } from 'vitest';
import { resolvePluginUrl } from './loader.js';

describe(resolvePluginUrl, () => {
  it('should refuse a TypeScript plugin with the hint that plugins load as JavaScript (issue 9: Unknown file extension ".ts")', () => {
    for (const spec of ['./plugin.ts', './plugin.mts', '/abs/plugin.cts']) {
      let thrown: { code?: string; message?: string } | undefined;
      try {
        resolvePluginUrl(spec, '/srv');
      } catch (err) {
        thrown = err as { code?: string; message?: string };
      }
      expect(thrown?.code).toBe('TESSERA_E_PLUGIN_INVALID');
      expect(thrown?.message).toMatch(/loaded as JavaScript.*compile it.*list the \.js file/);
    }
  });

  it('should name the file it looked for when a path does not exist', () => {
    expect(() => resolvePluginUrl('./missing.js', '/srv')).toThrow(/\/srv\/missing\.js does not exist/);
  });
});
