/** Checks a loaded model version against the inputs and outputs its config declares (Triton's config.pbtxt `input`/`output`). */
import type { DeclaredSignature, DeclaredTensor } from '../config/types.js';
import type { ModelMetadata } from '../contracts/backend.js';
import type { TensorSpec } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';

/**
 * Throws `TESSERA_E_MODEL_LOAD` when `metadata` (what the backend loaded) differs from
 * `declared`: a declared tensor the model does not have, another datatype, another rank, or a
 * fixed dim that differs (-1 on either side matches any size). A model input that is not declared
 * is a mismatch too when inputs are declared (as Triton's ONNX Runtime backend says); extra
 * outputs are not (a config may list only the outputs it serves). The message names where the
 * signature was declared, the declaring field and the model's actual value.
 */
export function checkDeclaredSignature(model: string, version: string, declared: DeclaredSignature, metadata: ModelMetadata): void {
  const problems = [...compare('input', declared.inputs, metadata.inputs), ...compare('output', declared.outputs, metadata.outputs)];
  if (problems.length === 0) return;
  const where = declared.declaredIn ?? `models.${model}.signature`;
  throw new TesseraError('TESSERA_E_MODEL_LOAD', `${model} v${version} does not match the signature declared in ${where}: ${problems.join('; ')}`);
}

function compare(kind: 'input' | 'output', declared: readonly DeclaredTensor[] | undefined, actual: readonly TensorSpec[]): string[] {
  if (declared === undefined || declared.length === 0) return [];
  const problems: string[] = [];
  const names = actual.map((t) => t.name);
  declared.forEach((d, i) => {
    const field = d.field ?? `${kind}s[${i}] ${JSON.stringify(d.name)}`;
    const found = actual.find((t) => t.name === d.name);
    if (!found) {
      problems.push(`${field}: the model has no ${kind} ${JSON.stringify(d.name)} (its ${kind}s: ${names.map((n) => JSON.stringify(n)).join(', ') || 'none'})`);
      return;
    }
    if (d.datatype !== undefined && d.datatype !== found.datatype) {
      problems.push(`${field}: declares datatype ${d.datatype}, the model's ${kind} ${JSON.stringify(found.name)} is ${found.datatype}`);
    }
    if (d.shape !== undefined && !shapesMatch(d.shape, found.shape)) {
      const ranks = d.shape.length === found.shape.length ? '' : ` (${d.shape.length} dims against ${found.shape.length})`;
      problems.push(`${field}: declares shape ${shapeText(d.shape)}, the model's ${kind} ${JSON.stringify(found.name)} has shape ${shapeText(found.shape)}${ranks}`);
    }
  });
  if (kind === 'input') {
    const declaredNames = new Set(declared.map((d) => d.name));
    for (const t of actual) {
      if (!declaredNames.has(t.name)) problems.push(`the model's input ${JSON.stringify(t.name)} (${t.datatype} ${shapeText(t.shape)}) is not declared (declared inputs: ${[...declaredNames].map((n) => JSON.stringify(n)).join(', ')})`);
    }
  }
  return problems;
}

/** Same rank, and every dim equal where neither side is -1 (any size). */
function shapesMatch(declared: readonly number[], actual: readonly number[]): boolean {
  return declared.length === actual.length && declared.every((d, i) => d === -1 || actual[i] === -1 || d === actual[i]);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
