import type { HookRequest } from '../contracts/hook.js';

/** What a credential allows: inference (and metadata), admin endpoints, metric scrapes. */
export type Scope = 'infer' | 'admin' | 'metrics';

/** The scopes there are, for schemas and messages. */
export const SCOPES: readonly Scope[] = ['infer', 'admin', 'metrics'];

/**
 * Who sent a request, as the core's authentication found it: an API key from the config or the
 * keys file, or a verified JWT. Never holds the secret itself.
 */
export interface Principal {
  /**
   * Safe to log and to use as a rate-limit key: an API key's `name`, or `key:` and the first 12 hex
   * digits of the key's SHA-256 when it has none; a JWT's `sub` (or `jwt:` and its `jti`).
   */
  readonly id: string;
  readonly kind: 'api-key' | 'jwt';
  readonly scopes: ReadonlySet<Scope>;
  /** The models it may use; undefined: every model. */
  readonly models: ReadonlySet<string> | undefined;
  /** Its own rate limit, overriding `server.rateLimit`'s `max` and `timeWindow`. */
  readonly rateLimit?: { readonly max: number; readonly timeWindowMs: number } | undefined;
}

/** The `locals` key under which authentication leaves the principal for later hooks. */
export const PRINCIPAL: unique symbol = Symbol.for('@tessera/core/principal') as never;

/** The principal authentication found for a request; undefined when auth is off (or the endpoint is open). */
export function principalOf(request: Pick<HookRequest, 'locals'>): Principal | undefined {
  return request.locals.get(PRINCIPAL) as Principal | undefined;
}
