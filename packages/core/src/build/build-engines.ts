import type { Backend, BuildReport } from '../contracts/backend.js';
import { BACKEND } from '../contracts/backend.js';
import type { TesseraConfig } from '../config/types.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import { compareVersions } from '../routing/latest-router.js';
import type { TesseraServerOptions } from '../server.js';
import { TesseraServer } from '../server.js';
import { buildVersionSpec } from './version-spec.js';

/** What `build-engine` did for one model version. */
export type VersionBuild =
  | { model: string; version: string; backend: string; state: 'built'; ms: number; report: BuildReport }
  | { model: string; version: string; backend: string; state: 'nothing' }
  | { model: string; version: string; backend: string; state: 'failed'; ms: number; error: TesseraError };

export interface BuildEnginesOptions {
  config: TesseraConfig;
  /** Only this model (it must be in the config). */
  model?: string | undefined;
  /** Called before each version's build starts, and with each outcome (for progress lines). */
  onStart?(model: string, version: string, backend: string): void;
  onDone?(outcome: VersionBuild): void;
  signal?: AbortSignal;
  /** Plugins given as values and a state store, as `TesseraServerOptions` takes them (tests, embedding). */
  server?: Pick<TesseraServerOptions, 'plugins' | 'stateStore'>;
}

/** The models to build: `only`, or every one; an unknown `only` is a usage error that lists them. */
export function selectModels(config: TesseraConfig, only: string | undefined): string[] {
  const names = Object.keys(config.models);
  if (only === undefined) return names;
  if (!names.includes(only)) {
    throw new TesseraError('TESSERA_E_CLI_USAGE', `--model ${only}: no such model in ${config.configFile || 'the config'} (models: ${names.join(', ') || 'none'}) (see tessera --help)`);
  }
  return [only];
}

/**
 * Runs `Backend.build` for every version of the selected models whose backend has one, one after
 * the other (builds compete for the same GPU), and `nothing` for the others. Plugins and options are
 * loaded and checked as `tessera validate` does (a config problem rejects before anything is built);
 * a failed build is an outcome, not a rejection, so the other versions still build.
 */
export async function buildEngines(options: BuildEnginesOptions): Promise<VersionBuild[]> {
  const { config } = options;
  const names = selectModels(config, options.model);
  const server = new TesseraServer({ ...options.server, config: { ...config, server: { ...config.server, logLevel: 'silent', port: 0, host: '127.0.0.1' } } });
  const outcomes: VersionBuild[] = [];
  try {
    await server.check();
    const signal = options.signal ?? new AbortController().signal;
    for (const name of names) {
      const model = config.models[name]!;
      const entry = server.registry.get(name);
      const backend = server.container.get<Backend>(BACKEND, { name: model.backend });
      for (const version of Object.keys(model.versions).sort(compareVersions)) {
        const base = { model: name, version, backend: model.backend };
        if (!backend.build) {
          const outcome: VersionBuild = { ...base, state: 'nothing' };
          outcomes.push(outcome);
          options.onDone?.(outcome);
          continue;
        }
        options.onStart?.(name, version, model.backend);
        const spec = buildVersionSpec(name, version, model, entry?.backendOptions.get(version) ?? { ...model.options, ...model.versions[version]!.options });
        const started = performance.now();
        let outcome: VersionBuild;
        try {
          const report = await backend.build(spec, { logger: server.logger.child({ model: name, version }), signal, events: server.events, metrics: server.metrics });
          outcome = { ...base, state: 'built', ms: performance.now() - started, report };
        } catch (err) {
          const error = isTesseraError(err) ? err : new TesseraError('TESSERA_E_MODEL_LOAD', `${name} v${version}: the build failed: ${errorMessage(err)}`, { cause: err });
          outcome = { ...base, state: 'failed', ms: performance.now() - started, error };
        }
        outcomes.push(outcome);
        options.onDone?.(outcome);
      }
    }
  } finally {
    await server.close();
  }
  return outcomes;
}
