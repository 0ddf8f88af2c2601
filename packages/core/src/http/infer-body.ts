import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import type { LimitsConfig } from '../config/types.js';
import { TesseraError } from '../errors.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, alignBinaryTail, parseBinaryHeader, parseInferenceHeaderLength } from './binary-codec.js';
import { jsonBodyParser } from './limits.js';

/**
 * An inference request body as the parsers leave it for the OIP v2 adapter: JSON (a parsed value,
 * not checked yet), a binary request (Triton's binary tensor extension: the parsed JSON header and
 * the bytes after it), or a raw binary request (`Inference-Header-Content-Length: 0`: no JSON, the
 * body is the only input's data).
 */
export type InferBody = { kind: 'json'; value: unknown } | { kind: 'binary'; header: unknown; tail: Buffer } | { kind: 'raw'; tail: Buffer };

/**
 * The request body read whole, within the route's body limit (as fastify's own parsers do).
 *
 * With a Content-Length (and no Content-Encoding) the chunks are copied straight into one buffer
 * of that size, allocated `pad` bytes past an 8-byte boundary: `pad` is chosen from the
 * Inference-Header-Content-Length header so that a binary request's tensor data starts aligned
 * and `alignBinaryTail` has nothing to move. That saves two passes over the body (concatenating
 * the chunks, moving the tail) of the three it had before the batch is assembled. The buffer is
 * allocated on the first chunk, and only when the declared length is at most 16 times that
 * chunk: a client that declares megabytes and sends a byte gets no megabytes reserved for it. A
 * body without a length is concatenated.
 */
function readBody(request: FastifyRequest, payload: NodeJS.ReadableStream & { receivedEncodedLength?: number }): Promise<Buffer> {
  const limit = request.routeOptions.bodyLimit;
  const lengthHeader = request.headers['content-length'];
  const declared = Number(lengthHeader);
  if (declared > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const sized = lengthHeader !== undefined && Number.isSafeInteger(declared) && declared > 0 && request.headers['content-encoding'] === undefined && payload.receivedEncodedLength === undefined;
  let target: Buffer | undefined;
  const allocate = (first: Buffer): void => {
    if (!sized || declared > first.length * 16) return;
    const headerLength = Number(request.headers[INFERENCE_HEADER_CONTENT_LENGTH]);
    const pad = Number.isSafeInteger(headerLength) && headerLength > 0 ? (8 - (headerLength % 8)) % 8 : 0;
    // allocUnsafeSlow: the body's own ArrayBuffer (a pooled one may be shared); every byte is written before it is read
    target = Buffer.allocUnsafeSlow(pad + declared).subarray(pad);
  };
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(chunk: Buffer | string): void {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received === 0 && chunks.length === 0) allocate(b);
      if (target !== undefined && received + b.length > target.length) {
        cleanup();
        reject(received + b.length > limit ? new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE() : new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
        return;
      }
      if (target !== undefined) target.set(b, received);
      received += b.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        cleanup();
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      if (target === undefined) chunks.push(b);
    }
    function onEnd(err?: Error & { statusCode?: number }): void {
      cleanup();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        reject(err);
      } else if (!Number.isNaN(declared) && (payload.receivedEncodedLength ?? received) !== declared) {
        reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      } else {
        resolve(target ?? Buffer.concat(chunks, received));
      }
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

/**
 * Body parsers of the inference routes (in their own fastify scope); each yields an `InferBody`.
 * With `Inference-Header-Content-Length` a body of any content type is binary. Without it:
 * application/json and application/octet-stream (Triton's rule: the whole body is JSON) and a body
 * without a content type are JSON; text/plain stays a string (and fails the schema) and any other
 * type is a 415.
 */
export function installInferParsers(scope: FastifyInstance, app: FastifyInstance, limits: Pick<LimitsConfig, 'maxJsonDepth'>): void {
  // the server's JSON parser: UTF-8, the depth limit and fastify's prototype-poisoning checks
  const parseJsonBody = jsonBodyParser(app, limits);
  const parseJson = (request: FastifyRequest, body: Buffer): unknown => parseJsonBody(request, body);
  const parseHeader = (request: FastifyRequest) => (text: Buffer): unknown => parseJsonBody(request, text, 'the JSON header');
  /** A binary body, or undefined when the request has no Inference-Header-Content-Length. */
  const parseBinary = (request: FastifyRequest, body: Buffer): InferBody | undefined => {
    const headerLength = parseInferenceHeaderLength(request.headers[INFERENCE_HEADER_CONTENT_LENGTH], body.length);
    if (headerLength === undefined) return undefined;
    if (headerLength === 0) return { kind: 'raw', tail: body };
    const header = parseBinaryHeader(body, headerLength, parseHeader(request));
    // the body is this request's own copy (fastify concatenates the chunks), so its tensors may be aligned in place
    return { kind: 'binary', header, tail: alignBinaryTail(body, headerLength) };
  };
  const unsupported = (): TesseraError =>
    new TesseraError('TESSERA_E_REQUEST_MEDIA_TYPE', 'Unsupported Media Type; send application/json, or binary tensor data with the Inference-Header-Content-Length header');

  // fastify calls no parser for a body-less request without a content type (Content-Length: 0)
  scope.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', 'invalid request: the inference request has no body; send an OIP v2 JSON body, or binary tensor data with Inference-Header-Content-Length');
    }
  });
  // the server's own application/json parser (installJsonBodyParser) is inherited: this scope's replaces it
  if (scope.hasContentTypeParser('application/json')) scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser(['application/json', 'application/octet-stream'], { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    try {
      done(null, parseBinary(request, body) ?? { kind: 'json', value: parseJson(request, body) });
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  scope.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    try {
      done(null, parseBinary(request, body) ?? { kind: 'json', value: body.toString('utf8') });
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  scope.addContentTypeParser('*', async (request: FastifyRequest, payload: NodeJS.ReadableStream) => {
    const binary = request.headers[INFERENCE_HEADER_CONTENT_LENGTH] !== undefined;
    const untyped = request.headers['content-type'] === undefined;
    if (!binary && !untyped) throw unsupported();
    const body = await readBody(request, payload);
    return parseBinary(request, body) ?? { kind: 'json', value: parseJson(request, body) };
  });
}
