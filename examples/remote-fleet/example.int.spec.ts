/**
 * The remote-fleet example, as its README runs it: two upstream servers and the gateway started
 * through the CLI on the example's configs (ports chosen by the OS, passed the way the README's
 * env variables do), a real inference through the gateway compared with an upstream's own answer,
 * then the fleet losing one server and then both.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const UPSTREAM = 'examples/remote-fleet/upstream.yaml';
const GATEWAY = 'examples/remote-fleet/tessera.config.yaml';

/** A deterministic [1, 3, 48, 192] input: horizontal stripes, as a text line roughly looks. */
const INPUT = Array.from({ length: 3 * 48 * 192 }, (_, i) => (Math.floor((i % (48 * 192)) / 192) % 8 < 4 ? -0.8 : 0.9));

async function infer(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/v2/models/text-orientation/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: INPUT }] }),
  });
  return { status: res.status, body: await res.json() };
}

const upstreams: TesseraProcess[] = [];
let gateway: TesseraProcess | undefined;

beforeAll(async () => {
  for (let i = 0; i < 2; i++) upstreams.push(await startTessera({ args: ['serve', '-c', UPSTREAM], cwd: ROOT, env: { PORT: '0' }, timeoutMs: 60_000 }));
  gateway = await startTessera({
    args: ['serve', '-c', GATEWAY],
    cwd: ROOT,
    env: { PORT: '0', UPSTREAM_A: upstreams[0]!.url, UPSTREAM_B: upstreams[1]!.url },
    timeoutMs: 60_000,
  });
}, 150_000);

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  for (const u of upstreams) await u.stop();
});

describe('examples/remote-fleet', () => {
  it("should serve the upstreams' model and answer exactly what an upstream answers", async () => {
    const meta = (await (await fetch(`${gateway!.url}/v2/models/text-orientation`)).json()) as { inputs: { name: string; shape: number[] }[] };
    expect(meta.inputs.map((i) => i.name)).toEqual(['x']);
    const direct = await infer(upstreams[0]!.url);
    const through = await infer(gateway!.url);
    expect(direct.status).toBe(200);
    expect(through.status).toBe(200);
    expect(through.body.outputs[0].shape).toEqual([1, 2]);
    expect(through.body.outputs[0].data).toEqual(direct.body.outputs[0].data);
  });

  it('should keep answering through the other upstream when one stops, and answer 503 when both have', async () => {
    expect(await upstreams[0]!.stop()).toBe(0);
    for (let i = 0; i < 6; i++) expect((await infer(gateway!.url)).status).toBe(200);
    expect(await upstreams[1]!.stop()).toBe(0);
    let last = await infer(gateway!.url);
    // the first requests may meet an upstream not yet ejected (502 after the retries); the probes eject both within a few intervals
    for (let i = 0; i < 50 && last.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 200));
      last = await infer(gateway!.url);
    }
    expect([last.status, last.body.code]).toEqual([503, 'TESSERA_E_UPSTREAM_UNAVAILABLE']);
    const ready = await fetch(`${gateway!.url}/v2/health/ready`);
    expect(ready.status).toBe(503);
  }, 60_000);
});
