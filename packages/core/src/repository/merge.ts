/** The repository folder's models merged with the config's `models:` section (before validation). */
import { isRecord } from '../config/path.js';
import type { ModelConfigInput } from '../config/types.js';

/**
 * `models:` as the config will validate it: the config's own models, then the folder's models
 * that the config does not name. A model in both gets the folder's section overridden by the
 * config's keys: objects merge key by key (`batching: {maxQueueSize: 64}` keeps the folder's
 * other batching keys), lists and values replace; `versionPolicy` and `signature` replace the
 * folder's whole. `path` or `versions` in `models:` replace the folder's versions and its version
 * policy (unless `models:` gives `versionPolicy` too). `models` is `configured` unchanged when it
 * is not an object (validation reports that); `folderVersions` names the models whose versions
 * are still the folder's.
 */
export function mergeRepositoryModels(folder: Readonly<Record<string, ModelConfigInput>>, configured: unknown): { models: unknown; folderVersions: Set<string> } {
  const folderVersions = new Set<string>();
  if (configured !== undefined && !isRecord(configured)) return { models: configured, folderVersions };
  const own = configured ?? {};
  const merged: Record<string, unknown> = {};
  for (const [name, section] of Object.entries(own)) {
    const fromFolder = Object.hasOwn(folder, name) ? folder[name] : undefined;
    if (!fromFolder || !isRecord(section)) {
      merged[name] = section;
      continue;
    }
    merged[name] = overrideFolderModel(fromFolder, section);
    if (!('path' in section) && !('versions' in section)) folderVersions.add(name);
  }
  for (const [name, section] of Object.entries(folder)) {
    if (Object.hasOwn(merged, name)) continue;
    merged[name] = section;
    folderVersions.add(name);
  }
  return { models: merged, folderVersions };
}

/** Keys whose value an override replaces as a whole. */
const WHOLE_KEYS = ['versionPolicy', 'signature'];

function overrideFolderModel(folder: ModelConfigInput, section: Record<string, unknown>): Record<string, unknown> {
  const base: Record<string, unknown> = { ...folder };
  if ('path' in section || 'versions' in section) {
    delete base['versions'];
    delete base['versionPolicy'];
  }
  // replaced whole: `{latest: 1}` merged with `{specific: [2]}` would be neither
  for (const key of WHOLE_KEYS) if (key in section) delete base[key];
  return deepMerge(base, section);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isRecord(current) && isRecord(value) ? deepMerge(current, value) : value;
  }
  return out;
}
