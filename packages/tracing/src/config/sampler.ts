/** The sampler: `sampleRatio` from the config, else `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`. */
import type { Env } from './env.js';
import { readEnv } from './env.js';

/** Sampler names of `OTEL_TRACES_SAMPLER` that this plugin supports. */
export const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** A sampler by its `OTEL_TRACES_SAMPLER` name. */
export interface SamplerSpec {
  name: SamplerName;
  /** For the `*traceidratio` samplers. */
  ratio?: number;
}

function parseRatio(text: string | undefined, variable: string, warnings: string[]): number {
  if (text === undefined) return 1;
  const ratio = Number(text);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    warnings.push(`${variable}=${text} is not a number between 0 and 1; using 1`);
    return 1;
  }
  return ratio;
}

/**
 * The sampler from `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, or undefined when the variable
 * is unset. Unsupported samplers (jaeger_remote, xray, …) fall back to `parentbased_always_on`
 * with a warning.
 */
export function samplerFromEnv(env: Env, warnings: string[] = []): SamplerSpec | undefined {
  const raw = readEnv(env, 'OTEL_TRACES_SAMPLER');
  if (raw === undefined) return undefined;
  const name = raw.toLowerCase();
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    warnings.push(`OTEL_TRACES_SAMPLER=${raw} is not supported (supported: ${SAMPLER_NAMES.join(', ')}); using parentbased_always_on`);
    return { name: 'parentbased_always_on' };
  }
  if (name === 'traceidratio' || name === 'parentbased_traceidratio') {
    return { name, ratio: parseRatio(readEnv(env, 'OTEL_TRACES_SAMPLER_ARG'), 'OTEL_TRACES_SAMPLER_ARG', warnings) };
  }
  return { name: name as SamplerName };
}

/** A readable form of a sampler for logs: `parentbased_traceidratio(0.25)`. */
export function describeSampler(spec: SamplerSpec): string {
  return spec.ratio === undefined ? spec.name : `${spec.name}(${spec.ratio})`;
}


/**
 * The sampler and where it came from: `sampleRatio` as a parent-based ratio sampler (a sampled
 * parent is always followed), else the environment, else `parentbased_always_on`.
 */
export function resolveSampler(sampleRatio: number | undefined, env: Env, warnings: string[]): { sampler: SamplerSpec; source: string } {
  if (sampleRatio !== undefined) return { sampler: { name: 'parentbased_traceidratio', ratio: sampleRatio }, source: 'config' };
  const fromEnv = samplerFromEnv(env, warnings);
  return { sampler: fromEnv ?? { name: 'parentbased_always_on' }, source: fromEnv ? 'OTEL_TRACES_SAMPLER' : 'default' };
}
