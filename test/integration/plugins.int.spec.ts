/**
 * The plugin loader end to end: plugin modules written to temp folders (plain ESM that imports
 * `definePlugin` from '@tessera/core'), found by path and by package name, checked (brand, core
 * range, config section), registered, and serving routes and models over real HTTP. In-process
 * (`loadConfig` + `TesseraServer`), plus one run of the CLI to see how a plugin error reads there.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '@tessera/core';
import { CORE_VERSION, TesseraServer, errorMessage, isTesseraError, loadConfig } from '@tessera/core';
import { runTesseraCli } from '@tessera/core/testing';
import { ROOT, http, tempDir, writeConfig } from './helpers.js';

let root: string;
const servers: TesseraServer[] = [];

/** Plugin sources, by file name, as a plugin author would write them (no build step). */
const PLUGINS: Record<string, string> = {
  // routes, a config section with a schema, and a close hook that leaves a trace on disk
  'greeter.js': `
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { definePlugin } from '@tessera/core';

export default definePlugin({
  name: 'greeter',
  version: '1.0.0',
  core: '^0.1.0',
  configKey: 'greeter',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['greeting'],
    properties: {
      greeting: { type: 'string', minLength: 1 },
      times: { type: 'integer', minimum: 1, default: 1 },
    },
  },
  register(ctx) {
    ctx.addRoutes((app) => {
      app.get('/greeter', async () => ({ config: ctx.config, coreVersion: ctx.coreVersion, configDir: ctx.configDir }));
    });
    ctx.onClose(async () => appendFileSync(join(ctx.configDir, 'events.log'), 'greeter onClose\\n'));
  },
});
`,
  // a tensor backend: y = x · factor, a whole batch per execute call
  'scaler.js': `
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { definePlugin, TesseraError } from '@tessera/core';

export default definePlugin({
  name: 'scaler',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    const log = (line) => appendFileSync(join(ctx.configDir, 'events.log'), line + '\\n');
    ctx.registerBackend('scaler', {
      requiresPath: false,
      modelConfigSchema: { type: 'object', properties: { factor: { type: 'number' } } },
      async load(spec) {
        const factor = spec.config.factor ?? 2;
        let loaded = true;
        return {
          metadata: {
            platform: 'scaler',
            inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }],
            outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, -1] }],
            maxBatchSize: 8,
          },
          async execute(batch) {
            if (!loaded) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', spec.model + ' is unloaded');
            return batch.requests.map((r) => {
              const x = r.inputs[0];
              return [{ name: 'y', datatype: 'FP32', shape: [...x.shape], data: x.data.map((v) => v * factor) }];
            });
          },
          async unload() {
            if (loaded) log('scaler unload ' + spec.model);
            loaded = false;
          },
        };
      },
    });
  },
});
`,
  // a backend whose schema has a default: y = x + offset
  'offset.js': `
import { definePlugin } from '@tessera/core';
export default definePlugin({
  name: 'offset',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('offset', {
      requiresPath: false,
      modelConfigSchema: { type: 'object', properties: { offset: { type: 'number', default: 1 } } },
      async load(spec) {
        const offset = spec.config.offset;
        return {
          metadata: { platform: 'offset', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }], maxBatchSize: 8 },
          async execute(batch) {
            return batch.requests.map((r) => [{ name: 'y', datatype: 'FP32', shape: [...r.inputs[0].shape], data: r.inputs[0].data.map((v) => v + offset) }]);
          },
          async unload() {},
        };
      },
    });
  },
});
`,
  'also-scaler.js': `
import { definePlugin } from '@tessera/core';
export default definePlugin({
  name: 'also-scaler',
  version: '2.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('scaler', { requiresPath: false, async load() { throw new Error('never loaded'); } });
  },
});
`,
  'future.js': `
import { definePlugin } from '@tessera/core';
export default definePlugin({ name: 'from-the-future', version: '9.0.0', core: '^9.0.0', register() {} });
`,
  // looks like a plugin, but was not made by definePlugin
  'not-a-plugin.js': `
export default { name: 'impostor', version: '1.0.0', core: '^0.1.0', register() {} };
`,
  'throws-on-import.js': `
throw new Error('boom at import');
`,
  'throws-on-register.js': `
import { definePlugin } from '@tessera/core';
export default definePlugin({ name: 'clumsy', version: '1.0.0', core: '^0.1.0', register() { throw new Error('cannot register today'); } });
`,
  // a root section whose schema wants a list: `${VAR}` gives a string, which the schema converts
  'tags.js': `
import { definePlugin } from '@tessera/core';
export default definePlugin({
  name: 'tags',
  version: '1.0.0',
  core: '^0.1.0',
  configKey: 'tags',
  configSchema: { type: 'array', items: { type: 'string' } },
  register(ctx) {
    ctx.addRoutes((app) => app.get('/tags', async () => ({ tags: ctx.config })));
  },
});
`,
};

/**
 * A project folder: `plugins/*.js` from PLUGINS, and `node_modules/@tessera/core` linked to this
 * repository's core so that the plugins' `import … from '@tessera/core'` resolves as it would in a
 * real project.
 */
async function project(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(path.join(dir, 'plugins'), { recursive: true });
  await mkdir(path.join(dir, 'node_modules', '@tessera'), { recursive: true });
  await symlink(path.join(ROOT, 'packages', 'core'), path.join(dir, 'node_modules', '@tessera', 'core'), 'dir');
  for (const [file, source] of Object.entries(PLUGINS)) await writeFile(path.join(dir, 'plugins', file), source);
  return dir;
}

/** Writes the config (a quiet server on a free loopback port, plus `config`) and loads it. */
async function configFor(dir: string, config: Record<string, unknown>, env: Record<string, string> = {}) {
  const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, logLevel: 'silent' }, ...config });
  return { file, config: await loadConfig({ file, env: { ...process.env, ...env } }) };
}

/** Starts a server on `config` and returns its URL. */
async function start(dir: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<{ server: TesseraServer; url: string; file: string }> {
  const { file, config: resolved } = await configFor(dir, config, env);
  const server = new TesseraServer({ config: resolved });
  servers.push(server);
  const { url } = await server.start();
  return { server, url, file };
}

/** Starts a server that must fail; returns the error (a TesseraError with `code`) and the config file. */
async function startFails(dir: string, config: Record<string, unknown>, code: ErrorCode): Promise<{ message: string; file: string }> {
  const { file, config: resolved } = await configFor(dir, config);
  const server = new TesseraServer({ config: resolved });
  servers.push(server);
  const err = await server.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  await server.close();
  if (!isTesseraError(err)) throw new Error(`expected ${code}, got ${err === undefined ? 'a started server' : errorMessage(err)}`);
  expect(err.code, err.message).toBe(code);
  return { message: err.message, file };
}

beforeAll(async () => {
  root = await tempDir('tessera-plugins-');
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('plugin loader', () => {
  describe('finding plugins', () => {
    it("should load a plugin by a path relative to the config file's folder", async () => {
      const dir = await project('by-path');
      const { url } = await start(dir, { plugins: ['./plugins/greeter.js'], greeter: { greeting: 'hello' } });
      const res = await http(`${url}/greeter`);
      expect(res.status).toBe(200);
      expect(res.body.config.greeting).toBe('hello');
    });

    it('should load a plugin by package name from the node_modules of the config folder', async () => {
      const dir = await project('by-package');
      const pkg = path.join(dir, 'node_modules', 'my-plugin');
      await mkdir(pkg, { recursive: true });
      await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'my-plugin', version: '1.2.3', type: 'module', exports: './index.js', peerDependencies: { '@tessera/core': '^0.1.0' } }));
      await writeFile(
        path.join(pkg, 'index.js'),
        `import { definePlugin } from '@tessera/core';
export default definePlugin({
  name: 'my-plugin', version: '1.2.3', core: '^0.1.0',
  register(ctx) { ctx.addRoutes((app) => app.get('/my-plugin', async () => ({ from: 'node_modules' }))); },
});
`,
      );
      const { url } = await start(dir, { plugins: ['my-plugin'] });
      expect(await http(`${url}/my-plugin`)).toMatchObject({ status: 200, body: { from: 'node_modules' } });
    });

    it('should say how to install a plugin package that is not installed', async () => {
      const dir = await project('not-installed');
      const { message } = await startFails(dir, { plugins: ['tessera-plugin-not-installed'] }, 'TESSERA_E_PLUGIN_NOT_FOUND');
      expect(message).toContain("'tessera-plugin-not-installed'");
      expect(message).toContain('npm install tessera-plugin-not-installed');
      expect(message).toContain(dir);
    });

    it('should name the absolute path of a plugin file that does not exist', async () => {
      const dir = await project('missing-file');
      const { message } = await startFails(dir, { plugins: ['./plugins/nope.js'] }, 'TESSERA_E_PLUGIN_NOT_FOUND');
      expect(message).toContain(path.join(dir, 'plugins', 'nope.js'));
    });
  });

  describe('checking plugins', () => {
    it('should reject a module whose default export was not made by definePlugin', async () => {
      const dir = await project('not-a-plugin');
      const { message } = await startFails(dir, { plugins: ['./plugins/not-a-plugin.js'] }, 'TESSERA_E_PLUGIN_INVALID');
      expect(message).toContain(path.join(dir, 'plugins', 'not-a-plugin.js'));
      expect(message).toContain('definePlugin');
    });

    it('should report a module that throws on import as invalid, with its error', async () => {
      const dir = await project('throws-on-import');
      const { message } = await startFails(dir, { plugins: ['./plugins/throws-on-import.js'] }, 'TESSERA_E_PLUGIN_INVALID');
      expect(message).toContain('boom at import');
    });

    it('should refuse a plugin made for another core version, naming both versions', async () => {
      const dir = await project('core-range');
      const { message } = await startFails(dir, { plugins: ['./plugins/future.js'] }, 'TESSERA_E_PLUGIN_CORE_RANGE');
      expect(message).toContain('from-the-future@9.0.0');
      expect(message).toContain('^9.0.0');
      expect(message).toContain(CORE_VERSION);
    });

    it('should wrap an error thrown by register, naming the plugin', async () => {
      const dir = await project('register-throws');
      const { message } = await startFails(dir, { plugins: ['./plugins/throws-on-register.js'] }, 'TESSERA_E_PLUGIN_REGISTER');
      expect(message).toContain('clumsy');
      expect(message).toContain('cannot register today');
    });

    it('should refuse two plugins that register the same backend, naming both', async () => {
      const dir = await project('duplicate-backend');
      const { message } = await startFails(dir, { plugins: ['./plugins/scaler.js', './plugins/also-scaler.js'] }, 'TESSERA_E_PLUGIN_REGISTER');
      expect(message).toContain("backend 'scaler'");
      expect(message).toContain('scaler and also-scaler');
    });
  });

  describe('plugin config sections', () => {
    it("should give the plugin its validated section, with the schema's defaults", async () => {
      const dir = await project('section-ok');
      const { url } = await start(dir, { plugins: ['./plugins/greeter.js'], greeter: { greeting: 'hi' } });
      const res = await http(`${url}/greeter`);
      expect(res.body).toEqual({ config: { greeting: 'hi', times: 1 }, coreVersion: CORE_VERSION, configDir: dir });
    });

    it('should convert ${VAR} strings in the section where the schema wants numbers', async () => {
      const dir = await project('section-env');
      const { url } = await start(dir, { plugins: ['./plugins/greeter.js'], greeter: { greeting: '${GREETING:-hey}', times: '${TIMES}' } }, { TIMES: '3' });
      expect((await http(`${url}/greeter`)).body.config).toEqual({ greeting: 'hey', times: 3 });
    });

    it('should give the plugin the converted value when its whole section is one ${VAR}', async () => {
      const dir = await project('section-env-list');
      const { url } = await start(dir, { plugins: ['./plugins/tags.js'], tags: '${TAGS}' }, { TAGS: 'red, green' });
      expect((await http(`${url}/tags`)).body).toEqual({ tags: ['red', 'green'] });
    });

    it('should reject a bad section value with TESSERA_E_PLUGIN_CONFIG naming the key and the file', async () => {
      const dir = await project('section-bad');
      const { message, file } = await startFails(dir, { plugins: ['./plugins/greeter.js'], greeter: { greeting: 'hi', times: 0 } }, 'TESSERA_E_PLUGIN_CONFIG');
      expect(message).toContain(file);
      expect(message).toContain('greeter.times');
    });

    it('should reject a section missing a required key', async () => {
      const dir = await project('section-missing');
      const { message } = await startFails(dir, { plugins: ['./plugins/greeter.js'], greeter: { times: 2 } }, 'TESSERA_E_PLUGIN_CONFIG');
      expect(message).toContain('greeting');
    });

    it('should validate an absent section too (a required key is still required)', async () => {
      const dir = await project('section-absent');
      await startFails(dir, { plugins: ['./plugins/greeter.js'] }, 'TESSERA_E_PLUGIN_CONFIG');
    });

    it('should reject a root key that no plugin claims', async () => {
      const dir = await project('unclaimed');
      const { message } = await startFails(dir, { plugins: ['./plugins/greeter.js'], greeter: { greeting: 'hi' }, tracing: {} }, 'TESSERA_E_CONFIG_INVALID');
      expect(message).toContain('tracing');
      expect(message).toContain('greeter');
    });
  });

  describe('what plugins register', () => {
    it('should serve a model of a plugin-registered backend over OIP v2, batch dims and all', async () => {
      const dir = await project('backend');
      const { url } = await start(dir, { plugins: ['./plugins/scaler.js'], models: { triple: { backend: 'scaler', factor: 3 }, double: { backend: 'scaler' } } });
      expect(await http(`${url}/v2/health/ready`)).toMatchObject({ status: 200 });
      const md = await http(`${url}/v2/models/triple`);
      expect(md.body).toMatchObject({ name: 'triple', platform: 'scaler', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }], parameters: { max_batch_size: 8 } });
      const res = await http(`${url}/v2/models/triple/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }] } });
      expect(res.status, res.text).toBe(200);
      expect(res.body.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [2, 2], data: [3, 6, 9, 12] }]);
      // the backend's own default
      const doubled = await http(`${url}/v2/models/double/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [5] }] } });
      expect(doubled.body.outputs[0].data).toEqual([10]);
    });

    it("should let a model's value win over the backend schema's default, with or without versions", async () => {
      const dir = await project('backend-defaults');
      const { url } = await start(dir, {
        plugins: ['./plugins/offset.js'],
        models: {
          plain: { backend: 'offset' },
          set: { backend: 'offset', offset: 10 },
          versioned: { backend: 'offset', offset: 10, versions: { '1': {}, '2': { offset: 100 } } },
        },
      });
      const y = async (model: string) => (await http(`${url}/v2/models/${model}/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [0] }] } })).body.outputs?.[0]?.data;
      expect(await y('plain')).toEqual([1]);
      expect(await y('set')).toEqual([10]);
      expect(await y('versioned/versions/1')).toEqual([10]);
      expect(await y('versioned/versions/2')).toEqual([100]);
    });

    it("should validate a model section against the plugin backend's schema", async () => {
      const dir = await project('backend-bad-option');
      const { message, file } = await startFails(dir, { plugins: ['./plugins/scaler.js'], models: { m: { backend: 'scaler', factor: 'lots' } } }, 'TESSERA_E_CONFIG_INVALID');
      expect(message).toContain(file);
      expect(message).toContain('models.m.factor');
    });

    it('should run close hooks once, after the models unload', async () => {
      const dir = await project('close-hooks');
      const { server, url } = await start(dir, {
        plugins: ['./plugins/scaler.js', './plugins/greeter.js'],
        greeter: { greeting: 'bye' },
        models: { m: { backend: 'scaler' } },
      });
      expect((await http(`${url}/greeter`)).status).toBe(200);
      await Promise.all([server.close(), server.close()]);
      await server.close();
      expect(server.state).toBe('closed');
      expect(await readFile(path.join(dir, 'events.log'), 'utf8')).toBe('scaler unload m\ngreeter onClose\n');
      await expect(fetch(`${url}/greeter`)).rejects.toThrow();
    });
  });

  describe('through the CLI', () => {
    it('should print a plugin error as one line and exit 1', async () => {
      const dir = await project('cli');
      const file = await writeConfig(dir, { plugins: ['./plugins/future.js'] });
      const res = await runTesseraCli({ args: ['validate', '-c', file] });
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tessera: TESSERA_E_PLUGIN_CORE_RANGE: plugin from-the-future@9\.0\.0 needs @tessera\/core \^9\.0\.0/)]);
    });

    it('should load plugins and name their models with validate', async () => {
      const dir = await project('cli-ok');
      const file = await writeConfig(dir, { plugins: ['./plugins/scaler.js'], models: { m: { backend: 'scaler' } } });
      const res = await runTesseraCli({ args: ['validate', '--load', '-c', file] });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('m (scaler, v1: warmed)');
      // the plugin's backend unloaded the model after the check
      expect(readFileSync(path.join(dir, 'events.log'), 'utf8')).toBe('scaler unload m\n');
    });
  });
});
