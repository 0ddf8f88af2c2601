/**
 * Helpers for the pipeline's specs: a server started in-process (no listener) with test plugins,
 * requests through fastify's `inject()`. Not part of the package's API.
 */
import { pino } from 'pino';
import type { TesseraConfigInput } from '../config/types.js';
import { resolveConfig } from '../config/resolve.js';
import { definePlugin } from '../plugins/define-plugin.js';
import type { PluginContext, TesseraPlugin } from '../plugins/define-plugin.js';
import type { TesseraServerOptions } from '../server.js';
import { TesseraServer } from '../server.js';
import { MemoryStateStore } from '../testing/memory-state-store.js';

/** A plugin made inline for one test. */
export function testPlugin(name: string, register: (ctx: PluginContext) => void | Promise<void>, extra: { errorCodes?: TesseraPlugin['errorCodes'] } = {}): TesseraPlugin {
  return definePlugin({ name, version: '1.0.0', core: '^0.1.0', register, ...extra });
}

/** An answer as the specs read it (bodies read freely). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Answer = { status: number; body: any; headers: Record<string, unknown> };

export interface InProcess {
  server: TesseraServer;
  /** One request through fastify's inject (no socket); JSON bodies parsed. */
  call(method: 'GET' | 'POST', url: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

/** Starts a server in-process with `plugins`, without listening; `close()` drains it. */
export async function startInProcess(config: TesseraConfigInput, plugins: TesseraPlugin[], options: Partial<TesseraServerOptions> = {}): Promise<InProcess> {
  const server = new TesseraServer({
    config: resolveConfig({ ...config, server: { logLevel: 'silent', ...config.server } }, { configDir: '/', env: {} }),
    plugins,
    logger: pino({ level: 'silent' }),
    stateStore: () => new MemoryStateStore(),
    ...options,
  });
  await server.start({ listen: false });
  return {
    server,
    async call(method, url, body, headers = {}) {
      const res = await server.app.inject({ method, url, ...(body !== undefined ? { payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } } : { headers }) });
      let parsed: unknown = res.body;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        // not JSON
      }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
    close: () => server.close(),
  };
}

/** An OIP v2 request body for the fake model (`x` FP32 [rows, 4]). */
export function xRequest(values: number[][], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [values.length, 4], data: values.flat() }], ...extra };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
