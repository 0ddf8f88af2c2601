/** Reading a model's metadata from the upstreams, and checking that they agree. */
import type { DataType, ModelMetadata, TensorSpec } from '@tessera/core';
import { TesseraError } from '@tessera/core';

/** A tensor of an OIP v2 model metadata answer. */
interface MetadataTensor {
  name: string;
  datatype: string;
  shape: number[];
}

/** What one upstream said about the model: its metadata, or why it could not say. */
export type UpstreamMetadata = { url: string; metadata: ModelMetadata } | { url: string; unreachable: string } | { url: string; refused: string };

/** A tensor list in a stable text form, for comparisons and messages. */
export function tensorsText(specs: readonly TensorSpec[]): string {
  return specs.map((t) => `${t.name} ${t.datatype} [${t.shape.join(',')}]`).join('; ');
}

function tensors(list: unknown, what: string, url: string): TensorSpec[] {
  if (!Array.isArray(list)) throw new TesseraError('TESSERA_E_MODEL_LOAD', `upstream ${url}: the model metadata has no ${what} list`);
  return (list as MetadataTensor[]).map((t) => ({ name: String(t.name), datatype: String(t.datatype) as DataType, shape: Array.isArray(t.shape) ? t.shape.map(Number) : [] }));
}

/**
 * Parses `GET /v2/models/{m}[/versions/{v}]` and, when the upstream has the model configuration
 * extension, `max_batch_size` from `GET …/config` (0 otherwise).
 */
export function parseMetadata(url: string, body: unknown, config: unknown): ModelMetadata {
  const m = (body ?? {}) as { platform?: unknown; inputs?: unknown; outputs?: unknown };
  const max = (config as { max_batch_size?: unknown } | undefined)?.max_batch_size;
  return {
    platform: typeof m.platform === 'string' && m.platform ? m.platform : 'remote',
    inputs: tensors(m.inputs, 'inputs', url),
    outputs: tensors(m.outputs, 'outputs', url),
    maxBatchSize: typeof max === 'number' && Number.isSafeInteger(max) && max > 0 ? max : 0,
  };
}

/** Why `b` differs from `a` (inputs, outputs or batching), or undefined when they agree. */
export function metadataDifference(a: ModelMetadata, b: ModelMetadata): string | undefined {
  for (const key of ['inputs', 'outputs'] as const) {
    const x = tensorsText(a[key]);
    const y = tensorsText(b[key]);
    if (x !== y) return `${key} ${y || '(none)'} instead of ${x || '(none)'}`;
  }
  if (a.maxBatchSize !== b.maxBatchSize) return `max_batch_size ${b.maxBatchSize} instead of ${a.maxBatchSize}`;
  return undefined;
}

/**
 * The metadata every answering upstream agrees on. Unreachable upstreams are skipped (the pool's
 * probes keep them out until they answer, and check them then); an upstream that answered but
 * refused (e.g. 404: it does not serve the model) or differs fails the load, naming it.
 */
export function agreedMetadata(model: string, answers: readonly UpstreamMetadata[]): ModelMetadata {
  const refused = answers.find((a): a is { url: string; refused: string } => 'refused' in a);
  if (refused) throw new TesseraError('TESSERA_E_MODEL_LOAD', `models.${model}: upstream ${refused.url} ${refused.refused}`);
  const good = answers.filter((a): a is { url: string; metadata: ModelMetadata } => 'metadata' in a);
  const first = good[0];
  if (!first) {
    const why = answers.map((a) => `${a.url}: ${'unreachable' in a ? a.unreachable : ''}`).join('; ');
    throw new TesseraError('TESSERA_E_MODEL_LOAD', `models.${model}: no upstream answered the model metadata request (${why})`);
  }
  for (const other of good.slice(1)) {
    const diff = metadataDifference(first.metadata, other.metadata);
    if (diff) throw new TesseraError('TESSERA_E_MODEL_LOAD', `models.${model}: the upstreams disagree on the model: ${other.url} has ${diff} (as on ${first.url})`);
  }
  return first.metadata;
}
