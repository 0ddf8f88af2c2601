/** The JSON depth check (a byte scan before any parse) and the server's JSON body parser. */
import fc from 'fast-check';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing/throws.js';
import { checkJsonDepth, jsonBodyParser } from './limits.js';

/** Nesting depth of a JSON value: a scalar 0, `[]` 1, `[[1]]` 2. */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (v !== null && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

describe(checkJsonDepth, () => {
  it('should pass JSON exactly as deep as the limit and refuse it one level shallower (brackets in strings not counted)', () => {
    const tricky = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', 'é') });
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, tricky, fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(tricky, tie('node'), { maxKeys: 3 })),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const text = Buffer.from(JSON.stringify(v));
        const depth = depthOf(v);
        expect(thrownCode(() => checkJsonDepth(text, Math.max(depth, 1)))).toBeUndefined();
        if (depth > 1) expect(thrownCode(() => checkJsonDepth(text, depth - 1))).toBe('TESSERA_E_REQUEST_TOO_DEEP');
      }),
      { numRuns: 300 },
    );
  });

  it('should refuse a million open brackets without parsing them', () => {
    expect(thrownCode(() => checkJsonDepth(Buffer.from('['.repeat(1_000_000)), 64))).toBe('TESSERA_E_REQUEST_TOO_DEEP');
  });
});

describe(jsonBodyParser, () => {
  const app = Fastify();
  const parse = jsonBodyParser(app, { maxJsonDepth: 8 });
  const request = {} as Parameters<typeof parse>[0];

  it('should parse plain JSON', () => {
    expect(parse(request, Buffer.from('{"a":[1,2,{"b":"é"}]}'))).toEqual({ a: [1, 2, { b: 'é' }] });
  });

  it.each([
    ['{"__proto__": {"polluted": 1}}'],
    ['{"a": {"__proto__": {"polluted": 1}}}'],
    ['{"constructor": {"prototype": {"polluted": 1}}}'],
    // spelt with escapes: the fast path (no such word in the text) must not take these
    ['{"\\u005f\\u005fproto\\u005f\\u005f": {"polluted": 1}}'],
    ['{"a": ["x", {"\\u005F_proto__": {"polluted": 1}}]}'],
  ])('should refuse %s and leave Object.prototype alone', (text) => {
    expect(() => parse(request, Buffer.from(text))).toThrow(/prototype/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('should refuse bytes that are not UTF-8 and JSON nested past the limit, each with its code', () => {
    expect(thrownCode(() => parse(request, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])))).toBe('TESSERA_E_REQUEST_INVALID');
    expect(thrownCode(() => parse(request, Buffer.from('[[[[[[[[[1]]]]]]]]]')))).toBe('TESSERA_E_REQUEST_TOO_DEEP');
  });
});
