/**
 * A consistent-hash ring with virtual nodes, the placement half of `prefix-affinity` picking
 * (the load bound lives in the replica pool, which knows the in-flight counts).
 *
 * Each member owns `virtualNodes` points on a ring of 2^53 positions, at `ringHash(member + "#" + i)`.
 * A key lands on the first point at or after `ringHash(key)` (clockwise, wrapping), and the walk
 * from there visits every member once, in ring order. Adding or removing a member only moves the
 * keys whose first point it owns (or now owns): about 1/n of them.
 */

const TWO_POW_32 = 0x1_0000_0000;
const UINT64 = 64;

/**
 * FNV-1a 64 of a string's UTF-8 bytes, as two unsigned 32-bit halves. The 64-bit multiply by the
 * FNV prime 2^40 + 0x1b3 is done in 32-bit halves so that no BigInt is needed per byte.
 */
function fnv1a64Parts(input: string): [hi: number, lo: number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const step = (byte: number): void => {
    lo = (lo ^ byte) >>> 0;
    // h * (2^40 + 0x1b3) mod 2^64: lo * 0x1b3 stays below 2^41, exact in a double
    const t = lo * 0x1b3;
    const carry = Math.floor(t / TWO_POW_32);
    hi = (Math.imul(hi, 0x1b3) + (lo << 8) + carry) >>> 0;
    lo = t >>> 0;
  };
  for (let i = 0; i < input.length; i++) {
    let c = input.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < input.length) {
      const d = input.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) {
      step(c);
    } else if (c < 0x800) {
      step(0xc0 | (c >> 6));
      step(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      // a lone surrogate is hashed as U+FFFD, as TextEncoder would encode it
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      step(0xe0 | (c >> 12));
      step(0x80 | ((c >> 6) & 0x3f));
      step(0x80 | (c & 0x3f));
    } else {
      step(0xf0 | (c >> 18));
      step(0x80 | ((c >> 12) & 0x3f));
      step(0x80 | ((c >> 6) & 0x3f));
      step(0x80 | (c & 0x3f));
    }
  }
  return [hi, lo];
}

/** FNV-1a 64 of a string's UTF-8 bytes (the reference function; `ringHash` adds a finalizer). */
export function fnv1a64(input: string): bigint {
  const [hi, lo] = fnv1a64Parts(input);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * The ring position of a string: FNV-1a 64 over its UTF-8 bytes, then MurmurHash3's 64-bit
 * finalizer (FNV alone spreads keys that differ only in their last bytes, like `url#1` and
 * `url#2`, poorly over the high bits), keeping the top 53 bits so positions are exact numbers.
 */
export function ringHash(input: string): number {
  const [hi, lo] = fnv1a64Parts(input);
  let k = (BigInt(hi) << 32n) | BigInt(lo);
  k ^= k >> 33n;
  k = BigInt.asUintN(UINT64, k * 0xff51afd7ed558ccdn);
  k ^= k >> 33n;
  k = BigInt.asUintN(UINT64, k * 0xc4ceb9fe1a85ec53n);
  k ^= k >> 33n;
  return Number(k >> 11n);
}

/**
 * A consistent-hash ring of string members (replica URLs) with virtual nodes. Not load-aware by
 * itself: walk it and skip members that are unavailable or over their bound.
 */
export class HashRing {
  readonly #virtualNodes: number;
  readonly #members = new Set<string>();
  #positions: number[] = [];
  #owners: string[] = [];
  #dirty = false;

  /** @param virtualNodes points per member on the ring (more: a more even share, a slower rebuild). */
  constructor(virtualNodes = 160) {
    if (!Number.isInteger(virtualNodes) || virtualNodes < 1) throw new RangeError(`virtualNodes must be an integer ≥ 1, got ${virtualNodes}`);
    this.#virtualNodes = virtualNodes;
  }

  /** Number of members. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether `member` is on the ring. */
  has(member: string): boolean {
    return this.#members.has(member);
  }

  /** Puts `member` on the ring (no-op if present). */
  add(member: string): void {
    if (this.#members.has(member)) return;
    this.#members.add(member);
    this.#dirty = true;
  }

  /** Takes `member` off the ring; returns whether it was there. */
  remove(member: string): boolean {
    const had = this.#members.delete(member);
    if (had) this.#dirty = true;
    return had;
  }

  /** The member that owns `key`, i.e. the first of `walk(key)`; undefined on an empty ring. */
  lookup(key: string): string | undefined {
    for (const member of this.walk(key)) return member;
    return undefined;
  }

  /**
   * Every member once, clockwise from `key`'s position: the owner first, then where its keys would
   * go if it were unavailable, and so on.
   */
  *walk(key: string): Generator<string, void, undefined> {
    this.#rebuild();
    const n = this.#positions.length;
    if (n === 0) return;
    const target = ringHash(key);
    // first point at or after the target (binary search), wrapping to 0
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#positions[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    const total = this.#members.size;
    const seen = new Set<string>();
    for (let i = 0; i < n && seen.size < total; i++) {
      const owner = this.#owners[(lo + i) % n]!;
      if (seen.has(owner)) continue;
      seen.add(owner);
      yield owner;
    }
  }

  #rebuild(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const points: Array<{ position: number; owner: string }> = [];
    for (const member of this.#members) {
      for (let i = 0; i < this.#virtualNodes; i++) points.push({ position: ringHash(`${member}#${i}`), owner: member });
    }
    // ties (vanishingly rare at 53 bits) are ordered by owner, so the ring never depends on insertion order
    points.sort((a, b) => a.position - b.position || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0));
    this.#positions = points.map((p) => p.position);
    this.#owners = points.map((p) => p.owner);
  }
}
