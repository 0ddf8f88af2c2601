import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraError } from '../errors.js';
import { watchTargets } from '../server/watch.js';
import { loadConfig } from './load.js';
import { ConfigOrigins, mergeConfigLayers } from './overlay.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-overlay-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `files` (paths relative to the temp folder) and returns their absolute paths, in order. */
async function write(files: Record<string, string>): Promise<string[]> {
  const written: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    written.push(file);
  }
  return written;
}

async function loadError(files: string[], env: Record<string, string> = {}): Promise<TesseraError> {
  try {
    await loadConfig({ files, cwd: dir, env });
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    return err as TesseraError;
  }
  throw new Error('expected loadConfig to fail');
}

const BASE = `server: { port: 8101, host: 127.0.0.1, logLevel: warn }
plugins: ['./plugins/a.js', 'some-package']
models:
  m:
    path: ./models/m.onnx
    batching: { maxBatchSize: 8, maxQueueDelayMs: 2, preferredBatchSizes: [4, 8] }
    sessionOptions: { intraOpNumThreads: 4, graphOptimizationLevel: all }
  n:
    path: ./models/n.onnx
`;

describe(mergeConfigLayers, () => {
  it('should merge objects key by key, replace arrays and scalars, and drop keys a later file sets to null', () => {
    const { tree } = mergeConfigLayers(
      [
        { file: '/a/base.yaml', tree: { server: { port: 1, host: 'h' }, plugins: ['x', 'y'], models: { m: { backend: 'fake', batching: { maxBatchSize: 8, preferredBatchSizes: [2, 4] } }, n: { backend: 'fake' } } } },
        { file: '/b/over.yaml', tree: { server: { port: 2 }, plugins: ['z'], models: { m: { batching: { preferredBatchSizes: [8] } }, n: null } } },
      ],
      {},
    );
    expect(tree).toEqual({ server: { port: 2, host: 'h' }, plugins: ['z'], models: { m: { backend: 'fake', batching: { maxBatchSize: 8, preferredBatchSizes: [8] } } } });
  });

  it('should not change the trees it was given', () => {
    const base = { models: { m: { batching: { maxBatchSize: 8 } } } };
    const { tree } = mergeConfigLayers([{ file: '/a/b.yaml', tree: base }, { file: '/a/c.yaml', tree: { models: { m: { batching: { maxBatchSize: 2 } } } } }], {});
    expect(base.models.m.batching.maxBatchSize).toBe(8);
    expect(tree).toEqual({ models: { m: { batching: { maxBatchSize: 2 } } } });
  });

  it('should replace each file\'s ${VAR}s once, keeping $${ literal, and name the file of an unset one', () => {
    const { tree } = mergeConfigLayers([{ file: '/a/b.yaml', tree: { x: { a: '${A}', lit: '$${A}' } } }, { file: '/a/c.yaml', tree: { x: { b: '${B:-two}' } } }], { A: 'one' });
    expect(tree).toEqual({ x: { a: 'one', lit: '${A}', b: 'two' } });
    let thrown: unknown;
    try {
      mergeConfigLayers([{ file: '/a/b.yaml', tree: {} }, { file: '/a/c.yaml', tree: { x: '${NOPE}' } }], {});
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'TESSERA_E_CONFIG_ENV', message: expect.stringMatching(/^\/a\/c\.yaml: x: /) });
  });
});

describe(ConfigOrigins, () => {
  it('should name the file that set a value, every file that contributed to an object, and the nearest ancestor of an unknown path', () => {
    const { origins } = mergeConfigLayers(
      [
        { file: '/a/base.yaml', tree: { server: { port: 1 }, models: { m: { path: 'm.onnx', batching: { maxBatchSize: 8 } } } } },
        { file: '/b/over.yaml', tree: { models: { m: { batching: { maxBatchSize: -1 } }, 'odd.name': { path: 'x' } } } },
      ],
      {},
    );
    expect(origins.fileOf('server.port')).toBe('/a/base.yaml');
    expect(origins.fileOf('models.m.batching.maxBatchSize')).toBe('/b/over.yaml');
    expect(origins.fileOf('models.m')).toBe('/a/base.yaml + /b/over.yaml');
    expect(origins.fileOf('models.m.path')).toBe('/a/base.yaml');
    expect(origins.fileOf('models["odd.name"].path')).toBe('/b/over.yaml');
    expect(origins.fileOf('models.m.batching.nope')).toBe('/a/base.yaml + /b/over.yaml');
    expect(origins.fileOf('(anything)')).toBe('/a/base.yaml + /b/over.yaml');
  });
});

describe('loadConfig with several files', () => {
  it('should merge them in order and list them as configFiles, the first being configFile and configDir', async () => {
    const [base, over] = await write({ 'base/tessera.config.yaml': BASE, 'tune/tessera.tune.yaml': 'models:\n  m:\n    instances: 2\n    batching: { maxBatchSize: 4 }\n    sessionOptions: { intraOpNumThreads: 1 }\n' });
    const config = await loadConfig({ files: [base!, over!], cwd: dir, env: {} });
    expect(config.configFile).toBe(base);
    expect(config.configFiles).toEqual([base, over]);
    expect(config.configDir).toBe(path.join(dir, 'base'));
    const m = config.models['m']!;
    expect(m.instances).toBe(2);
    expect(m.batching).toEqual({ batcher: 'dynamic', maxBatchSize: 4, options: { maxQueueDelayMs: 2, preferredBatchSizes: [4, 8] } });
    expect(m.options['sessionOptions']).toEqual({ intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    expect(config.server.port).toBe(8101);
    expect(config.models['n']).toBeDefined();
  });

  it('should resolve each file\'s relative paths against its own folder', async () => {
    const [base, over] = await write({
      'base/tessera.config.yaml': BASE,
      'other/over.yaml': "plugins: ['./plugins/b.js']\nserver: { stateDir: ./state }\nmodels:\n  m: { batching: { maxBatchSize: 2 } }\n  o: { path: ./o.onnx, versions: null }\n  n: { path: null, versions: { '3': { path: ../n3.onnx } } }\n",
    });
    const config = await loadConfig({ files: [base!, over!], cwd: dir, env: {} });
    // the base file's model path keeps resolving against the base file's folder
    expect(config.models['m']!.versions['1']!.path).toBe(path.join(dir, 'base/models/m.onnx'));
    expect(config.models['o']!.versions['1']!.path).toBe(path.join(dir, 'other/o.onnx'));
    expect(config.models['n']!.versions['3']!.path).toBe(path.join(dir, 'n3.onnx'));
    expect(Object.keys(config.models['n']!.versions)).toEqual(['3']);
    expect(config.plugins).toEqual([path.join(dir, 'other/plugins/b.js')]);
    expect(config.server.stateDir).toBe(path.join(dir, 'other/state'));
  });

  it('should resolve a model\'s processor options against the folder of the file that set its processors', async () => {
    const [base, over] = await write({
      'base/tessera.config.yaml': `${BASE}    postprocess: [{ processor: classification, labelsFile: labels.txt }]\n`,
      'other/over.yaml': 'models:\n  m:\n    postprocess: [{ processor: classification, labelsFile: labels.txt }]\n',
    });
    const config = await loadConfig({ files: [base!, over!], cwd: dir, env: {} });
    expect(config.models['m']!.configDir).toBe(path.join(dir, 'other'));
    expect(config.models['n']!.configDir).toBe(path.join(dir, 'base'));
  });

  it('should search a folder given as one of the files, and accept a single entry as -c FILE does', async () => {
    const [base] = await write({ 'base/tessera.config.yaml': BASE, 'tune/tessera.config.yaml': 'server: { port: 8102 }\n' });
    const merged = await loadConfig({ files: ['base', 'tune'], cwd: dir, env: {} });
    expect(merged.server.port).toBe(8102);
    const single = await loadConfig({ files: [base!], cwd: dir, env: {} });
    expect(single.configFiles).toBeUndefined();
    expect(single.configFile).toBe(base);
  });

  it('should name the file a bad key came from', async () => {
    const [base, over] = await write({
      'base/tessera.config.yaml': BASE.replace('logLevel: warn', 'logLevel: loud'),
      'tune/over.yaml': 'models:\n  m:\n    batching: { maxBatchSize: -1 }\n',
    });
    const err = await loadError([base!, over!]);
    expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
    const lines = err.message.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${base}: server\\.logLevel: must be one of`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${over}: models\\.m\\.batching\\.maxBatchSize: must be an integer`)));
  });

  it('should name both files of a conflict they make together', async () => {
    const [base, over] = await write({ 'base/tessera.config.yaml': BASE, 'over.yaml': "models:\n  m:\n    versions: { '2': { path: ./m2.onnx } }\n" });
    const err = await loadError([base!, over!]);
    expect(err.message).toContain(`${base} + ${over}: models.m: must not set both path and versions`);
  });

  it('should report a missing later file and a later file that is not a mapping', async () => {
    const [base, list] = await write({ 'base/tessera.config.yaml': BASE, 'list.yaml': '- a\n- b\n' });
    expect(await loadError([base!, 'nope.yaml'])).toMatchObject({ code: 'TESSERA_E_CONFIG_NOT_FOUND', message: expect.stringContaining(path.join(dir, 'nope.yaml')) });
    expect(await loadError([base!, list!])).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID', message: expect.stringMatching(new RegExp(`^${list}: \\(root\\): must be an object`)) });
  });

  it('should make serve --watch watch every file', async () => {
    const [base, over] = await write({ 'base/tessera.config.yaml': BASE, 'tune/over.yaml': 'models: { m: { instances: 2 } }\n' });
    const targets = watchTargets(await loadConfig({ files: [base!, over!], cwd: dir, env: {} }));
    expect(targets.files).toEqual(expect.arrayContaining([base, over, path.join(dir, 'base/models/m.onnx')]));
  });
});
