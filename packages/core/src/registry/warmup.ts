import type { ModelInstance } from '../contracts/backend.js';
import { allocateTensorData, shapeSize } from '../contracts/tensor.js';
import { TesseraError, errorMessage } from '../errors.js';

/**
 * Warms an instance: its own `warmup()`, or — for a tensor instance without one — one `execute` of
 * zeros shaped from its metadata (dynamic dims as 1), so that `warmup: true` always means a real
 * inference ran. Returns false when nothing could be run (a generative instance without warmup).
 */
export async function warmInstance(instance: ModelInstance, label: string): Promise<boolean> {
  if (instance.warmup) {
    await instance.warmup();
    return true;
  }
  if (!instance.execute) return false;
  const inputs = instance.metadata.inputs.map((spec) => {
    const shape = spec.shape.map((d) => (d >= 0 ? d : 1));
    return { name: spec.name, datatype: spec.datatype, shape, data: allocateTensorData(spec.datatype, shapeSize(shape)) };
  });
  const shown = inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ');
  let results;
  try {
    results = await instance.execute({ requests: [{ inputs }] }, new AbortController().signal);
  } catch (err) {
    throw warmupError(label, shown, err);
  }
  const first = results?.[0];
  if (first instanceof Error) throw warmupError(label, shown, first);
  return true;
}

function warmupError(label: string, shown: string, err: unknown): TesseraError {
  return new TesseraError(
    'TESSERA_E_MODEL_WARMUP',
    `${label}: warm-up with zeros (${shown}) failed: ${errorMessage(err).trim()}. The backend has no warmup() of its own, so the core ran one inference with dynamic dims as 1; set \`warmup: false\` for this model if it cannot take that input.`,
    { cause: err },
  );
}
