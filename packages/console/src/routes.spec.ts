import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerTestPlugins } from '@tessera/core/testing';
import plugin, { CONTENT_SECURITY_POLICY, escapeHtml } from './index.js';
import { registerConsoleRoutes } from './routes.js';

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A bare fastify with the console's routes, every route's endpoint kind recorded, and a stand-in repository index answering `index`. */
async function serve(index?: { status: number; body: unknown }, base = '/console'): Promise<{ app: FastifyInstance; kinds: Map<string, unknown> }> {
  const server = Fastify();
  const kinds = new Map<string, unknown>();
  server.addHook('onRoute', (route) => {
    // the root's onRoute hooks run for routes of child scopes too, after the scope's own hook
    queueMicrotask(() => {
      const config: { endpoint?: unknown } = route.config ?? {};
      kinds.set(`${String(route.method)} ${route.url}`, config.endpoint);
    });
  });
  if (index) server.get('/v2/repository/index', async (_request, reply) => reply.code(index.status).send(index.body));
  await registerConsoleRoutes(server, { path: base, refreshMs: 1500 });
  await server.ready();
  app = server;
  return { app: server, kinds };
}

describe('registerConsoleRoutes', () => {
  it('should serve the page, its assets, the metrics module and uPlot, each with the security headers', async () => {
    const { app } = await serve({ status: 200, body: { models: [] } });
    for (const [url, type] of [
      ['/console', 'text/html'],
      ['/console/', 'text/html'],
      ['/console/console.css', 'text/css'],
      ['/console/js/main.js', 'javascript'],
      ['/console/lib/metrics.js', 'javascript'],
      ['/console/vendor/uPlot.iife.min.js', 'javascript'],
      ['/console/vendor/uPlot.min.css', 'text/css'],
    ] as const) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toContain(type);
      expect(res.headers['content-security-policy'], url).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
    }
    expect((await app.inject({ method: 'GET', url: '/console/vendor/uPlot.iife.min.js' })).body).toContain('uPlot');
  });

  it('should mark every route as endpoint kind ui', async () => {
    const { kinds } = await serve();
    await new Promise((r) => setTimeout(r, 0));
    const consoleRoutes = [...kinds].filter(([route]) => route.includes('/console'));
    expect(consoleRoutes.length).toBeGreaterThan(6);
    for (const [route, kind] of consoleRoutes) expect(kind, route).toBe('ui');
  });

  it('should not serve the raw template, source maps, type declarations or other uPlot files', async () => {
    const { app } = await serve();
    for (const url of ['/console/index.html', '/console/lib/metrics.js.map', '/console/lib/metrics.d.ts', '/console/vendor/uPlot.esm.js', '/console/../package.json']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
  });

  it('should render the model list, escaped, when the index answers', async () => {
    const { app } = await serve({ status: 200, body: { models: [{ name: '<img src=x onerror=alert(1)>', version: '1', state: 'READY' }, { name: 'b"q', version: '2', state: 'UNAVAILABLE', reason: 'a & b' }] } });
    const html = (await app.inject({ method: 'GET', url: '/console' })).body;
    expect(html).toContain(`<td>${escapeHtml('<img src=x onerror=alert(1)>')}</td>`);
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('data-model="b&quot;q"');
    expect(html).toContain('<td>a &amp; b</td>');
    expect(html).toContain('data-refresh-ms="1500"');
    expect(html).toContain('href="/console/console.css"');
    expect(html).not.toContain('{{');
  });

  it("should say to enable JavaScript and enter a key when the index refuses, with the API's message", async () => {
    const { app } = await serve({ status: 401, body: { error: 'a credential is required <here>', code: 'TESSERA_E_AUTH_REQUIRED' } });
    const html = (await app.inject({ method: 'GET', url: '/console' })).body;
    expect(html).toContain('enable JavaScript and enter a key');
    expect(html).toContain('a credential is required &lt;here&gt;');
  });

  it('should serve under another path', async () => {
    const { app } = await serve({ status: 200, body: { models: [] } }, '/ops/console');
    const res = await app.inject({ method: 'GET', url: '/ops/console' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('src="/ops/console/js/main.js"');
    expect((await app.inject({ method: 'GET', url: '/console' })).statusCode).toBe(404);
  });
});

describe('the plugin', () => {
  it('should register routes and validate its section', async () => {
    const regs = await registerTestPlugins([plugin], { sections: { console: { path: '/ops' } } });
    expect(regs.routes).toHaveLength(1);
    await expect(registerTestPlugins([plugin], { sections: { console: { path: 'no-slash/' } } })).rejects.toThrow(/console/);
    await expect(registerTestPlugins([plugin], { sections: { console: { refreshMs: 10 } } })).rejects.toThrow(/refreshMs/);
  });
});
