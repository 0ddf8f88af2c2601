import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseDecoder, readSseData } from './sse.js';

async function* body(pieces: (string | Uint8Array)[]): AsyncGenerator<string | Uint8Array> {
  yield* pieces;
}

async function read(pieces: (string | Uint8Array)[]): Promise<string[]> {
  const out: string[] = [];
  for await (const data of readSseData(body(pieces))) out.push(data);
  return out;
}

/** `text` cut at `cuts` (byte offsets of its UTF-8), as the network may deliver it. */
function split(text: string, cuts: number[]): Uint8Array[] {
  const bytes = new TextEncoder().encode(text);
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    if (c > from) out.push(bytes.subarray(from, c));
    from = c;
  }
  return out;
}

describe(readSseData, () => {
  it('should yield each event of whole-event pieces, as vLLM writes them', async () => {
    expect(await read(['data: {"a":1}\n\n', 'data: {"b":2}\n\n', 'data: [DONE]\n\n'])).toEqual(['{"a":1}', '{"b":2}', '[DONE]']);
  });

  it('should join data lines, skip comments and other fields, and take CRLF line ends', async () => {
    expect(await read([': ping\n\n', 'event: x\ndata: one\ndata:two\n\n', 'data: three\r\n\r\n', 'data: four\n\n'])).toEqual(['one\ntwo', 'three', 'four']);
  });

  it('should yield a last event without its blank line at the end of the body', async () => {
    expect(await read(['data: a\n\n', 'data: b'])).toEqual(['a', 'b']);
  });

  it('should yield the same events however the bytes are cut, with LF or CRLF, multi-byte text included', async () => {
    const event = fc.array(fc.string({ unit: 'grapheme', minLength: 0, maxLength: 12 }).filter((s) => !/[\r\n]/.test(s)), { minLength: 1, maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), async (events, crlf, cuts) => {
        const eol = crlf ? '\r\n' : '\n';
        const text = events.map((lines) => lines.map((l) => `data: ${l}${eol}`).join('') + eol).join('');
        expect(await read(split(text, cuts))).toEqual(events.map((lines) => lines.join('\n')));
      }),
      { numRuns: 300 },
    );
  });
});

describe(SseDecoder, () => {
  it('should return the events each piece completes, and the unterminated last one at the end', () => {
    const d = new SseDecoder();
    expect(d.push('data: a\n\ndata: b')).toEqual(['a']);
    expect(d.push('\n\ndata: c\n')).toEqual(['b']);
    expect(d.push('\n')).toEqual(['c']);
    expect(d.push('data: d')).toEqual([]);
    expect(d.end()).toEqual(['d']);
    expect(d.end()).toEqual([]);
  });
});
