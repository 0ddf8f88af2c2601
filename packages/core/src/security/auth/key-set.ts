import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig } from '../../config/types.js';
import type { Principal } from '../principal.js';

/** A configured key as the set keeps it: its digest and who it is, never the secret. */
interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

/** SHA-256 of a key: what is compared, so that every comparison has the same length. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The principal id of a key without a name: `key:` and the first 12 hex digits of its SHA-256. */
export function anonymousKeyId(key: string): string {
  return `key:${keyDigest(key).toString('hex').slice(0, 12)}`;
}

/**
 * The API keys the server accepts (the config's and the keys file's), looked up in constant time:
 * the presented key is hashed and compared with every configured digest by `timingSafeEqual`,
 * without stopping at a match, so the time taken says nothing about which key, or how much of one,
 * matched. Holds digests only. `replace` swaps the whole set at once (a keys file reload).
 */
export class ApiKeySet {
  #entries: readonly Entry[];

  constructor(keys: readonly ApiKeyConfig[] = []) {
    this.#entries = keys.map(toEntry);
  }

  /** How many keys are accepted. */
  get size(): number {
    return this.#entries.length;
  }

  /** Accepts exactly `keys` from now on. */
  replace(keys: readonly ApiKeyConfig[]): void {
    this.#entries = keys.map(toEntry);
  }

  /** The principal of `presented`, or undefined when no configured key equals it. */
  match(presented: string): Principal | undefined {
    const digest = keyDigest(presented);
    const entries = this.#entries;
    let found: Principal | undefined;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      // no early exit: every digest is compared, whatever matched before
      const equal = timingSafeEqual(entry.digest, digest);
      if (equal && found === undefined) found = entry.principal;
    }
    return found;
  }
}

function toEntry(key: ApiKeyConfig): Entry {
  const principal: Principal = {
    id: key.name ?? anonymousKeyId(key.key),
    kind: 'api-key',
    scopes: new Set(key.scopes),
    models: key.models ? new Set(key.models) : undefined,
    ...(key.rateLimit ? { rateLimit: { max: key.rateLimit.max, timeWindowMs: key.rateLimit.timeWindowMs } } : {}),
  };
  return { digest: keyDigest(key.key), principal: Object.freeze(principal) };
}
