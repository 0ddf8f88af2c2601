import type { Logger } from 'pino';
import type { ModelMetadata } from '../contracts/backend.js';
import type { ProcessContext, Processor, ProcessorFactory, ProcessorStage } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { shapeSize } from '../contracts/tensor.js';
import type { NamedEntryConfig } from '../config/types.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import type { Signature } from './types.js';
import { checkShape } from './validate.js';

/** One configured step of a version: its name (for messages) and the processor. */
export interface ProcessorStep {
  name: string;
  processor: Processor;
}

/** A version's processors and the signature they give it. */
export interface VersionProcessors {
  pre: ProcessorStep[];
  post: ProcessorStep[];
  signature: Signature;
}

/**
 * Creates a version's pre and post steps and derives the signature it is served with: pre steps
 * from the last to the first (each is told what it must produce, and says what it accepts), post
 * steps from the first to the last (each is told what it gets, and says what it produces).
 */
export async function createProcessors(
  model: string,
  version: string,
  config: { preprocess: readonly NamedEntryConfig[]; postprocess: readonly NamedEntryConfig[]; configDir?: string },
  metadata: ModelMetadata,
  factory: (name: string) => ProcessorFactory,
  logger: Logger,
): Promise<VersionProcessors> {
  const make = async (entry: NamedEntryConfig, stage: ProcessorStage, specs: readonly TensorSpec[]): Promise<ProcessorStep> => {
    try {
      const processor = await factory(entry.name).create({
        model,
        version,
        stage,
        options: entry.options,
        specs,
        metadata,
        logger: logger.child({ processor: entry.name }),
        ...(config.configDir !== undefined ? { configDir: config.configDir } : {}),
      });
      return { name: entry.name, processor };
    } catch (err) {
      // a refusal the step made itself keeps its code; anything else is a failed load of the version
      const code = isTesseraError(err) ? err.code : 'TESSERA_E_MODEL_LOAD';
      throw new TesseraError(code, `${model} v${version}: ${stage}process step '${entry.name}' failed to start: ${errorMessage(err)}`, { cause: err });
    }
  };
  const pre: ProcessorStep[] = [];
  let inputs: readonly TensorSpec[] = metadata.inputs;
  for (const entry of [...config.preprocess].reverse()) {
    const step = await make(entry, 'pre', inputs);
    pre.unshift(step);
    inputs = step.processor.specs ?? inputs;
  }
  const post: ProcessorStep[] = [];
  let outputs: readonly TensorSpec[] = metadata.outputs;
  for (const entry of config.postprocess) {
    const step = await make(entry, 'post', outputs);
    post.push(step);
    outputs = step.processor.specs ?? outputs;
  }
  return { pre, post, signature: { inputs, outputs, maxBatchSize: metadata.maxBatchSize } };
}

/** Runs steps in order on one request's tensors; a step's 4xx refusal keeps its code, anything else is TESSERA_E_PROCESSOR_FAILED. */
export async function runSteps(steps: readonly ProcessorStep[], tensors: readonly Tensor[], ctx: ProcessContext): Promise<Tensor[]> {
  let current = tensors as Tensor[];
  for (const step of steps) {
    try {
      current = await step.processor.process(current, ctx);
    } catch (err) {
      if (isTesseraError(err) && err.status < 500) throw err;
      throw new TesseraError('TESSERA_E_PROCESSOR_FAILED', `${ctx.model} v${ctx.version}: ${ctx.stage}process step '${step.name}' failed: ${errorMessage(err)}`, { cause: err });
    }
    if (!Array.isArray(current)) {
      throw new TesseraError('TESSERA_E_PROCESSOR_FAILED', `${ctx.model} v${ctx.version}: ${ctx.stage}process step '${step.name}' returned ${typeof current}, not a list of tensors`);
    }
  }
  return current;
}

/**
 * What the last pre step produced, checked against the model's inputs (the backend relies on
 * them: see `InferenceRequest`) and put in their order. A mismatch is the processor's fault.
 */
export function modelInputsFrom(tensors: readonly Tensor[], metadata: ModelMetadata, lastStep: string, label: string): Tensor[] {
  const fault = (why: string): TesseraError => new TesseraError('TESSERA_E_PROCESSOR_FAILED', `${label}: preprocess step '${lastStep}' produced tensors that do not fit the model: ${why}`);
  const out: Tensor[] = [];
  let batch: number | undefined;
  for (const spec of metadata.inputs) {
    const t = tensors.find((x) => x.name === spec.name);
    if (!t) throw fault(`no input '${spec.name}'`);
    try {
      checkShape(spec, t.datatype, t.shape, metadata.maxBatchSize);
    } catch (err) {
      throw fault(errorMessage(err));
    }
    if (t.data.length !== shapeSize(t.shape)) throw fault(`'${t.name}' has ${t.data.length} elements for shape [${t.shape.join(', ')}]`);
    if (metadata.maxBatchSize > 0 && t.shape.length > 0) {
      if (batch !== undefined && batch !== t.shape[0]) throw fault(`'${t.name}' has dim 0 ${t.shape[0]}, another input ${batch}`);
      batch = t.shape[0];
    }
    out.push(t);
  }
  if (tensors.length !== out.length) throw fault(`extra tensors (${tensors.filter((t) => !metadata.inputs.some((s) => s.name === t.name)).map((t) => t.name).join(', ')})`);
  return out;
}

/** Closes every step, logging failures. */
export async function closeSteps(steps: readonly ProcessorStep[], logger: Logger): Promise<void> {
  for (const step of steps) {
    try {
      await step.processor.close?.();
    } catch (err) {
      logger.warn({ err }, `processor '${step.name}' failed to close: ${errorMessage(err)}`);
    }
  }
}
