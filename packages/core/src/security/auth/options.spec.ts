import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/resolve.js';
import { catchError } from '../../config/test-support.js';
import { credentialOf, looksLikeJwt } from './credentials.js';

const dir = path.resolve('/srv/tessera');
const KEY = 'app-key-0123456789abcdef';
const resolve = (auth: unknown, env: Record<string, string> = {}) => resolveConfig({ auth }, { configDir: dir, env });

describe('auth (resolveConfig)', () => {
  it('should fill the defaults, parse durations and resolve paths against the config folder', () => {
    const { auth } = resolve({ apiKeys: [{ name: 'app', key: '${APP_KEY}', rateLimit: { max: 10, timeWindow: '30s' } }], apiKeysFile: './keys.yaml', jwt: { jwks: './jwks.json' } }, { APP_KEY: KEY });
    expect(auth).toEqual({
      apiKeys: [{ name: 'app', key: KEY, scopes: ['infer'], rateLimit: { max: 10, timeWindowMs: 30_000 } }],
      apiKeysFile: path.join(dir, 'keys.yaml'),
      jwt: {
        jwks: path.join(dir, 'jwks.json'),
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        clockToleranceMs: 30_000,
        requireExpiry: true,
        scopesClaim: 'scope',
        modelsClaim: 'models',
        cooldownMs: 30_000,
        cacheMaxAgeMs: 600_000,
        timeoutMs: 5_000,
      },
      metrics: 'open',
    });
  });

  it('should keep a JWKS URL as it is, and leave auth out of the plugin sections', () => {
    const config = resolve({ jwt: { jwks: 'https://login.example.com/.well-known/jwks.json', issuer: 'https://login.example.com/', audience: ['a', 'b'] }, metrics: 'protected' });
    expect(config.auth?.jwt?.jwks).toBe('https://login.example.com/.well-known/jwks.json');
    expect(config.auth?.jwt?.audience).toEqual(['a', 'b']);
    expect(config.sections).toEqual({});
  });

  it('should refuse, without showing the key: a short key, a repeated key or name, no way to authenticate, an unknown scope or algorithm', () => {
    const cases: [unknown, RegExp][] = [
      [{ apiKeys: [{ key: 'short-secret' }] }, /auth\.apiKeys\[0\]\.key: must be at least 16 characters/],
      [{ apiKeys: [{ key: KEY }, { key: KEY }] }, /auth\.apiKeys\[1\]\.key: the same key as auth\.apiKeys\[0\]/],
      [{ apiKeys: [{ name: 'a', key: KEY }, { name: 'a', key: `${KEY}x` }] }, /auth\.apiKeys\[1\]\.name: "a" is also the name of auth\.apiKeys\[0\]/],
      [{}, /auth: configure at least one of apiKeys, apiKeysFile or jwt/],
      [{ apiKeys: [{ key: KEY, scopes: ['root'] }] }, /auth\.apiKeys\[0\]\.scopes\[0\]: must be one of/],
      [{ jwt: { jwks: './j.json', algorithms: ['none'] } }, /auth\.jwt\.algorithms\[0\]: must be one of/],
      [{ jwt: { jwks: './j.json', algorithms: ['HS256'] } }, /auth\.jwt\.algorithms\[0\]: must be one of/],
      [{ apiKeys: [{ key: KEY, secret: 'x' }] }, /auth\.apiKeys\[0\].*secret/],
    ];
    for (const [auth, message] of cases) {
      const err = catchError(() => resolve(auth));
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('short-secret');
      expect(err.message).not.toContain(KEY);
    }
  });
});

describe(credentialOf, () => {
  it('should read Authorization: Bearer (any case) first, then x-api-key', () => {
    expect(credentialOf({ authorization: 'Bearer abc' })).toEqual({ kind: 'bearer', value: 'abc' });
    expect(credentialOf({ authorization: 'bearer  abc ' })).toEqual({ kind: 'bearer', value: 'abc' });
    expect(credentialOf({ authorization: 'Bearer abc', 'x-api-key': 'def' })).toEqual({ kind: 'bearer', value: 'abc' });
    expect(credentialOf({ 'x-api-key': 'def' })).toEqual({ kind: 'api-key', value: 'def' });
    expect(credentialOf({ authorization: 'Basic dTpw', 'x-api-key': 'def' })).toEqual({ kind: 'api-key', value: 'def' });
  });

  it('should tell no credential from an unsupported scheme, and never keep what it cannot use', () => {
    expect(credentialOf({})).toEqual({ kind: 'none' });
    expect(credentialOf({ authorization: 'Bearer ' })).toEqual({ kind: 'none' });
    expect(credentialOf({ 'x-api-key': ['a', 'b'] })).toEqual({ kind: 'none' });
    expect(credentialOf({ authorization: 'Basic dTpw' })).toEqual({ kind: 'unsupported' });
    expect(credentialOf({ authorization: KEY })).toEqual({ kind: 'unsupported' });
  });
});

describe(looksLikeJwt, () => {
  it('should take three base64url parts as a JWT, and anything else as a key', () => {
    expect(looksLikeJwt('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')).toBe(true);
    expect(looksLikeJwt('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).toBe(true);
    for (const key of [KEY, 'a.b', 'a.b.c.d', 'a+b.c.d', 'a b.c.d']) expect(looksLikeJwt(key)).toBe(false);
  });
});
