import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TesseraError, defineErrorCodes, errorCodeInfo, isTesseraError } from './errors.js';
import { checkErrorCodeDocs } from './testing/error-docs.js';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

describe('ERROR_CODES', () => {
  it('should list every code in docs/errors.md with its status, and no stale one (the check plugins use too)', () => {
    expect(checkErrorCodeDocs(ERROR_CODES, doc)).toEqual([]);
  });

  it('should catch a missing, a stale and a wrong row', () => {
    const table = '| `ACME_E_A_ONE` | 400 | x |\n| `ACME_E_A_TWO` | 500 | x |\n| `ACME_E_A_OLD` | 404 | x |\n';
    expect(checkErrorCodeDocs({ ACME_E_A_ONE: { status: 400, description: '' }, ACME_E_A_TWO: { status: 429, description: '' }, ACME_E_A_NEW: { status: 403, description: '' } }, table)).toEqual([
      'ACME_E_A_TWO is documented with status 500, declared 429',
      'ACME_E_A_NEW (403) is not in the table',
      'ACME_E_A_OLD is documented but not declared',
    ]);
  });

  it('should follow the TESSERA_E_<AREA>_<WHAT> pattern', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^TESSERA_E_[A-Z]+_[A-Z_]+$/);
  });
});

describe('TesseraError', () => {
  it('should take its status from the catalogue and keep the cause', () => {
    const cause = new Error('boom');
    const err = new TesseraError('TESSERA_E_INPUT_SHAPE', 'bad shape', { cause });
    expect(err.status).toBe(400);
    expect(err.code).toBe('TESSERA_E_INPUT_SHAPE');
    expect(err.cause).toBe(cause);
    expect(isTesseraError(err)).toBe(true);
    expect(isTesseraError(new Error('x'))).toBe(false);
  });
});

describe(defineErrorCodes, () => {
  it('should make one factory per code whose errors carry the declared status', () => {
    const errors = defineErrorCodes({ ACME_E_QUOTA_EXCEEDED: { status: 429, description: 'The key used its quota.' } });
    const err = errors.ACME_E_QUOTA_EXCEEDED('quota of key k1 used', { headers: { 'retry-after': '60' } });
    expect(err).toBeInstanceOf(TesseraError);
    expect(err.code).toBe('ACME_E_QUOTA_EXCEEDED');
    expect(err.status).toBe(429);
    expect(err.headers).toEqual({ 'retry-after': '60' });
    expect(new TesseraError('ACME_E_QUOTA_EXCEEDED', 'again').status).toBe(429);
    expect(errorCodeInfo('ACME_E_QUOTA_EXCEEDED')?.description).toBe('The key used its quota.');
    expect(errors.codes).toEqual({ ACME_E_QUOTA_EXCEEDED: { status: 429, description: 'The key used its quota.' } });
  });

  it('should refuse a badly formed code, a core code, a non-error status and a second declaration that differs', () => {
    expect(() => defineErrorCodes({ quota: { status: 429, description: '' } })).toThrow(/OWNER_E_AREA_WHAT/);
    expect(() => defineErrorCodes({ TESSERA_E_INPUT_SHAPE: { status: 400, description: '' } })).toThrow(/core's/);
    expect(() => defineErrorCodes({ ACME_E_X_Y: { status: 200, description: '' } })).toThrow(/400-599/);
    defineErrorCodes({ ACME_E_TWICE_SAME: { status: 403, description: 'd' } });
    expect(() => defineErrorCodes({ ACME_E_TWICE_SAME: { status: 403, description: 'd' } })).not.toThrow();
    expect(() => defineErrorCodes({ ACME_E_TWICE_SAME: { status: 401, description: 'd' } })).toThrow(/declared twice with different statuses \(403 and 401\)/);
    expect(() => defineErrorCodes({ ACME_E_TWICE_SAME: { status: 403, description: 'other' } })).toThrow(/different descriptions \("d" and "other"\)/);
  });

  it('should give an undeclared code status 500', () => {
    expect(new TesseraError('NOBODY_E_NO_SUCH', 'x').status).toBe(500);
  });
});
