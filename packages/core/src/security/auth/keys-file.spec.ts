import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKeyConfig } from '../../config/types.js';
import { TesseraError } from '../../errors.js';
import { until } from '../../pipeline/test-support.js';
import { recordingLogger } from '../../testing/silent-logger.js';
import { KeysFile, parseKeysFile } from './keys-file.js';

const A = 'file-key-a-0123456789abcdef';
const B = 'file-key-b-0123456789abcdef';
const CONFIG_KEY = 'config-key-0123456789abcdef';
const configKeys: ApiKeyConfig[] = [{ name: 'cfg', key: CONFIG_KEY, scopes: ['admin'] }];

let dir: string;
const open: KeysFile[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-keys-'));
});
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (err) {
    return err as TesseraError;
  }
  throw new Error('expected an error');
}

describe(parseKeysFile, () => {
  it('should read a YAML list with the schema defaults and parsed windows', () => {
    const keys = parseKeysFile('/k/keys.yaml', `- { name: a, key: ${A}, models: [cls], rateLimit: { max: 5, timeWindow: 10s } }\n- { key: ${B}, scopes: [admin, metrics] }\n`, []);
    expect(keys).toEqual([
      { name: 'a', key: A, scopes: ['infer'], models: ['cls'], rateLimit: { max: 5, timeWindowMs: 10_000 } },
      { key: B, scopes: ['admin', 'metrics'] },
    ]);
  });

  it('should read JSON, an {apiKeys: [...]} object, ${VAR}s, and an empty file as no keys', () => {
    expect(parseKeysFile('/k/keys.json', JSON.stringify({ apiKeys: [{ name: 'a', key: '${KEY_A}' }] }), [], { KEY_A: A })).toEqual([{ name: 'a', key: A, scopes: ['infer'] }]);
    expect(parseKeysFile('/k/keys.yaml', '# no keys yet\n', [])).toEqual([]);
  });

  it('should name the file and the entry, and never show a key, when the file is wrong', () => {
    const cases: [string, string, RegExp][] = [
      ['/k/keys.yaml', `- { name: a, key: ${A}, scopes: [everything] }`, /\/k\/keys\.yaml: apiKeys\[0\]\.scopes\[0\]: must be one of/],
      ['/k/keys.yaml', `- ${A}`, /apiKeys\[0\]: must be an object .*the value is not shown/],
      ['/k/keys.yaml', `- { name: a, key: short-secret }`, /keys\.yaml: apiKeys\[0\]\.key: must be at least 16 characters/],
      ['/k/keys.yaml', `- { name: a, key: ${A} }\n- { name: a, key: ${B} }`, /apiKeys\[1\]\.name: "a" is also the name of apiKeys\[0\]/],
      ['/k/keys.yaml', `- { name: other, key: ${CONFIG_KEY} }`, /apiKeys\[0\]\.key: the same key as auth\.apiKeys\[0\]/],
      ['/k/keys.yaml', `- { name: cfg, key: ${A} }`, /"cfg" is also the name of auth\.apiKeys\[0\]/],
      ['/k/keys.yaml', `- { name: a, key: ${A}\n  broken: [`, /keys\.yaml:\d+:\d+: YAML syntax error \(the line is not shown/],
      ['/k/keys.json', `[{"name": "a", "key": "${A}",}]`, /keys\.json:\d+:\d+: JSON syntax error/],
    ];
    for (const [file, text, message] of cases) {
      const err = thrown(() => parseKeysFile(file, text, configKeys));
      expect(err).toBeInstanceOf(TesseraError);
      expect(err.message).toMatch(message);
      for (const secret of [A, B, CONFIG_KEY, 'short-secret']) expect(err.message).not.toContain(secret);
    }
  });
});

describe(KeysFile, () => {
  it('should refuse to start with a missing or invalid file, naming it', async () => {
    expect(thrown(() => KeysFile.open(path.join(dir, 'missing.yaml'), { others: [], logger: recordingLogger(), onChange: () => {} })).message).toMatch(/auth\.apiKeysFile: cannot read .*missing\.yaml/);
    const bad = path.join(dir, 'bad-at-start.yaml');
    await writeFile(bad, '- { name: a }\n');
    expect(thrown(() => KeysFile.open(bad, { others: [], logger: recordingLogger(), onChange: () => {} })).message).toMatch(/bad-at-start\.yaml: apiKeys\[0\]: must have required property 'key'|bad-at-start\.yaml: apiKeys\[0\].*key/);
  });

  it('should apply a changed file without a restart, keep the previous keys when it breaks, and log the path', async () => {
    const file = path.join(dir, 'keys.yaml');
    await writeFile(file, `- { name: a, key: ${A} }\n`);
    const logger = recordingLogger();
    const seen: string[][] = [];
    const keysFile = KeysFile.open(file, { others: [], logger, onChange: (keys) => seen.push(keys.map((k) => k.name ?? '?')), debounceMs: 20, pollMs: 100 });
    open.push(keysFile);
    expect(keysFile.keys.map((k) => k.name)).toEqual(['a']);

    await writeFile(file, `- { name: a, key: ${A} }\n- { name: b, key: ${B} }\n`);
    await until(() => seen.length === 1, 5_000);
    expect(seen[0]).toEqual(['a', 'b']);
    expect(logger.records.some((r) => r.level === 'info' && r.msg?.includes('re-read: 2 keys'))).toBe(true);

    await writeFile(file, '- { name: a, key: [not, a, string] }\n');
    await until(() => logger.records.some((r) => r.level === 'error'), 5_000);
    const error = logger.records.find((r) => r.level === 'error')!;
    expect(error.msg).toContain(file);
    expect(error.msg).toMatch(/keeping the 2 keys read before/);
    expect(error.fields.file).toBe(file);
    expect(keysFile.keys.map((k) => k.name)).toEqual(['a', 'b']);
    expect(seen).toHaveLength(1);

    // replaced by a rename, as editors and Kubernetes Secret updates do
    const next = path.join(dir, 'keys.yaml.tmp');
    await writeFile(next, `- { name: b, key: ${B} }\n`);
    await rename(next, file);
    await until(() => seen.length === 2, 5_000);
    expect(seen[1]).toEqual(['b']);
    for (const r of logger.records) expect(JSON.stringify(r)).not.toMatch(new RegExp(`${A}|${B}`));
  });

  it('should stop watching once closed', async () => {
    const file = path.join(dir, 'closed.yaml');
    await writeFile(file, `- { name: a, key: ${A} }\n`);
    const seen: number[] = [];
    const keysFile = KeysFile.open(file, { others: [], logger: recordingLogger(), onChange: (keys) => seen.push(keys.length), debounceMs: 10, pollMs: 50 });
    keysFile.close();
    keysFile.close();
    await writeFile(file, `- { name: a, key: ${A} }\n- { name: b, key: ${B} }\n`);
    // a second, open watcher of the same file sees the change: the closed one had every chance to
    const witness: number[] = [];
    const other = KeysFile.open(path.join(dir, 'closed.yaml'), { others: [], logger: recordingLogger(), onChange: (keys) => witness.push(keys.length), debounceMs: 10, pollMs: 50 });
    open.push(other);
    await writeFile(file, `- { key: ${B} }\n`);
    await until(() => witness.length > 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual([]);
  });
});
