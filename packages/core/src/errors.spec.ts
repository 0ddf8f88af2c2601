import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TesseraError, isTesseraError } from './errors.js';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

describe('ERROR_CODES', () => {
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `(TESSERA_[A-Z0-9_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));

  it('should list every code in docs/errors.md with its status', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code), `${code} missing or wrong in docs/errors.md`).toBe(info.status);
    }
  });

  it('should have no stale code in docs/errors.md', () => {
    const stale = [...rows.keys()].filter((c) => !(c in ERROR_CODES));
    expect(stale).toEqual([]);
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
