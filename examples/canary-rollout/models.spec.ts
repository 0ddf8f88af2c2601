/**
 * The canary-rollout example's generated models, run with onnxruntime-node directly (no server):
 * one signature for all four, good-v2 close to good-v1, faulty failing inside ONNX Runtime on the
 * inputs `isFaultyInput` names (and only those, and only at run time), slow giving good-v1's
 * answers several times later.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES, LABELS, MODEL_FILES, isFaultyInput, labels, randomRow, referenceScores, rng, writeCanaryModels } from './models.mjs';

type Name = (typeof MODEL_FILES)[number];

// one thread per session, as the example's config runs them; ORT's own error log off (the errors are the point)
const OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4 };

let dir: string;
let files: Record<Name, string>;
const sessions = {} as Record<Name, ort.InferenceSession>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-canary-models-'));
  files = await writeCanaryModels(dir);
  for (const name of MODEL_FILES) sessions[name] = await ort.InferenceSession.create(files[name], OPTIONS);
});

afterAll(async () => {
  for (const session of Object.values(sessions)) await session.release();
  await rm(dir, { recursive: true, force: true });
});

async function run(name: Name, rows: readonly (readonly number[])[]): Promise<number[][]> {
  const x = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, FEATURES]);
  const { scores } = await sessions[name].run({ x });
  expect(scores!.dims).toEqual([rows.length, LABELS]);
  const data = Array.from(scores!.data as Float32Array);
  return rows.map((_, i) => data.slice(i * LABELS, (i + 1) * LABELS));
}

async function runError(name: Name, rows: readonly (readonly number[])[]): Promise<Error | undefined> {
  try {
    await run(name, rows);
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
}

const random = rng(2024);
const ROWS = Array.from({ length: 400 }, () => randomRow(random));
const FAULTY_ROWS = ROWS.filter((row) => isFaultyInput([row]));
const CLEAN_ROWS = ROWS.filter((row) => !isFaultyInput([row]));

describe('writeCanaryModels', () => {
  it('should write four models with one signature: x FP32 [batch, 16] → scores FP32 [batch, 4]', () => {
    expect(Object.keys(files).sort()).toEqual(['faulty', 'good-v1', 'good-v2', 'slow']);
    for (const name of MODEL_FILES) {
      const session = sessions[name];
      expect(path.basename(files[name])).toBe(`${name}.onnx`);
      expect(session.inputNames).toEqual(['x']);
      expect(session.outputNames).toEqual(['scores']);
      expect(session.inputMetadata[0]).toMatchObject({ name: 'x', isTensor: true, type: 'float32', shape: ['batch', FEATURES] });
      expect(session.outputMetadata[0]).toMatchObject({ name: 'scores', isTensor: true, type: 'float32', shape: ['batch', LABELS] });
    }
  });

  it('should write the same bytes on every run (seeded weights)', async () => {
    const again = await mkdtemp(path.join(tmpdir(), 'tessera-canary-models-again-'));
    try {
      const second = await writeCanaryModels(again);
      for (const name of MODEL_FILES) expect(Buffer.compare(await readFile(files[name]), await readFile(second[name]))).toBe(0);
    } finally {
      await rm(again, { recursive: true, force: true });
    }
  });
});

describe('good-v1 and good-v2', () => {
  it('should give softmax scores equal to the JavaScript reference, in one batch or row by row', async () => {
    for (const name of ['good-v1', 'good-v2'] as const) {
      const batch = await run(name, ROWS);
      expect(maxAbsDiff(batch, referenceScores(name, ROWS))).toBeLessThan(1e-5);
      for (const row of batch) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(maxAbsDiff((await run(name, ROWS.slice(0, 1))), batch.slice(0, 1))).toBeLessThan(1e-6);
    }
  });

  it('should differ a little: the same label for most rows (≥ 90 %), not the same scores', async () => {
    const [v1, v2] = [await run('good-v1', ROWS), await run('good-v2', ROWS)];
    const [l1, l2] = [labels(v1), labels(v2)];
    const agreement = l1.filter((l, i) => l === l2[i]).length / ROWS.length;
    expect(agreement).toBeGreaterThanOrEqual(0.9);
    expect(agreement).toBeLessThan(1);
    expect(maxAbsDiff(v1, v2)).toBeGreaterThan(1e-3);
    // every label occurs: a classifier, not a constant
    expect(new Set(l1).size).toBe(LABELS);
  });
});

describe('faulty', () => {
  it('should load and answer zeros (what the server warms up with)', async () => {
    const zeros = [new Array<number>(FEATURES).fill(0)];
    expect(isFaultyInput(zeros)).toBe(false);
    expect(maxAbsDiff(await run('faulty', zeros), referenceScores('good-v1', zeros))).toBeLessThan(1e-6);
  });

  it('should fail inside ONNX Runtime on about a quarter of random inputs: exactly those with x[0] > 0.5', async () => {
    expect(FAULTY_ROWS.length / ROWS.length).toBeGreaterThan(0.15);
    expect(FAULTY_ROWS.length / ROWS.length).toBeLessThan(0.35);
    for (const row of FAULTY_ROWS) {
      const err = await runError('faulty', [row]);
      expect(err, `row ${JSON.stringify(row)}`).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/Non-zero status code returned while running Gather node.*indices element out of data bounds, idx=10 must be within the inclusive range \[-4,3\]/);
    }
  });

  it("should answer good-v1's scores exactly on every other input", async () => {
    const [faulty, good] = [await run('faulty', CLEAN_ROWS), await run('good-v1', CLEAN_ROWS)];
    expect(maxAbsDiff(faulty, good)).toBe(0);
  });

  it('should fail a whole batch that holds one faulty row', async () => {
    const err = await runError('faulty', [...CLEAN_ROWS.slice(0, 7), FAULTY_ROWS[0]!]);
    expect(err?.message).toContain('Gather');
  });

  it('should be the only one that fails on those inputs: good-v1, good-v2 and slow answer them', async () => {
    for (const name of ['good-v1', 'good-v2', 'slow'] as const) {
      const scores = await run(name, FAULTY_ROWS);
      expect(scores).toHaveLength(FAULTY_ROWS.length);
      expect(scores.flat().every(Number.isFinite)).toBe(true);
    }
  });
});

describe('slow', () => {
  it("should answer good-v1's scores (within float rounding)", async () => {
    expect(maxAbsDiff(await run('slow', ROWS), await run('good-v1', ROWS))).toBeLessThan(1e-6);
  });

  it('should take at least 3× as long as good-v1 at batch 1, and several ms more', async () => {
    const median = async (name: Name): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 35; i++) {
        const row = ROWS[i]!;
        const start = performance.now();
        await run(name, [row]);
        if (i >= 5) times.push(performance.now() - start); // the first few warm up
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    };
    const [good, slow] = [await median('good-v1'), await median('slow')];
    expect(slow, `good-v1 ${good.toFixed(3)} ms, slow ${slow.toFixed(3)} ms`).toBeGreaterThanOrEqual(3 * good);
    expect(slow - good).toBeGreaterThan(3);
  });
});
