/**
 * What a user who installs from the registry gets: `npm pack` of every publishable workspace
 * package (README, dist, bins, no specs; for @tessera/core the user docs, with links that work
 * inside the copy), READMEs that list every config key the package reads, and a `tessera --help`
 * that names docs which exist, in this monorepo and in an installed copy of the packed core.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JSONSchema } from '@tessera/core';
import { configSchema } from '@tessera/core';
import { runTesseraCli } from '@tessera/core/testing';
import { ONNXRUNTIME_MODEL_CONFIG_SCHEMA } from '@tessera/backend-onnxruntime';
import { PYTHON_MODEL_CONFIG_SCHEMA } from '@tessera/backend-python';
import { REMOTE_MODEL_CONFIG_SCHEMA } from '@tessera/backend-remote';
import { TENSORRT_SECTION_SCHEMA } from '@tessera/backend-tensorrt';
import { VLLM_MODEL_CONFIG_SCHEMA } from '@tessera/backend-vllm';
import { TRACING_CONFIG_SCHEMA } from '@tessera/tracing';
import { CONSOLE_CONFIG_SCHEMA } from '@tessera/console';
import { ROOT, tempDir } from './integration/helpers.js';

const run = promisify(execFile);

interface PackageJson {
  name: string;
  private?: boolean;
  bin?: Record<string, string>;
  exports?: Record<string, string | { default?: string }>;
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** The workspace packages that are published: every packages/* without `private`. */
const PUBLISHED = readdirSync(path.join(ROOT, 'packages'))
  .map((dir) => ({ dir: path.join(ROOT, 'packages', dir), manifest: JSON.parse(readFileSync(path.join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as PackageJson }))
  .filter((p) => !p.manifest.private);

const REPO_DOCS = readdirSync(path.join(ROOT, 'docs')).filter((n) => n.endsWith('.md'));

/** `npm pack` in a package folder, with none of the `npm test` run's npm_* settings leaking in. */
async function npmPack(dir: string, args: string[]): Promise<PackResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  const { stdout } = await run('npm', ['pack', '--json', ...args], { cwd: dir, env, maxBuffer: 64 * 1024 * 1024 });
  const results = JSON.parse(stdout) as PackResult[];
  expect(results).toHaveLength(1);
  return results[0]!;
}

/** Key paths of a JSON Schema's `properties`, nested with dots; `<name>` where any key goes. */
function schemaKeys(schema: JSONSchema, prefix = ''): string[] {
  const keys: string[] = [];
  const s = schema as { properties?: Record<string, JSONSchema>; patternProperties?: Record<string, JSONSchema>; additionalProperties?: unknown };
  for (const [key, sub] of Object.entries(s.properties ?? {})) keys.push(`${prefix}${key}`, ...schemaKeys(sub, `${prefix}${key}.`));
  const any = [...Object.values(s.patternProperties ?? {}), ...(typeof s.additionalProperties === 'object' ? [s.additionalProperties as JSONSchema] : [])];
  const placeholder = prefix.endsWith('versions.') ? '<version>' : '<name>';
  for (const sub of any) keys.push(...schemaKeys(sub, `${prefix}${placeholder}.`));
  return keys;
}

/** The docs folder and README paths that `tessera --help` names (indented lines after `Docs`). */
function helpDocPaths(help: string): string[] {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Docs'));
  expect(start, help).toBeGreaterThanOrEqual(0);
  return lines.slice(start + 1).filter((l) => /^\s+\//.test(l)).map((l) => l.trim());
}

describe('published packages', () => {
  it('should publish every workspace package but none of the root', () => {
    expect(PUBLISHED.map((p) => p.manifest.name).sort()).toEqual(['@tessera/backend-onnxruntime', '@tessera/backend-python', '@tessera/backend-remote', '@tessera/backend-tensorrt', '@tessera/backend-vllm', '@tessera/console', '@tessera/core', '@tessera/router-canary', '@tessera/tracing']);
  });

  describe.each(PUBLISHED.map((p) => [p.manifest.name, p] as const))('%s', (name, { dir, manifest }) => {
    let files: string[];

    beforeAll(async () => {
      files = (await npmPack(dir, ['--dry-run'])).files.map((f) => f.path);
    });

    it('should ship its README, dist/index.js and no specs or build info', () => {
      expect(files).toContain('README.md');
      expect(files).toContain('package.json');
      expect(files).toContain('dist/index.js');
      expect(files).toContain('dist/index.d.ts');
      expect(files.filter((f) => /\.spec\./.test(f) || f.endsWith('.tsbuildinfo'))).toEqual([]);
    });

    it('should ship the file of every bin and export', () => {
      const targets = [
        ...Object.values(manifest.bin ?? {}),
        ...Object.values(manifest.exports ?? {}).map((e) => (typeof e === 'string' ? e : e.default)),
      ].filter((t): t is string => t !== undefined);
      for (const target of targets) expect(files, target).toContain(path.posix.normalize(target));
    });

    if (name === '@tessera/backend-python') {
      it('should ship the Python worker and triton_python_backend_utils', () => {
        expect(files).toContain('python/tessera_python_worker.py');
        expect(files).toContain('python/triton_python_backend_utils.py');
      });
    }

    if (name === '@tessera/core') {
      it('should ship every user doc under docs/', () => {
        expect(files).toContain('docs/configuration.md');
        for (const doc of REPO_DOCS) expect(files).toContain(`docs/${doc}`);
      });
    }

    it('should leave no copied docs behind in the package folder after packing', () => {
      // prepack copies docs/ in, postpack removes it: the monorepo's CLI then names the repository's docs
      expect(existsSync(path.join(dir, 'docs'))).toBe(false);
    });
  });
});

describe('package READMEs', () => {
  const cases: [string, JSONSchema][] = [
    ['core', configSchema],
    ['backend-onnxruntime', ONNXRUNTIME_MODEL_CONFIG_SCHEMA],
    ['backend-python', PYTHON_MODEL_CONFIG_SCHEMA],
    ['backend-remote', REMOTE_MODEL_CONFIG_SCHEMA],
    // its other keys are the onnxruntime backend's, listed in that README (which this one links)
    ['backend-tensorrt', { type: 'object', properties: { tensorrt: TENSORRT_SECTION_SCHEMA } }],
    ['backend-vllm', VLLM_MODEL_CONFIG_SCHEMA],
    ['tracing', TRACING_CONFIG_SCHEMA],
    ['console', CONSOLE_CONFIG_SCHEMA],
  ];

  it.each(cases)('should list every config key that %s reads', (dir, schema) => {
    const readme = readFileSync(path.join(ROOT, 'packages', dir, 'README.md'), 'utf8');
    const keys = schemaKeys(schema);
    expect(keys.length).toBeGreaterThan(0);
    // an object key is shown by its children (`batch.maxQueueSize` for `batch`)
    const leaves = keys.filter((k) => !keys.some((other) => other.startsWith(`${k}.`)));
    const missing = leaves.filter((k) => !readme.includes(`\`${k}\``));
    expect(missing, `packages/${dir}/README.md lacks these keys`).toEqual([]);
  });

  it('should only link to files that exist in the repository', async () => {
    for (const dir of PUBLISHED.map((p) => p.dir)) {
      const readme = await readFile(path.join(dir, 'README.md'), 'utf8');
      for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const file = target!.split('#')[0]!;
        expect(existsSync(path.resolve(dir, file)), `${path.relative(ROOT, dir)}/README.md links to ${target}`).toBe(true);
      }
    }
  });
});

describe('tessera --help', () => {
  describe('having the monorepo', () => {
    it("should name the repository's docs folder and the package README", async () => {
      const res = await runTesseraCli({ args: ['--help'] });
      expect(res.code).toBe(0);
      const [docs, readme] = helpDocPaths(res.stdout);
      expect(docs).toBe(`${path.join(ROOT, 'docs')}${path.sep}`);
      expect(existsSync(path.join(docs!, 'configuration.md'))).toBe(true);
      expect(readme).toBe(path.join(ROOT, 'packages/core/README.md'));
      expect(existsSync(readme!)).toBe(true);
    });
  });

  describe('having @tessera/core installed from its tarball', () => {
    let dir: string;
    let installed: string;

    beforeAll(async () => {
      dir = await tempDir('tessera-pack-');
      const core = PUBLISHED.find((p) => p.manifest.name === '@tessera/core')!;
      const { filename } = await npmPack(core.dir, ['--pack-destination', dir]);
      await run('tar', ['-xzf', path.join(dir, filename), '-C', dir]);
      // node_modules/@tessera/core as npm lays it out, its dependencies linked from this repository's
      // (those npm nested under packages/core, such as ajv 8, nested here too)
      const modules = path.join(dir, 'node_modules');
      await mkdir(path.join(modules, '@tessera'), { recursive: true });
      installed = path.join(modules, '@tessera', 'core');
      await rename(path.join(dir, 'package'), installed);
      const link = async (from: string, to: string): Promise<void> => {
        if (!existsSync(from)) return;
        await mkdir(to, { recursive: true });
        for (const entry of await readdir(from)) {
          if (entry === '@tessera' || entry.startsWith('.')) continue;
          await symlink(path.join(from, entry), path.join(to, entry));
        }
      };
      await link(path.join(ROOT, 'packages/core/node_modules'), path.join(installed, 'node_modules'));
      await link(path.join(ROOT, 'node_modules'), modules);
    });

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('should name the docs folder and README inside the installed package', async () => {
      const { stdout, stderr } = await run(process.execPath, [path.join(installed, 'bin', 'tessera.js'), '--help'], { cwd: dir });
      expect(stderr).toBe('');
      const [docs, readme] = helpDocPaths(stdout);
      expect(docs).toBe(`${path.join(installed, 'docs')}${path.sep}`);
      for (const doc of REPO_DOCS) expect(existsSync(path.join(docs!, doc)), doc).toBe(true);
      expect(readme).toBe(path.join(installed, 'README.md'));
      expect(existsSync(readme!)).toBe(true);
    });

    it('should keep every link between the docs working, and none leading out of the package', async () => {
      const docsDir = path.join(installed, 'docs');
      for (const doc of await readdir(docsDir)) {
        const text = await readFile(path.join(docsDir, doc), 'utf8');
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
          if (/^[a-z]+:/.test(target!) || target!.startsWith('#')) continue;
          const file = path.resolve(docsDir, target!.split('#')[0]!);
          expect(file.startsWith(`${installed}${path.sep}`), `docs/${doc} links to ${target}, outside the package`).toBe(true);
          expect(existsSync(file), `docs/${doc} links to ${target}`).toBe(true);
        }
      }
    });
  });
});
