/**
 * bench/lib/wrk-load.mjs, the benchmarks' second load generator (BENCH_LOADGEN=wrk): that the load
 * wrk sends is the request the benchmark meant (method, headers, the body file byte for byte), and
 * that what it reports — answers, non-2xx answers, the rate — is what a server on loopback counted.
 * Needs Debian's wrk (`.ci/run` installs it); skipped with the reason when it is missing.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../integration/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const { wrkLoad } = (await import(pathToFileURL(path.join(ROOT, 'bench', 'lib', 'wrk-load.mjs')).href)) as { wrkLoad: (o: Record<string, unknown>) => Promise<any> };

function wrkMissing(): string | undefined {
  try {
    execFileSync(process.env['BENCH_WRK'] ?? 'wrk', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch (error) {
    // `wrk --version` prints its banner and exits 1; only a missing binary throws ENOENT
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'wrk is not installed (apt-get install wrk)' : undefined;
  }
}

describe.skipIf(wrkMissing() !== undefined)(`wrk as the benchmarks' load generator${wrkMissing() ? ` (skipped: ${wrkMissing()})` : ''}`, () => {
  const body = Buffer.alloc(70_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  let url: string;
  let bodyFile: string;
  let server: ReturnType<typeof createServer>;
  const seen = { requests: 0, wrongBody: 0, wrongHeaders: 0, answered500: 0 };

  beforeAll(async () => {
    const dir = await tempDir('tessera-wrk-');
    bodyFile = path.join(dir, 'body.bin');
    await writeFile(bodyFile, body);
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.requests++;
        if (req.method !== 'POST' || !Buffer.concat(chunks).equals(body)) seen.wrongBody++;
        if (req.headers['content-type'] !== 'application/octet-stream' || req.headers['inference-header-content-length'] !== '42') seen.wrongHeaders++;
        // every 10th answer is a 500: wrk must count it as non-2xx, not as a served request
        if (seen.requests % 10 === 0) {
          seen.answered500++;
          res.writeHead(500).end('no');
        } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/models/m/infer`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('should send the body file and headers it is given and report what the server counted', async () => {
    const r = await wrkLoad({ url, bodyFile, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '42' }, connections: 4, durationS: 1, threads: 2 });
    expect(seen.wrongBody).toBe(0);
    expect(seen.wrongHeaders).toBe(0);
    expect(r.loadGenerator).toBe('wrk');
    expect(r.threads).toBe(2);
    expect(r.errors).toBe(0);
    // wrk stops with requests still in flight: the server may have seen up to one more per connection
    expect(seen.requests).toBeGreaterThan(20);
    expect(seen.requests - r.requests).toBeGreaterThanOrEqual(0);
    expect(seen.requests - r.requests).toBeLessThanOrEqual(4);
    expect(Math.abs(r.non2xx - seen.answered500)).toBeLessThanOrEqual(1);
    expect(r.reqPerSec).toBeCloseTo((r.requests - r.non2xx) / r.durationS, 6);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.p99).toBeGreaterThanOrEqual(r.latencyMs.p50);
    expect(r.loadCpuPct).toBeGreaterThan(0);
  });

  it('should refuse a target other than 127.0.0.1', async () => {
    await expect(wrkLoad({ url: 'http://localhost:1/x', bodyFile, connections: 1, durationS: 1 })).rejects.toThrow(/127\.0\.0\.1 only/);
  });
});
