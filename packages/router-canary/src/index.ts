/**
 * `@tessera/router-canary`: progressive canary rollouts with automatic rollback, A/B/n tests and
 * shadow traffic, per model version, judged with always-valid sequential statistics. Listing it in
 * `plugins:` registers three routing strategies: `canary`, `ab` and `shadow`.
 */
import { createRequire } from 'node:module';
import { definePlugin } from '@tessera/core';
import { abRouterFactory } from './ab.js';
import { canaryRouterFactory } from './canary.js';
import { shadowRouterFactory } from './shadow.js';

// read at run time: dist/index.js and src/index.ts both sit one folder below package.json
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export type { AbEvent, AbState } from './ab.js';
export { AB_ACTIONS, AB_STATES, AB_STATE_KEY, AB_STRATEGY, AbRouter, abRouterFactory } from './ab.js';
export type { CanaryCheck, CanaryHistoryEntry, CanaryJudgement, CanaryState, CanaryTransition } from './canary.js';
export { CANARY_ACTIONS, CANARY_STATES, CANARY_STATE_KEY, CANARY_STRATEGY, CanaryRouter, canaryRouterFactory } from './canary.js';
export type { ShadowState } from './shadow.js';
export { SHADOW_ACTIONS, SHADOW_PERSIST_MS, SHADOW_STATES, SHADOW_STATE_KEY, SHADOW_STRATEGY, ShadowRouter, shadowRouterFactory } from './shadow.js';
export { CANARY_ERRORS } from './errors.js';
export type { AbOptions, CanaryMetric, CanaryOptions, ShadowOptions } from './options.js';
export {
  AB_DEFAULTS,
  AB_OPTIONS_SCHEMA,
  CANARY_DEFAULTS,
  CANARY_METRICS,
  CANARY_OPTIONS_SCHEMA,
  SHADOW_DEFAULTS,
  SHADOW_OPTIONS_SCHEMA,
  resolveAbOptions,
  resolveCanaryOptions,
  resolveShadowOptions,
} from './options.js';
export type { ConfidenceSequence, CountSummary, RunningMomentsJSON, SampleSummary, SequentialComparison, SequentialOptions, ZTest } from './stats/index.js';
export {
  DEFAULT_TAU,
  RunningMoments,
  compareMeans,
  compareProportions,
  fixedHorizonZTest,
  meanSequence,
  proportionSequence,
  quantile,
  runningMin,
  shrunkRate,
} from './stats/index.js';

/** The plugin: registers the `canary`, `ab` and `shadow` routing strategies. */
const plugin = definePlugin({
  name: '@tessera/router-canary',
  version,
  core: '^0.1.0',
  register(ctx) {
    ctx.registerRouter('canary', canaryRouterFactory);
    ctx.registerRouter('ab', abRouterFactory);
    ctx.registerRouter('shadow', shadowRouterFactory);
  },
});

export default plugin;
