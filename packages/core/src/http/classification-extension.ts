import type { Tensor } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import { readScoreRow, topK } from '../internal/top-k.js';
import type { JsonInferRequest } from './infer-schema.js';

/**
 * Triton's classification extension: the outputs a request asked for as classes
 * (`outputs[].parameters.classification: k`), by name, with their k; undefined when none did.
 */
export function classificationRequests(body: Pick<JsonInferRequest, 'outputs'>): Map<string, number> | undefined {
  let asked: Map<string, number> | undefined;
  for (const o of body.outputs ?? []) {
    const k = o.parameters?.['classification'];
    if (k === undefined) continue;
    (asked ??= new Map()).set(o.name, k);
  }
  return asked;
}

/**
 * Replaces each asked output by its top k classes, as Triton answers them: a BYTES tensor of
 * `"<value>:<index>"` strings (`":<label>"` appended where the output has labels, e.g. a
 * config.pbtxt `label_filename`), best first, k at most the number of classes. A batched output
 * `[N, C…]` gives `[N, k]`, an unbatched one `[C…]` gives `[k]`; the value is printed as C++'s
 * `std::to_string(float)` does (six decimals), so clients that parse Triton's strings read ours.
 * @throws TesseraError 400 `TESSERA_E_REQUEST_INVALID` for an output that is not numeric.
 */
export function applyClassification(outputs: readonly Tensor[], asked: ReadonlyMap<string, number>, batched: boolean, labelsOf: (output: string) => readonly string[] | undefined): Tensor[] {
  return outputs.map((t) => {
    const k = asked.get(t.name);
    if (k === undefined) return t;
    if (t.datatype === 'BYTES' || t.datatype === 'BOOL') {
      throw new TesseraError('TESSERA_E_REQUEST_INVALID', `output '${t.name}': the classification extension needs a numeric output, not ${t.datatype}`);
    }
    const rows = batched && t.shape.length >= 2 ? t.shape[0]! : 1;
    const classes = rows === 0 ? 0 : t.data.length / rows;
    const top = Math.min(k, classes);
    const labels = labelsOf(t.name);
    const data: string[] = [];
    const row = new Float64Array(classes);
    const taken = new Uint8Array(classes);
    const best = new Int32Array(top);
    for (let r = 0; r < rows; r++) {
      readScoreRow(t, r, classes, row);
      topK(row, top, taken, best);
      for (const i of best) {
        const label = labels?.[i];
        data.push(`${row[i]!.toFixed(6)}:${i}${label !== undefined ? `:${label}` : ''}`);
      }
    }
    return { name: t.name, datatype: 'BYTES', shape: batched && t.shape.length >= 2 ? [rows, top] : [top], data };
  });
}
