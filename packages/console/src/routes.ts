import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { IndexRow, PageData } from './page.js';
import { renderPage } from './page.js';
import { SECURITY_HEADERS } from './security.js';

/** The package's folder: `src/` and `dist/` both sit one level below it. */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The hand-written page: HTML template, CSS and the page's JS modules. */
export const PUBLIC_DIR = path.join(PACKAGE_DIR, 'public');
/** The compiled browser modules of `src/browser/` (the metrics maths the unit tests check). */
export const BROWSER_LIB_DIR = path.join(PACKAGE_DIR, 'dist', 'browser');
/** uPlot's own distribution files, from the installed package. */
export const UPLOT_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'] as const;
/** Route options of the page (the `onRoute` hook below marks the others). */
const UI_ROUTE = { config: { endpoint: 'ui' as const } };

export interface ConsoleRouteOptions {
  /** Where the console is served, e.g. `/console` (no trailing slash). */
  path: string;
  /** Milliseconds between the page's refreshes. */
  refreshMs: number;
}

/** The request headers that carry a credential: forwarded to the API call that lists the models. */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key'] as const;

/**
 * The model list for the server-rendered page, read through the server's own API
 * (`GET /v2/repository/index`) with the page request's credential and address, so that it shows
 * exactly what that request may see: every model with auth off, nothing (and the API's refusal)
 * for a browser that sent no key.
 */
async function modelsFor(request: FastifyRequest): Promise<PageData['models']> {
  const headers: Record<string, string> = {};
  for (const h of CREDENTIAL_HEADERS) {
    const value = request.headers[h];
    if (typeof value === 'string') headers[h] = value;
  }
  try {
    const res = await request.server.inject({ method: 'GET', url: '/v2/repository/index', headers, remoteAddress: request.ip });
    if (res.statusCode === 200) return { rows: (res.json<{ models?: IndexRow[] }>().models ?? []).filter((r) => typeof r?.name === 'string') };
    let message = `HTTP ${res.statusCode}`;
    try {
      message = res.json<{ error?: string }>().error ?? message;
    } catch {
      // not JSON: the status says it
    }
    return { refused: message };
  } catch (err) {
    request.log.warn({ err }, 'console: the model list could not be read for the page');
    return { refused: 'the model list could not be read' };
  }
}

/**
 * The console's routes, in an encapsulated scope: the page at `path` (and `path/`), its assets
 * under `path/`, uPlot's files under `path/vendor/`, the compiled browser modules under `path/lib/`.
 * Every route there is of endpoint kind `ui` (open: no data in it) and every answer carries the
 * security headers.
 */
export async function registerConsoleRoutes(app: FastifyInstance, options: ConsoleRouteOptions): Promise<void> {
  const base = options.path;
  const template = readFileSync(path.join(PUBLIC_DIR, 'index.html'), 'utf8');
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route: RouteOptions) => {
      // @fastify/static's routes take no `config` option: mark every route of this scope here
      route.config = { ...route.config, endpoint: 'ui' };
    });
    scope.addHook('onSend', async (_request, reply, payload) => {
      void reply.headers(SECURITY_HEADERS);
      return payload;
    });

    await scope.register(fastifyStatic, {
      root: PUBLIC_DIR,
      prefix: `${base}/`,
      // one route per file found now, none for paths that name no file; the template is rendered below
      wildcard: false,
      index: false,
      globIgnore: ['index.html', '**/.*'],
    });
    await scope.register(fastifyStatic, {
      root: BROWSER_LIB_DIR,
      prefix: `${base}/lib/`,
      wildcard: false,
      index: false,
      decorateReply: false,
      globIgnore: ['**/*.map', '**/*.d.ts', '**/*.spec.*', '**/.*'],
    });
    for (const file of UPLOT_FILES) {
      scope.get(`${base}/vendor/${file}`, async (_request, reply: FastifyReply) => reply.sendFile(file, UPLOT_DIR));
    }

    const page = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const html = renderPage(template, { base, refreshMs: options.refreshMs, models: await modelsFor(request) });
      return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
    };
    scope.get(base, UI_ROUTE, page);
    scope.get(`${base}/`, UI_ROUTE, page);
  });
}
