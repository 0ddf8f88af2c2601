import { TesseraError } from '../errors.js';
import { renderValue } from './path.js';

/** What a duration may look like; used in error messages and the docs. */
export const DURATION_HELP = 'a duration: milliseconds as a number, or a string with a unit (ms, s, m, h, d) such as 500ms, 1.5s, 5m, 1h30m';

/** What a size may look like; used in error messages and the docs. */
export const SIZE_HELP = 'a size: bytes as an integer, or a string with a unit (B, KB, MB, GB, TB = powers of 1000; KiB, MiB, GiB, TiB = powers of 1024) such as 64MiB, 512KiB, 10MB';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const NUMBER = String.raw`(?:\d+(?:\.\d*)?|\.\d+)`;
/** One or more `<number><unit>` parts, e.g. `1h30m`, `1.5 s`. */
const DURATION_PARTS = new RegExp(String.raw`^(?:${NUMBER}\s*(?:ms|s|m|h|d)\s*)+$`, 'i');
const DURATION_PART = new RegExp(String.raw`(${NUMBER})\s*(ms|s|m|h|d)`, 'gi');
const PLAIN_NUMBER = new RegExp(`^${NUMBER}$`);
const SIZE = new RegExp(String.raw`^(${NUMBER})\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?$`, 'i');

function fail(value: unknown, help: string, path: string | undefined, detail?: string): never {
  const where = path ? `${path}: ` : '';
  throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}must be ${help}, got ${renderValue(value)}${detail ? ` (${detail})` : ''}`);
}

/**
 * Parses a duration into milliseconds. Numbers are milliseconds; strings are a plain number
 * (milliseconds) or one or more `<number><unit>` parts with units ms, s, m, h, d (`500ms`, `1.5s`,
 * `5m`, `1h30m`). Throws a TesseraError (`TESSERA_E_CONFIG_INVALID`) naming `path` when given.
 */
export function parseDuration(value: number | string, path?: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(value, DURATION_HELP, path);
    if (value < 0) fail(value, DURATION_HELP, path, 'negative');
    return value;
  }
  if (typeof value !== 'string') fail(value, DURATION_HELP, path);
  const text = value.trim();
  if (PLAIN_NUMBER.test(text)) return Number(text);
  if (!DURATION_PARTS.test(text)) fail(value, DURATION_HELP, path);
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * DURATION_UNITS[unit!.toLowerCase()]!;
  // 1.1s is 1100.0000000000002 in floating point: keep microsecond precision, no more.
  return Math.round(ms * 1000) / 1000;
}

/**
 * Parses a size into bytes. Numbers are bytes; strings are a plain number (bytes) or a number with
 * a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case
 * (`64MiB`, `100kb`). The result must be a whole number of bytes. Throws like `parseDuration`.
 */
export function parseSize(value: number | string, path?: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(value, SIZE_HELP, path);
    if (!Number.isInteger(value)) fail(value, SIZE_HELP, path, 'not a whole number of bytes');
    if (value < 0) fail(value, SIZE_HELP, path, 'negative');
    if (!Number.isSafeInteger(value)) fail(value, SIZE_HELP, path, 'too large');
    return value;
  }
  if (typeof value !== 'string') fail(value, SIZE_HELP, path);
  const match = SIZE.exec(value.trim());
  if (!match) fail(value, SIZE_HELP, path);
  const bytes = Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!;
  const whole = Math.round(bytes);
  if (Math.abs(bytes - whole) > 1e-6 * Math.max(1, bytes)) fail(value, SIZE_HELP, path, 'not a whole number of bytes');
  if (!Number.isSafeInteger(whole)) fail(value, SIZE_HELP, path, 'too large');
  return whole;
}

/** Whether `value` parses as a duration (for the schema's `tessera-duration` format). */
export function isDuration(value: string): boolean {
  try {
    parseDuration(value);
    return true;
  } catch {
    return false;
  }
}

/** Whether `value` parses as a size (for the schema's `tessera-size` format). */
export function isSize(value: string): boolean {
  try {
    parseSize(value);
    return true;
  } catch {
    return false;
  }
}
