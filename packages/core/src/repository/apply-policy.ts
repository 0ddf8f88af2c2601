/** The version policy applied to a resolved model, and the repository folder it came from recorded. */
import { type ConfigIssue, formatIssues, joinPath } from '../config/path.js';
import type { ModelConfig, RepositoryModelSource } from '../config/types.js';
import { TesseraError } from '../errors.js';
import { describeVersionPolicy, selectVersions } from './version-policy.js';

/** Where the model came from, for `applyVersionPolicy`. */
export interface PolicyContext {
  /** The repository folder's model, when it is one. */
  source?: RepositoryModelSource;
  /** Whether its versions are the folder's (`models:` gave no `path`/`versions` over them). */
  folderVersions: boolean;
  /** Receives what was skipped. */
  warnings: string[];
  /** The config file, named in errors. */
  file: string;
}

/**
 * Keeps the versions `model.versionPolicy` selects (all of them without a policy) and records
 * `repository`. Versions the folder lacks are a warning when the folder gave the versions (Triton
 * serves what is there), and the model is dropped (undefined) when none is left; versions
 * `models:` lacks are a `TESSERA_E_CONFIG_INVALID`.
 */
export function applyVersionPolicy(name: string, model: ModelConfig, ctx: PolicyContext): ModelConfig | undefined {
  const resolved = ctx.source ? { ...model, repository: ctx.source } : model;
  if (!model.versionPolicy) return resolved;
  const labels = Object.keys(model.versions);
  const { selected, missing } = selectVersions(labels, model.versionPolicy);
  const policy = describeVersionPolicy(model.versionPolicy);
  if (ctx.folderVersions && ctx.source) {
    const where = ctx.source.configFile ?? ctx.source.modelDir;
    if (selected.length === 0) {
      ctx.warnings.push(`${where}: skipped: versionPolicy ${policy} selects none of the version folders (${labels.join(', ')})`);
      return undefined;
    }
    if (missing.length > 0) ctx.warnings.push(`${where}: versionPolicy ${policy}: no version folder ${missing.join(', ')}; serving ${selected.join(', ')}`);
  } else if (missing.length > 0) {
    const issue: ConfigIssue = { path: `${joinPath('models', name)}.versionPolicy`, message: `${policy} names version${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which the model does not have (its versions: ${labels.join(', ')})` };
    throw new TesseraError('TESSERA_E_CONFIG_INVALID', formatIssues([issue], ctx.file || undefined));
  }
  return { ...resolved, versions: Object.fromEntries(selected.map((label) => [label, model.versions[label]!])) };
}
