import type { ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { LimitsConfig } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { TesseraError, errorCodeInfo } from '../errors.js';
import { sendError } from './errors.js';

/** Node's own period for checking request timeouts; shorter for short timeouts (tests, strict edges). */
const MAX_CHECK_INTERVAL_MS = 30_000;

/** What a socket-level client error (before fastify has a request) is answered with. */
function clientErrorOf(err: NodeJS.ErrnoException, limits: Pick<LimitsConfig, 'maxHeaderSize' | 'requestTimeoutMs'>): { code: ErrorCode; message: string } {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return { code: 'TESSERA_E_REQUEST_HEADERS_TOO_LARGE', message: `the request line and headers exceed server.limits.maxHeaderSize (${limits.maxHeaderSize} bytes); send fewer or shorter headers, or raise the limit` };
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { code: 'TESSERA_E_REQUEST_TIMEOUT', message: `the request was not received in full within server.limits.requestTimeout (${limits.requestTimeoutMs} ms)` };
  }
  return { code: 'TESSERA_E_REQUEST_INVALID', message: `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})` };
}

/** The Fastify options `serverLimitOptions` sets. */
export interface ServerLimitOptions extends Pick<FastifyServerOptions, 'requestTimeout' | 'clientErrorHandler' | 'frameworkErrors'> {
  /** Node's HTTP server options (ignored by fastify under `https`: pass `nodeServerLimits` there too). */
  http: ServerOptions;
}

/**
 * Node's server options for `server.limits`: `maxHeaderSize`, a check interval that lets a short
 * `requestTimeout` fire on time, and a `headersTimeout` within it. For `http.createServer` and
 * `https.createServer` alike (fastify passes its `http` option only to the former).
 */
export function nodeServerLimits(limits: Pick<LimitsConfig, 'maxHeaderSize' | 'requestTimeoutMs'>): ServerOptions {
  const timeout = limits.requestTimeoutMs;
  const checkInterval = timeout > 0 ? Math.max(100, Math.min(MAX_CHECK_INTERVAL_MS, Math.floor(timeout / 4))) : MAX_CHECK_INTERVAL_MS;
  return { maxHeaderSize: limits.maxHeaderSize, connectionsCheckingInterval: checkInterval, ...(timeout > 0 ? { headersTimeout: Math.min(60_000, timeout) } : {}) };
}

/**
 * Fastify options that bound the HTTP layer (`server.limits`): Node's `maxHeaderSize` and
 * `requestTimeout` (which fastify turns off by default, letting a client that stops mid-body hold
 * a connection forever), socket-level errors answered as `{"error", "code"}` (431, 408, 400) like
 * every other error, and fastify's URL errors (`%zz`, a path parameter over 100 characters)
 * through the same error shape. Spread into the `Fastify({...})` call.
 */
export function serverLimitOptions(limits: Pick<LimitsConfig, 'maxHeaderSize' | 'requestTimeoutMs'>): ServerLimitOptions {
  return {
    http: nodeServerLimits(limits),
    requestTimeout: limits.requestTimeoutMs,
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      // a connection reset, or one already answered: nothing to write to
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const { code, message } = clientErrorOf(err, limits);
      const status = errorCodeInfo(code)!.status;
      const body = JSON.stringify({ error: message, code });
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
    frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      const code: ErrorCode = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'TESSERA_E_REQUEST_URL_TOO_LONG' : err.code === 'FST_ERR_BAD_URL' ? 'TESSERA_E_REQUEST_URL' : 'TESSERA_E_REQUEST_INVALID';
      const message =
        code === 'TESSERA_E_REQUEST_URL_TOO_LONG'
          ? 'a path parameter of the URL (model name or version) is longer than 100 characters'
          : `the URL is not valid: ${err.message.slice(0, 200)}`;
      void sendError(request, reply, new TesseraError(code, message, { cause: err }));
    },
  };
}

function statusText(status: number): string {
  return status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
}
