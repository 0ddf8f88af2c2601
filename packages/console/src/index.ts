/**
 * `@tessera/console`: a web console at `/console` — models and versions with their state, live
 * request rate, latency, batch size and queue depth per model (from `/metrics`), rollouts with
 * their operator actions (`/v1/routing`), and a "Try it" panel (`/v1/predict`). The page is static
 * files shipped in this package (uPlot from its own package, no CDN) and reads only the server's
 * public API, with the key its user enters; the console can do nothing the API does not allow.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import type { JSONSchema } from '@tessera/core';
import { registerConsoleRoutes } from './routes.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export { escapeHtml, modelRows, renderPage } from './page.js';
export type { IndexRow, PageData } from './page.js';
export { CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from './security.js';
export type { ConsoleRouteOptions } from './routes.js';
export { registerConsoleRoutes } from './routes.js';

/** The `console:` section. */
export interface ConsoleConfig {
  /** Where the console is served (default `/console`). */
  path?: string;
  /** Milliseconds between the page's refreshes of metrics, models and rollouts (default 2000). */
  refreshMs?: number;
}

export const DEFAULT_CONSOLE_PATH = '/console';
export const DEFAULT_REFRESH_MS = 2000;

export const CONSOLE_CONFIG_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'The web console (@tessera/console).',
  properties: {
    path: {
      type: 'string',
      // one or more segments, no trailing slash, no characters that need escaping in a URL or HTML
      pattern: '^(/[A-Za-z0-9._~-]+)+$',
      default: DEFAULT_CONSOLE_PATH,
      description: 'Where the console is served, e.g. `/console` or `/ops/console`.',
      examples: ['/console'],
    },
    refreshMs: {
      type: 'integer',
      minimum: 500,
      maximum: 60000,
      default: DEFAULT_REFRESH_MS,
      description: 'Milliseconds between the page\'s scrapes of /metrics and reads of models and rollouts.',
      examples: [2000],
    },
  },
};

/** The plugin: serves the console under `console.path`. */
const plugin = definePlugin<ConsoleConfig | undefined>({
  name: '@tessera/console',
  version,
  core: '^0.1.0',
  configKey: 'console',
  configSchema: CONSOLE_CONFIG_SCHEMA,
  register(ctx) {
    const path = ctx.config?.path ?? DEFAULT_CONSOLE_PATH;
    const refreshMs = ctx.config?.refreshMs ?? DEFAULT_REFRESH_MS;
    ctx.addRoutes((app) => registerConsoleRoutes(app, { path, refreshMs }));
    ctx.logger.info({ path }, `console: serving the web console at ${path}`);
  },
});

export default plugin;
