/** The `dynamic` batcher's options: their config shape, JSON Schema, defaults and resolution. */
import type { JSONSchema } from '../contracts/backend.js';
import { DURATION_FORMAT, durationSchema } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { validateAgainstSchema } from '../config/validate.js';

/** The `batching` options of the `dynamic` batcher, as written in the config. */
export interface DynamicBatcherOptions {
  /** Longest wait for a batch to fill, from its oldest request: ms (or a duration string), or `auto`. Default 0. */
  maxQueueDelayMs?: number | string;
  /** Batch sizes (samples) dispatched as soon as the queue can form one. Default none. */
  preferredBatchSizes?: number[];
  /** Most requests waiting (not executing); more get 503 TESSERA_E_QUEUE_FULL. 0 = unbounded. Default 1024. */
  maxQueueSize?: number;
  /** Longest wait before a request's batch starts; 0 = none. A request's deadline (`parameters.timeout`, deadline headers, the model's `timeout`) also ends its wait. Default 0. */
  timeoutMs?: number | string;
  /** Number of priority levels; requests choose with `parameters.priority` (1 = highest). Default 1. */
  priorityLevels?: number;
  /** Level of requests without `parameters.priority` (or with 0). Default: the lowest, `priorityLevels`. */
  defaultPriorityLevel?: number;
  /** Shed requests predicted to finish later than this after arrival; 0 = off. Default 0. */
  latencyBudgetMs?: number | string;
  /** Cap on the adaptive wait (`maxQueueDelayMs: auto`). Default 10 ms. */
  adaptiveMaxDelayMs?: number | string;
}

/** The options after defaults and unit conversion (every duration in ms). */
export interface ResolvedDynamicBatcherOptions {
  maxQueueDelayMs: number | 'auto';
  /** Ascending, without duplicates. */
  preferredBatchSizes: number[];
  maxQueueSize: number;
  timeoutMs: number;
  priorityLevels: number;
  defaultPriorityLevel: number;
  latencyBudgetMs: number;
  adaptiveMaxDelayMs: number;
}

/** JSON Schema (draft-07) of the `dynamic` batcher's options (the `batching` keys besides `batcher` and `maxBatchSize`). */
export const DYNAMIC_BATCHER_OPTIONS_SCHEMA: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxQueueDelayMs: {
      anyOf: [{ type: 'number', minimum: 0 }, { const: 'auto' }, { type: 'string', format: DURATION_FORMAT }],
      default: 0,
      description:
        'Longest time a forming batch waits for more requests, from its oldest request (ms, or a duration). 0 (the default, as in Triton) never waits: batches form from what queued while instances were busy. `auto` learns when waiting pays off.',
      examples: [2, 'auto'],
    },
    preferredBatchSizes: {
      type: 'array',
      items: { type: 'integer', minimum: 1 },
      uniqueItems: true,
      default: [],
      description: 'Batch sizes (samples along dim 0) to dispatch at once, without waiting further, when the queue can form one.',
      examples: [[8, 16]],
    },
    maxQueueSize: {
      type: 'integer',
      minimum: 0,
      default: 1024,
      description: 'Most requests waiting in the queue (executing ones not counted); more get 503 TESSERA_E_QUEUE_FULL with Retry-After. 0 = unbounded.',
      examples: [256],
    },
    timeoutMs: durationSchema(
      "Longest time a request may wait before its batch starts; then 503 TESSERA_E_QUEUE_TIMEOUT. 0 = no limit. A request's deadline (the model's `timeout`, `parameters.timeout`, `X-Request-Timeout`, `grpc-timeout`) ends its wait too, with the same answer.",
      0,
      [1000, '2s'],
    ),
    priorityLevels: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description: 'Number of priority levels. Requests pick one with `parameters.priority`: 1 is the highest (Triton\'s convention); higher levels are batched first.',
      examples: [3],
    },
    defaultPriorityLevel: {
      type: 'integer',
      minimum: 1,
      description: 'Level of requests that send no `parameters.priority` (or 0). Default: the lowest level (`priorityLevels`), so that only marked requests jump ahead.',
      examples: [2],
    },
    latencyBudgetMs: durationSchema(
      'Shed (503 TESSERA_E_QUEUE_SHED) requests predicted to finish later than this after they arrived: time queued + predicted wait + predicted execution. 0 = off.',
      0,
      [50],
    ),
    adaptiveMaxDelayMs: durationSchema('With `maxQueueDelayMs: auto`, the longest a batch may be held back (it is also never held longer than its predicted execution time).', 10, [5]),
  },
};

/** Defaults of `ResolvedDynamicBatcherOptions` (`defaultPriorityLevel` follows `priorityLevels`). */
export const DYNAMIC_BATCHER_DEFAULTS: Readonly<Omit<ResolvedDynamicBatcherOptions, 'defaultPriorityLevel'>> = {
  maxQueueDelayMs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 1024,
  timeoutMs: 0,
  priorityLevels: 1,
  latencyBudgetMs: 0,
  adaptiveMaxDelayMs: 10,
};

/**
 * Validates `batching` options against `DYNAMIC_BATCHER_OPTIONS_SCHEMA` (without changing the
 * object given) and resolves defaults and durations. Throws `TESSERA_E_CONFIG_INVALID`.
 */
export function resolveDynamicBatcherOptions(options: Readonly<Record<string, unknown>>, path = 'batching'): ResolvedDynamicBatcherOptions {
  const raw = validateAgainstSchema<DynamicBatcherOptions>(DYNAMIC_BATCHER_OPTIONS_SCHEMA, structuredClone({ ...options }), path);
  const d = DYNAMIC_BATCHER_DEFAULTS;
  const delay = raw.maxQueueDelayMs ?? d.maxQueueDelayMs;
  const priorityLevels = raw.priorityLevels ?? d.priorityLevels;
  return {
    maxQueueDelayMs: delay === 'auto' ? 'auto' : parseDuration(delay, `${path}.maxQueueDelayMs`),
    preferredBatchSizes: [...new Set(raw.preferredBatchSizes ?? d.preferredBatchSizes)].sort((x, y) => x - y),
    maxQueueSize: raw.maxQueueSize ?? d.maxQueueSize,
    timeoutMs: parseDuration(raw.timeoutMs ?? d.timeoutMs, `${path}.timeoutMs`),
    priorityLevels,
    defaultPriorityLevel: raw.defaultPriorityLevel ?? priorityLevels,
    latencyBudgetMs: parseDuration(raw.latencyBudgetMs ?? d.latencyBudgetMs, `${path}.latencyBudgetMs`),
    adaptiveMaxDelayMs: parseDuration(raw.adaptiveMaxDelayMs ?? d.adaptiveMaxDelayMs, `${path}.adaptiveMaxDelayMs`),
  };
}
