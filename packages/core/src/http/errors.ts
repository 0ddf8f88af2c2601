import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.js';
import { TesseraError, isTesseraError } from '../errors.js';

/** Fastify's own error codes mapped to ours, so every error body has the same shape. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'TESSERA_E_REQUEST_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'TESSERA_E_REQUEST_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'TESSERA_E_REQUEST_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'TESSERA_E_REQUEST_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'TESSERA_E_REQUEST_INVALID',
  FST_ERR_VALIDATION: 'TESSERA_E_REQUEST_INVALID',
};

/** A fastify (or plugin) error without a known code, by its 4xx status. */
const STATUS_CODES: Record<number, ErrorCode> = {
  408: 'TESSERA_E_REQUEST_TIMEOUT',
  413: 'TESSERA_E_REQUEST_TOO_LARGE',
  414: 'TESSERA_E_REQUEST_URL_TOO_LONG',
  415: 'TESSERA_E_REQUEST_MEDIA_TYPE',
  431: 'TESSERA_E_REQUEST_HEADERS_TOO_LARGE',
};

/** secure-json-parse's refusal of `__proto__` / `constructor.prototype` keys. */
const PROTO_POISONING = /forbidden prototype property/i;

/** Normalises anything thrown on the request path into a TesseraError (once, at the HTTP edge). */
export function toTesseraError(err: unknown, bodyLimit?: number): TesseraError {
  if (isTesseraError(err)) return err;
  const fe = err as Partial<FastifyError> & { statusCode?: number };
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new TesseraError(mapped, requestMessage(fe, bodyLimit), { cause: err });
  if (fe.validation) return new TesseraError('TESSERA_E_REQUEST_INVALID', requestMessage(fe), { cause: err });
  if (err instanceof SyntaxError && PROTO_POISONING.test(err.message)) {
    return new TesseraError('TESSERA_E_REQUEST_INVALID', 'the JSON body has a `__proto__` or `constructor.prototype` key; such keys are refused (prototype pollution)', { cause: err });
  }
  const status = fe.statusCode;
  if (err instanceof SyntaxError || (status !== undefined && status >= 400 && status < 500)) {
    const byStatus = status !== undefined ? STATUS_CODES[status] : undefined;
    if (byStatus) return new TesseraError(byStatus, `invalid request: ${fe.message ?? String(err)}`, { cause: err });
    // other 4xx statuses (a plugin's) are kept: the status is the data here
    return new TesseraError('TESSERA_E_REQUEST_INVALID', `invalid request: ${fe.message ?? String(err)}`, { cause: err, ...(status !== undefined && status !== 400 ? { status } : {}) });
  }
  return new TesseraError('TESSERA_E_SERVER_INTERNAL', 'internal error', { cause: err });
}

function requestMessage(fe: Partial<FastifyError>, bodyLimit?: number): string {
  const msg = fe.message ?? 'invalid request';
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return `request body is larger than server.bodyLimit (${bodyLimit ?? '?'} bytes); send less per request or raise the limit`;
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return `${msg}; send application/json`;
  if (fe.validation) {
    // ajv's message leaves out which property was unexpected
    const extra = (fe.validation[0]?.params as { additionalProperty?: unknown } | undefined)?.additionalProperty;
    return `invalid request: ${msg}${typeof extra === 'string' ? ` ('${extra.slice(0, 100)}')` : ''}`;
  }
  if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe.code === undefined) return `request body is not valid JSON: ${msg}`;
  return msg;
}

/**
 * The headers an error response carries: the error's own, and `Retry-After` on every 503 (not
 * ready, draining, queue full, no healthy replica: load signals a client should retry), set here
 * once rather than at each throw site.
 */
export function errorHeaders(err: TesseraError): Record<string, string> {
  const headers = err.headers ?? {};
  if (err.status === 503 && !Object.keys(headers).some((h) => h.toLowerCase() === 'retry-after')) return { ...headers, 'retry-after': '1' };
  return headers;
}

/** Sends `{"error": message, "code": code}` with the error's status and headers. */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: TesseraError): FastifyReply {
  if (request.tessera) request.tessera.code = err.code;
  void reply.headers(errorHeaders(err));
  // 503s (not ready, draining, queue full/timeout/shed) are load signals, logged by the access log line only
  if (err.status >= 500 && err.status !== 503) {
    request.log.error({ err: err.cause ?? err, code: err.code }, err.message);
  }
  return reply.code(err.status).type('application/json').send(JSON.stringify({ error: err.message, code: err.code }));
}
