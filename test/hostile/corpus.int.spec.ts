/**
 * The hostile-request corpus (corpus.ts) against a real server on loopback (real ONNX Runtime
 * sessions): every entry gets its expected status and code, in the error shape of its path, and
 * never a 5xx; afterwards the server still answers a good request, Object.prototype is untouched,
 * and its memory has not grown absurdly. Requests go over raw sockets, byte for byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS, requestBytes } from './corpus.js';
import type { HostileServer } from './support.js';
import { codeOf, goodRequest, rawRequest, startHostileServer, wellFormedError } from './support.js';

let hostile: HostileServer;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
let rssBefore = 0;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  hostile = await startHostileServer();
  rssBefore = process.memoryUsage().rss;
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await hostile?.close();
});

describe('the hostile-request corpus', () => {
  it.each(CORPUS.map((e) => [e.name, e] as const))('%s', async (_name, e) => {
    const res = await rawRequest(hostile.port, requestBytes(e), { ...(e.stall ? { stall: true } : {}), timeoutMs: 15_000 });
    expect(res.status, `${e.name}: ${res.body.slice(0, 300)}`).toBe(e.expect.status);
    if (e.expect.status >= 400) {
      expect(wellFormedError(e.path, res.json), res.body.slice(0, 300)).toBe(true);
      expect(codeOf(res.json)).toBe(e.expect.code);
    }
  });

  it('should leave the server answering, Object.prototype clean, no rejection unhandled and memory bounded', async () => {
    const good = await goodRequest(hostile.url);
    expect(good.status).toBe(200);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(unhandled).toEqual([]);
    const rssAfter = process.memoryUsage().rss;
    console.log(`hostile corpus: ${CORPUS.length} requests; rss ${(rssBefore / 2 ** 20).toFixed(0)} MiB → ${(rssAfter / 2 ** 20).toFixed(0)} MiB`);
    // generous: the corpus sends a few megabytes; a limit that allocated per declared shape would take gigabytes
    expect(rssAfter - rssBefore).toBeLessThan(1024 * 2 ** 20);
  });
});
