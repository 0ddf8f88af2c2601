/**
 * The token-auth-hook example's hook, in process: authentication on `onRequest`, per-model
 * authorization, the audit log with a FakeClock, the options, and the README's error-code table
 * against the declared codes (example.int.spec.ts then runs it in the CLI over every protocol).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { EndpointKind, HookRequest, HookResponse, InferHookContext, RequestHook, RequestHookContext } from '@tessera/core';
import { isTesseraError, validateAgainstSchema } from '@tessera/core';
import { FakeClock, InMemoryMetrics, checkErrorCodeDocs, registerTestPlugins, silentLogger } from '@tessera/core/testing';
import plugin, { ERRORS, HOOK_NAME, OPTIONS_SCHEMA, PRINCIPAL, presentedToken, staticTokenHookFactory } from './plugin.js';

const ADMIN = 'admin-token-0123456789';
const CLIENT = 'client-token-0123456789';
const TOKENS = [
  { name: 'admin', token: ADMIN },
  { name: 'app', token: CLIENT, models: ['cls'] },
];

function request(endpoint: EndpointKind, headers: Record<string, string> = {}, where: { path?: string; route?: string; method?: string } = {}): HookRequest {
  const route = where.route ?? (endpoint === 'infer' ? '/v2/models/:model/infer' : '/v2/models/:model');
  return { id: 'req-1', method: where.method ?? 'GET', path: where.path ?? '/v2/models/cls', route, endpoint, headers, params: {}, ip: '127.0.0.1', locals: new Map(), setResponseHeader: () => {} };
}

function infer(req: HookRequest, model: string): InferHookContext {
  return { ...req, protocol: 'v2', kind: 'tensor', model, version: '1' };
}

function response(req: HookRequest, status: number, code?: string): HookResponse {
  return { ...req, protocol: 'v2', model: 'cls', version: '1', status, code, durationMs: 1.25 };
}

function context(options: Record<string, unknown>, parts: Partial<RequestHookContext> = {}): RequestHookContext {
  return { options: { tokens: TOKENS, ...options }, logger: silentLogger(), clock: new FakeClock(), metrics: new InMemoryMetrics(), configDir: process.cwd(), ...parts };
}

async function hook(options: Record<string, unknown> = {}, parts: Partial<RequestHookContext> = {}): Promise<RequestHook> {
  return staticTokenHookFactory.create(context(options, parts));
}

function refusal(fn: () => unknown): { code: string; status: number; headers: Record<string, string> | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    if (!isTesseraError(err)) throw err;
    return { code: err.code, status: err.status, headers: err.headers, message: err.message };
  }
  throw new Error('expected a refusal');
}

describe(HOOK_NAME, () => {
  describe('.onRequest', () => {
    it('should let health probes through without a token, and metrics scrapes only with publicMetrics', async () => {
      const strict = await hook();
      expect(() => strict.onRequest!(request('health'))).not.toThrow();
      expect(refusal(() => strict.onRequest!(request('metrics'))).code).toBe('EXAMPLE_E_AUTH_MISSING');
      const open = await hook({ publicMetrics: true });
      expect(() => open.onRequest!(request('metrics'))).not.toThrow();
    });

    it('should refuse a request without a token with 401 and a Bearer challenge, on every other endpoint', async () => {
      const h = await hook({ realm: 'ocr' });
      for (const endpoint of ['infer', 'metadata', 'admin', 'unknown'] as const) {
        expect(refusal(() => h.onRequest!(request(endpoint)))).toMatchObject({ code: 'EXAMPLE_E_AUTH_MISSING', status: 401, headers: { 'www-authenticate': 'Bearer realm="ocr"' } });
      }
      // another scheme is no token either
      expect(refusal(() => h.onRequest!(request('infer', { authorization: `Basic ${ADMIN}` }))).code).toBe('EXAMPLE_E_AUTH_MISSING');
    });

    it('should refuse an unknown token with 401 invalid_token, whatever its length', async () => {
      const h = await hook();
      for (const token of ['x', ADMIN.slice(0, -1), `${ADMIN}x`, ADMIN.toUpperCase(), 'é'.repeat(300)]) {
        expect(refusal(() => h.onRequest!(request('infer', { authorization: `Bearer ${token}` })))).toMatchObject({
          code: 'EXAMPLE_E_AUTH_INVALID',
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="tessera", error="invalid_token"' },
        });
      }
    });

    it('should take the token from Authorization: Bearer (any case) or x-api-key, and leave the principal in locals', async () => {
      const h = await hook();
      for (const headers of [{ authorization: `Bearer ${ADMIN}` }, { authorization: `bearer  ${ADMIN}` }, { 'x-api-key': ADMIN }] as Record<string, string>[]) {
        const req = request('infer', headers);
        expect(() => h.onRequest!(req)).not.toThrow();
        expect(req.locals.get(PRINCIPAL)).toEqual({ name: 'admin', models: undefined });
      }
      expect(presentedToken(request('infer', { authorization: 'Bearer a', 'x-api-key': 'b' }))).toBe('a');
    });

    it('should accept plain strings as tokens, named by their place', async () => {
      const h = await hook({ tokens: [ADMIN, CLIENT] });
      const req = request('infer', { 'x-api-key': CLIENT });
      await h.onRequest!(req);
      expect(req.locals.get(PRINCIPAL)).toEqual({ name: 'token-2', models: undefined });
    });

    it('should keep a token limited to models off the admin endpoints and off the metadata of other models', async () => {
      const h = await hook();
      const auth = { authorization: `Bearer ${CLIENT}` };
      expect(refusal(() => h.onRequest!(request('admin', auth, { method: 'POST', path: '/v2/repository/index', route: '/v2/repository/index' })))).toMatchObject({
        code: 'EXAMPLE_E_AUTH_FORBIDDEN',
        status: 403,
        message: "token 'app' is limited to models and may not use POST /v2/repository/index",
      });
      expect(refusal(() => h.onRequest!(request('metadata', auth, { path: '/v2/models/det/versions/1', route: '/v2/models/:model/versions/:version' })))).toMatchObject({ code: 'EXAMPLE_E_AUTH_FORBIDDEN' });
      expect(() => h.onRequest!(request('metadata', auth, { path: '/v2/models/cls/ready', route: '/v2/models/:model/ready' }))).not.toThrow();
      // server metadata names no model
      expect(() => h.onRequest!(request('metadata', auth, { path: '/v2', route: '/v2' }))).not.toThrow();
      // the unlimited token may
      expect(() => h.onRequest!(request('admin', { authorization: `Bearer ${ADMIN}` }, { path: '/v2/repository/index', route: '/v2/repository/index' }))).not.toThrow();
    });
  });

  describe('.preInfer', () => {
    it('should let a token use only the models it lists', async () => {
      const h = await hook();
      const app = request('infer', { 'x-api-key': CLIENT });
      await h.onRequest!(app);
      expect(() => h.preInfer!(infer(app, 'cls'))).not.toThrow();
      expect(refusal(() => h.preInfer!(infer(app, 'det')))).toMatchObject({ code: 'EXAMPLE_E_AUTH_FORBIDDEN', status: 403, message: "token 'app' may not use model 'det'" });
      const admin = request('infer', { 'x-api-key': ADMIN });
      await h.onRequest!(admin);
      expect(() => h.preInfer!(infer(admin, 'det'))).not.toThrow();
    });
  });

  describe('.onResponse (audit)', () => {
    async function auditHook(parts: Partial<RequestHookContext> = {}) {
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-audit-'));
      const clock = new FakeClock(Date.UTC(2026, 11, 24, 12, 0, 0));
      const h = await hook({ auditFile: 'logs/audit.jsonl', auditFlushIntervalMs: 500 }, { configDir: dir, clock, ...parts });
      const file = path.join(dir, 'logs/audit.jsonl');
      const lines = async (): Promise<any[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      return { h, clock, file, dir, lines };
    }

    it('should buffer one line per request, write it on the interval and at close, without the token', async () => {
      const { h, clock, file, lines } = await auditHook();
      const req = request('infer', { authorization: `Bearer ${CLIENT}` }, { method: 'POST', path: '/v2/models/cls/infer' });
      await h.onRequest!(req);
      await h.onResponse!(response(req, 200));
      await h.onResponse!(response(request('health', {}, { path: '/v2/health/ready', route: '/v2/health/ready' }), 200));
      expect(await lines()).toEqual([]);
      await clock.advance(500);
      await vi.waitFor(async () => expect(await lines()).toHaveLength(1));
      expect((await lines())[0]).toEqual({
        time: '2026-12-24T12:00:00.000Z',
        id: 'req-1',
        principal: 'app',
        ip: '127.0.0.1',
        method: 'POST',
        path: '/v2/models/cls/infer',
        endpoint: 'infer',
        protocol: 'v2',
        model: 'cls',
        version: '1',
        status: 200,
        code: null,
        durationMs: 1.25,
      });
      await h.onResponse!(response(request('infer'), 401, 'EXAMPLE_E_AUTH_MISSING'));
      await h.close!();
      await h.close!();
      const all = await lines();
      expect(all.map((l) => [l.principal, l.status, l.code])).toEqual([
        ['app', 200, null],
        [null, 401, 'EXAMPLE_E_AUTH_MISSING'],
      ]);
      expect(await readFile(file, 'utf8')).not.toContain(CLIENT);
      // closed: no more lines
      await h.onResponse!(response(request('infer'), 200));
      await clock.advance(5000);
      expect(await lines()).toHaveLength(2);
    });

    it('should log a failing audit file once and never throw into the request', async () => {
      const error = vi.fn();
      const logger = Object.assign(silentLogger(), { error });
      const dir = await mkdtemp(path.join(tmpdir(), 'tessera-audit-'));
      // the audit file's folder is a file: every write fails
      await writeFile(path.join(dir, 'logs'), 'not a folder');
      const clock = new FakeClock();
      const h = await hook({ auditFile: 'logs/audit.jsonl', auditFlushIntervalMs: 100 }, { configDir: dir, logger, clock });
      for (let i = 0; i < 3; i++) {
        await expect(Promise.resolve(h.onResponse!(response(request('infer'), 200)))).resolves.toBeUndefined();
        await clock.advance(100);
      }
      await h.onResponse!(response(request('infer'), 200));
      await expect(h.close!()).resolves.toBeUndefined();
      // four failed writes, one log line
      expect(error).toHaveBeenCalledTimes(1);
      expect(error.mock.calls[0]![1]).toContain('cannot write the audit log');
    });
  });

  describe('options', () => {
    it('should validate as the server does: defaults, short tokens and typos refused with their path', () => {
      expect(validateAgainstSchema(OPTIONS_SCHEMA, { tokens: [ADMIN] }, 'hooks[0]')).toEqual({ tokens: [ADMIN], publicMetrics: false, realm: 'tessera', auditFlushIntervalMs: 1000 });
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { tokens: ['short'] }, 'hooks[0]')).toThrow(/hooks\[0\]\.tokens\[0\]/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { tokens: [{ token: ADMIN, model: ['cls'] }] }, 'hooks[0]')).toThrow(/hooks\[0\]\.tokens\[0\]/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, { tokens: [] }, 'hooks[0]')).toThrow(/hooks\[0\]\.tokens/);
      expect(() => validateAgainstSchema(OPTIONS_SCHEMA, {}, 'hooks[0]')).toThrow(/tokens/);
    });
  });

  describe('error codes', () => {
    it('should document every declared code with its status in the README', async () => {
      const readme = await readFile(path.join(import.meta.dirname, 'README.md'), 'utf8');
      expect(checkErrorCodeDocs(ERRORS.codes, readme)).toEqual([]);
    });

    it('should declare them with the plugin, and register the hook', async () => {
      expect(plugin.errorCodes).toBe(ERRORS);
      expect(ERRORS.EXAMPLE_E_AUTH_FORBIDDEN('x').status).toBe(403);
      const regs = await registerTestPlugins([plugin]);
      expect(regs.names('hook')).toEqual([HOOK_NAME]);
    });
  });
});
