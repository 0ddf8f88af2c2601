/**
 * Calls of the server's own API. The key (if any) goes in `Authorization: Bearer`; the first 401
 * of the page asks for a key once and retries. Failures throw an ApiError with the API's message.
 */
import { currentKey, promptForKey } from './key.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let asked = false;
/** The automatic prompt while it is open: calls answered 401 meanwhile wait for it too. */
let asking;

/** Whether this page already asked for a key by itself (the "Enter key" button can always ask again). */
export function askedForKey() {
  return asked;
}

async function errorOf(res) {
  let code;
  let message = `HTTP ${res.status}`;
  try {
    const body = await res.json();
    // the core's shape `{error, code}`; OpenAI-style routes answer `{error: {message, code}}`
    if (typeof body?.error === 'string') message = body.error;
    else if (typeof body?.error?.message === 'string') message = body.error.message;
    code = body?.code ?? body?.error?.code;
  } catch {
    // not JSON: the status says it
  }
  return new ApiError(res.status, code, code ? `${message} (${res.status} ${code})` : `${message} (${res.status})`);
}

/**
 * `api('/v1/routing')` → the parsed JSON body; `{ method, body, text: true }` for a text answer,
 * `accept: [503]` for statuses whose body is an answer too (readiness).
 */
export async function api(path, options = {}) {
  const { method = 'GET', body, text = false, accept = [] } = options;
  for (let attempt = 0; ; attempt++) {
    const headers = { accept: text ? 'text/plain' : 'application/json' };
    const key = currentKey();
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'omit',
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.ok || accept.includes(res.status)) return text ? res.text() : res.json();
    const err = await errorOf(res);
    if (res.status === 401 && attempt === 0 && (!asked || asking)) {
      if (!asked) {
        asked = true;
        asking = promptForKey(`The server answered: ${err.message}`).finally(() => (asking = undefined));
      }
      if (await asking) continue;
    }
    throw err;
  }
}
