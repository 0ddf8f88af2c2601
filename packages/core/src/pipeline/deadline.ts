/**
 * Request deadlines: the headers that set them (`X-Request-Timeout`, gRPC's `grpc-timeout`),
 * `parameters.timeout`, and the error a request gets when its deadline passes. The effective
 * deadline is the smallest of those and the model's `timeout`, counted from the request's arrival
 * (`ServingRequest.limitDeadline`).
 */
import { parseDuration } from '../config/units.js';
import { TesseraError, isTesseraError } from '../errors.js';

/** Deadlines further away than this (about 24.8 days, the longest Node timer) are no deadline. */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** Longer header values are refused before any parsing (a valid one is a few characters). */
const MAX_HEADER_CHARS = 32;

/** gRPC's `TimeoutValue TimeoutUnit`: at most 8 ASCII digits and one unit letter. */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** A header's value, refused when it was sent more than once (the two could disagree). */
function single(name: string, value: string | string[]): string {
  if (Array.isArray(value)) {
    if (value.length !== 1) throw invalid(`${name} was sent ${value.length} times; send it once`);
    return value[0]!;
  }
  return value;
}

function invalid(message: string): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_DEADLINE_INVALID', message);
}

/**
 * `X-Request-Timeout`: milliseconds (`250`, `1.5`) or a duration with units ms, s, m, h, d (`1.5s`,
 * `2m`, `1m30s`) — the config's duration syntax. `0` is a deadline already past.
 * @throws TesseraError TESSERA_E_REQUEST_DEADLINE_INVALID
 */
export function parseRequestTimeout(raw: string | string[]): number {
  const value = single('X-Request-Timeout', raw).trim();
  if (value.length === 0 || value.length > MAX_HEADER_CHARS) throw invalid(`X-Request-Timeout must be milliseconds or a duration such as 250, 1.5s or 2m, got ${JSON.stringify(value.slice(0, MAX_HEADER_CHARS))}`);
  try {
    return parseDuration(value);
  } catch {
    throw invalid(`X-Request-Timeout must be milliseconds or a duration such as 250, 1.5s or 2m, got ${JSON.stringify(value)}`);
  }
}

/**
 * gRPC's `grpc-timeout`: up to 8 digits and a unit, H (hours), M (minutes), S (seconds),
 * m (milliseconds), u (microseconds), n (nanoseconds): `100m`, `2S`, `1H`. In milliseconds.
 * @throws TesseraError TESSERA_E_REQUEST_DEADLINE_INVALID
 */
export function parseGrpcTimeout(raw: string | string[]): number {
  const value = single('grpc-timeout', raw).trim();
  const match = value.length <= MAX_HEADER_CHARS ? GRPC_TIMEOUT.exec(value) : null;
  if (!match) throw invalid(`grpc-timeout must be up to 8 digits and a unit of H, M, S, m, u or n (e.g. 100m, 2S), got ${JSON.stringify(value.slice(0, MAX_HEADER_CHARS))}`);
  return Number(match[1]) * GRPC_UNIT_MS[match[2]!]!;
}

/**
 * `parameters.timeout` of a tensor request, in milliseconds: the parameter is Triton's (its
 * schedule-policy extension), in **microseconds** ≥ 0, `0` (or absent) meaning none (the
 * model's) — what `tritonclient`'s `infer(timeout=…)` sends. Undefined when there is none.
 * @throws TesseraError TESSERA_E_REQUEST_INVALID (a body field, as for every other parameter)
 */
export function parametersTimeout(parameters: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const value = parameters?.['timeout'];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TesseraError('TESSERA_E_REQUEST_INVALID', `parameters.timeout must be a number of microseconds ≥ 0, as in Triton (0 = the model's default), got ${JSON.stringify(value)}`);
  }
  return value === 0 ? undefined : value / 1000;
}

/** Where a deadline came from and how long it was, for the messages. */
export interface DeadlineOrigin {
  /** `X-Request-Timeout`, `grpc-timeout`, `parameters.timeout`, `models.<name>.timeout`. */
  source: string;
  /** The time allowed from arrival, ms. */
  ms: number;
}

/**
 * The error of a request whose deadline passed after its work started (504). It carries its code
 * as the OpenAI error `code` too, so that a stream cut at its deadline says why in its error event.
 */
export function deadlineExceeded(origin: DeadlineOrigin, where: string): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_DEADLINE_EXCEEDED', `the request's deadline of ${formatMs(origin.ms)} (${origin.source}) passed ${where}`, {
    openai: { code: 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED' },
  });
}

/** Whether an abort reason (or a thrown value) is a deadline that passed: what batchers check to tell a deadline from a client that left. */
export function isDeadlineExceeded(reason: unknown): reason is TesseraError {
  return isTesseraError(reason) && reason.code === 'TESSERA_E_REQUEST_DEADLINE_EXCEEDED';
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms) / 1000} s` : `${Math.round(ms * 1000) / 1000} ms`;
}

/**
 * `work`, or the deadline's error as soon as `signal` aborts for the deadline: work that does not
 * listen to its signal is not waited for (its late result is dropped). A failure of `work` once
 * the deadline aborted it (a backend's own abort error) becomes the deadline's error too. A
 * client that leaves changes nothing here: `work` settles as it does.
 */
export function withinDeadline<T>(work: Promise<T>, signal: AbortSignal, error: () => TesseraError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      if (isDeadlineExceeded(signal.reason)) reject(error());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // the work's own failure, passed on as it is (a TesseraError as a rule)
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        reject(isDeadlineExceeded(signal.reason) ? error() : err);
      },
    );
    if (signal.aborted) onAbort();
  });
}
