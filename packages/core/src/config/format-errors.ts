import type { ErrorObject } from 'ajv';
import type { JSONSchema } from '../contracts/backend.js';
import { type ConfigIssue, pointerToPath, renderValue } from './path.js';
import { DURATION_FORMAT, SIZE_FORMAT } from './schema.js';
import { closestMatch } from './suggest.js';
import { DURATION_HELP, SIZE_HELP } from './units.js';

/**
 * Turns ajv's errors (compiled with `allErrors` and `verbose`) into one issue per problem, each
 * naming the config path, the offending value and what is allowed:
 *
 *     server.port: must be an integer from 0 to 65535, got 70000
 *     server: unknown key "prot" (allowed: host, port, …) — did you mean "port"?
 *
 * `data` is the validated value (to tell array indices from object keys), `basePath` the config
 * path of that value.
 */
export function ajvErrorsToIssues(errors: readonly ErrorObject[], data: unknown, basePath: string): ConfigIssue[] {
  // Branch failures of anyOf/oneOf repeat what the combinator's own error says better.
  const combinators = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const issues: ConfigIssue[] = [];
  for (const error of errors) {
    if (combinators.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    // Errors inside `propertyNames` carry the offending key; the `propertyNames` error reports it.
    if ((error as { propertyName?: string }).propertyName !== undefined) continue;
    if (error.keyword === 'if') continue;
    const message = messageFor(error);
    if (message !== undefined) issues.push({ path: pointerToPath(basePath, error.instancePath, data), message });
  }
  return issues;
}

function messageFor(error: ErrorObject): string | undefined {
  const parent = asSchema(error.parentSchema);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'multipleOf':
    case 'minLength':
    case 'maxLength':
    case 'pattern':
    case 'format':
    case 'const':
    case 'anyOf':
    case 'minItems':
    case 'maxItems':
      return `must be ${describeSchema(parent)}, got ${renderValue(error.data)}`;
    case 'oneOf':
      return params['passingSchemas'] == null
        ? `must be ${describeSchema(parent)}, got ${renderValue(error.data)}`
        : `must match exactly one of: ${describeSchema(parent)}; ${renderValue(error.data)} matches several`;
    case 'enum': {
      const allowed = (parent.enum as unknown[] | undefined) ?? [];
      const hint = typeof error.data === 'string' ? closestMatch(error.data, allowed.filter((v): v is string => typeof v === 'string')) : undefined;
      return `must be one of: ${allowed.map(renderEnumValue).join(', ')}, got ${renderValue(error.data)}${hint ? ` — did you mean "${hint}"?` : ''}`;
    }
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const allowed = Object.keys(asSchema(parent.properties));
      const patterns = Object.keys(asSchema(parent.patternProperties)).map((p) => `keys matching /${p}/`);
      const list = [...allowed, ...patterns];
      const hint = closestMatch(key, allowed);
      return `unknown key "${key}"${list.length > 0 ? ` (allowed: ${list.join(', ')})` : ' (no keys are allowed here)'}${hint ? ` — did you mean "${hint}"?` : ''}`;
    }
    case 'required':
      return `missing required key "${String(params['missingProperty'])}"`;
    case 'dependencies':
    case 'dependentRequired':
      return `key "${String(params['property'])}" also needs "${String(params['missingProperty'])}"`;
    case 'propertyNames': {
      const names = asSchema(parent.propertyNames);
      const rule = typeof names.pattern === 'string' ? `must match /${names.pattern}/` : `must be ${describeSchema(names)}`;
      return `invalid key "${String(params['propertyName'])}": ${rule}${typeof names.description === 'string' ? ` (${names.description})` : ''}`;
    }
    case 'minProperties':
    case 'maxProperties': {
      const limit = Number(params['limit']);
      const bound = error.keyword === 'minProperties' ? 'at least' : 'at most';
      return `must have ${bound} ${limit} ${limit === 1 ? 'key' : 'keys'}, got ${renderValue(error.data)}`;
    }
    case 'uniqueItems': {
      const list = Array.isArray(error.data) ? error.data : [];
      const first = Math.min(Number(params['i']), Number(params['j']));
      const second = Math.max(Number(params['i']), Number(params['j']));
      return `must not list the same entry twice: ${renderValue(list[first])} is at [${first}] and [${second}]`;
    }
    case 'not': {
      const not = asSchema(error.schema);
      return typeof not.description === 'string' ? not.description : `must not be ${describeSchema(not)}, got ${renderValue(error.data)}`;
    }
    case 'false schema':
      return 'is not allowed here';
    default:
      return `${error.message ?? 'is invalid'}, got ${renderValue(error.data)}`;
  }
}

function asSchema(value: unknown): JSONSchema {
  return typeof value === 'object' && value !== null ? (value as JSONSchema) : {};
}

function renderEnumValue(value: unknown): string {
  return typeof value === 'string' ? value : renderValue(value);
}

function typesOf(schema: JSONSchema): string[] {
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.type)) return schema.type.filter((t): t is string => typeof t === 'string');
  return [];
}

/** What a schema allows, as a phrase that follows "must be": `an integer from 0 to 65535`. */
export function describeSchema(schema: JSONSchema | boolean): string {
  if (schema === true) return 'any value';
  if (schema === false) return 'absent';
  if ('const' in schema) return renderValue(schema.const);
  if (Array.isArray(schema.enum)) return `one of: ${schema.enum.map(renderEnumValue).join(', ')}`;
  if (schema.format === DURATION_FORMAT) return DURATION_HELP;
  if (schema.format === SIZE_FORMAT) return SIZE_HELP;
  const branches = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branches)) return branches.map((b) => describeSchema(asSchema(b))).join(', or ');
  const types = typesOf(schema);
  if (types.includes('number') && types.includes('integer')) types.splice(types.indexOf('integer'), 1);
  const phrases = types.map((type) => describeType(type, schema));
  if (phrases.length === 0) return typeof schema.description === 'string' ? `valid (${schema.description})` : 'valid';
  return phrases.join(' or ');
}

function describeType(type: string, schema: JSONSchema): string {
  switch (type) {
    case 'integer':
    case 'number':
      return `${type === 'integer' ? 'an integer' : 'a number'}${describeRange(schema)}`;
    case 'string': {
      let phrase = schema.minLength === 1 ? 'a non-empty string' : 'a string';
      if (typeof schema.minLength === 'number' && schema.minLength > 1) phrase += ` of at least ${schema.minLength} characters`;
      if (typeof schema.maxLength === 'number') phrase += ` of at most ${schema.maxLength} characters`;
      if (typeof schema.pattern === 'string') phrase += ` matching /${schema.pattern}/`;
      if (typeof schema.format === 'string') phrase += ` in the format "${schema.format}"`;
      return phrase;
    }
    case 'boolean':
      return 'true or false';
    case 'array': {
      const items = asSchema(schema.items);
      const itemTypes = typesOf(items);
      const plural: Record<string, string> = { string: 'strings', number: 'numbers', integer: 'integers', boolean: 'booleans', object: 'objects', array: 'lists' };
      let phrase = itemTypes.length === 1 && plural[itemTypes[0]!] ? `a list of ${plural[itemTypes[0]!]}` : 'a list';
      if (typeof schema.minItems === 'number' && schema.minItems > 0) phrase += ` with at least ${schema.minItems} ${schema.minItems === 1 ? 'entry' : 'entries'}`;
      if (typeof schema.maxItems === 'number') phrase += ` with at most ${schema.maxItems} entries`;
      return phrase;
    }
    case 'object':
      return 'an object (key: value)';
    case 'null':
      return 'null';
    default:
      return type;
  }
}

function describeRange(schema: JSONSchema): string {
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  const xmin = typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum : undefined;
  const xmax = typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum : undefined;
  let range = '';
  if (min !== undefined && max !== undefined) range = ` from ${min} to ${max}`;
  else if (min !== undefined) range = ` ≥ ${min}`;
  else if (max !== undefined) range = ` ≤ ${max}`;
  if (xmin !== undefined) range += ` > ${xmin}`;
  if (xmax !== undefined) range += ` < ${xmax}`;
  if (typeof schema.multipleOf === 'number') range += ` (a multiple of ${schema.multipleOf})`;
  return range;
}
