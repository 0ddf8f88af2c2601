import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import type { ApiKeyConfig } from '../../config/types.js';
import { ApiKeySet, anonymousKeyId } from './key-set.js';

// the real timingSafeEqual, counted: the lookup must compare every configured digest
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof crypto>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});
const compared = vi.mocked(crypto.timingSafeEqual);

const keys: ApiKeyConfig[] = [
  { name: 'app', key: 'app-key-0123456789abcdef', scopes: ['infer'], models: ['cls'], rateLimit: { max: 100, timeWindowMs: 60_000 } },
  { name: 'ops', key: 'ops-key-0123456789abcdef', scopes: ['infer', 'admin', 'metrics'] },
  { key: 'anonymous-key-0123456789', scopes: ['metrics'] },
];

describe(ApiKeySet, () => {
  describe('.match', () => {
    it('should give the principal of a configured key: its name, scopes, models and rate limit', () => {
      const set = new ApiKeySet(keys);
      const app = set.match('app-key-0123456789abcdef');
      expect(app).toMatchObject({ id: 'app', kind: 'api-key', rateLimit: { max: 100, timeWindowMs: 60_000 } });
      expect([...app!.scopes]).toEqual(['infer']);
      expect([...app!.models!]).toEqual(['cls']);
      const ops = set.match('ops-key-0123456789abcdef');
      expect(ops?.id).toBe('ops');
      expect(ops?.models).toBeUndefined();
      expect(ops?.rateLimit).toBeUndefined();
    });

    it('should name a key without a name by the first 12 hex digits of its SHA-256, never the key', () => {
      const principal = new ApiKeySet(keys).match('anonymous-key-0123456789');
      const digest = crypto.createHash('sha256').update('anonymous-key-0123456789').digest('hex');
      expect(principal?.id).toBe(`key:${digest.slice(0, 12)}`);
      expect(anonymousKeyId('anonymous-key-0123456789')).toBe(principal?.id);
      expect(JSON.stringify({ ...principal, scopes: [...principal!.scopes] })).not.toContain('anonymous-key');
    });

    it('should refuse unknown keys, prefixes, suffixes and case changes', () => {
      const set = new ApiKeySet(keys);
      for (const wrong of ['', 'app-key', 'app-key-0123456789abcde', 'app-key-0123456789abcdef ', 'APP-KEY-0123456789ABCDEF', 'ops-key-0123456789abcdeg']) {
        expect(set.match(wrong)).toBeUndefined();
      }
    });

    it('should compare the presented digest with every configured digest, whichever matches (no early exit)', () => {
      const set = new ApiKeySet(keys);
      for (const presented of ['app-key-0123456789abcdef', 'ops-key-0123456789abcdef', 'anonymous-key-0123456789', 'not-a-key-at-all-0000']) {
        compared.mockClear();
        set.match(presented);
        expect(compared).toHaveBeenCalledTimes(keys.length);
        // equal-length digests only: SHA-256 of both sides, 32 bytes each
        for (const [a, b] of compared.mock.calls) {
          expect((a as Buffer).length).toBe(32);
          expect((b as Buffer).length).toBe(32);
        }
      }
    });
  });

  describe('.replace', () => {
    it('should accept exactly the new keys from then on', () => {
      const set = new ApiKeySet(keys);
      set.replace([{ name: 'new', key: 'new-key-0123456789abcdef', scopes: ['admin'] }]);
      expect(set.size).toBe(1);
      expect(set.match('app-key-0123456789abcdef')).toBeUndefined();
      expect(set.match('new-key-0123456789abcdef')?.id).toBe('new');
    });
  });
});
