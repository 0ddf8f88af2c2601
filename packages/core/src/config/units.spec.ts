import { describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { parseDuration, parseSize } from './units.js';
import { catchError } from './test-support.js';

describe(parseDuration, () => {
  it.each([
    [250, 250],
    [0, 0],
    [2.5, 2.5],
    ['250', 250],
    ['500ms', 500],
    ['1s', 1000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['.5s', 500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1m 30s', 90_000],
    [' 2 s ', 2000],
    ['10MS', 10],
  ] as const)('should parse %j as %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([['5 minutes'], ['-1s'], ['1y'], [''], ['s'], ['1.2.3s'], ['1e3ms']])('should reject %j', (input) => {
    expect(() => parseDuration(input)).toThrow(/must be a duration: milliseconds as a number, or a string with a unit \(ms, s, m, h, d\)/);
  });

  it('should reject negative and non-finite numbers', () => {
    expect(() => parseDuration(-1)).toThrow('got -1 (negative)');
    expect(() => parseDuration(Number.NaN)).toThrow('got NaN');
    expect(() => parseDuration(Infinity)).toThrow('got Infinity');
  });

  it('should reject values that are neither numbers nor strings (from JS configs)', () => {
    expect(() => parseDuration(true as unknown as string)).toThrow('got true');
  });

  it('should name the path and throw a TesseraError with code TESSERA_E_CONFIG_INVALID', () => {
    const error = catchError(() => parseDuration('soon', 'routing.interval'));
    expect(error).toBeInstanceOf(TesseraError);
    expect(error.code).toBe('TESSERA_E_CONFIG_INVALID');
    expect(error.message).toMatch(/^routing\.interval: must be a duration: .* got "soon"$/);
  });
});

describe(parseSize, () => {
  it.each([
    [1024, 1024],
    ['1024', 1024],
    ['64MiB', 64 * 1024 * 1024],
    ['1GiB', 2 ** 30],
    ['512KiB', 512 * 1024],
    ['1.5KiB', 1536],
    ['10MB', 10_000_000],
    ['100kb', 100_000],
    ['2 TB', 2e12],
    ['7B', 7],
    ['1tib', 2 ** 40],
  ] as const)('should parse %j as %d bytes', (input, expected) => {
    expect(parseSize(input)).toBe(expected);
  });

  it.each([['64 megabytes'], ['-1KiB'], ['1.5'], ['0.1B'], ['KiB'], ['']])('should reject %j', (input) => {
    expect(() => parseSize(input)).toThrow(/must be a size: bytes as an integer, or a string with a unit/);
  });

  it('should reject fractional, negative and unsafe numbers', () => {
    expect(() => parseSize(1.5)).toThrow('got 1.5 (not a whole number of bytes)');
    expect(() => parseSize(-1)).toThrow('got -1 (negative)');
    expect(() => parseSize(2 ** 60)).toThrow('too large');
    expect(() => parseSize('9000000TiB')).toThrow('too large');
  });

  it('should name the path', () => {
    expect(() => parseSize('big', 'server.bodyLimit')).toThrow(/^server\.bodyLimit: must be a size: .* got "big"$/);
  });
});
