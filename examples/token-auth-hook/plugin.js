// @ts-check
/**
 * A Tessera plugin with one request hook, `static-token`, in plain ESM JavaScript: bearer-token
 * authentication for every endpoint and protocol, per-model authorization, and an audit log.
 *
 *   hooks:
 *     - hook: static-token
 *       tokens:
 *         - { name: admin, token: '${ADMIN_TOKEN}' }
 *         - { name: ocr-app, token: '${APP_TOKEN}', models: [text-orientation] }
 *       auditFile: ./audit.jsonl
 *
 * A token comes in `Authorization: Bearer <token>` or `x-api-key: <token>`. It is compared with
 * every configured token in constant time (SHA-256 of both, then `crypto.timingSafeEqual`), so
 * neither the comparison nor the list's order tells an attacker how close a guess was. Refusals
 * carry the plugin's own error codes (`ERRORS` below, declared with `defineErrorCodes`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { defineErrorCodes, definePlugin } from '@tessera/core';

/**
 * @typedef {import('@tessera/core').ClockTimer} ClockTimer
 * @typedef {import('@tessera/core').HookRequest} HookRequest
 * @typedef {import('@tessera/core').HookResponse} HookResponse
 * @typedef {import('@tessera/core').InferHookContext} InferHookContext
 * @typedef {import('@tessera/core').JSONSchema} JSONSchema
 * @typedef {import('@tessera/core').RequestHook} RequestHook
 * @typedef {import('@tessera/core').RequestHookContext} RequestHookContext
 * @typedef {import('@tessera/core').RequestHookFactory} RequestHookFactory
 */

/**
 * The plugin's error codes: what a client gets (code, HTTP status) and the README's table. A test
 * keeps the two equal with `checkErrorCodeDocs`.
 */
export const ERRORS = defineErrorCodes({
  EXAMPLE_E_AUTH_MISSING: { status: 401, description: 'The request carries no token: send `Authorization: Bearer <token>` or `x-api-key: <token>`.' },
  EXAMPLE_E_AUTH_INVALID: { status: 401, description: 'The token is not one of the configured tokens (mistyped, revoked or for another server).' },
  EXAMPLE_E_AUTH_FORBIDDEN: { status: 403, description: "The token is valid but may not do this: a model outside its `models` list, or an admin endpoint for a token limited to models." },
});

/** The hook's name under `hooks:`. */
export const HOOK_NAME = 'static-token';

/** Where the hook leaves the request's principal for later hooks (`request.locals`). */
export const PRINCIPAL = Symbol.for('tessera-example-token-auth/principal');

export const DEFAULT_REALM = 'tessera';
export const DEFAULT_AUDIT_FLUSH_MS = 1000;
/** Audit lines buffered before a write happens without waiting for the timer. */
export const AUDIT_BUFFER_LINES = 256;

/** @type {JSONSchema} */
const TOKEN_ENTRY = {
  anyOf: [
    { type: 'string', minLength: 16 },
    {
      type: 'object',
      required: ['token'],
      additionalProperties: false,
      properties: {
        token: { type: 'string', minLength: 16, description: 'The secret, at least 16 characters; usually `${ENV_VAR}`.' },
        name: { type: 'string', minLength: 1, description: 'Who holds it, for the audit log (default `token-<n>`).' },
        models: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, description: 'Models it may use; absent: every model and the admin endpoints.' },
      },
    },
  ],
  description: 'A token, or `{token, name?, models?}`.',
};

/** @type {JSONSchema} */
export const OPTIONS_SCHEMA = {
  type: 'object',
  required: ['tokens'],
  additionalProperties: false,
  properties: {
    tokens: { type: 'array', minItems: 1, items: TOKEN_ENTRY, description: 'The accepted tokens.' },
    publicMetrics: { type: 'boolean', default: false, description: 'Let `/metrics` scrapes through without a token.' },
    realm: { type: 'string', minLength: 1, default: DEFAULT_REALM, description: 'The realm in `WWW-Authenticate`.' },
    auditFile: { type: 'string', minLength: 1, description: 'Append one JSON line per request to this file (relative to the config file). No token is written.' },
    auditFlushIntervalMs: { type: 'integer', minimum: 1, default: DEFAULT_AUDIT_FLUSH_MS, description: 'How long audit lines may wait in memory; always written at shutdown.' },
  },
};

/**
 * Who a token belongs to, as later hooks see it in `request.locals.get(PRINCIPAL)`.
 * @typedef {{ name: string, models: readonly string[] | undefined }} Principal
 */

/** @param {string} text */
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest();

/**
 * The token a request presents, or undefined. `Authorization: Bearer` wins over `x-api-key`.
 * @param {HookRequest} request
 * @returns {string | undefined}
 */
export function presentedToken(request) {
  const auth = request.headers['authorization'];
  const header = Array.isArray(auth) ? auth[0] : auth;
  if (header !== undefined) {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  const key = request.headers['x-api-key'];
  const value = Array.isArray(key) ? key[0] : key;
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The model a metadata route names (`/v2/models/:model/...`), read with the route template, since
 * a hook sees the path and the template but not the route's parameters.
 * @param {HookRequest} request
 */
function routeModel(request) {
  if (!request.route) return undefined;
  const at = request.route.split('/').indexOf(':model');
  if (at < 0) return undefined;
  const segment = request.path.split('/')[at];
  try {
    return segment === undefined ? undefined : decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Buffers JSON lines and appends them to a file; a failing write is logged once and never
 * reaches a request.
 */
class AuditLog {
  #file;
  #logger;
  /** @type {string[]} */
  #lines = [];
  #writing = Promise.resolve();
  #warned = false;

  /**
   * @param {string} file absolute
   * @param {import('pino').Logger} logger
   */
  constructor(file, logger) {
    this.#file = file;
    this.#logger = logger;
  }

  /** @param {Record<string, unknown>} entry */
  add(entry) {
    this.#lines.push(JSON.stringify(entry));
    if (this.#lines.length >= AUDIT_BUFFER_LINES) void this.flush();
  }

  /** Writes what is buffered; writes are chained, so lines keep their order. */
  flush() {
    if (this.#lines.length === 0) return this.#writing;
    const chunk = `${this.#lines.join('\n')}\n`;
    this.#lines = [];
    this.#writing = this.#writing
      .then(() => mkdir(path.dirname(this.#file), { recursive: true }))
      .then(() => appendFile(this.#file, chunk))
      .catch((/** @type {unknown} */ err) => {
        if (this.#warned) return;
        this.#warned = true;
        this.#logger.error({ err, file: this.#file }, 'static-token: cannot write the audit log; audit lines are being dropped');
      });
    return this.#writing;
  }
}

/**
 * The hook for one `hooks:` entry.
 * @implements {RequestHook}
 */
export class StaticTokenHook {
  /** @type {{ digest: Buffer, principal: Principal }[]} */
  #tokens;
  #publicMetrics;
  #realm;
  /** @type {AuditLog | undefined} */
  #audit;
  #clock;
  /** @type {ClockTimer | undefined} */
  #timer;
  #closed = false;

  /** @param {RequestHookContext} ctx */
  constructor(ctx) {
    const o = ctx.options;
    const entries = /** @type {(string | { token: string, name?: string, models?: string[] })[]} */ (o['tokens']);
    this.#tokens = entries.map((entry, i) => {
      const e = typeof entry === 'string' ? { token: entry } : entry;
      return { digest: sha256(e.token), principal: Object.freeze({ name: e.name ?? `token-${i + 1}`, models: e.models ? Object.freeze([...e.models]) : undefined }) };
    });
    this.#publicMetrics = o['publicMetrics'] === true;
    this.#realm = typeof o['realm'] === 'string' ? o['realm'] : DEFAULT_REALM;
    this.#clock = ctx.clock;
    const file = o['auditFile'];
    if (typeof file === 'string') {
      const audit = new AuditLog(path.resolve(ctx.configDir, file), ctx.logger);
      this.#audit = audit;
      const every = typeof o['auditFlushIntervalMs'] === 'number' ? o['auditFlushIntervalMs'] : DEFAULT_AUDIT_FLUSH_MS;
      this.#timer = ctx.clock.setInterval(() => void audit.flush(), every);
      this.#timer.unref?.();
    }
  }

  /**
   * The principal of a token, after comparing it with every configured token (no early exit).
   * @param {string} token
   * @returns {Principal | undefined}
   */
  #lookup(token) {
    const digest = sha256(token);
    /** @type {Principal | undefined} */
    let found;
    for (const t of this.#tokens) if (timingSafeEqual(digest, t.digest) && !found) found = t.principal;
    return found;
  }

  /** @param {string | undefined} error an RFC 6750 error code */
  #challenge(error) {
    return { 'www-authenticate': `Bearer realm="${this.#realm}"${error ? `, error="${error}"` : ''}` };
  }

  /** @param {HookRequest} request */
  onRequest(request) {
    if (request.endpoint === 'health') return;
    if (request.endpoint === 'metrics' && this.#publicMetrics) return;
    const token = presentedToken(request);
    if (token === undefined) {
      throw ERRORS.EXAMPLE_E_AUTH_MISSING('this endpoint needs a token: send `Authorization: Bearer <token>` or `x-api-key: <token>`', { headers: this.#challenge(undefined) });
    }
    const principal = this.#lookup(token);
    if (!principal) throw ERRORS.EXAMPLE_E_AUTH_INVALID('the token is not valid for this server', { headers: this.#challenge('invalid_token') });
    request.locals.set(PRINCIPAL, principal);
    if (!principal.models) return;
    // a token limited to some models may not load, unload or inspect the routing of any
    if (request.endpoint === 'admin') throw ERRORS.EXAMPLE_E_AUTH_FORBIDDEN(`token '${principal.name}' is limited to models and may not use ${request.method} ${request.path}`);
    const model = request.endpoint === 'metadata' ? routeModel(request) : undefined;
    if (model !== undefined) this.#authorize(principal, model);
  }

  /**
   * Per-model authorization of serving requests: the model is known here for every protocol (in
   * the URL for OIP v2, in the body for /v1/predict and the OpenAI API).
   * @param {InferHookContext} context
   */
  preInfer(context) {
    const principal = /** @type {Principal | undefined} */ (context.locals.get(PRINCIPAL));
    if (principal) this.#authorize(principal, context.model);
  }

  /**
   * @param {Principal} principal
   * @param {string} model
   */
  #authorize(principal, model) {
    if (principal.models && !principal.models.includes(model)) {
      throw ERRORS.EXAMPLE_E_AUTH_FORBIDDEN(`token '${principal.name}' may not use model '${model}'`);
    }
  }

  /**
   * One audit line per request (health probes left out), without the token or any header.
   * @param {HookResponse} response
   */
  onResponse(response) {
    if (!this.#audit || this.#closed || response.endpoint === 'health') return;
    const principal = /** @type {Principal | undefined} */ (response.locals.get(PRINCIPAL));
    this.#audit.add({
      time: new Date(this.#clock.now()).toISOString(),
      id: response.id,
      principal: principal?.name ?? null,
      ip: response.ip,
      method: response.method,
      path: response.path,
      endpoint: response.endpoint,
      protocol: response.protocol ?? null,
      model: response.model ?? null,
      version: response.version ?? null,
      status: response.status,
      code: response.code ?? null,
      durationMs: Math.round(response.durationMs * 1000) / 1000,
    });
  }

  /** Writes the buffered audit lines and stops the timer. Idempotent. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) this.#clock.clearTimer(this.#timer);
    await this.#audit?.flush();
  }
}

/** @type {RequestHookFactory} */
export const staticTokenHookFactory = {
  optionsSchema: OPTIONS_SCHEMA,
  create(ctx) {
    const hook = new StaticTokenHook(ctx);
    ctx.logger.info({ tokens: /** @type {unknown[]} */ (ctx.options['tokens']).length, publicMetrics: ctx.options['publicMetrics'] === true, audit: ctx.options['auditFile'] ?? null }, 'static-token hook ready');
    return hook;
  },
};

/** The plugin: what `plugins: [./plugin.js]` loads. Its error codes are checked against every other plugin's. */
export default definePlugin({
  name: 'tessera-example-token-auth',
  version: '1.0.0',
  core: '^0.1.0',
  errorCodes: ERRORS,
  register(ctx) {
    ctx.registerHook(HOOK_NAME, staticTokenHookFactory);
  },
});
