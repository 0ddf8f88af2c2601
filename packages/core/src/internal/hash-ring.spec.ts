import { describe, expect, it } from 'vitest';
import { HashRing, fnv1a64, ringHash } from './hash-ring.js';

const urls = (n: number): string[] => Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8000`);
const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `user ${i}: tell me about topic ${i * 7919}`);

function ringOf(members: string[], virtualNodes = 160): HashRing {
  const ring = new HashRing(virtualNodes);
  for (const m of members) ring.add(m);
  return ring;
}

function owners(ring: HashRing, ks: string[]): Map<string, string> {
  return new Map(ks.map((k) => [k, ring.lookup(k)!]));
}

describe('fnv1a64 / ringHash', () => {
  it('matches the FNV-1a 64 reference values over UTF-8 bytes', () => {
    // reference: h = 0xcbf29ce484222325; for each byte: h ^= b; h = h * 0x100000001b3 mod 2^64
    expect(fnv1a64('')).toBe(0xcbf29ce484222325n);
    expect(fnv1a64('a')).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64('foobar')).toBe(0x85944171f73967e8n);
    expect(fnv1a64('é😀')).toBe(0x52da6ebdce68376cn); // 2- and 4-byte UTF-8 sequences
    expect(fnv1a64('http://10.0.0.1:8000#159')).toBe(0x3fed08acda6128c5n);
  });

  it('gives stable 53-bit positions', () => {
    for (const k of keys(1000)) {
      const h = ringHash(k);
      expect(Number.isSafeInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(ringHash(k)).toBe(h);
    }
  });
});

describe('HashRing', () => {
  it('walks every member once, starting with the owner', () => {
    const ring = ringOf(urls(5));
    for (const k of keys(50)) {
      const walk = [...ring.walk(k)];
      expect(walk).toHaveLength(5);
      expect(new Set(walk).size).toBe(5);
      expect(walk[0]).toBe(ring.lookup(k));
    }
    expect(new HashRing().lookup('x')).toBeUndefined();
    expect([...new HashRing().walk('x')]).toEqual([]);
  });

  it('does not depend on the order members were added in', () => {
    const a = ringOf(urls(4));
    const b = ringOf(urls(4).reverse());
    const ks = keys(500);
    expect([...owners(a, ks)]).toEqual([...owners(b, ks)]);
  });

  it('spreads keys about evenly', () => {
    const ring = ringOf(urls(4));
    const counts = new Map<string, number>();
    const ks = keys(20_000);
    for (const k of ks) counts.set(ring.lookup(k)!, (counts.get(ring.lookup(k)!) ?? 0) + 1);
    expect(counts.size).toBe(4);
    for (const c of counts.values()) {
      expect(c / ks.length).toBeGreaterThan(0.25 * 0.8);
      expect(c / ks.length).toBeLessThan(0.25 * 1.2);
    }
  });

  it('moves only the removed member’s keys (about 1/n) when one leaves', () => {
    const members = urls(5);
    const ring = ringOf(members);
    const ks = keys(10_000);
    const before = owners(ring, ks);
    ring.remove(members[2]!);
    const after = owners(ring, ks);
    let moved = 0;
    for (const k of ks) {
      if (before.get(k) === members[2]) {
        moved++;
        expect(after.get(k)).not.toBe(members[2]);
      } else {
        expect(after.get(k)).toBe(before.get(k));
      }
    }
    expect(moved / ks.length).toBeGreaterThan(0.2 * 0.7);
    expect(moved / ks.length).toBeLessThan(0.2 * 1.3);
  });

  it('moves only about 1/(n+1) of the keys, all to the newcomer, when one joins', () => {
    const ring = ringOf(urls(5));
    const ks = keys(10_000);
    const before = owners(ring, ks);
    ring.add('http://10.0.0.99:8000');
    const after = owners(ring, ks);
    const moved = ks.filter((k) => after.get(k) !== before.get(k));
    for (const k of moved) expect(after.get(k)).toBe('http://10.0.0.99:8000');
    expect(moved.length / ks.length).toBeGreaterThan((1 / 6) * 0.7);
    expect(moved.length / ks.length).toBeLessThan((1 / 6) * 1.3);
  });

  it('tracks membership and rejects a bad virtual node count', () => {
    const ring = ringOf(['a', 'b']);
    ring.add('a');
    expect(ring.size).toBe(2);
    expect(ring.has('a')).toBe(true);
    expect(ring.remove('a')).toBe(true);
    expect(ring.remove('a')).toBe(false);
    expect(ring.lookup('anything')).toBe('b');
    expect(() => new HashRing(0)).toThrow(RangeError);
    expect(() => new HashRing(1.5)).toThrow(RangeError);
  });
});
