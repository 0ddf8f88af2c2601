import type { TesseraError } from '../errors.js';

/** Test support for the config specs (left out of the build): the error `fn` throws, or a failure if it throws none. */
export function catchError(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('expected an error');
}
