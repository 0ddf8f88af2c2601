import type { ModelMetadata } from '../contracts/backend.js';
import type { ProcessContext, Processor, ProcessorContext, ProcessorFactory, ProcessorStage } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { validateAgainstSchema } from '../config/validate.js';
import { isTesseraError } from '../errors.js';
import { checkShape } from '../pipeline/validate.js';
import { silentLogger } from './silent-logger.js';
import { diffTensorLists } from './tensor-compare.js';
import { requireVitest } from './vitest-api.js';

/** A ProcessContext for tests. */
export function testProcessContext(overrides: Partial<ProcessContext> = {}): ProcessContext {
  return { model: 'model', version: '1', stage: 'pre', id: 'req-1', parameters: {}, signal: new AbortController().signal, ...overrides };
}

export interface ProcessorConformanceOptions {
  name: string;
  factory: ProcessorFactory;
  stage: ProcessorStage;
  /** The step's options. */
  options?: Record<string, unknown>;
  /** The model's metadata the step is created for. */
  metadata: ModelMetadata;
  /** Requests' tensors the step must take (as it accepts them: for `pre`, matching what it declares). */
  samples: Tensor[][];
  /** Tensors it must refuse with a 4xx TesseraError (optional). */
  invalid?: Tensor[][];
  /** The expected result for each sample (optional; compared exactly or within `tolerance`). */
  expected?: (sample: readonly Tensor[]) => Tensor[];
  tolerance?: number;
}

/**
 * The contract every processor keeps, as vitest tests: it is created for the model's specs and
 * declares valid specs; for every sample it returns tensors that fit what comes next (a pre step:
 * the model's inputs, names, datatypes and shapes; a post step: the specs it declares) with data
 * whose length fits the shape; it does not modify its input; it refuses bad input with a 4xx
 * TesseraError; `close` is idempotent.
 */
export function describeProcessorConformance(options: ProcessorConformanceOptions): void {
  const { describe, it, expect, beforeAll, afterAll } = requireVitest('describeProcessorConformance');
  const specsNext = options.stage === 'pre' ? options.metadata.inputs : options.metadata.outputs;

  describe(`processor conformance: ${options.name} (${options.stage})`, () => {
    let processor: Processor;
    beforeAll(async () => {
      // options validated as the server does (defaults filled in)
      const validated = options.factory.optionsSchema ? validateAgainstSchema<Record<string, unknown>>(options.factory.optionsSchema, structuredClone({ ...(options.options ?? {}) }), options.stage === 'pre' ? 'preprocess[0]' : 'postprocess[0]') : (options.options ?? {});
      const ctx: ProcessorContext = { model: 'model', version: '1', stage: options.stage, options: validated, specs: specsNext, metadata: options.metadata, logger: silentLogger() };
      processor = await options.factory.create(ctx);
    });
    afterAll(async () => {
      await processor?.close?.();
    });

    it('should declare valid tensor specs (or none)', () => {
      for (const s of processor.specs ?? []) {
        expect(typeof s.name).toBe('string');
        expect(Array.isArray(s.shape) && s.shape.every((d) => Number.isInteger(d) && d >= -1)).toBe(true);
      }
    });

    it('should produce tensors that fit what comes next', async () => {
      // what the step must produce: a pre step the model's inputs, a post step what it declares
      const target: readonly TensorSpec[] = options.stage === 'pre' ? specsNext : (processor.specs ?? specsNext);
      for (const sample of options.samples) {
        const out = await processor.process(sample, testProcessContext({ stage: options.stage }));
        expect(out.map((t) => t.name).sort()).toEqual(target.map((s) => s.name).sort());
        for (const t of out) {
          const spec = target.find((s) => s.name === t.name)!;
          expect(() => checkShape(spec, t.datatype, t.shape, 0)).not.toThrow();
          expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
        if (options.expected) {
          const diff = diffTensorLists(out, options.expected(sample), { tolerance: options.tolerance ?? 0 });
          expect(diff, diff).toBeUndefined();
        }
      }
    });

    it('should not modify its input tensors', async () => {
      for (const sample of options.samples) {
        const copy = sample.map((t): Tensor => ({ ...t, shape: [...t.shape], data: t.data.slice() }));
        await processor.process(sample, testProcessContext({ stage: options.stage }));
        expect(diffTensorLists(sample, copy)).toBeUndefined();
      }
    });

    if (options.invalid !== undefined && options.invalid.length > 0) it('should refuse bad input with a 4xx TesseraError', async () => {
      for (const bad of options.invalid ?? []) {
        let thrown: unknown;
        try {
          await processor.process(bad, testProcessContext({ stage: options.stage }));
        } catch (err) {
          thrown = err;
        }
        expect(isTesseraError(thrown), `expected a TesseraError, got ${String(thrown)}`).toBe(true);
        expect((thrown as { status: number }).status).toBeGreaterThanOrEqual(400);
        expect((thrown as { status: number }).status).toBeLessThan(500);
      }
    });

    it('should close more than once', async () => {
      await processor.close?.();
      await processor.close?.();
    });
  });
}
