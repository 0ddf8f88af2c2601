import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtConfig } from '../../config/types.js';
import type { TesseraError } from '../../errors.js';
import { until } from '../../pipeline/test-support.js';
import { recordingLogger } from '../../testing/silent-logger.js';
import { JwtVerifier } from './jwt-verifier.js';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(kid: string, alg = 'RS256'): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const ISSUER = 'https://issuer.test/';
const AUDIENCE = 'tessera';

function token(key: SigningKey, claims: JWTPayload = {}, options: { exp?: number | string | null; iss?: string; aud?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ scope: 'infer', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuedAt()
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE);
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? '5m');
  return jwt.sign(key.privateKey);
}

function config(jwks: string, extra: Partial<JwtConfig> = {}): JwtConfig {
  return {
    jwks,
    issuer: ISSUER,
    audience: AUDIENCE,
    algorithms: ['RS256', 'ES256'],
    clockToleranceMs: 0,
    requireExpiry: true,
    scopesClaim: 'scope',
    modelsClaim: 'models',
    cooldownMs: 0,
    cacheMaxAgeMs: 600_000,
    timeoutMs: 2_000,
    ...extra,
  };
}

async function refusal(verifier: JwtVerifier, jwt: string): Promise<TesseraError> {
  try {
    await verifier.verify(jwt);
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('expected the token to be refused');
}

let dir: string;
let k1: SigningKey;
let k2: SigningKey;
let ec: SigningKey;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-jwks-'));
  [k1, k2, ec] = await Promise.all([signingKey('k1'), signingKey('k2'), signingKey('ec1', 'ES256')]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(JwtVerifier, () => {
  describe('having a JWKS file', () => {
    let file: string;
    let verifier: JwtVerifier;
    const logger = recordingLogger();
    beforeAll(async () => {
      file = path.join(dir, 'jwks.json');
      await writeFile(file, JSON.stringify({ keys: [k1.jwk, ec.jwk] }));
      verifier = await JwtVerifier.create(config(file), logger);
    });
    afterAll(() => verifier.close());

    it('should give the principal of a valid token: sub, the scopes (space-separated) and the models claim', async () => {
      const principal = await verifier.verify(await token(k1, { sub: 'svc-a', scope: 'infer admin unknown', models: ['cls'] }));
      expect(principal.id).toBe('svc-a');
      expect(principal.kind).toBe('jwt');
      expect([...principal.scopes]).toEqual(['infer', 'admin']);
      expect([...principal.models!]).toEqual(['cls']);
    });

    it('should read scopes from an array, name a token without sub by its jti, and allow every model without the claim', async () => {
      const principal = await verifier.verify(await token(ec, { scope: ['metrics'], jti: 'abc' }));
      expect(principal.id).toBe('jwt:abc');
      expect([...principal.scopes]).toEqual(['metrics']);
      expect(principal.models).toBeUndefined();
    });

    it.each([
      ['expired', () => token(k1, {}, { exp: Math.floor(Date.now() / 1000) - 3600 }), /expired/],
      ['a wrong issuer', () => token(k1, {}, { iss: 'https://evil.test/' }), /"iss" claim failed/],
      ['a wrong audience', () => token(k1, {}, { aud: 'someone-else' }), /"aud" claim failed/],
      ['no exp (requireExpiry)', () => token(k1, {}, { exp: null }), /"exp" claim failed/],
      ['alg none', async () => new UnsecuredJWT({ sub: 'x', scope: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }).encode(), /not allowed|not a well-formed/],
      ['HS256 (a shared secret)', () => new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(new TextEncoder().encode('a'.repeat(32))), /algorithm is not allowed/],
      ['a key not in the JWKS', async () => token(k2), /no key of auth\.jwt\.jwks matches/],
      [
        'a tampered payload',
        async () => {
          const [h, , s] = (await token(k1, { scope: 'infer' })).split('.');
          const forged = Buffer.from(JSON.stringify({ scope: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
          return `${h}.${forged}.${s}`;
        },
        /signature does not verify/,
      ],
      ['garbage', async () => 'aaa.bbb.ccc', /not a well-formed/],
    ])('should refuse a token with %s: 401 TESSERA_E_AUTH_INVALID, invalid_token, never quoting it', async (_what, make, message) => {
      const jwt = await make();
      const err = await refusal(verifier, jwt);
      expect(err.code).toBe('TESSERA_E_AUTH_INVALID');
      expect(err.status).toBe(401);
      expect(err.message).toMatch(message);
      expect(err.headers?.['www-authenticate']).toBe('Bearer realm="tessera", error="invalid_token"');
      for (const part of jwt.split('.')) if (part.length > 4) expect(err.message).not.toContain(part);
    });

    it('should accept a token of a rotated key once the file changes, and keep the keys when the file breaks', async () => {
      const jwt2 = await token(k2, { sub: 'rotated' });
      expect((await refusal(verifier, jwt2)).code).toBe('TESSERA_E_AUTH_INVALID');
      await writeFile(file, JSON.stringify({ keys: [k2.jwk] }));
      await until(() => logger.records.some((r) => r.msg?.includes('re-read')), 5_000);
      expect((await verifier.verify(jwt2)).id).toBe('rotated');
      // k1 was rotated out
      expect((await refusal(verifier, await token(k1))).message).toMatch(/no key/);
      await writeFile(file, '{"keys": [ not json');
      await until(() => logger.records.some((r) => r.level === 'error'), 5_000);
      expect(logger.records.find((r) => r.level === 'error')?.msg).toContain(file);
      expect((await verifier.verify(jwt2)).id).toBe('rotated');
    });
  });

  it('should refuse to start with a JWKS file that is missing or not a JWKS', async () => {
    await expect(JwtVerifier.create(config(path.join(dir, 'none.json')), recordingLogger())).rejects.toThrow(/auth\.jwt\.jwks: .*none\.json is not a readable JWKS/);
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"not": "a jwks"}');
    await expect(JwtVerifier.create(config(bad), recordingLogger())).rejects.toThrow(/bad\.json is not a readable JWKS/);
  });

  describe('having a JWKS URL (a real loopback HTTP server)', () => {
    let server: Server;
    let url: string;
    let served: { status: number; keys: JWK[] } = { status: 200, keys: [] };
    let fetches = 0;
    beforeAll(async () => {
      server = createServer((_req, res) => {
        fetches++;
        res.writeHead(served.status, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served.keys }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('should fetch the keys, cache them, and refetch when a token names an unknown kid (rotation)', async () => {
      served = { status: 200, keys: [k1.jwk] };
      fetches = 0;
      const verifier = await JwtVerifier.create(config(url), recordingLogger());
      expect(fetches).toBe(1);
      expect((await verifier.verify(await token(k1, { sub: 'a' }))).id).toBe('a');
      expect((await verifier.verify(await token(k1, { sub: 'b' }))).id).toBe('b');
      expect(fetches).toBe(1);
      // the issuer rotates: k2 is published, and a token signed with it arrives
      served = { status: 200, keys: [k2.jwk, k1.jwk] };
      expect((await verifier.verify(await token(k2, { sub: 'c' }))).id).toBe('c');
      expect(fetches).toBe(2);
      // a kid the issuer does not publish stays refused, after one more look
      const stranger = await signingKey('k3');
      expect((await refusal(verifier, await token(stranger))).code).toBe('TESSERA_E_AUTH_INVALID');
      verifier.close();
    });

    it('should answer 503 TESSERA_E_AUTH_UNAVAILABLE while the JWKS cannot be fetched, logging it once', async () => {
      served = { status: 500, keys: [] };
      const logger = recordingLogger();
      const verifier = await JwtVerifier.create(config(url), logger);
      for (let i = 0; i < 3; i++) {
        const err = await refusal(verifier, await token(k1));
        expect(err.code).toBe('TESSERA_E_AUTH_UNAVAILABLE');
        expect(err.status).toBe(503);
        expect(err.headers?.['retry-after']).toBeDefined();
      }
      expect(logger.records.filter((r) => r.level === 'error')).toHaveLength(1);
      served = { status: 200, keys: [k1.jwk] };
      expect((await verifier.verify(await token(k1, { sub: 'back' }))).id).toBe('back');
      expect(logger.records.some((r) => r.level === 'info' && r.msg?.includes('can be fetched again'))).toBe(true);
    });
  });
});
