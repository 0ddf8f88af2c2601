import type { GenerateChunk } from '../contracts/backend.js';
import type { OutputComparison, ShadowComparison } from '../contracts/router.js';
import type { Tensor } from '../contracts/tensor.js';
import { halfToNumber } from '../contracts/tensor.js';

const FLOAT_TYPES = new Set(['FP16', 'FP32', 'FP64']);

/** A reader of a tensor's values as numbers (BigInt ones converted, FP16 bit patterns decoded). */
function reader(t: Tensor): (i: number) => number {
  const data = t.data as unknown as ArrayLike<number | bigint>;
  if (t.datatype === 'FP16') return (i) => halfToNumber(data[i] as number);
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') return (i) => Number(data[i]);
  return (i) => data[i] as number;
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.datatype === b.datatype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.datatype === 'BYTES') {
    const x = a.data as string[];
    const y = b.data as string[];
    return x.every((s, i) => s === y[i]) ? 0 : Infinity;
  }
  let max = 0;
  const n = a.data.length;
  const ra = reader(a);
  const rb = reader(b);
  for (let i = 0; i < n; i++) {
    const x = ra(i);
    const y = rb(i);
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
      continue;
    }
    const d = Math.abs(x - y);
    if (d > max) max = d;
  }
  return max;
}

/** Rows (all dims but the last) whose arg-max over the last axis is equal on both sides. */
function agreeingRows(a: Tensor, b: Tensor): { rows: number; agree: number } {
  const width = a.shape[a.shape.length - 1]!;
  const rows = width > 0 ? a.data.length / width : 0;
  let agree = 0;
  const ra = reader(a);
  const rb = reader(b);
  for (let r = 0; r < rows; r++) {
    let ia = 0;
    let ib = 0;
    for (let j = 1; j < width; j++) {
      if (ra(r * width + j) > ra(r * width + ia)) ia = j;
      if (rb(r * width + j) > rb(r * width + ib)) ib = j;
    }
    if (ia === ib) agree++;
  }
  return { rows, agree };
}

/**
 * Compares a shadow copy's outputs with the primary's, output by output: the largest absolute
 * difference (BYTES: 0 when equal, else Infinity), and for float outputs of rank ≥ 2 (scores per
 * label on the last axis) the share of rows with the same arg-max.
 */
export function compareTensorAnswers(primary: readonly Tensor[], shadow: readonly Tensor[]): ShadowComparison {
  const outputs: Record<string, OutputComparison> = {};
  let worst = 0;
  let rows = 0;
  let agree = 0;
  for (const p of primary) {
    const s = shadow.find((t) => t.name === p.name);
    if (!s) continue;
    if (!sameShape(p, s)) {
      outputs[p.name] = { sameShape: false };
      worst = Infinity;
      continue;
    }
    const out: OutputComparison = { sameShape: true, maxAbsDiff: maxAbsDiff(p, s) };
    worst = Math.max(worst, out.maxAbsDiff!);
    if (FLOAT_TYPES.has(p.datatype) && p.shape.length >= 2) {
      const r = agreeingRows(p, s);
      if (r.rows > 0) {
        out.labelAgreement = r.agree / r.rows;
        rows += r.rows;
        agree += r.agree;
      }
    }
    outputs[p.name] = out;
  }
  return { outputs, maxAbsDiff: worst, ...(rows > 0 ? { labelAgreement: agree / rows } : {}) };
}

interface ChoiceText {
  index?: unknown;
  text?: unknown;
  delta?: { content?: unknown };
  message?: { content?: unknown };
}

/**
 * Collects the text a generation produced, per choice, from its chunks (streamed deltas or a
 * whole response), to compare a shadow's generation with its primary's. Only requests that have
 * shadow copies pay for it: chunks are parsed here, off the plain forwarding path.
 */
export class GeneratedText {
  readonly #parts: string[][] = [];

  see(chunk: GenerateChunk): void {
    let data = chunk.data;
    if (!data && chunk.json !== undefined) {
      try {
        data = JSON.parse(chunk.json) as Record<string, unknown>;
      } catch {
        return;
      }
    }
    const choices = (data as { choices?: unknown } | undefined)?.choices;
    if (!Array.isArray(choices)) return;
    for (const c of choices as ChoiceText[]) {
      const i = typeof c.index === 'number' ? c.index : 0;
      const text = typeof c.text === 'string' ? c.text : typeof c.delta?.content === 'string' ? c.delta.content : typeof c.message?.content === 'string' ? c.message.content : undefined;
      if (text) (this.#parts[i] ??= []).push(text);
    }
  }

  /** The text of every choice, joined. */
  get texts(): string[] {
    return Array.from(this.#parts, (p) => (p ?? []).join(''));
  }
}

/** Whether two generations produced the same text for every choice. */
export function sameGeneratedText(primary: GeneratedText, shadow: GeneratedText): boolean {
  const a = primary.texts;
  const b = shadow.texts;
  return a.length === b.length && a.every((t, i) => t === b[i]);
}
