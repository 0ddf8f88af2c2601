/** How an upstream's failures become TesseraErrors: whose fault it is decides the code and whether to retry. */
import { TesseraError, errorMessage, isTesseraError } from '@tessera/core';

/** An OIP v2 error body: `{"error": "message"}` (Tessera adds `code`). */
export function upstreamMessage(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || `HTTP ${status}`;
}

/**
 * An upstream's non-200 answer. A 4xx about the request (wrong shape, bad datatype) is the
 * client's: `TESSERA_E_UPSTREAM_REJECTED` with the upstream's status and message, not retried.
 * Auth refusals (401/403) are the gateway's `headers`, and 404 (the upstream does not serve the
 * model), 408 and 429 are that upstream's state: those and 5xx are `TESSERA_E_UPSTREAM_FAILED`,
 * retried on another upstream.
 */
export function upstreamStatusError(url: string, status: number, text: string): TesseraError {
  const message = upstreamMessage(text, status);
  if (status === 401 || status === 403) {
    return new TesseraError('TESSERA_E_UPSTREAM_FAILED', `upstream ${url} refused the gateway's credentials (HTTP ${status}): check the model's \`headers\``);
  }
  if (status >= 400 && status < 500 && status !== 404 && status !== 408 && status !== 429) {
    return new TesseraError('TESSERA_E_UPSTREAM_REJECTED', message, { status });
  }
  return new TesseraError('TESSERA_E_UPSTREAM_FAILED', `upstream ${url} answered HTTP ${status}: ${message}`);
}

/** A request that got no answer: connection refused or reset, or the model's `timeout`. */
export function upstreamFailure(url: string, err: unknown, timedOut: boolean): TesseraError {
  if (isTesseraError(err)) return err;
  if (timedOut) return new TesseraError('TESSERA_E_UPSTREAM_TIMEOUT', `upstream ${url} did not answer within the model's timeout`, { cause: err });
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ? `${errorMessage(err)} (${cause.code})` : cause?.message ? `${errorMessage(err)}: ${cause.message}` : errorMessage(err);
  return new TesseraError('TESSERA_E_UPSTREAM_FAILED', `upstream ${url}: the request failed: ${detail}`, { cause: err });
}
