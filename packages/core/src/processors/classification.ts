import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { JSONSchema } from '../contracts/backend.js';
import type { ProcessContext, Processor, ProcessorContext, ProcessorFactory } from '../contracts/processor.js';
import type { Tensor, TensorSpec } from '../contracts/tensor.js';
import { TesseraError, errorMessage } from '../errors.js';
import { readScoreRow, topK } from '../internal/top-k.js';

/** The `classification` step's options (docs/processors.md lists them with their defaults). */
export const CLASSIFICATION_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    output: { type: 'string', minLength: 1, description: "The model output holding the class scores (last dim: the classes). Default: the model's only output." },
    softmax: { enum: ['auto', true, false], default: 'auto', description: 'Turn scores into probabilities: auto applies softmax to a row unless it already is a distribution (values in [0, 1] adding up to 1).' },
    topK: { type: 'integer', minimum: 1, default: 1, description: 'How many classes each row answers, best first.' },
    maxTopK: { type: 'integer', minimum: 1, description: 'Largest `parameters.top_k` a request may ask for (default: topK, and requests cannot change it).' },
    labels: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'One label per class, in the order of the scores. Default: the class indices ("0", "1", …).' },
    labelsFile: { type: 'string', minLength: 1, description: "A text file with one label per line (relative: to the config file's folder)." },
    names: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        label: { type: 'string', minLength: 1, default: 'label', description: 'Name of the served labels output (BYTES [..., k]).' },
        score: { type: 'string', minLength: 1, default: 'score', description: 'Name of the served scores output (FP32 [..., k]).' },
      },
      description: 'Names of the two outputs the step serves.',
    },
  },
};

interface ClassificationOptions {
  output?: string;
  softmax: 'auto' | boolean;
  topK: number;
  maxTopK?: number;
  labels?: string[];
  labelsFile?: string;
  names: { label: string; score: string };
}

/** A row is already a distribution when every value is in [0, 1] and they add up to 1 (within float error). */
function isDistribution(row: Float64Array): boolean {
  let sum = 0;
  for (const v of row) {
    if (!(v >= 0 && v <= 1)) return false;
    sum += v;
  }
  return Math.abs(sum - 1) <= 1e-3;
}

/** Softmax in place, stable (the row's maximum subtracted first). */
function softmaxInPlace(row: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += row[i] = Math.exp(row[i]! - max);
  for (let i = 0; i < row.length; i++) row[i]! /= sum;
}

function misfit(why: string): TesseraError {
  return new TesseraError('TESSERA_E_CONFIG_INVALID', why);
}

async function readLabels(file: string, configDir: string | undefined): Promise<string[]> {
  const resolved = path.resolve(configDir ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(resolved, 'utf8');
  } catch (err) {
    throw misfit(`labelsFile: cannot read ${resolved}: ${errorMessage(err)}`);
  }
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const empty = lines.findIndex((l) => l.trim() === '');
  if (empty !== -1) throw misfit(`labelsFile: line ${empty + 1} of ${resolved} is empty; one label per line`);
  if (lines.length === 0) throw misfit(`labelsFile: ${resolved} has no labels`);
  return lines;
}

/**
 * The built-in `classification` post step: the model's class scores (`[..., C]`) → `label` BYTES
 * and `score` FP32, both `[..., k]`, the k best classes of each row, best first (ties: the lower
 * class first), after a softmax where one is needed. Other outputs pass through.
 */
export class ClassificationProcessor implements Processor {
  readonly specs: readonly TensorSpec[];
  readonly predictions: { readonly label: string; readonly score: string };
  readonly #output: TensorSpec;
  readonly #labels: readonly string[] | undefined;
  readonly #softmax: 'auto' | boolean;
  readonly #topK: number;
  readonly #maxTopK: number;

  constructor(o: { output: TensorSpec; labels: readonly string[] | undefined; softmax: 'auto' | boolean; topK: number; maxTopK: number; names: { label: string; score: string }; next: readonly TensorSpec[] }) {
    this.#output = o.output;
    this.#labels = o.labels;
    this.#softmax = o.softmax;
    this.#topK = o.topK;
    this.#maxTopK = o.maxTopK;
    this.predictions = { label: o.names.label, score: o.names.score };
    // k is fixed unless requests may choose it
    const shape = [...o.output.shape.slice(0, -1), o.maxTopK > o.topK ? -1 : o.topK];
    this.specs = o.next.flatMap((s) =>
      s.name === o.output.name
        ? [
            { name: o.names.label, datatype: 'BYTES', shape },
            { name: o.names.score, datatype: 'FP32', shape },
          ]
        : [s],
    );
  }

  process(tensors: readonly Tensor[], ctx: ProcessContext): Tensor[] {
    const k = this.#requestedK(ctx.parameters);
    const scores = tensors.find((t) => t.name === this.#output.name);
    // the model's output, not the client's input: a mismatch is a fault (500)
    if (!scores || (scores.datatype !== 'FP32' && scores.datatype !== 'FP64' && scores.datatype !== 'FP16') || scores.shape.length === 0) {
      throw new Error(`expected '${this.#output.name}' FP32 [..., classes] from the model, got ${scores ? `${scores.datatype} [${scores.shape.join(', ')}]` : 'nothing'}`);
    }
    const classes = scores.shape.at(-1)!;
    if (this.#labels && classes !== this.#labels.length) throw new Error(`'${this.#output.name}' has ${classes} classes, the step has ${this.#labels.length} labels`);
    if (classes < k) throw new Error(`'${this.#output.name}' has ${classes} classes, fewer than top ${k}`);
    const rows = classes === 0 ? 0 : scores.data.length / classes;
    const label = new Array<string>(rows * k);
    const score = new Float32Array(rows * k);
    const row = new Float64Array(classes);
    const taken = new Uint8Array(classes);
    const best = new Int32Array(k);
    for (let r = 0; r < rows; r++) {
      readScoreRow(scores, r, classes, row);
      if (this.#softmax === true || (this.#softmax === 'auto' && !isDistribution(row))) softmaxInPlace(row);
      topK(row, k, taken, best);
      for (let j = 0; j < k; j++) {
        label[r * k + j] = this.#labels ? this.#labels[best[j]!]! : String(best[j]);
        score[r * k + j] = row[best[j]!]!;
      }
    }
    const shape = [...scores.shape.slice(0, -1), k];
    const made: Tensor[] = [
      { name: this.predictions.label, datatype: 'BYTES', shape, data: label },
      { name: this.predictions.score, datatype: 'FP32', shape: [...shape], data: score },
    ];
    return tensors.flatMap((t) => (t === scores ? made : [t]));
  }

  async close(): Promise<void> {}

  /** `parameters.top_k` when a request may choose k (`maxTopK` above `topK`), else `topK`. */
  #requestedK(parameters: Readonly<Record<string, unknown>>): number {
    const asked = parameters['top_k'];
    if (asked === undefined || asked === null) return this.#topK;
    if (typeof asked !== 'number' || !Number.isInteger(asked) || asked < 1 || asked > this.#maxTopK) {
      const allowed = this.#maxTopK > this.#topK ? `an integer from 1 to ${this.#maxTopK}` : `${this.#topK} (the model's classification step fixes it: raise maxTopK to let requests choose)`;
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `parameters.top_k must be ${allowed}, got ${JSON.stringify(asked)}`);
    }
    return asked;
  }
}

/** The `classification` processor's factory (registered by the core under `classification`). */
export const classificationProcessorFactory = {
  optionsSchema: CLASSIFICATION_OPTIONS_SCHEMA,
  async create(ctx: ProcessorContext): Promise<ClassificationProcessor> {
    const o = ctx.options as unknown as ClassificationOptions;
    if (ctx.stage !== 'post') throw misfit('it is a postprocess step (list it under postprocess)');
    const describe = (s: TensorSpec): string => `${s.name} ${s.datatype} [${s.shape.join(', ')}]`;
    let output: TensorSpec | undefined;
    if (o.output !== undefined) {
      output = ctx.specs.find((s) => s.name === o.output);
      if (!output) throw misfit(`output: the model has no output '${o.output}' (its outputs: ${ctx.specs.map((s) => s.name).join(', ')})`);
    } else {
      if (ctx.specs.length !== 1) throw misfit(`the model has ${ctx.specs.length} outputs (${ctx.specs.map(describe).join('; ')}); say which holds the class scores with output: <name>`);
      output = ctx.specs[0]!;
    }
    if ((output.datatype !== 'FP32' && output.datatype !== 'FP16' && output.datatype !== 'FP64') || output.shape.length === 0) {
      throw misfit(`it reads class scores (FP32, FP16 or FP64, last dim the classes); ${describe(output)} is not`);
    }
    if (o.labels !== undefined && o.labelsFile !== undefined) throw misfit('give labels or labelsFile, not both');
    const labels = o.labelsFile !== undefined ? await readLabels(o.labelsFile, ctx.configDir) : o.labels;
    const classes = output.shape.at(-1)!;
    if (labels && classes !== -1 && classes !== labels.length) {
      throw misfit(`${describe(output)} has ${classes} classes but ${labels.length} labels are given${classes > labels.length ? ': give one per class' : ''}`);
    }
    const maxTopK = o.maxTopK ?? o.topK;
    if (maxTopK < o.topK) throw misfit(`maxTopK (${maxTopK}) is below topK (${o.topK})`);
    const known = classes !== -1 ? classes : labels?.length;
    if (known !== undefined && maxTopK > known) throw misfit(`${o.maxTopK !== undefined ? 'maxTopK' : 'topK'} is ${maxTopK}, but there are ${known} classes`);
    const { label, score } = o.names;
    for (const n of [label, score]) {
      if (ctx.specs.some((s) => s.name === n && s.name !== output.name)) throw misfit(`names: '${n}' is another output of the model; choose another name`);
    }
    if (label === score) throw misfit(`names: label and score are both '${label}'`);
    return new ClassificationProcessor({ output, labels, softmax: o.softmax, topK: o.topK, maxTopK, names: { label, score }, next: ctx.specs });
  },
} satisfies ProcessorFactory;
