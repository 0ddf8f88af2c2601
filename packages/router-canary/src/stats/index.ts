export type { CountSummary, RunningMomentsJSON, SampleSummary } from './moments.js';
export { RunningMoments } from './moments.js';
export type { ConfidenceSequence, SequentialComparison, SequentialOptions, ZTest } from './sequential.js';
export {
  DEFAULT_TAU,
  compareMeans,
  compareProportions,
  fixedHorizonZTest,
  meanSequence,
  proportionSequence,
  quantile,
  runningMin,
  shrunkRate,
} from './sequential.js';
