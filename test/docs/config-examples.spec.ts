/**
 * Every config the docs show is a config that works: each ```yaml block of README.md, docs/*.md,
 * examples/* /README.md and packages/* /README.md whose root has a key of the core's (`server`,
 * `plugins`, `models`, `exporters`, `hooks`) is resolved and checked as `tessera validate` does —
 * plugins loaded, every model's backend, batcher, router and processors found and their options
 * validated, hooks and exporters created — without loading models. A block that is a part of a
 * config only (a `models:` excerpt with placeholder paths is still a config), or shows a mistake on
 * purpose, is preceded by `<!-- config-example: skip (the reason) -->`.
 */
import { readFileSync, readdirSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TesseraServer, resolveConfig } from '@tessera/core';
import { MemoryStateStore } from '@tessera/core/testing';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CORE_ROOT_KEYS = ['server', 'plugins', 'models', 'exporters', 'hooks', 'repository'];
const SKIP = /<!--\s*config-example:\s*skip\s*\(([^)]+)\)\s*-->/;

interface Block {
  file: string;
  line: number;
  text: string;
  skip?: string;
}

function markdownFiles(): string[] {
  const files = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const group of ['examples', 'packages']) {
    for (const dir of readdirSync(path.join(ROOT, group), { withFileTypes: true })) {
      if (dir.isDirectory() && existsSync(path.join(ROOT, group, dir.name, 'README.md'))) files.push(`${group}/${dir.name}/README.md`);
    }
  }
  return files;
}

function yamlBlocks(file: string): Block[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ya?ml\s*$/.test(lines[i]!)) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const before = lines.slice(Math.max(0, start - 3), start).join('\n');
    const skip = SKIP.exec(before)?.[1];
    blocks.push({ file, line: start + 1, text: body.join('\n'), ...(skip ? { skip } : {}) });
  }
  return blocks;
}

/** Where a block's relative paths resolve: an example's README next to its config, other docs at the repository root. */
function configDirOf(file: string): string {
  const m = /^examples\/([^/]+)\//.exec(file);
  return m ? path.join(ROOT, 'examples', m[1]!) : ROOT;
}

/** Values for `${VAR}` references without a default, so that the config resolves as a user's would. */
function envFor(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/\$\{([A-Z0-9_]+)\}/g)) env[m[1]!] = /URL/.test(m[1]!) ? 'http://127.0.0.1:9' : 'example-value-not-a-secret';
  return env;
}

const configs = markdownFiles()
  .flatMap(yamlBlocks)
  .filter((b) => {
    try {
      const value: unknown = parse(b.text, { merge: true });
      return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).some((k) => CORE_ROOT_KEYS.includes(k));
    } catch {
      return true; // a block that does not even parse is reported by its test
    }
  });

describe('config examples in the docs', () => {
  it('should find the docs\' configs', () => {
    expect(configs.length).toBeGreaterThan(15);
  });

  for (const block of configs) {
    const name = `${block.file}:${block.line}`;
    if (block.skip) {
      it.skip(`${name}: skipped (${block.skip})`, () => {});
      continue;
    }
    it(`${name} should resolve and pass \`tessera validate\` with its plugins loaded`, async () => {
      const config = resolveConfig(parse(block.text, { merge: true }), { configDir: configDirOf(block.file), configFile: path.join(configDirOf(block.file), 'tessera.config.yaml'), env: envFor(block.text) });
      // files an exporter writes (at close) go to a temporary folder, not into the repository
      const out = mkdtempSync(path.join(tmpdir(), 'tessera-docs-config-'));
      const exporters = config.exporters.map((e) => (typeof e.options['file'] === 'string' ? { ...e, options: { ...e.options, file: path.join(out, path.basename(e.options['file'])) } } : e));
      const server = new TesseraServer({
        config: { ...config, exporters, server: { ...config.server, port: 0, host: '127.0.0.1', logLevel: 'silent', stateDir: path.join(out, 'state') } },
        logger: pino({ level: 'silent' }),
        stateStore: () => new MemoryStateStore(),
      });
      try {
        await server.check();
      } finally {
        await server.close();
      }
    });
  }
});
