/**
 * A conformance suite for tensor backends: `describeBackendConformance({...})` registers vitest
 * `describe`/`it` blocks that check what the core relies on — metadata, whole-batch execution equal
 * to one-at-a-time execution, datatype round-trips, output selection, load errors (with `cause`),
 * idempotent unload.
 *
 * vitest is an optional peer dependency of `@tessera/core`: it is imported here lazily, so that the
 * rest of `@tessera/core/testing` (the ONNX builder, the test models) works without it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, InferenceBatch, LoadContext, ModelInstance, ModelVersionSpec, RequestResult } from '../contracts/backend.js';
import type { DataType, Tensor, TensorSpec } from '../contracts/tensor.js';
import { ServingEvents } from '../contracts/events.js';
import type { ErrorCode } from '../errors.js';
import { isTesseraError } from '../errors.js';
import { silentLogger } from './silent-logger.js';
import { diffTensorLists } from './tensor-compare.js';
import { optionalVitest, requireVitest } from './vitest-api.js';


/** A model the suite loads and runs. `TestModel` from `writeTestModels` fits this shape. */
export interface ConformanceModel {
  /** Used in test names. */
  name: string;
  /** Artifact path; absent for backends that need none. */
  path?: string;
  /** The model config section the backend receives as `spec.config` (default `{}`). */
  config?: Record<string, unknown>;
  /** Expected inputs and outputs (names, datatypes, shapes with -1 for dynamic dims). */
  metadata: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  /** Whether the backend should report `maxBatchSize > 0`. */
  batchable: boolean;
  /** Deterministic inputs with dim 0 = `batch`; other dims must not depend on `seed`. */
  makeInputs(batch: number, seed?: number): Tensor[];
  /** Reference outputs for `inputs`, in any order. */
  expected(inputs: readonly Tensor[]): Tensor[];
  /** Tolerance for float outputs (see `diffTensors`). */
  tolerance: number;
}

/** Where a model that cannot load lives (a corrupt file, a path with no file). */
export interface ConformanceBrokenModel {
  path: string;
  config?: Record<string, unknown>;
}

/**
 * What the conformance suite runs against. Besides the models' own behaviour, the suite requires of
 * the backend: `load` rejects a missing model with a TesseraError of code `TESSERA_E_MODEL_LOAD`
 * whose message names the path, and a corrupt one with `TESSERA_E_MODEL_LOAD`, **with `cause` set
 * to the underlying error** (the core logs it); `execute` rejects with a TesseraError when its
 * signal is already aborted and once the instance is unloaded; `unload` is idempotent.
 */
export interface BackendConformanceOptions {
  /** Shown in the top-level `describe`. */
  name: string;
  /** Called once per test group; the suite never shares model instances between groups. */
  createBackend: () => Backend | Promise<Backend>;
  models: {
    /**
     * A batchable model (the `affine` test model). With two or more outputs the output-selection
     * tests run; with fewer they are skipped, saying so in their names.
     */
    batchable: ConformanceModel;
    /** Further models to load and run (e.g. `multiIo`, `fixed`, `dynamicImage`). */
    others?: ConformanceModel[];
    /** Identity models for each datatype the backend supports; each is round-tripped exactly. */
    identity?: Partial<Record<DataType, ConformanceModel>>;
    /** A file that is not a valid model: `load` must reject with TESSERA_E_MODEL_LOAD, `cause` set. */
    corrupt?: ConformanceBrokenModel;
    /** A path with no file: `load` must reject with TESSERA_E_MODEL_LOAD naming the path, `cause` set. */
    missing?: ConformanceBrokenModel;
  };
  /** dim 0 of each request in the multi-request batch test (default `[1, 2, 1, 3]`). */
  requestBatchSizes?: number[];
  /** Extra `ModelVersionSpec` fields (e.g. `instanceCount`). */
  spec?: Partial<Omit<ModelVersionSpec, 'path' | 'config'>>;
}

/** A LoadContext for tests: a silent logger and a signal that never aborts (unless given). */
export function testLoadContext(signal: AbortSignal = new AbortController().signal, events: ServingEvents = new ServingEvents()): LoadContext {
  return { logger: silentLogger(), signal, events };
}

/** A ModelVersionSpec for tests (model `conformance`, version `1`, one instance). */
export function testModelSpec(model: { name?: string; path?: string; config?: Record<string, unknown> }, extra: Partial<ModelVersionSpec> = {}): ModelVersionSpec {
  return {
    model: model.name ?? 'conformance',
    version: '1',
    ...(model.path === undefined ? {} : { path: model.path }),
    config: model.config ?? {},
    instanceIndex: 0,
    instanceCount: 1,
    ...extra,
  };
}

/** Resolves with the error `promise` rejected with, or fails when it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function expectTesseraError(err: unknown, code: ErrorCode | ErrorCode[]): void {
  const codes: string[] = Array.isArray(code) ? code : [code];
  if (!isTesseraError(err)) throw new Error(`expected a TesseraError (${codes.join(' or ')}), got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  if (!codes.includes(err.code)) throw new Error(`expected code ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
}

function assertNoDiff(diff: string | undefined, context: string): void {
  if (diff !== undefined) throw new Error(`${context}: ${diff}`);
}

function execute(instance: ModelInstance, batch: InferenceBatch, signal: AbortSignal = new AbortController().signal): Promise<RequestResult[]> {
  if (!instance.execute) throw new Error('the instance has no execute(): tensor backends must implement it');
  return instance.execute(batch, signal);
}

/** The outputs in slot `index` of an execution's results; fails, saying what came instead, when the slot is an Error or missing. */
export function outputsOf(results: readonly RequestResult[], index: number, context: string): Tensor[] {
  const slot = results[index];
  if (slot instanceof Error) {
    const code = isTesseraError(slot) ? ` (${slot.code})` : '';
    throw new Error(`${context}: expected the outputs of request ${index}, but the backend returned an Error in its slot${code}: ${slot.name}: ${slot.message}`);
  }
  if (!Array.isArray(slot)) throw new Error(`${context}: expected the outputs of request ${index}, but the backend returned ${results.length} results and slot ${index} is ${String(slot)}`);
  return slot;
}

/** The name of a test that needs a model with two or more outputs, skipped (with the reason) when `outputs` is fewer. */
function needsTwoOutputs(name: string, outputs: number): string {
  return outputs >= 2 ? name : `${name}: skipped, the model has ${outputs === 1 ? 'one output' : 'no outputs'}; give a model with two or more`;
}

/**
 * Registers the conformance tests of a tensor backend with vitest. The backend must, besides running
 * the models right, reject load errors with TESSERA_E_MODEL_LOAD **and set `cause`** to the
 * underlying error, and reject `execute` with a TesseraError when aborted or unloaded (see
 * `BackendConformanceOptions`). Results may hold an `Error` in a request's slot (`RequestResult`);
 * where the suite expects outputs, such a slot fails the test with the error's message. Call it at
 * the top level of a spec file:
 *
 * ```ts
 * const dir = await mkdtemp(join(tmpdir(), 'models-'));
 * const models = await writeTestModels(dir);
 * describeBackendConformance({
 *   name: 'onnxruntime', createBackend: () => new OnnxRuntimeBackend(),
 *   models: { batchable: models.affine, identity: models.identity, corrupt: models.corrupt, missing: { path: models.missingPath } },
 * });
 * ```
 */
export function describeBackendConformance(options: BackendConformanceOptions): void {
  const { describe, it, expect, beforeAll, afterAll } = requireVitest('describeBackendConformance');
  const specOf = (m: { name?: string; path?: string; config?: Record<string, unknown> }): ModelVersionSpec => testModelSpec(m, options.spec);
  const sizes = options.requestBatchSizes ?? [1, 2, 1, 3];

  /** Loads `model` once for a describe block and unloads it after. */
  function useInstance(model: ConformanceModel): () => ModelInstance {
    let instance: ModelInstance | undefined;
    beforeAll(async () => {
      const backend = await options.createBackend();
      instance = await backend.load(specOf(model), testLoadContext());
    });
    afterAll(async () => {
      await instance?.unload();
    });
    return () => {
      if (!instance) throw new Error(`${model.name} did not load`);
      return instance;
    };
  }

  function describeModel(model: ConformanceModel): void {
    describe(model.name, () => {
      const get = useInstance(model);

      it('should report the declared inputs and outputs', () => {
        const md = get().metadata;
        expect(typeof md.platform).toBe('string');
        expect(md.inputs).toEqual(model.metadata.inputs);
        expect(md.outputs).toEqual(model.metadata.outputs);
      });

      it(model.batchable ? 'should be batchable (maxBatchSize > 0)' : 'should not batch (maxBatchSize 0)', () => {
        const md = get().metadata;
        expect(Number.isInteger(md.maxBatchSize)).toBe(true);
        if (model.batchable) expect(md.maxBatchSize).toBeGreaterThan(0);
        else expect(md.maxBatchSize).toBe(0);
      });

      it('should execute a batch of one request', async () => {
        const inputs = model.makeInputs(2, 1);
        const result = await execute(get(), { requests: [{ inputs }] });
        expect(result).toHaveLength(1);
        assertNoDiff(diffTensorLists(outputsOf(result, 0, 'batch of 1'), model.expected(inputs), { tolerance: model.tolerance }), 'batch of 1');
      });

      // a model with maxBatchSize 0 gets one request per execution from the batcher
      it.runIf(model.batchable)('should execute N requests in one batch as if run one at a time', async () => {
        const requestInputs = sizes.map((n, i) => model.makeInputs(n, 10 + i));
        const together = await execute(get(), { requests: requestInputs.map((inputs) => ({ inputs })) });
        expect(together).toHaveLength(requestInputs.length);
        for (const [i, inputs] of requestInputs.entries()) {
          const alone = outputsOf(await execute(get(), { requests: [{ inputs }] }), 0, `request ${i} alone`);
          const batched = outputsOf(together, i, 'batch of N');
          assertNoDiff(diffTensorLists(batched, alone, { tolerance: 0 }), `request ${i} batched vs alone`);
          assertNoDiff(diffTensorLists(batched, model.expected(inputs), { tolerance: model.tolerance }), `request ${i} vs reference`);
        }
      });

      // with one output, selecting it proves nothing: the batchable model says so, the others stay quiet
      const outputCount = model.metadata.outputs.length;
      if (outputCount > 1 || model === options.models.batchable) {
        (outputCount > 1 ? it : it.skip)(needsTwoOutputs('should return the requested outputs when a request names some', outputCount), async () => {
          const wanted = model.metadata.outputs[model.metadata.outputs.length - 1]!.name;
          const inputs = model.makeInputs(2, 3);
          const result = await execute(get(), { requests: [{ inputs, outputs: [wanted] }], outputs: [wanted] });
          const expected = model.expected(inputs).filter((t) => t.name === wanted);
          // a backend may compute more than asked (the contract lets it skip the rest); what was asked must be right
          assertNoDiff(diffTensorLists(outputsOf(result, 0, 'selected output'), expected, { tolerance: model.tolerance, allowExtra: true }), 'selected output');
        });
      }
    });
  }

  describe(`backend conformance: ${options.name}`, () => {
    describeModel(options.models.batchable);
    for (const m of options.models.others ?? []) describeModel(m);

    describe('batch assembly', () => {
      const model = options.models.batchable;
      const get = useInstance(model);

      const outputCount = model.metadata.outputs.length;
      (outputCount > 1 ? it : it.skip)(needsTwoOutputs('should keep each request its own outputs when requests ask for different outputs', outputCount), async () => {
        const names = model.metadata.outputs.map((o) => o.name);
        const first = model.makeInputs(1, 21);
        const second = model.makeInputs(2, 22);
        const result = await execute(get(), {
          requests: [{ inputs: first, outputs: [names[0]!] }, { inputs: second }],
        });
        assertNoDiff(diffTensorLists(outputsOf(result, 0, 'request 0'), model.expected(first).filter((t) => t.name === names[0]), { tolerance: model.tolerance, allowExtra: true }), 'request 0');
        assertNoDiff(diffTensorLists(outputsOf(result, 1, 'request 1'), model.expected(second), { tolerance: model.tolerance }), 'request 1');
      });

      it('should not modify the request tensors', async () => {
        const inputs = [model.makeInputs(1, 31), model.makeInputs(2, 32)];
        const copies = inputs.map((list) => list.map((t): Tensor => ({ ...t, shape: [...t.shape], data: t.data.slice() })));
        await execute(get(), { requests: inputs.map((i) => ({ inputs: i })) });
        for (const [i, list] of inputs.entries()) assertNoDiff(diffTensorLists(list, copies[i]!), `request ${i} inputs`);
      });

      it('should reject with a TesseraError when the signal is already aborted', async () => {
        const ac = new AbortController();
        ac.abort();
        const err = await rejection(execute(get(), { requests: [{ inputs: model.makeInputs(1, 41) }] }, ac.signal));
        expect(isTesseraError(err)).toBe(true);
      });

      it('should warm up without error (when it implements warmup)', async () => {
        const instance = get();
        if (instance.warmup) await instance.warmup();
      });
    });

    const identity = Object.entries(options.models.identity ?? {}) as [DataType, ConformanceModel][];
    if (identity.length > 0) {
      describe('datatype round-trips', () => {
        for (const [datatype, model] of identity) {
          describe(datatype, () => {
            const get = useInstance(model);
            it(`should report ${datatype} inputs and outputs`, () => {
              expect(get().metadata.inputs.map((i) => i.datatype)).toEqual(model.metadata.inputs.map((i) => i.datatype));
              expect(get().metadata.outputs.map((o) => o.datatype)).toEqual(model.metadata.outputs.map((o) => o.datatype));
            });
            it(`should round-trip ${datatype} data exactly, alone and batched`, async () => {
              const requestInputs = [model.makeInputs(3, 1), model.makeInputs(1, 2), model.makeInputs(2, 3)];
              const alone = await execute(get(), { requests: [{ inputs: requestInputs[0]! }] });
              assertNoDiff(diffTensorLists(outputsOf(alone, 0, 'alone'), model.expected(requestInputs[0]!), { tolerance: model.tolerance }), 'alone');
              if (model.batchable) {
                const together = await execute(get(), { requests: requestInputs.map((inputs) => ({ inputs })) });
                for (const [i, inputs] of requestInputs.entries()) {
                  assertNoDiff(diffTensorLists(outputsOf(together, i, `batched request ${i}`), model.expected(inputs), { tolerance: model.tolerance }), `batched request ${i}`);
                }
              }
            });
          });
        }
      });
    }

    describe('load errors', () => {
      const { corrupt, missing } = options.models;
      if (missing) {
        it('should reject a missing file with TESSERA_E_MODEL_LOAD', async () => {
          const backend = await options.createBackend();
          const err = await rejection(backend.load(specOf({ name: 'missing', ...missing }), testLoadContext()));
          expectTesseraError(err, 'TESSERA_E_MODEL_LOAD');
          expect((err as Error).message).toContain(missing.path);
        });
      }
      if (corrupt) {
        it('should reject a corrupt model with TESSERA_E_MODEL_LOAD', async () => {
          const backend = await options.createBackend();
          const err = await rejection(backend.load(specOf({ name: 'corrupt', ...corrupt }), testLoadContext()));
          expectTesseraError(err, 'TESSERA_E_MODEL_LOAD');
        });
      }
      const target = corrupt ?? missing;
      const causeTest = 'should set `cause` on a load error (the underlying error, for logs)';
      (target ? it : it.skip)(target ? causeTest : `${causeTest}: skipped, give models.corrupt or models.missing`, async () => {
        if (!target) return;
        const backend = await options.createBackend();
        const err = await rejection(backend.load(specOf({ name: 'broken', ...target }), testLoadContext()));
        expect((err as Error).cause).toBeDefined();
      });
    });

    describe('unload', () => {
      it('should be idempotent, and execute after unload should reject with a TesseraError', async () => {
        const model = options.models.batchable;
        const backend = await options.createBackend();
        const instance = await backend.load(specOf(model), testLoadContext());
        await instance.unload();
        await instance.unload();
        const err = await rejection(execute(instance, { requests: [{ inputs: model.makeInputs(1, 51) }] }));
        expect(isTesseraError(err)).toBe(true);
      });

      it('should load the same model twice side by side (instances are independent)', async () => {
        const model = options.models.batchable;
        const backend = await options.createBackend();
        const a = await backend.load(specOf(model), testLoadContext());
        const b = await backend.load(testModelSpec(model, { ...options.spec, instanceIndex: 1, instanceCount: 2 }), testLoadContext());
        try {
          await a.unload();
          const inputs = model.makeInputs(1, 61);
          const result = await execute(b, { requests: [{ inputs }] });
          assertNoDiff(diffTensorLists(outputsOf(result, 0, 'second instance'), model.expected(inputs), { tolerance: model.tolerance }), 'second instance after the first unloaded');
        } finally {
          await a.unload();
          await b.unload();
        }
      });
    });
  });
}

/**
 * Makes a temporary folder for a spec file and removes it when the process's tests end; convenient
 * with `writeTestModels`. vitest's `afterAll` is registered when vitest is present.
 */
export async function makeTempDir(prefix = 'tessera-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  optionalVitest()?.afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}
