import { stringify } from 'yaml';
import type { ModelConfig } from '../config/types.js';
import type { Measurement } from './measurement.js';
import { formatNumber } from './table.js';

/** What the comment header of the overlay says. */
export interface OverlayContext {
  model: string;
  /** The model as the user's config has it (decides whether `batcher: dynamic` must be written). */
  config: ModelConfig;
  chosen: Measurement;
  budgetMs?: number;
  /** `16 cores (AMD EPYC 7R13), Node v20.19.0, linux x64`. */
  machine: string;
  date: Date;
  /** The command line, as run. */
  command: string;
  /** The config files given, for the "use" line. */
  configFiles: readonly string[];
  /** The overlay's own path, for the "use" line. */
  out: string;
}

/**
 * The overlay `tessera tune` writes: only the model's settings the sweep chose — `instances`,
 * `sessionOptions.intraOpNumThreads` (backends with threads), `batching.maxBatchSize` and
 * `batching.maxQueueDelayMs` (`batcher: dynamic` as well when the base config chose another
 * batcher) — under a comment saying where, when, how and what was measured.
 */
export function overlayText(ctx: OverlayContext): string {
  const { point } = ctx.chosen;
  const section: Record<string, unknown> = { instances: point.instances };
  if (point.threads !== undefined) section['sessionOptions'] = { intraOpNumThreads: point.threads };
  // a model that does not batch (max batch 0) keeps its batching section as it is
  if (point.maxBatchSize !== undefined && point.maxBatchSize > 0) {
    const batching: Record<string, unknown> = {};
    if (ctx.config.batching.batcher !== 'dynamic') batching['batcher'] = 'dynamic';
    batching['maxBatchSize'] = point.maxBatchSize;
    batching['maxQueueDelayMs'] = point.maxQueueDelayMs;
    section['batching'] = batching;
  }
  const m = ctx.chosen;
  const budget = ctx.budgetMs === undefined ? 'the highest throughput (no latency budget)' : `the highest throughput with p99 ≤ ${ctx.budgetMs} ms`;
  const header = [
    `# Written by tessera tune: ${budget} for model '${ctx.model}'.`,
    `# Machine: ${ctx.machine}`,
    `# Date: ${ctx.date.toISOString()}`,
    `# Command: ${ctx.command}`,
    `# Measured: ${formatNumber(m.samplesPerSec)} samples/s, p50 ${formatNumber(m.p50Ms)} ms, p99 ${formatNumber(m.p99Ms)} ms, mean batch ${formatNumber(m.meanBatch)}, ${m.errors} errors, at ${m.concurrency} concurrent client${m.concurrency === 1 ? '' : 's'} over ${(m.durationMs / 1000).toFixed(1)} s (${m.stage} stage).`,
    `# Use: tessera serve ${[...ctx.configFiles, ctx.out].map((f) => `-c ${f}`).join(' ')}`,
  ];
  return `${header.join('\n')}\n${stringify({ models: { [ctx.model]: section } })}`;
}
