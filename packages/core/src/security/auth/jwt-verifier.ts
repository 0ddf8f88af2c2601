import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { Logger } from 'pino';
import type { JwtConfig } from '../../config/types.js';
import { TesseraError, errorMessage } from '../../errors.js';
import type { Principal, Scope } from '../principal.js';
import { SCOPES } from '../principal.js';
import { watchContent } from './file-watch.js';
import { isJwksUrl } from './options.js';

/** jose's codes for a token that is wrong (401); anything else means the keys could not be had (503). */
const TOKEN_ERRORS = new Set([
  errors.JWTExpired.code,
  errors.JWTClaimValidationFailed.code,
  errors.JWTInvalid.code,
  errors.JWSInvalid.code,
  errors.JWSSignatureVerificationFailed.code,
  errors.JOSEAlgNotAllowed.code,
  errors.JOSENotSupported.code,
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
  errors.JWKInvalid.code,
]);

/** What a 401 for a bad token carries (RFC 6750). */
export const INVALID_TOKEN_HEADERS = { 'www-authenticate': 'Bearer realm="tessera", error="invalid_token"' };

/**
 * Verifies bearer JWTs with jose against `auth.jwt`: the signature with a key of the JWKS (a URL,
 * cached by jose and refetched when a token names an unknown `kid`, i.e. after a key rotation; or
 * a file, re-read when it changes), the algorithm against the allowed list (never `none` or
 * HMAC), `exp`/`nbf` with the clock tolerance, `iss` and `aud`. The verified claims become a
 * `Principal`: `sub` (or `jwt:` + `jti`) as its id, the scopes and models claims.
 */
export class JwtVerifier {
  readonly #config: JwtConfig;
  readonly #logger: Logger;
  #keys: JWTVerifyGetKey;
  readonly #stop: (() => void) | undefined;
  /** Whether the JWKS URL is failing now (logged once per outage). */
  #jwksDown = false;

  private constructor(config: JwtConfig, logger: Logger, keys: JWTVerifyGetKey, watch: ((verifier: JwtVerifier) => () => void) | undefined) {
    this.#config = config;
    this.#logger = logger;
    this.#keys = keys;
    this.#stop = watch?.(this);
  }

  /**
   * A verifier for `config`. A JWKS file is read now (unreadable or invalid: a config error); a
   * JWKS URL is fetched once now, and a failure is only logged (jose fetches again on demand).
   */
  static async create(config: JwtConfig, logger: Logger): Promise<JwtVerifier> {
    if (isJwksUrl(config.jwks)) {
      const remote = createRemoteJWKSet(new URL(config.jwks), { cooldownDuration: config.cooldownMs, cacheMaxAge: config.cacheMaxAgeMs, timeoutDuration: config.timeoutMs });
      const verifier = new JwtVerifier(config, logger, remote, undefined);
      await remote.reload().catch((err: unknown) => verifier.#keysFailed(err));
      return verifier;
    }
    const file = config.jwks;
    let text: string;
    let keys: JWTVerifyGetKey;
    try {
      text = readFileSync(file, 'utf8');
      keys = localKeys(text);
    } catch (err) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `auth.jwt.jwks: ${file} is not a readable JWKS ({"keys": [...]}): ${errorMessage(err)}`, { cause: err });
    }
    return new JwtVerifier(config, logger, keys, (verifier) => watchContent(file, text, (changed) => verifier.#reloadFile(changed)));
  }

  /** The principal of a valid token; throws 401 `TESSERA_E_AUTH_INVALID` (or 503 when the keys cannot be fetched). */
  async verify(token: string): Promise<Principal> {
    const c = this.#config;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: c.algorithms,
        clockTolerance: c.clockToleranceMs / 1000,
        ...(c.issuer !== undefined ? { issuer: c.issuer } : {}),
        ...(c.audience !== undefined ? { audience: c.audience } : {}),
        ...(c.requireExpiry ? { requiredClaims: ['exp'] } : {}),
      }));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && TOKEN_ERRORS.has(code)) {
        throw new TesseraError('TESSERA_E_AUTH_INVALID', `the bearer token was refused: ${tokenProblem(err)}; get a new token from the issuer`, { headers: INVALID_TOKEN_HEADERS });
      }
      this.#keysFailed(err);
      throw new TesseraError('TESSERA_E_AUTH_UNAVAILABLE', 'the bearer token cannot be checked now: the signing keys (auth.jwt.jwks) cannot be fetched; retry later', { headers: { 'retry-after': '5' } });
    }
    this.#keysUp();
    return principalOf(payload, token, c);
  }

  /** Stops watching a JWKS file. Idempotent. */
  close(): void {
    this.#stop?.();
  }

  #reloadFile(text: string): void {
    try {
      this.#keys = localKeys(text);
    } catch (err) {
      this.#logger.error({ file: this.#config.jwks }, `auth.jwt.jwks ${this.#config.jwks} is not a valid JWKS, keeping the keys read before: ${errorMessage(err)}`);
      return;
    }
    this.#logger.info({ file: this.#config.jwks }, `auth.jwt.jwks ${this.#config.jwks} re-read`);
  }

  #keysFailed(err: unknown): void {
    if (this.#jwksDown) return;
    this.#jwksDown = true;
    this.#logger.error({ jwks: this.#config.jwks }, `auth.jwt.jwks ${this.#config.jwks} cannot be fetched: ${errorMessage(err)}; tokens that need it answer 503 until it can`);
  }

  #keysUp(): void {
    if (!this.#jwksDown) return;
    this.#jwksDown = false;
    this.#logger.info({ jwks: this.#config.jwks }, `auth.jwt.jwks ${this.#config.jwks} can be fetched again`);
  }
}

function localKeys(text: string): JWTVerifyGetKey {
  return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
}

/** What was wrong with a token, in words that never quote it. */
function tokenProblem(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'it expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `its "${err.claim}" claim failed the check (${err.reason})`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'its signature algorithm is not allowed (auth.jwt.algorithms)';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of auth.jwt.jwks matches its "kid" and "alg"';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  return 'it is not a well-formed signed JWT';
}

/** A verified token's principal. */
function principalOf(payload: JWTPayload, token: string, config: JwtConfig): Principal {
  const id = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : typeof payload.jti === 'string' && payload.jti !== '' ? `jwt:${payload.jti}` : `jwt:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
  const scopes = new Set(claimList(payload[config.scopesClaim]).filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)));
  const models = payload[config.modelsClaim];
  return Object.freeze({ id, kind: 'jwt' as const, scopes, models: models === undefined ? undefined : new Set(claimList(models)) });
}

/** A claim as a list of strings: a space-separated string (OAuth 2 `scope`) or an array; anything else: none. */
function claimList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}
