import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** This package's version, read once from its package.json. */
export const CORE_VERSION: string = (require('../../package.json') as { version: string }).version;
