import type { ConfigFunction, TesseraConfigInput } from './types.js';

/**
 * Types a `tessera.config.ts` (or `.js` with JSDoc) and returns its argument unchanged:
 *
 * ```ts
 * import { defineConfig } from '@tessera/core';
 * export default defineConfig({ models: { affine: { path: './affine.onnx' } } });
 * ```
 */
export function defineConfig<C extends TesseraConfigInput | ConfigFunction>(config: C): C {
  return config;
}
