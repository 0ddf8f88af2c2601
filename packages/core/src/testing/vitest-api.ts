import type * as VitestApi from 'vitest';

let vitest: typeof VitestApi | undefined;
let vitestError: unknown;
try {
  vitest = await import('vitest');
} catch (err) {
  vitestError = err;
}

/**
 * vitest, for the conformance suites. It is an optional peer dependency of `@tessera/core`, imported
 * lazily so that the rest of `@tessera/core/testing` works without it.
 */
export function requireVitest(suite: string): typeof VitestApi {
  if (!vitest) throw new Error(`${suite} needs vitest (an optional peer dependency of @tessera/core): ${String(vitestError)}`);
  return vitest;
}

/** vitest when installed (for optional cleanup hooks), else undefined. */
export function optionalVitest(): typeof VitestApi | undefined {
  return vitest;
}
