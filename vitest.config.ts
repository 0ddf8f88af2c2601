import { configDefaults, defineConfig } from 'vitest/config';

// Unit tests are `*.spec.ts`: pure code, in-process ONNX Runtime sessions and worker threads.
// Integration tests are `*.int.spec.ts`: they listen on a port, spawn a process or run the CLI.
const SPEC_FOLDERS = ['packages/*/src/**/', 'packages/*/test/**/', 'test/**/', 'examples/**/'];

export default defineConfig({
  test: {
    pool: 'forks',
    // every test sizes the server as on 2 cores (instances: auto, server.workers: auto, threads),
    // whatever machine runs it, so that a 64-core CI runner runs the same servers as a laptop; the
    // tests of the sizing rules set TESSERA_CPUS themselves. An operator's own TESSERA_CPUS wins.
    env: { TESSERA_CPUS: process.env['TESSERA_CPUS'] ?? '2' },
    // the JSON report (one file for both projects) feeds .ci/run's `N passed, N failed` line
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: SPEC_FOLDERS.map((folder) => `${folder}*.spec.ts`),
          exclude: [...configDefaults.exclude, '**/*.int.spec.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: SPEC_FOLDERS.map((folder) => `${folder}*.int.spec.ts`),
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
