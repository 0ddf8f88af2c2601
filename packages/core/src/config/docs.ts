import type { JSONSchema } from '../contracts/backend.js';
import { isRecord } from './path.js';
import { DURATION_FORMAT, SIZE_FORMAT, configSchema } from './schema.js';

/**
 * The configuration reference of docs/configuration.md, generated from `configSchema` (a test
 * keeps the two equal). Not part of the package's API.
 */

/** One key of the reference: `server.port`, `models.<name>.batching.maxBatchSize`. */
export interface ReferenceRow {
  key: string;
  type: string;
  default: string;
  description: string;
  example: string;
}

/** Placeholders for the keys of maps (`additionalProperties` with a schema), by the map's key. */
const PLACEHOLDERS: Record<string, string> = { models: '<name>', versions: '<version>' };

/** Every key the schema declares, as a dotted path, depth first, in declaration order. */
export function configReferenceRows(schema: JSONSchema = configSchema): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const walk = (node: JSONSchema, path: string, lastKey: string): void => {
    if (isRecord(node.properties)) {
      for (const [key, sub] of Object.entries(node.properties)) {
        if (!isRecord(sub)) continue;
        const keyPath = path === '' ? key : `${path}.${key}`;
        rows.push(row(keyPath, sub));
        walk(sub, keyPath, key);
      }
    }
    if (isRecord(node.additionalProperties)) {
      const keyPath = `${path}.${PLACEHOLDERS[lastKey] ?? '<key>'}`;
      rows.push(row(keyPath, node.additionalProperties));
      walk(node.additionalProperties, keyPath, '');
    }
  };
  walk(schema, '', '');
  return rows;
}

function row(key: string, schema: JSONSchema): ReferenceRow {
  let description = typeof schema.description === 'string' ? schema.description : '';
  if (Array.isArray(schema.enum)) description += ` One of: ${schema.enum.map((v) => `\`${String(v)}\``).join(', ')}.`;
  if (isRecord(schema.propertyNames) && typeof schema.propertyNames.pattern === 'string') {
    description += ` Keys match \`${schema.propertyNames.pattern}\`.`;
  }
  return {
    key,
    type: typeLabel(schema),
    default: 'default' in schema ? code(schema.default) : '—',
    description: description.trim(),
    example: Array.isArray(schema.examples) && schema.examples.length > 0 ? code(schema.examples[0]) : '',
  };
}

function typeLabel(schema: JSONSchema): string {
  if (schema.format === DURATION_FORMAT) return 'duration';
  if (schema.format === SIZE_FORMAT) return 'size';
  const type = schema.type;
  if (type === 'array') {
    const items = isRecord(schema.items) ? schema.items.type : undefined;
    return typeof items === 'string' ? `${items}[]` : 'array';
  }
  if (type === 'integer' || type === 'number') {
    const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
    const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
    if (min !== undefined && max !== undefined) return `${type} ${min}–${max}`;
    if (min !== undefined) return `${type} ≥ ${min}`;
    return type;
  }
  if (type === 'string' && Array.isArray(schema.enum)) return 'string (enum)';
  if (Array.isArray(type)) return type.join(' \\| ');
  // alternatives (`integer ≥ 1` or `auto`): each one's label, a constant as itself
  if (type === undefined && Array.isArray(schema.anyOf) && schema.anyOf.every(isRecord)) {
    return (schema.anyOf as JSONSchema[]).map((alt) => ('const' in alt ? code(alt.const) : typeLabel(alt))).join(' or ');
  }
  return typeof type === 'string' ? type : 'any';
}

function code(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `\`${text.replace(/\|/g, '\\|')}\``;
}

/** The markdown of the reference: one table per root key. */
export function renderConfigReference(schema: JSONSchema = configSchema): string {
  const rows = configReferenceRows(schema);
  const sections = new Map<string, ReferenceRow[]>();
  for (const r of rows) {
    const root = r.key.split('.')[0]!;
    if (!sections.has(root)) sections.set(root, []);
    sections.get(root)!.push(r);
  }
  const out: string[] = [];
  for (const [root, list] of sections) {
    out.push(`### \`${root}\``, '', '| Key | Type | Default | Description | Example |', '| --- | --- | --- | --- | --- |');
    for (const r of list) out.push(`| \`${r.key}\` | ${r.type} | ${r.default} | ${r.description.replace(/\|/g, '\\|')} | ${r.example} |`);
    out.push('');
  }
  return out.join('\n');
}
