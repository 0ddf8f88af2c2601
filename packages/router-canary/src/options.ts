import type { JSONSchema } from '@tessera/core';
import { TesseraError, durationSchema, parseDuration } from '@tessera/core';

/** A version label: `'2'` or `2` (YAML reads an unquoted 2 as a number). */
const VERSION_LABEL = { type: ['string', 'integer'], pattern: '^[1-9][0-9]*$', minimum: 1 } as const;

/** What a canary is judged on. */
export const CANARY_METRICS = ['errorRate', 'latency', 'ttft', 'tpot'] as const;
export type CanaryMetric = (typeof CANARY_METRICS)[number];

export const CANARY_DEFAULTS = {
  steps: [5, 25, 50, 100],
  interval: '30s',
  minRequests: 50,
  threshold: 2,
  confidence: 0.95,
  metrics: [...CANARY_METRICS],
  maxLatencyRatio: 1.2,
  errorRateMargin: 0.01,
} as const;

const STICKY_HEADER = {
  type: 'string',
  pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$',
  description: 'A request header (e.g. `x-user-id`) whose value places the request: the same value always goes to the same version, on every replica and after restarts. Without it (or when a request lacks it) the request id is hashed.',
} as const;

const CONFIDENCE = {
  type: 'number',
  exclusiveMinimum: 0.5,
  exclusiveMaximum: 1,
  default: CANARY_DEFAULTS.confidence,
  description: 'Confidence of the sequential tests: a verdict is "worse" only when it holds at this level however often it was looked at (α = 1 − confidence, split over the metrics and steps judged).',
} as const;

/** A limit that is off unless given: no default (a duration's default would be read as a limit). */
function withoutDefault(schema: JSONSchema): JSONSchema {
  const { default: _unused, ...rest } = schema as JSONSchema & { default?: unknown };
  return rest;
}

export const CANARY_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  required: ['baseline', 'canary'],
  additionalProperties: false,
  properties: {
    baseline: { ...VERSION_LABEL, description: 'The version serving now: it keeps the traffic the canary does not get, and is what the canary is compared with, over the same window.' },
    canary: { ...VERSION_LABEL, description: 'The version being rolled out.' },
    steps: {
      type: 'array',
      items: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
      minItems: 1,
      description: `Share of new requests the canary gets at each step, in percent, increasing (default ${JSON.stringify(CANARY_DEFAULTS.steps)}); a passed judgement moves to the next step, and after the last (or at 100) the canary is promoted. Not together with \`stepWeight\`.`,
    },
    stepWeight: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'Steps of this many percent (Flagger\'s `stepWeight`): stepWeight, 2·stepWeight, … up to `maxWeight`.' },
    maxWeight: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'With `stepWeight`: the last step, in percent (default 50).' },
    interval: durationSchema('Time between two judgements; each judges the canary against the baseline on the requests of the same window.', CANARY_DEFAULTS.interval, ['1m', '30s']),
    minRequests: {
      type: 'integer',
      minimum: 1,
      default: CANARY_DEFAULTS.minRequests,
      description: 'Canary requests a judgement needs; with fewer the step holds (verdict `hold`: no data is never a pass) and the window grows into the next interval until they have come.',
    },
    threshold: { type: 'integer', minimum: 1, default: CANARY_DEFAULTS.threshold, description: 'Failed judgements (in the whole rollout) that roll the canary back.' },
    confidence: CONFIDENCE,
    metrics: {
      type: 'array',
      items: { enum: [...CANARY_METRICS] },
      minItems: 1,
      uniqueItems: true,
      default: [...CANARY_DEFAULTS.metrics],
      description: 'What is judged: `errorRate` (server faults; 4xx never count), `latency` (request duration), `ttft` and `tpot` (streamed generations: time to first token, time per output token). A metric no outcome carries is skipped.',
    },
    maxLatencyRatio: {
      type: 'number',
      minimum: 1,
      default: CANARY_DEFAULTS.maxLatencyRatio,
      description:
        "How much slower than the baseline the canary may be (ratio of geometric means) for `latency`, `ttft` and `tpot`: a judgement fails when the ratio's confidence sequence lies above it and passes when it lies at or below it; in between the step holds.",
    },
    errorRateMargin: {
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      default: CANARY_DEFAULTS.errorRateMargin,
      description:
        "How much higher than the baseline's the canary's server-fault rate may be and still pass (absolute: 0.01 is one percentage point). A judgement passes `errorRate` once the difference's confidence sequence lies at or below it, and fails once the sequence lies above 0 (the canary is worse at all); in between the step holds.",
    },
    maxErrorRate: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: "An absolute limit on the canary's server-fault rate: a judgement fails when the rate's confidence sequence lies above it (besides the comparison with the baseline, which always applies when `errorRate` is judged).",
    },
    maxP99: withoutDefault(durationSchema("A limit on the canary's p99 request latency in the window (a point estimate: judged only with `minRequests`).", 0, ['500ms'])),
    stickyHeader: STICKY_HEADER,
  },
};

export interface CanaryOptions {
  baseline: string;
  canary: string;
  /** Canary shares, 0..1, increasing; the last may be 1. */
  steps: number[];
  intervalMs: number;
  minRequests: number;
  threshold: number;
  confidence: number;
  metrics: CanaryMetric[];
  maxLatencyRatio: number;
  errorRateMargin: number;
  maxErrorRate?: number;
  maxP99Ms?: number;
  stickyHeader?: string;
}

function invalid(model: string, key: string, message: string): TesseraError {
  return new TesseraError('TESSERA_E_CONFIG_INVALID', `models.${model}.routing.${key}: ${message}`);
}

/** Checks that each named version is configured. */
export function requireVersions(model: string, versions: readonly string[], named: Record<string, string>): void {
  for (const [key, version] of Object.entries(named)) {
    if (!versions.includes(version)) throw invalid(model, key, `version '${version}' is not configured (the model has ${versions.map((v) => `'${v}'`).join(', ')})`);
  }
}

/** The validated `routing` section of a canary, resolved (durations in ms, steps as shares). */
export function resolveCanaryOptions(model: string, versions: readonly string[], raw: Readonly<Record<string, unknown>>): CanaryOptions {
  const baseline = String(raw.baseline);
  const canary = String(raw.canary);
  requireVersions(model, versions, { baseline, canary });
  if (baseline === canary) throw invalid(model, 'canary', `the canary must differ from the baseline (both '${baseline}')`);
  let percents: number[];
  if (raw.steps !== undefined && raw.stepWeight !== undefined) throw invalid(model, 'steps', 'give `steps` or `stepWeight` (with `maxWeight`), not both');
  if (raw.stepWeight !== undefined) {
    const step = raw.stepWeight as number;
    const max = (raw.maxWeight as number | undefined) ?? 50;
    if (step > max) throw invalid(model, 'stepWeight', `stepWeight (${step}) is above maxWeight (${max})`);
    percents = [];
    for (let w = step; w <= max + 1e-9; w += step) percents.push(Math.min(w, max));
  } else {
    if (raw.maxWeight !== undefined) throw invalid(model, 'maxWeight', '`maxWeight` goes with `stepWeight`');
    percents = [...((raw.steps as number[] | undefined) ?? CANARY_DEFAULTS.steps)];
  }
  for (let i = 1; i < percents.length; i++) {
    if (percents[i]! <= percents[i - 1]!) throw invalid(model, 'steps', `steps must increase: ${JSON.stringify(percents)}`);
  }
  const interval = parseDuration((raw.interval as string | number | undefined) ?? CANARY_DEFAULTS.interval, `models.${model}.routing.interval`);
  if (interval < 10) throw invalid(model, 'interval', `an interval of ${interval} ms is too short to judge anything (10 ms at least; minutes in production)`);
  return {
    baseline,
    canary,
    steps: percents.map((p) => p / 100),
    intervalMs: interval,
    minRequests: (raw.minRequests as number | undefined) ?? CANARY_DEFAULTS.minRequests,
    threshold: (raw.threshold as number | undefined) ?? CANARY_DEFAULTS.threshold,
    confidence: (raw.confidence as number | undefined) ?? CANARY_DEFAULTS.confidence,
    metrics: [...((raw.metrics as CanaryMetric[] | undefined) ?? CANARY_DEFAULTS.metrics)],
    maxLatencyRatio: (raw.maxLatencyRatio as number | undefined) ?? CANARY_DEFAULTS.maxLatencyRatio,
    errorRateMargin: (raw.errorRateMargin as number | undefined) ?? CANARY_DEFAULTS.errorRateMargin,
    ...(raw.maxErrorRate !== undefined ? { maxErrorRate: raw.maxErrorRate as number } : {}),
    ...(raw.maxP99 !== undefined ? { maxP99Ms: parseDuration(raw.maxP99 as string | number, `models.${model}.routing.maxP99`) } : {}),
    ...(raw.stickyHeader !== undefined ? { stickyHeader: (raw.stickyHeader as string).toLowerCase() } : {}),
  };
}

export const AB_DEFAULTS = { interval: '1m', minRequests: 100, autoConclude: false, metric: 'successRate' } as const;

export const AB_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  required: ['variants'],
  additionalProperties: false,
  properties: {
    variants: {
      type: 'object',
      minProperties: 2,
      propertyNames: { pattern: '^[1-9][0-9]*$' },
      additionalProperties: { type: 'number', minimum: 0 },
      description: 'Versions in the test and their shares of the traffic (any positive numbers, e.g. `{"1": 50, "2": 50}`); the first is the control the others are compared with.',
    },
    stickyHeader: STICKY_HEADER,
    confidence: CONFIDENCE,
    minRequests: { type: 'integer', minimum: 2, default: AB_DEFAULTS.minRequests, description: 'Requests each variant needs before it can win or lose.' },
    metric: { enum: ['successRate', 'latency'], default: AB_DEFAULTS.metric, description: 'What decides a winner: `successRate` (higher is better) or `latency` (lower is better).' },
    autoConclude: {
      type: 'boolean',
      default: AB_DEFAULTS.autoConclude,
      description: 'Act on the statistics: a variant that loses to the control at `confidence` gets no more traffic, and one that beats the control concludes the test (it gets all traffic). Off: the statistics are only reported.',
    },
    interval: durationSchema('How often the automatic conclusion looks at the statistics (the statistics stay valid however often it looks).', AB_DEFAULTS.interval, ['1m']),
  },
};

export interface AbOptions {
  variants: { version: string; weight: number }[];
  stickyHeader?: string;
  confidence: number;
  minRequests: number;
  metric: 'successRate' | 'latency';
  autoConclude: boolean;
  intervalMs: number;
}

export function resolveAbOptions(model: string, versions: readonly string[], raw: Readonly<Record<string, unknown>>): AbOptions {
  const entries = Object.entries(raw.variants as Record<string, number>);
  requireVersions(model, versions, Object.fromEntries(entries.map(([v]) => [`variants.${v}`, v])));
  const total = entries.reduce((a, [, w]) => a + w, 0);
  if (!(total > 0)) throw invalid(model, 'variants', 'at least one variant needs a weight above 0');
  return {
    variants: entries.map(([version, w]) => ({ version, weight: w / total })),
    ...(raw.stickyHeader !== undefined ? { stickyHeader: (raw.stickyHeader as string).toLowerCase() } : {}),
    confidence: (raw.confidence as number | undefined) ?? CANARY_DEFAULTS.confidence,
    minRequests: (raw.minRequests as number | undefined) ?? AB_DEFAULTS.minRequests,
    metric: (raw.metric as AbOptions['metric'] | undefined) ?? AB_DEFAULTS.metric,
    autoConclude: (raw.autoConclude as boolean | undefined) ?? AB_DEFAULTS.autoConclude,
    intervalMs: parseDuration((raw.interval as string | number | undefined) ?? AB_DEFAULTS.interval, `models.${model}.routing.interval`),
  };
}

export const SHADOW_DEFAULTS = { percent: 10, mirrorExplicit: true } as const;

export const SHADOW_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  required: ['primary', 'shadow'],
  additionalProperties: false,
  properties: {
    primary: { ...VERSION_LABEL, description: 'The version that answers every request that names none.' },
    shadow: { ...VERSION_LABEL, description: 'The version that gets copies after the primary answered; its answers are compared with the primary\'s and discarded.' },
    percent: { type: 'number', minimum: 0, maximum: 100, default: SHADOW_DEFAULTS.percent, description: 'Share of requests mirrored, in percent (chosen by hashing the request id).' },
    mirrorExplicit: { type: 'boolean', default: SHADOW_DEFAULTS.mirrorExplicit, description: 'Also mirror requests that name the primary version themselves.' },
  },
};

export interface ShadowOptions {
  primary: string;
  shadow: string;
  share: number;
  mirrorExplicit: boolean;
}

export function resolveShadowOptions(model: string, versions: readonly string[], raw: Readonly<Record<string, unknown>>): ShadowOptions {
  const primary = String(raw.primary);
  const shadow = String(raw.shadow);
  requireVersions(model, versions, { primary, shadow });
  if (primary === shadow) throw invalid(model, 'shadow', `the shadow must differ from the primary (both '${primary}')`);
  return { primary, shadow, share: ((raw.percent as number | undefined) ?? SHADOW_DEFAULTS.percent) / 100, mirrorExplicit: (raw.mirrorExplicit as boolean | undefined) ?? SHADOW_DEFAULTS.mirrorExplicit };
}
