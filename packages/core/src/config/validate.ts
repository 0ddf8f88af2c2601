import { Ajv, type ValidateFunction } from 'ajv';
import type { JSONSchema } from '../contracts/backend.js';
import { type ErrorCode, TesseraError, errorMessage } from '../errors.js';
import { ajvErrorsToIssues } from './format-errors.js';
import { type ConfigIssue, displayPath, formatIssues, isRecord } from './path.js';
import { DURATION_FORMAT, SIZE_FORMAT, configSchema } from './schema.js';
import { isDuration, isSize } from './units.js';

/**
 * `allErrors` to report every problem at once, `verbose` for the offending value and the failing
 * schema in each error (the messages need both), `useDefaults` to fill in defaults. No
 * `coerceTypes`: it would turn `null` into 0 or "" and accept `port: ~`; `coerceToSchema` converts
 * strings instead, and only strings.
 */
function createAjv(strict: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    verbose: true,
    useDefaults: true,
    allowUnionTypes: true,
    strict,
    strictRequired: false,
    // Plugin schemas may use formats this instance does not know (`uri`): they are not checked.
    ...(strict ? {} : { logger: false as const }),
  });
  ajv.addFormat(DURATION_FORMAT, { type: 'string', validate: isDuration });
  ajv.addFormat(SIZE_FORMAT, { type: 'string', validate: isSize });
  return ajv;
}

let coreValidator: ValidateFunction | undefined;
let pluginAjv: Ajv | undefined;
const pluginValidators = new WeakMap<object, ValidateFunction>();

/** Options of `validateAgainstSchema`. */
export interface ValidateOptions {
  /** Error code to throw (default `TESSERA_E_CONFIG_INVALID`; the plugin loader uses `TESSERA_E_PLUGIN_CONFIG`). */
  code?: ErrorCode;
  /** Config file to name at the start of each line of the message. */
  file?: string;
}

/**
 * Validates a config section against a JSON Schema (draft-07) with the same conversions and
 * messages as the config file itself, for backend, batcher, router and plugin schemas:
 *
 * - strings are converted where the schema wants a number, boolean or list (`coerceToSchema`);
 * - missing keys get the schema's defaults;
 * - the formats `tessera-duration` and `tessera-size` are known (validate only; convert with
 *   `parseDuration`/`parseSize`).
 *
 * Objects and arrays in `value` are updated in place; the return value is the validated value
 * (different from `value` only when `value` itself was a string that was converted). Throws one
 * TesseraError listing every problem, one per line, each naming its path under `basePath`
 * (e.g. `models.chat.upstreams[0]: must be a non-empty string, got 42`).
 */
export function validateAgainstSchema<T = unknown>(schema: JSONSchema, value: unknown, basePath = '', options: ValidateOptions = {}): T {
  const code = options.code ?? 'TESSERA_E_CONFIG_INVALID';
  let validate = pluginValidators.get(schema);
  if (validate === undefined) {
    pluginAjv ??= createAjv(false);
    // A schema object made afresh with the same `$id` (a getter) would collide with the one compiled before.
    if (typeof schema.$id === 'string') pluginAjv.removeSchema(schema.$id);
    try {
      validate = pluginAjv.compile(schema);
    } catch (err) {
      throw new TesseraError(code, `${displayPath(basePath)}: the JSON Schema for this section is invalid (a bug in whatever provides it): ${errorMessage(err)}`, { cause: err });
    }
    pluginValidators.set(schema, validate);
  }
  const coerced = coerceToSchema(schema, value);
  if (!validate(coerced)) {
    throw new TesseraError(code, formatIssues(ajvErrorsToIssues(validate.errors ?? [], coerced, basePath), options.file));
  }
  return coerced as T;
}

/** Validates a whole config tree against `configSchema` (converting strings, filling defaults in place). */
export function validateConfigTree(value: unknown): { value: unknown; issues: ConfigIssue[] } {
  coreValidator ??= createAjv(true).compile(configSchema);
  const coerced = coerceToSchema(configSchema, value);
  if (coreValidator(coerced)) return { value: coerced, issues: [] };
  return { value: coerced, issues: ajvErrorsToIssues(coreValidator.errors ?? [], coerced, '') };
}

const NUMERIC = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/**
 * Converts strings where the schema at their position wants something else, so that
 * `port: ${PORT:-8000}` (a string after substitution) and a JS config's `port: process.env.PORT`
 * work: a numeric string becomes a number (an integer where the schema wants one), `true`/`false`
 * become booleans, and a string where a list of scalars is wanted is split at commas
 * (`'http://a, http://b'` → two entries; `''` → no entries). Nothing else is converted; a string
 * that does not convert stays as it is for the validator to report. Follows `properties`,
 * `patternProperties`, `additionalProperties`, `items`, `allOf`, `anyOf` (a string one alternative
 * takes as it is stays a string) and local `$ref`s; mutates
 * objects and arrays in place.
 */
export function coerceToSchema(schema: unknown, value: unknown, root: unknown = schema): unknown {
  const node = resolveRef(schema, root);
  if (!isRecord(node)) return value;
  let result = value;
  if (Array.isArray(node.allOf)) for (const sub of node.allOf) result = coerceToSchema(sub, result, root);
  const types = typesOf(node);
  if (typeof result === 'string' && types.length > 0 && !types.includes('string')) result = coerceString(result, types, node, root);
  else if (typeof result === 'string' && types.length === 0 && Array.isArray(node.anyOf)) result = coerceAlternative(result, node.anyOf, root);
  if (Array.isArray(result)) {
    if (isRecord(node.items)) for (let i = 0; i < result.length; i++) result[i] = coerceToSchema(node.items, result[i], root);
  } else if (isRecord(result)) {
    for (const key of Object.keys(result)) {
      const sub = childSchema(node, key);
      if (sub === undefined) continue;
      const converted = coerceToSchema(sub, result[key], root);
      if (converted !== result[key]) result[key] = converted;
    }
  }
  return result;
}

function coerceString(text: string, types: string[], schema: Record<string, unknown>, root: unknown): unknown {
  const trimmed = text.trim();
  if ((types.includes('number') || types.includes('integer')) && NUMERIC.test(trimmed)) {
    const n = Number(trimmed);
    if (types.includes('number') || Number.isInteger(n)) return n;
  }
  if (types.includes('boolean')) {
    const lower = trimmed.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  if (types.includes('array')) {
    const items = resolveRef(schema.items, root);
    const itemTypes = isRecord(items) ? typesOf(items) : [];
    if (!itemTypes.includes('object') && !itemTypes.includes('array') && !Array.isArray(schema.items)) {
      const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
      return isRecord(items) ? parts.map((part) => coerceToSchema(items, part, root)) : parts;
    }
  }
  return text;
}

/**
 * A string where the schema offers alternatives (`anyOf: [{type: integer}, {const: auto}]`): kept
 * when an alternative takes strings (`auto` stays `auto`), else converted for the first one that
 * converts it (`'4'` → 4), so `workers: ${WORKERS}` works like `port: ${PORT}`.
 */
function coerceAlternative(text: string, alternatives: unknown[], root: unknown): unknown {
  const branches = alternatives.map((a) => resolveRef(a, root)).filter(isRecord);
  const takesString = (b: Record<string, unknown>): boolean =>
    b.const === text || (Array.isArray(b.enum) && b.enum.includes(text)) || (b.const === undefined && b.enum === undefined && typesOf(b).includes('string'));
  if (branches.some(takesString)) return text;
  for (const b of branches) {
    const converted = coerceToSchema(b, text, root);
    if (converted !== text) return converted;
  }
  return text;
}

function childSchema(schema: Record<string, unknown>, key: string): unknown {
  if (isRecord(schema.properties) && Object.hasOwn(schema.properties, key)) return schema.properties[key];
  if (isRecord(schema.patternProperties)) {
    for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
      try {
        if (new RegExp(pattern, 'u').test(key)) return sub;
      } catch {
        // an invalid pattern is reported by ajv when it compiles the schema
      }
    }
  }
  return isRecord(schema.additionalProperties) ? schema.additionalProperties : undefined;
}

function typesOf(schema: Record<string, unknown>): string[] {
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.type)) return schema.type.filter((t): t is string => typeof t === 'string');
  return [];
}

/** Follows `$ref`s of the form `#/definitions/x` (or any local JSON pointer) within `root`. */
function resolveRef(schema: unknown, root: unknown, depth = 0): unknown {
  if (!isRecord(schema) || typeof schema.$ref !== 'string' || !schema.$ref.startsWith('#') || depth > 32) return schema;
  let target: unknown = root;
  for (const raw of schema.$ref.slice(1).split('/').slice(1)) {
    const segment = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    target = isRecord(target) ? target[segment] : undefined;
  }
  return resolveRef(target, root, depth + 1);
}
