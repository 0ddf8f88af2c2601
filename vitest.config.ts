import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.spec.ts', 'packages/*/test/**/*.spec.ts', 'test/**/*.spec.ts', 'examples/**/*.spec.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // the JSON report feeds .ci/run's `N passed, N failed` line
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
