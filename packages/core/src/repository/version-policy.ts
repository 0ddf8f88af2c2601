/** Triton's version policy: which of a model's versions are served. */
import type { VersionPolicy } from '../config/types.js';
import type { JSONSchema } from '../contracts/backend.js';

export type { VersionPolicy } from '../config/types.js';

/** Triton's default, and the default of a model in the `repository` folder. */
export const DEFAULT_VERSION_POLICY: VersionPolicy = Object.freeze({ latest: 1 });

/** JSON Schema of `versionPolicy` (the config's and a repository model's `config.yaml`). */
export const VERSION_POLICY_SCHEMA: JSONSchema = {
  type: ['string', 'object'],
  description:
    "Which versions are served (Triton's version policy): `all`, `{latest: N}` (the N highest version numbers) or `{specific: [1, 3]}`. Default: every version of `versions`; for a model of the `repository` folder `{latest: 1}`, as in Triton. A specific version that does not exist is an error (a warning for a repository folder's model, which is then served without it).",
  // if/then/else rather than anyOf: the errors then say which part is wrong (`versionPolicy.latest: must be an integer ≥ 1`)
  if: { type: 'string' },
  then: { const: 'all' },
  else: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: {
      latest: { type: 'integer', minimum: 1 },
      specific: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'integer', minimum: 1 } },
    },
  },
  examples: [{ latest: 2 }, 'all', { specific: [1, 3] }],
};

/** The policy as written in messages: `all`, `latest: 2`, `specific: [1, 3]`. */
export function describeVersionPolicy(policy: VersionPolicy): string {
  if (policy === 'all') return 'all';
  if ('latest' in policy) return `latest: ${policy.latest}`;
  return `specific: [${policy.specific.join(', ')}]`;
}

/** What a policy selects from the version labels there are. */
export interface VersionSelection {
  /** Selected labels, ascending by number. */
  selected: string[];
  /** Labels `specific` asks for that are not there, ascending. */
  missing: string[];
}

/** Selects versions (positive integer labels) by the policy. Pure. */
export function selectVersions(labels: readonly string[], policy: VersionPolicy): VersionSelection {
  const sorted = [...new Set(labels)].sort((a, b) => Number(a) - Number(b));
  if (policy === 'all') return { selected: sorted, missing: [] };
  if ('latest' in policy) return { selected: sorted.slice(Math.max(0, sorted.length - policy.latest)), missing: [] };
  const wanted = [...new Set(policy.specific.map(String))].sort((a, b) => Number(a) - Number(b));
  return { selected: sorted.filter((l) => wanted.includes(l)), missing: wanted.filter((l) => !sorted.includes(l)) };
}
