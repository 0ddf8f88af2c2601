import { describe, expect, it } from 'vitest';
import type { GraphInput } from './onnx-graph.js';
import { ProfileError, batchPlan, deriveProfiles, profileRuns } from './profiles.js';

const CLS: GraphInput[] = [{ name: 'x', shape: [-1, 3, 48, 192] }];
const DET: GraphInput[] = [{ name: 'x', shape: [-1, 3, -1, -1] }];

function error(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return (err as Error).message;
  }
  throw new Error('expected a ProfileError');
}

describe('batchPlan', () => {
  it('should take batching.maxBatchSize and the preferred sizes within it, ascending', () => {
    expect(batchPlan({ batching: { maxBatchSize: 16, preferredBatchSizes: [8, 4, 64, 4] } }, CLS)).toEqual({ maxBatchSize: 16, preferredBatchSizes: [4, 8] });
  });

  it('having no maxBatchSize, should default to 32 when every input has a dynamic dim 0, else 0', () => {
    expect(batchPlan({}, CLS)).toEqual({ maxBatchSize: 32, preferredBatchSizes: [] });
    expect(batchPlan({ batching: { batcher: 'dynamic' } }, [{ name: 'x', shape: [2, 3] }])).toEqual({ maxBatchSize: 0, preferredBatchSizes: [] });
    expect(batchPlan({}, [{ name: 'x', shape: undefined }]).maxBatchSize).toBe(0);
  });
});

describe('deriveProfiles', () => {
  it('should run dim 0 from 1 through the largest preferred batch size to maxBatchSize, other dims fixed', () => {
    expect(deriveProfiles(CLS, { maxBatchSize: 32, preferredBatchSizes: [4, 8] })).toEqual({ x: { min: [1, 3, 48, 192], opt: [8, 3, 48, 192], max: [32, 3, 48, 192] } });
  });

  it('having no preferred batch sizes, should optimise for maxBatchSize', () => {
    expect(deriveProfiles(CLS, { maxBatchSize: 16, preferredBatchSizes: [] })).toEqual({ x: { min: [1, 3, 48, 192], opt: [16, 3, 48, 192], max: [16, 3, 48, 192] } });
  });

  it('should give inputs whose dims are all fixed no profile', () => {
    expect(deriveProfiles([{ name: 'x', shape: [2, 3] }], { maxBatchSize: 0, preferredBatchSizes: [] })).toEqual({});
  });

  it('should fix the other dynamic dims at their warmupShapes size', () => {
    expect(deriveProfiles(DET, { maxBatchSize: 4, preferredBatchSizes: [], warmupShapes: { x: [1, 3, 640, 480] } })).toEqual({
      x: { min: [1, 3, 640, 480], opt: [4, 3, 640, 480], max: [4, 3, 640, 480] },
    });
  });

  it('should treat dim 0 of a model that does not batch as an ordinary dynamic dim', () => {
    expect(deriveProfiles([{ name: 'x', shape: [-1, 3] }], { maxBatchSize: 0, preferredBatchSizes: [], warmupShapes: { x: [5, 3] } })).toEqual({ x: { min: [5, 3], opt: [5, 3], max: [5, 3] } });
  });

  it('having a dynamic dim besides the batch dim and no warmupShapes, should refuse naming the input and tensorrt.profiles', () => {
    const message = error(() => deriveProfiles(DET, { maxBatchSize: 4, preferredBatchSizes: [] }));
    expect(message).toContain("input 'x' (declared [-1, 3, -1, -1]) has a dynamic dim 2");
    expect(message).toContain('set tensorrt.profiles.x ({min, opt, max})');
  });

  it('having an input of unknown rank, should refuse it unless tensorrt.profiles gives it', () => {
    expect(error(() => deriveProfiles([{ name: 'ids', shape: undefined }], { maxBatchSize: 0, preferredBatchSizes: [] }))).toContain("input 'ids' has no declared shape");
    const explicit = { ids: { min: [1, 8], opt: [4, 64], max: [8, 128] } };
    expect(deriveProfiles([{ name: 'ids', shape: undefined }], { maxBatchSize: 0, preferredBatchSizes: [], explicit })).toEqual(explicit);
  });

  it('should take explicit profiles as given and derive the inputs they leave out', () => {
    const inputs: GraphInput[] = [...DET, { name: 'scale', shape: [-1, 2] }];
    const explicit = { x: { min: [1, 3, 32, 32], opt: [8, 3, 640, 640], max: [16, 3, 960, 960] } };
    expect(deriveProfiles(inputs, { maxBatchSize: 16, preferredBatchSizes: [], explicit })).toEqual({ ...explicit, scale: { min: [1, 2], opt: [16, 2], max: [16, 2] } });
  });

  it('should refuse explicit profiles that name an unknown input, have the wrong rank, change a fixed dim or are out of order', () => {
    const base = { maxBatchSize: 8, preferredBatchSizes: [] };
    expect(error(() => deriveProfiles(CLS, { ...base, explicit: { y: { min: [1], opt: [1], max: [1] } } }))).toBe("tensorrt.profiles names input 'y', which the model does not have (inputs: x)");
    expect(error(() => deriveProfiles(CLS, { ...base, explicit: { x: { min: [1, 3, 48], opt: [1, 3, 48], max: [1, 3, 48] } } }))).toContain('has rank 4');
    expect(error(() => deriveProfiles(CLS, { ...base, explicit: { x: { min: [1, 3, 48, 192], opt: [1, 1, 48, 192], max: [1, 3, 48, 192] } } }))).toContain('dim 1 of input');
    expect(error(() => deriveProfiles(CLS, { ...base, explicit: { x: { min: [4, 3, 48, 192], opt: [2, 3, 48, 192], max: [8, 3, 48, 192] } } }))).toContain('min ≤ opt ≤ max, got 4, 2, 8');
  });

  it('should refuse warmupShapes of the wrong rank', () => {
    expect(error(() => deriveProfiles(DET, { maxBatchSize: 4, preferredBatchSizes: [], warmupShapes: { x: [1, 3, 640] } }))).toContain('warmupShapes.x is [1, 3, 640]');
  });
});

describe('profileRuns', () => {
  it('should run min, opt and max, then each preferred batch size with the other dims at opt, each shape once', () => {
    const plan = { maxBatchSize: 32, preferredBatchSizes: [8, 16] };
    const runs = profileRuns(CLS, deriveProfiles(CLS, plan), plan);
    expect(runs.map((r) => r['x']![0])).toEqual([1, 16, 32, 8]);
    expect(runs.every((r) => r['x']!.slice(1).join() === '3,48,192')).toBe(true);
  });

  it('having no profile, should add no runs', () => {
    expect(profileRuns([{ name: 'x', shape: [2, 3] }], {}, { maxBatchSize: 0, preferredBatchSizes: [] })).toEqual([]);
  });
});
