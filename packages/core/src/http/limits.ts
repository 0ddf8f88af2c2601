import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LimitsConfig } from '../config/types.js';
import { TesseraError } from '../errors.js';

/** `server.limits` as the schema defaults it (a spec keeps the two equal). */
export const DEFAULT_LIMITS: Readonly<LimitsConfig> = Object.freeze({
  maxTensorElements: 2 ** 27,
  maxRequestElements: 2 ** 28,
  maxJsonDepth: 64,
  maxHeaderSize: 16 * 1024,
  requestTimeoutMs: 300_000,
  maxMessages: 4096,
  maxChoices: 128,
});

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses JSON text that nests arrays and objects deeper than `maxDepth`, by one pass over the
 * bytes (brackets inside strings do not count) before anything parses it: `JSON.parse` itself
 * copes with deep nesting, but everything after it that walks the value recursively (flattening
 * tensor data, schema checks, `JSON.stringify` when a body is forwarded, error messages) would
 * overflow the stack and answer 500. Malformed text is left for the parser to report.
 */
export function checkJsonDepth(text: Uint8Array, maxDepth: number, what = 'the JSON body'): void {
  // a text shorter than the limit cannot nest deeper than it
  if (text.length <= maxDepth) return;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === QUOTE) {
      // skip the string with native searches (a base64 image is one string of megabytes): its end
      // is the next quote not escaped by an odd run of backslashes; unterminated, JSON.parse refuses it
      let end = text.indexOf(QUOTE, i + 1);
      while (end !== -1 && escaped(text, end, i)) end = text.indexOf(QUOTE, end + 1);
      if (end === -1) return;
      i = end;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) {
        throw new TesseraError(
          'TESSERA_E_REQUEST_TOO_DEEP',
          `${what} nests arrays and objects deeper than server.limits.maxJsonDepth (${maxDepth}) at byte ${i}; send flat tensor data (row-major) or raise the limit`,
        );
      }
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
}

/** Parses JSON text of a request (fastify's parser: prototype-poisoning checks included). */
/** Whether the quote at `at` is escaped: preceded by an odd number of backslashes (after `from`, the string's opening quote). */
function escaped(text: Uint8Array, at: number, from: number): boolean {
  let n = 0;
  for (let k = at - 1; k > from && text[k] === BACKSLASH; k--) n++;
  return n % 2 === 1;
}

export type JsonBodyParser = (request: FastifyRequest, body: Buffer, what?: string) => unknown;

type FastifyJsonParser = (request: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => void;

/**
 * The one JSON parser of every request body (and of binary requests' JSON headers): the bytes
 * must be UTF-8 (RFC 8259; a lone byte would otherwise become U+FFFD in a BYTES tensor) and nest
 * within `maxJsonDepth`; then fastify's own parser (secure-json-parse) refuses `__proto__` and
 * `constructor.prototype` keys (the server's `onProtoPoisoning`/`onConstructorPoisoning`, `error`
 * by default) with a 400 rather than stripping them: a client that sends them is not a client
 * whose other fields we should trust.
 */
export function jsonBodyParser(app: FastifyInstance, limits: Pick<LimitsConfig, 'maxJsonDepth'>): JsonBodyParser {
  const fastifyJson = app.getDefaultJsonParser(app.initialConfig.onProtoPoisoning ?? 'error', app.initialConfig.onConstructorPoisoning ?? 'error') as FastifyJsonParser;
  return (request, body, what = 'the JSON body') => {
    if (!isUtf8(body)) throw new TesseraError('TESSERA_E_REQUEST_INVALID', `${what} is not valid UTF-8 (JSON text must be UTF-8)`);
    checkJsonDepth(body, limits.maxJsonDepth, what);
    const text = body.toString('utf8');
    // no key can be `__proto__` or `constructor` when neither word (nor a \u escape that could spell
    // it) is in the text: three native searches instead of secure-json-parse's regular expressions
    // over every byte (megabytes for a base64 image)
    if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) {
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw whyNotJson(text, what, err as Error);
      }
    }
    const out: { error: Error | null; value?: unknown } = { error: null };
    fastifyJson(request, text, (err, value) => {
      out.error = err;
      out.value = value;
    });
    if (out.error) throw (out.error as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? whyNotJson(text, what, out.error) : out.error;
    return out.value;
  };
}

/**
 * Why fastify's parser refused `text` (it says only "not valid JSON"): JSON.parse's syntax error,
 * which says where, or — when JSON.parse takes it — the prototype-poisoning check. JSON.parse is
 * safe on such text: it makes an own `__proto__` property, it does not set the prototype.
 */
function whyNotJson(text: string, what: string, cause: Error): TesseraError {
  try {
    JSON.parse(text);
  } catch (err) {
    return new TesseraError('TESSERA_E_REQUEST_INVALID', `${what} is not valid JSON: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`, { cause: err });
  }
  return new TesseraError('TESSERA_E_REQUEST_INVALID', `${what} has a \`__proto__\` or \`constructor.prototype\` key; such keys are refused (prototype pollution)`, { cause });
}

/**
 * Replaces fastify's `application/json` parser of `app` (every route outside the inference scope:
 * `/v1/predict`, the OpenAI API, the repository and routing APIs, plugins' routes) with
 * `jsonBodyParser`, within the route's body limit as before.
 */
export function installJsonBodyParser(app: FastifyInstance, limits: Pick<LimitsConfig, 'maxJsonDepth'>): void {
  const parse = jsonBodyParser(app, limits);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    try {
      done(null, parse(request, body));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
