/**
 * The jsonl-exporter example, as its README runs it: `tessera serve` on the example's config with
 * the events file in a temporary folder, traffic over HTTP, then SIGTERM — and the file read back:
 * a line per answered request, per executed batch and per model state change, the last ones
 * written during shutdown. /metrics is still served, since the config keeps `prometheus`.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { runTesseraCli, startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = 'examples/jsonl-exporter/tessera.config.yaml';
const CROP = new Array<number>(3 * 48 * 192).fill(0.5);

async function readLines(file: string): Promise<any[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('examples/jsonl-exporter served by the CLI', () => {
  let server: TesseraProcess;
  let file: string;
  let lines: any[];
  const ids = Array.from({ length: 6 }, (_, i) => `jsonl-${i}`);

  beforeAll(async () => {
    file = path.join(await mkdtemp(path.join(tmpdir(), 'tessera-jsonl-')), 'events.jsonl');
    server = await startTessera({ args: ['serve', '-c', CONFIG, '--port', '0'], cwd: ROOT, env: { TESSERA_HOST: '127.0.0.1', TESSERA_EVENTS_FILE: file }, timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    // stopped by the SIGTERM test already, unless a test before it failed (stop is idempotent)
    await server?.stop();
  });

  const post = (urlPath: string, body: unknown, id: string): Promise<Response> =>
    fetch(`${server.url}${urlPath}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify(body) });

  it('should serve traffic and keep /metrics (prometheus stays in the exporters list)', async () => {
    const answers = await Promise.all(ids.map((id) => post('/v2/models/text-orientation/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: CROP }] }, id)));
    expect(answers.map((r) => r.status)).toEqual(ids.map(() => 200));
    expect((await post('/v1/predict', { model: 'text-orientation', inputs: { x: [new Array(3).fill(new Array(48).fill(new Array(192).fill(0.5)))] } }, 'jsonl-predict')).status).toBe(200);
    expect((await post('/v2/models/text-orientation/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 'jsonl-bad')).status).toBe(400);
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('tessera_requests_total{model="text-orientation",version="1",protocol="v2",code="200"} 6');
  });

  it('should write the buffered lines within flushIntervalMs while serving', async () => {
    const deadline = Date.now() + 5000;
    while ((await readLines(file)).filter((l) => l.event === 'request').length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await readLines(file)).filter((l) => l.event === 'request').map((l) => l.id)).toEqual(expect.arrayContaining([...ids, 'jsonl-predict', 'jsonl-bad']));
  });

  it('should flush the rest at SIGTERM: model states down to closed', async () => {
    expect(await server.stop()).toBe(0);
    lines = await readLines(file);
    const states = lines.filter((l) => l.event === 'modelState').map((l) => [l.model, l.version, l.state]);
    expect(states).toEqual([
      ['text-orientation', '1', 'loading'],
      ['text-orientation', '1', 'warming'],
      ['text-orientation', '1', 'ready'],
      ['text-orientation', '1', 'draining'],
      ['text-orientation', '1', 'closed'],
    ]);
    for (const l of lines) expect(Number.isNaN(Date.parse(l.time))).toBe(false);
  });

  it('should have one request line per answer, with its id, protocol, status and code', () => {
    const requests = lines.filter((l) => l.event === 'request');
    for (const id of ids) {
      expect(requests.find((l) => l.id === id)).toMatchObject({ method: 'POST', path: '/v2/models/text-orientation/infer', route: '/v2/models/:model/infer', protocol: 'v2', endpoint: 'infer', model: 'text-orientation', version: '1', status: 200 });
    }
    expect(requests.find((l) => l.id === 'jsonl-predict')).toMatchObject({ protocol: 'predict', status: 200 });
    expect(requests.find((l) => l.id === 'jsonl-bad')).toMatchObject({ status: 400, code: 'TESSERA_E_INPUT_SHAPE' });
    // scrapes are not requests of the API
    expect(requests.filter((l) => l.endpoint === 'metrics')).toEqual([]);
  });

  it('should have the batches that ran the requests: every admitted request in exactly one', () => {
    const batches = lines.filter((l) => l.event === 'batch');
    expect(batches.length).toBeGreaterThan(0);
    for (const b of batches) {
      expect(b).toMatchObject({ model: 'text-orientation', version: '1', ok: true, failed: 0 });
      expect(b.queueMs).toHaveLength(b.requests);
      expect(b.size).toBe(b.requests);
      expect(b.executeMs).toBeGreaterThan(0);
    }
    // six OIP v2 requests and one /v1/predict reached the batcher; the 400 did not
    expect(batches.reduce((n, b) => n + b.requests, 0)).toBe(7);
  });
});

describe('examples/jsonl-exporter config errors', () => {
  it('should refuse an event name it does not know, with its path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-jsonl-bad-'));
    const file = path.join(dir, 'tessera.config.yaml');
    await writeFile(file, `plugins: ['${path.join(import.meta.dirname, 'plugin.js')}']\nexporters: [prometheus, { exporter: jsonl, file: x.jsonl, events: [requests] }]\n`);
    const res = await runTesseraCli({ args: ['validate', '-c', file] });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TESSERA_E_CONFIG_INVALID');
    expect(res.stderr).toContain('exporters[1].events[0]: must be one of: request, shadow, batch, modelState, generation, upstream, got "requests"');
  });
});
