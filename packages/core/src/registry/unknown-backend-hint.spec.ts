import { describe, expect, it } from 'vitest';
import { KNOWN_BACKEND_PACKAGES, unknownBackendHint } from './model-registry.js';

// Every well-known backend is a workspace package of this repository, so no CLI test can meet one
// that is not installed: the hint is checked here, the unknown-backend path in test/integration/cli.int.spec.ts.
describe('unknownBackendHint', () => {
  it('should name the package to install for each well-known backend', () => {
    for (const [backend, pkg] of Object.entries(KNOWN_BACKEND_PACKAGES)) {
      expect(unknownBackendHint(backend)).toBe(`install ${pkg} (npm install ${pkg}) and list it under \`plugins:\``);
    }
    expect(KNOWN_BACKEND_PACKAGES['tensorrt']).toBe('@tessera/backend-tensorrt');
  });

  it('should say to add the plugin for a backend nobody provides', () => {
    expect(unknownBackendHint('no-such-backend')).toBe('add the plugin that provides it to `plugins:`');
  });
});
