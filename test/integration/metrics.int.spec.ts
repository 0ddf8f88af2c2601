/**
 * `GET /metrics` after real traffic through the real CLI: the DESIGN §6 series exist with model and
 * version labels, batch sizes are recorded, and unknown model names create no series.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { http, tempDir, writeConfig } from './helpers.js';

let server: TesseraProcess;

/** Parses Prometheus text into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

beforeAll(async () => {
  const dir = await tempDir();
  const models = await writeTestModels(dir);
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    models: { affine: { versions: { '1': { path: models.affine.path }, '2': { path: models.affineV2.path } } } },
  });
  server = await startTessera({ args: ['serve', '-c', config] });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('GET /metrics', () => {
  it('should expose request, latency, batch and readiness series after traffic', async () => {
    const x = { name: 'x', datatype: 'FP32', shape: [3, 4], data: new Array(12).fill(1) };
    for (let i = 0; i < 5; i++) expect((await http(`${server.url}/v2/models/affine/versions/1/infer`, { json: { inputs: [x] } })).status).toBe(200);
    await http(`${server.url}/v2/models/affine/versions/1/infer`, { json: { inputs: [{ ...x, shape: [2, 4] }] } });
    await http(`${server.url}/v2/models/no-such-model/infer`, { json: { inputs: [x] } });
    const res = await http(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const m = parseMetrics(res.text);
    expect(m.get('tessera_requests_total{model="affine",version="1",protocol="v2",code="200"}')).toBe(5);
    expect(m.get('tessera_requests_total{model="affine",version="1",protocol="v2",code="400"}')).toBe(1);
    expect(m.get('tessera_batch_size_count{model="affine",version="1"}')).toBe(5);
    expect(m.get('tessera_batch_size_sum{model="affine",version="1"}')).toBe(15);
    expect(m.get('tessera_request_duration_seconds_count{model="affine",version="1",protocol="v2"}')).toBe(6);
    expect(m.get('tessera_inference_duration_seconds_count{model="affine",version="1"}')).toBe(5);
    expect(m.get('tessera_queue_duration_seconds_count{model="affine",version="1"}')).toBe(5);
    expect(m.get('tessera_model_ready{model="affine",version="2"}')).toBe(1);
    expect(m.get('tessera_queue_depth{model="affine",version="1"}')).toBe(0);
    expect(m.has('tessera_inflight_requests')).toBe(true);
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);
    expect(res.text).not.toContain('no-such-model');
  });

  it('should show the route weights of the default router: all traffic to the newest ready version', async () => {
    const m = parseMetrics((await http(`${server.url}/metrics`)).text);
    expect(m.get('tessera_route_weight{model="affine",version="2"}')).toBe(1);
    expect(m.get('tessera_route_weight{model="affine",version="1"}')).toBe(0);
  });

  it('should serve /metrics and /health on server.metricsPort as well', async () => {
    expect(server.metricsUrl).toBeDefined();
    expect(server.metricsUrl).not.toBe(server.url);
    const res = await http(`${server.metricsUrl!}/metrics`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('tessera_requests_total{model="affine"');
    expect((await http(`${server.metricsUrl!}/health`)).status).toBe(200);
    // only metrics and health there: no inference on the scrape port
    expect((await http(`${server.metricsUrl!}/v2/models/affine/infer`, { json: { inputs: [] } })).status).toBe(404);
  });
});
