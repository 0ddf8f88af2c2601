/**
 * The pytorch-resnet example, as its README runs it on a machine without a GPU: `tessera serve` on
 * the example's config with `RESNET_DEVICE=cpu`, binary OIP v2 requests, and every answer checked
 * against the same seeded torchvision ResNet run by `reference.py` in a Python process of its own.
 * Skipped (saying why) only when no interpreter tried can import torch and torchvision.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { decodeBinaryInferResponse, encodeBinaryInferRequest, mulberry32, startTessera } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HERE = import.meta.dirname;
const CONFIG = 'examples/pytorch-resnet/tessera.config.yaml';
const SAMPLE = 3 * 224 * 224;
/** Same library, same weights, same input: only the order of float additions may differ (threads, batch size). */
const TOLERANCE = 1e-4;

/** The first interpreter that imports torch, torchvision and numpy, or why none does. */
function findPython(): { python?: string; reason?: string } {
  const tried = [...new Set([process.env['RESNET_PYTHON'], '/usr/bin/python3', 'python3'].filter((p): p is string => !!p))];
  const reasons: string[] = [];
  for (const python of tried) {
    const r = spawnSync(python, ['-c', 'import torch, torchvision, numpy'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python };
    reasons.push(`${python}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`)}`);
  }
  return { reason: `no interpreter imports torch and torchvision (${reasons.join('; ')})` };
}

const { python, reason } = findPython();

/** `n` samples [3, 224, 224] of values in [-1, 1), the same on every run. */
function samples(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const data = new Float32Array(n * SAMPLE);
  for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
  return data;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe.skipIf(python === undefined)(`examples/pytorch-resnet served on CPU${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let server: TesseraProcess;
  let dir: string;
  const input = samples(2, 20261204);

  /** reference.py's output for `data` ([n, 3, 224, 224]) with the weights of `seed`. */
  async function reference(data: Float32Array, seed = 0): Promise<Float32Array> {
    const n = data.length / SAMPLE;
    const inFile = path.join(dir, `x-${n}-${seed}.f32`);
    const outFile = path.join(dir, `y-${n}-${seed}.f32`);
    await writeFile(inFile, data);
    const r = spawnSync(python!, [path.join(HERE, 'reference.py'), '--input', inFile, '--shape', `${n},3,224,224`, '--output', outFile, '--seed', String(seed)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const bytes = await readFile(outFile);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  async function infer(data: Float32Array): Promise<{ status: number; shape?: number[]; datatype?: string; data?: Float32Array; body?: unknown }> {
    const n = data.length / SAMPLE;
    const req = encodeBinaryInferRequest([{ name: 'input', datatype: 'FP32', shape: [n, 3, 224, 224], data }], { binaryOutput: true });
    const res = await fetch(`${server.url}/v2/models/resnet/infer`, { method: 'POST', headers: req.headers, body: req.body });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) return { status: res.status, body: JSON.parse(body.toString('utf8')) };
    const decoded = decodeBinaryInferResponse(body, res.headers.get('inference-header-content-length'));
    const out = decoded.outputs.find((o) => o.name === 'output')!;
    return { status: 200, shape: out.shape, datatype: out.datatype, data: out.data as Float32Array };
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-pytorch-resnet-'));
    server = await startTessera({
      args: ['serve', '-c', CONFIG, '--port', '0'],
      cwd: ROOT,
      env: { TESSERA_HOST: '127.0.0.1', TESSERA_LOG_LEVEL: 'info', RESNET_PYTHON: python, RESNET_DEVICE: 'cpu', RESNET_ARCH: 'resnet18', RESNET_SEED: '0', RESNET_FP16: '0' },
      // importing torch and building the model in a busy 2-core container can take a while
      timeoutMs: 180_000,
    });
  }, 240_000);

  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("should serve models/resnet with config.pbtxt's tensors, and say in the log where the model runs", async () => {
    const res = await fetch(`${server.url}/v2/models/resnet`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      name: 'resnet',
      versions: ['1'],
      platform: 'python',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 224, 224] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1000] }],
      parameters: { max_batch_size: 32 },
    });
    expect(server.stdout.join('\n')).toContain('resnet: resnet18 (random weights, seed 0) on cpu');
  });

  it("should answer a batch of 2 with [2, 1000] equal to torch's own forward of the seeded model", async () => {
    const res = await infer(input);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.datatype).toBe('FP32');
    expect(res.shape).toEqual([2, 1000]);
    const expected = await reference(input);
    expect(maxAbsDiff(res.data!, expected)).toBeLessThanOrEqual(TOLERANCE);
    // the comparison can tell models apart: other weights answer otherwise, and so do other images
    expect(maxAbsDiff(await reference(input, 1), expected)).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(expected.subarray(0, 1000), expected.subarray(1000))).toBeGreaterThan(1e-2);
  }, 180_000);

  it('should give each of two requests sent at once its own rows (one torch batch or two)', async () => {
    const expected = await reference(input);
    const [a, b] = await Promise.all([infer(input.subarray(0, SAMPLE)), infer(input.subarray(SAMPLE))]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.shape).toEqual([1, 1000]);
    expect(b.shape).toEqual([1, 1000]);
    expect(maxAbsDiff(a.data!, expected.subarray(0, 1000))).toBeLessThanOrEqual(TOLERANCE);
    expect(maxAbsDiff(b.data!, expected.subarray(1000))).toBeLessThanOrEqual(TOLERANCE);
  }, 180_000);

  it('should refuse an image of the wrong size before model.py sees it', async () => {
    const req = encodeBinaryInferRequest([{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 223], data: new Float32Array(3 * 224 * 223) }]);
    const res = await fetch(`${server.url}/v2/models/resnet/infer`, { method: 'POST', headers: req.headers, body: req.body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('TESSERA_E_INPUT_SHAPE');
  });
});
