import { describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { describeRouterConformance } from '../testing/router-conformance.js';
import { LatestRouter, latestRouterFactory } from './latest-router.js';

const headers = {};
const base = { kind: 'tensor' as const, protocol: 'v2', id: 'r' };

describe('LatestRouter', () => {
  const router = new LatestRouter('m');
  const candidates = [
    { version: '1', ready: true },
    { version: '2', ready: true },
    { version: '10', ready: false },
  ];

  it('should pick the newest ready version when none is asked for', () => {
    expect(router.select({ ...base, model: 'm', headers }, candidates)).toEqual({ version: '2' });
  });

  it('should compare versions as numbers', () => {
    expect(router.select({ ...base, model: 'm', headers }, [{ version: '9', ready: true }, { version: '10', ready: true }])).toEqual({ version: '10' });
  });

  it('should honour a requested version', () => {
    expect(router.select({ ...base, model: 'm', version: '1', headers }, candidates)).toEqual({ version: '1' });
  });

  it.each([
    ['3', 'TESSERA_E_MODEL_VERSION_NOT_FOUND', 404],
    ['10', 'TESSERA_E_MODEL_NOT_READY', 503],
  ])('should reject version %s with %s', (version, code, status) => {
    try {
      router.select({ ...base, model: 'm', version, headers }, candidates);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TesseraError);
      expect((err as TesseraError).code).toBe(code);
      expect((err as TesseraError).status).toBe(status);
    }
  });

  it('should answer 503 when no version is ready', () => {
    expect(() => router.select({ ...base, model: 'm', headers }, [{ version: '1', ready: false }])).toThrow(/no ready version/);
  });

  it('should weigh the newest ready version 1 and every other 0', () => {
    expect(router.weights([{ version: '1', ready: true }, { version: '2', ready: true }, { version: '10', ready: false }])).toEqual({ '1': 0, '2': 1, '10': 0 });
    expect(router.weights([{ version: '1', ready: false }])).toEqual({ '1': 0 });
  });
});

describeRouterConformance({ name: 'latest (built in)', factory: latestRouterFactory, versions: ['1', '2', '10'] });
