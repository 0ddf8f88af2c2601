import { DEFAULT_MAX_BATCH_SIZE } from '@tessera/backend-onnxruntime';
import type { ShapeProfile } from './config.js';
import type { GraphInput } from './onnx-graph.js';

/** The batch sizes the profiles cover, from the model's `batching` section. */
export interface BatchPlan {
  /** The largest dim 0 of one run; 0: the model does not batch (dim 0 is an ordinary dim). */
  maxBatchSize: number;
  /** `batching.preferredBatchSizes` within 1..maxBatchSize, ascending. */
  preferredBatchSizes: number[];
}

/** What a profile is derived from besides the inputs. */
export interface ProfileSources extends BatchPlan {
  /** `tensorrt.profiles`: taken as given, input by input. */
  explicit?: Readonly<Record<string, ShapeProfile>>;
  /** `warmupShapes`: the size of every dynamic dim other than the batch dim. */
  warmupShapes?: Readonly<Record<string, readonly number[]>>;
}

/** A profile problem, worded for the model's load error (the caller prefixes the model). */
export class ProfileError extends Error {}

/**
 * The batch plan of a model config: `batching.maxBatchSize` when set, else 32 when every input has
 * a dynamic dim 0 (as the ONNX Runtime backend decides), else 0.
 */
export function batchPlan(config: Readonly<Record<string, unknown>>, inputs: readonly GraphInput[]): BatchPlan {
  const batching = (config['batching'] ?? {}) as { maxBatchSize?: unknown; preferredBatchSizes?: unknown };
  const batchable = inputs.length > 0 && inputs.every((i) => i.shape !== undefined && i.shape.length > 0 && i.shape[0] === -1);
  const maxBatchSize = typeof batching.maxBatchSize === 'number' ? batching.maxBatchSize : batchable ? DEFAULT_MAX_BATCH_SIZE : 0;
  const preferred = Array.isArray(batching.preferredBatchSizes) ? batching.preferredBatchSizes.filter((n): n is number => typeof n === 'number') : [];
  return { maxBatchSize, preferredBatchSizes: [...new Set(preferred.filter((n) => n >= 1 && n <= maxBatchSize))].sort((a, b) => a - b) };
}

function show(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Checks an explicit profile against the declared shape. */
function checkExplicit(input: GraphInput, profile: ShapeProfile): ShapeProfile {
  const declared = input.shape;
  for (const key of ['min', 'opt', 'max'] as const) {
    const shape = profile[key];
    if (declared && shape.length !== declared.length) {
      throw new ProfileError(`tensorrt.profiles.${input.name}.${key} is ${show(shape)} but input '${input.name}' has rank ${declared.length} (declared ${show(declared)})`);
    }
    declared?.forEach((d, i) => {
      if (d !== -1 && shape[i] !== d) throw new ProfileError(`tensorrt.profiles.${input.name}.${key} is ${show(shape)} but dim ${i} of input '${input.name}' is fixed at ${d}`);
    });
  }
  profile.min.forEach((lo, i) => {
    if (!(lo <= profile.opt[i]! && profile.opt[i]! <= profile.max[i]!)) {
      throw new ProfileError(`tensorrt.profiles.${input.name}: dim ${i} must satisfy min ≤ opt ≤ max, got ${lo}, ${profile.opt[i]}, ${profile.max[i]}`);
    }
  });
  return { min: [...profile.min], opt: [...profile.opt], max: [...profile.max] };
}

/**
 * The TensorRT optimization profile of every input with a dynamic dim (inputs whose dims are all
 * fixed need none). An input named in `explicit` takes it as given (checked against its declared
 * shape). Otherwise, when the model batches, its dynamic dim 0 runs from 1 (min) through the largest
 * preferred batch size, else `maxBatchSize` (opt), to `maxBatchSize` (max); every other dynamic dim
 * is fixed at its `warmupShapes` size (min = opt = max), and an input without one is refused: TensorRT
 * needs a range for each dim, and guessing one would build engines for shapes nobody sends.
 */
export function deriveProfiles(inputs: readonly GraphInput[], sources: ProfileSources): Record<string, ShapeProfile> {
  const explicit = sources.explicit ?? {};
  const names = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(explicit)) {
    if (!names.has(name)) throw new ProfileError(`tensorrt.profiles names input '${name}', which the model does not have (inputs: ${[...names].join(', ') || 'none'})`);
  }
  const { maxBatchSize, preferredBatchSizes } = sources;
  const opt = preferredBatchSizes.at(-1) ?? maxBatchSize;
  const profiles: Record<string, ShapeProfile> = {};
  for (const input of inputs) {
    const given = explicit[input.name];
    if (given) {
      profiles[input.name] = checkExplicit(input, given);
      continue;
    }
    const shape = input.shape;
    if (shape === undefined) throw new ProfileError(`input '${input.name}' has no declared shape, so TensorRT needs its profile: set tensorrt.profiles.${input.name} ({min, opt, max})`);
    if (!shape.includes(-1)) continue;
    const warm = sources.warmupShapes?.[input.name];
    if (warm && warm.length !== shape.length) throw new ProfileError(`warmupShapes.${input.name} is ${show(warm)} but input '${input.name}' has rank ${shape.length} (declared ${show(shape)})`);
    const profile: ShapeProfile = { min: [], opt: [], max: [] };
    shape.forEach((d, i) => {
      if (d !== -1) {
        profile.min.push(d);
        profile.opt.push(d);
        profile.max.push(d);
      } else if (i === 0 && maxBatchSize > 0) {
        profile.min.push(1);
        profile.opt.push(opt);
        profile.max.push(maxBatchSize);
      } else if (warm) {
        const size = warm[i]!;
        profile.min.push(size);
        profile.opt.push(size);
        profile.max.push(size);
      } else {
        throw new ProfileError(
          `input '${input.name}' (declared ${show(shape)}) has a dynamic dim ${i} besides the batch dim, and TensorRT needs a range for it: ` +
            `set tensorrt.profiles.${input.name} ({min, opt, max}), or warmupShapes.${input.name} to serve that one size`,
        );
      }
    });
    profiles[input.name] = profile;
  }
  return profiles;
}

/**
 * The shapes to run once each so that TensorRT builds (or loads) its engines before serving: every
 * input at the profiles' min, opt and max, then at each preferred batch size (other dims at opt).
 * Inputs without a profile keep their declared shape. Without any profile: none (the plain warm-up
 * covers a model of fixed shapes).
 */
export function profileRuns(inputs: readonly GraphInput[], profiles: Readonly<Record<string, ShapeProfile>>, plan: BatchPlan): Record<string, number[]>[] {
  if (Object.keys(profiles).length === 0) return [];
  const runs = new Map<string, Record<string, number[]>>();
  const add = (pick: (input: GraphInput, profile: ShapeProfile | undefined) => number[]): void => {
    const run = Object.fromEntries(inputs.map((i) => [i.name, pick(i, profiles[i.name])]));
    runs.set(JSON.stringify(run), run);
  };
  for (const key of ['min', 'opt', 'max'] as const) add((i, p) => [...(p?.[key] ?? i.shape ?? [])]);
  if (plan.maxBatchSize > 0) {
    for (const b of plan.preferredBatchSizes) add((i, p) => [b, ...(p?.opt ?? i.shape ?? []).slice(1)]);
  }
  return [...runs.values()];
}
