/**
 * A stable point in [0, 1) for a string (FNV-1a, 32 bits, then a murmur3 finaliser so that close
 * strings such as `user-1` and `user-2` land far apart). The same value gives the same point in
 * every process, on every replica and after restarts: what sticky assignment needs.
 */
export function unitHash(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** The header's first value, when the request carries it. */
export function headerValue(headers: Readonly<Record<string, string | string[] | undefined>>, name: string | undefined): string | undefined {
  if (!name) return undefined;
  const v = headers[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined || first === '' ? undefined : first;
}
