import { isTesseraError } from '../errors.js';

/**
 * The code of the TesseraError `fn` throws; undefined when it returns; `not a TesseraError: …` when
 * it throws anything else (so an assertion on the code fails and says what was thrown).
 */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isTesseraError(err) ? err.code : `not a TesseraError: ${String(err)}`;
  }
  return undefined;
}

/**
 * `fn()`'s value, or undefined when it threw a TesseraError with a 4xx status — the contract of a
 * decoder fed hostile input (for property-based tests). Anything else it throws is rethrown, so the
 * property fails: a non-TesseraError, or a TesseraError with another status.
 */
export function resultOrClientError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!isTesseraError(err)) throw new Error(`threw a non-TesseraError: ${String(err)}`, { cause: err });
    if (err.status < 400 || err.status >= 500) throw new Error(`threw ${err.code} with status ${err.status}, not a 4xx`, { cause: err });
    return undefined;
  }
}

/** Rejects when `promise` has not settled within `ms`: a test that would hang fails instead, naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]);
}
