import path from 'node:path';
import type { ApiKeyConfig, AuthConfig, JwtConfig } from '../../config/types.js';
import { parseDuration } from '../../config/units.js';
import { TesseraError } from '../../errors.js';

/** Keys shorter than this are refused: they can be guessed. */
export const MIN_KEY_LENGTH = 16;

/** One API key after the schema validated it (defaults filled in, durations not parsed yet). */
export interface ValidApiKey {
  name?: string;
  key: string;
  scopes: ApiKeyConfig['scopes'];
  models?: string[];
  rateLimit?: { max: number; timeWindow: number | string };
}

/** `auth` after the schema validated it. */
export interface ValidAuth {
  apiKeys: ValidApiKey[];
  apiKeysFile?: string;
  jwt?: Omit<JwtConfig, 'clockToleranceMs' | 'cooldownMs' | 'cacheMaxAgeMs' | 'timeoutMs'> & {
    clockTolerance: number | string;
    cooldown: number | string;
    cacheMaxAge: number | string;
    timeout: number | string;
  };
  metrics: AuthConfig['metrics'];
}

const URL_SCHEME = /^https?:\/\//i;

/**
 * `auth` as the server uses it: durations in ms, the keys file and a JWKS file absolute (against
 * `configDir`), each key checked. Throws `TESSERA_E_CONFIG_INVALID` naming the path, never the key.
 */
export function resolveAuthConfig(raw: ValidAuth, configDir: string): AuthConfig {
  const { apiKeys, apiKeysFile, jwt, metrics } = raw;
  if (apiKeys.length === 0 && apiKeysFile === undefined && jwt === undefined) {
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', 'auth: configure at least one of apiKeys, apiKeysFile or jwt (with none, every request but health probes would be refused)');
  }
  return {
    apiKeys: resolveApiKeys(apiKeys, 'auth.apiKeys'),
    ...(apiKeysFile !== undefined ? { apiKeysFile: path.resolve(configDir, apiKeysFile) } : {}),
    ...(jwt ? { jwt: resolveJwt(jwt, configDir) } : {}),
    metrics,
  };
}

/**
 * Validated key entries as `ApiKeyConfig`s: windows parsed, keys at least `MIN_KEY_LENGTH` long,
 * names and keys unique, also against `others` (the config's keys, for the keys file). Shared by
 * the config and the keys file (`basePath` names where they are).
 */
export function resolveApiKeys(raw: readonly ValidApiKey[], basePath: string, others: readonly ApiKeyConfig[] = []): ApiKeyConfig[] {
  const names = new Map<string, string>(others.flatMap((k, i) => (k.name !== undefined ? [[k.name, `auth.apiKeys[${i}]`] as const] : [])));
  const secrets = new Map<string, string>(others.map((k, i) => [k.key, `auth.apiKeys[${i}]`] as const));
  return raw.map((entry, i) => {
    const where = `${basePath}[${i}]`;
    if (entry.key.length < MIN_KEY_LENGTH) {
      throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}.key: must be at least ${MIN_KEY_LENGTH} characters long (got ${entry.key.length}); use a random key, e.g. openssl rand -hex 32`);
    }
    const sameKey = secrets.get(entry.key);
    if (sameKey !== undefined) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}.key: the same key as ${sameKey}; give every client its own key`);
    secrets.set(entry.key, where);
    if (entry.name !== undefined) {
      const sameName = names.get(entry.name);
      if (sameName !== undefined) throw new TesseraError('TESSERA_E_CONFIG_INVALID', `${where}.name: "${entry.name}" is also the name of ${sameName}; names must be unique`);
      names.set(entry.name, where);
    }
    return {
      ...(entry.name !== undefined ? { name: entry.name } : {}),
      key: entry.key,
      scopes: [...entry.scopes],
      ...(entry.models ? { models: [...entry.models] } : {}),
      ...(entry.rateLimit ? { rateLimit: { max: entry.rateLimit.max, timeWindowMs: parseDuration(entry.rateLimit.timeWindow, `${where}.rateLimit.timeWindow`) } } : {}),
    };
  });
}

function resolveJwt(raw: NonNullable<ValidAuth['jwt']>, configDir: string): JwtConfig {
  const { clockTolerance, cooldown, cacheMaxAge, timeout, jwks, ...rest } = raw;
  return {
    ...rest,
    jwks: URL_SCHEME.test(jwks) ? jwks : path.resolve(configDir, jwks),
    clockToleranceMs: parseDuration(clockTolerance, 'auth.jwt.clockTolerance'),
    cooldownMs: parseDuration(cooldown, 'auth.jwt.cooldown'),
    cacheMaxAgeMs: parseDuration(cacheMaxAge, 'auth.jwt.cacheMaxAge'),
    timeoutMs: parseDuration(timeout, 'auth.jwt.timeout'),
  };
}

/** Whether `jwks` is a URL (fetched by jose) rather than a file. */
export function isJwksUrl(jwks: string): boolean {
  return URL_SCHEME.test(jwks);
}
