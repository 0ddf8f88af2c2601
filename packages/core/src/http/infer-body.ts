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

/** The request body read whole, within the route's body limit (as fastify's own parsers do). */
function readBody(request: FastifyRequest, payload: NodeJS.ReadableStream & { receivedEncodedLength?: number }): Promise<Buffer> {
  const limit = request.routeOptions.bodyLimit;
  const declared = Number(request.headers['content-length']);
  if (declared > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
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
      received += b.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        cleanup();
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      chunks.push(b);
    }
    function onEnd(err?: Error & { statusCode?: number }): void {
      cleanup();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        reject(err);
      } else if (!Number.isNaN(declared) && (payload.receivedEncodedLength ?? received) !== declared) {
        reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      } else {
        resolve(Buffer.concat(chunks, received));
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
