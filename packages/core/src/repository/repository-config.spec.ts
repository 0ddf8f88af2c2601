/** The `repository` key through loadConfig/resolveConfig: layouts, version policies, merging with `models:`, bad layouts. */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { resolveConfig } from '../config/resolve.js';
import { catchError } from '../config/test-support.js';
import type { TesseraConfig } from '../config/types.js';
import { TesseraError } from '../errors.js';
import { listRepository, scanRepository } from './scan.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures/triton');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-repository-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes files under `dir` (the scan never opens the models, so any bytes do). */
function write(files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
}

const abs = (name: string): string => path.join(dir, name);

async function load(config = 'repository: ./models\n', env: Record<string, string> = {}): Promise<TesseraConfig> {
  write({ 'tessera.config.yaml': config });
  return loadConfig({ cwd: dir, env });
}

async function loadError(config = 'repository: ./models\n'): Promise<TesseraError> {
  try {
    await load(config);
  } catch (err) {
    expect(err).toBeInstanceOf(TesseraError);
    return err as TesseraError;
  }
  throw new Error('expected loadConfig to fail');
}

const versionsOf = (config: TesseraConfig, model: string): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(config.models[model]!.versions).map(([v, c]) => [v, c.path]));

describe('repository', () => {
  describe('having a Triton-style model with config.pbtxt', () => {
    it("should serve Triton's latest version only, with the mapped batching and the declared signature", async () => {
      write({ 'models/simple/1/model.onnx': 'x', 'models/simple/2/model.onnx': 'x' });
      copyFileSync(path.join(FIXTURES, 'simple.pbtxt'), abs('models/simple/config.pbtxt'));
      const config = await load();
      expect(config.repository).toBe(abs('models'));
      expect(Object.keys(config.models)).toEqual(['simple']);
      const simple = config.models['simple']!;
      expect(versionsOf(config, 'simple')).toEqual({ '2': abs('models/simple/2/model.onnx') });
      expect(simple).toMatchObject({
        backend: 'onnxruntime',
        batching: { batcher: 'passthrough', maxBatchSize: 8, options: {} },
        instances: 'auto',
        versionPolicy: { latest: 1 },
        repository: { modelDir: abs('models/simple'), configFile: abs('models/simple/config.pbtxt') },
        options: {},
      });
      expect(simple.signature?.declaredIn).toBe(abs('models/simple/config.pbtxt'));
      expect(simple.signature?.inputs?.map((t) => [t.name, t.datatype, t.shape])).toEqual([
        ['INPUT0', 'INT32', [-1, 16]],
        ['INPUT1', 'INT32', [-1, 16]],
      ]);
      expect(config.warnings).toEqual([]);
    });

    it("should serve a Python model (backend: \"python\", <version>/model.py) with @tessera/backend-python's inputs/outputs keys, versions at the model.py files", async () => {
      write({
        'models/adder/1/model.py': 'x',
        'models/adder/2/model.py': 'x',
        'models/adder/config.pbtxt': [
          'name: "adder"',
          'backend: "python"',
          'max_batch_size: 4',
          'version_policy: { all { } }',
          'input [ { name: "A" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 2 ] } ]',
          'output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 2 ] } ]',
        ].join('\n'),
      });
      const config = await load();
      expect(versionsOf(config, 'adder')).toEqual({ '1': abs('models/adder/1/model.py'), '2': abs('models/adder/2/model.py') });
      const adder = config.models['adder']!;
      expect(adder).toMatchObject({ backend: 'python', batching: { maxBatchSize: 4 }, versionPolicy: 'all', repository: { configFile: abs('models/adder/config.pbtxt') } });
      // backend keys: the core passes them to the backend (`options`), which validates them
      expect(adder.options).toEqual({
        inputs: [{ name: 'A', datatype: 'FP32', shape: [-1, 2] }, { name: 'B', datatype: 'FP32', shape: [-1, 2] }],
        outputs: [{ name: 'SUM', datatype: 'FP32', shape: [-1, 2] }],
      });
      expect(config.warnings).toEqual([]);
    });

    it('should take a folder of <version>/model.py without config.pbtxt (or with a config.yaml naming no backend) as a Python model', async () => {
      write({
        'models/plain/1/model.py': 'x',
        'models/yaml/3/model.py': 'x',
        'models/yaml/config.yaml': 'inputs: [{ name: X, datatype: INT64, shape: [-1] }]\noutputs: [{ name: Y, datatype: INT64, shape: [-1] }]\n',
        'models/onnx/1/model.onnx': 'x',
        'models/onnx/2/model.py': 'x',
      });
      const config = await load();
      expect(Object.fromEntries(Object.entries(config.models).map(([n, m]) => [n, m.backend]))).toEqual({ onnx: 'onnxruntime', plain: 'python', yaml: 'python' });
      expect(versionsOf(config, 'plain')).toEqual({ '1': abs('models/plain/1/model.py') });
      expect(versionsOf(config, 'yaml')).toEqual({ '3': abs('models/yaml/3/model.py') });
      expect(config.models['yaml']!.options).toMatchObject({ inputs: [{ name: 'X', datatype: 'INT64', shape: [-1] }] });
      // a folder with model.onnx stays ONNX: the model.py beside it is skipped with the hint
      expect(versionsOf(config, 'onnx')).toEqual({ '1': abs('models/onnx/1/model.onnx') });
    });

    it('should map dynamic_batching to the dynamic batcher and instance_group to instances', async () => {
      write({
        'models/bert/1/model.onnx': 'x',
        'models/bert/config.pbtxt': 'platform: "onnxruntime_onnx"\nmax_batch_size: 4\ndynamic_batching { preferred_batch_size: 2 max_queue_delay_microseconds: 500 }\ninstance_group [{ count: 3, kind: KIND_CPU }]\n',
      });
      const config = await load();
      expect(config.models['bert']).toMatchObject({ batching: { batcher: 'dynamic', maxBatchSize: 4, options: { preferredBatchSizes: [2], maxQueueDelayMs: 0.5 } }, instances: 3 });
    });

    it("should use default_model_filename, and Triton's model.onnx/ folder form", async () => {
      write({
        'models/a/1/custom.onnx': 'x',
        'models/a/config.pbtxt': 'default_model_filename: "custom.onnx"',
        'models/b/1/model.onnx/model.onnx': 'x',
        'models/b/1/model.onnx/weights.bin': 'x',
      });
      const config = await load();
      expect(versionsOf(config, 'a')).toEqual({ '1': abs('models/a/1/custom.onnx') });
      expect(versionsOf(config, 'b')).toEqual({ '1': abs('models/b/1/model.onnx/model.onnx') });
    });

    it('should pass the config warnings on, naming the file and line', async () => {
      write({ 'models/m/1/model.onnx': 'x', 'models/m/config.pbtxt': 'max_batch_size: 8\ninstance_group { kind: KIND_GPU }\nmodel_warmup []\n' });
      const config = await load();
      expect(config.warnings).toEqual([
        expect.stringMatching(new RegExp(`^${abs('models/m/config.pbtxt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:18: instance_group KIND_GPU: the instances run on the CPU`)),
        `${abs('models/m/config.pbtxt')}:3:1: ignored (no counterpart in Tessera): model_warmup (line 3)`,
      ]);
    });
  });

  describe('having a model with config.yaml', () => {
    it('should read it as a model section, with ${VAR} substitution and its version policy', async () => {
      write({
        'models/cls/1/model.onnx': 'x',
        'models/cls/2/model.onnx': 'x',
        'models/cls/3/model.onnx': 'x',
        'models/cls/config.yaml': 'versionPolicy: { latest: 2 }\ninstances: ${CLS_INSTANCES}\nbatching: { maxBatchSize: 16, maxQueueDelayMs: 2 }\nsessionOptions: { intraOpNumThreads: 2 }\nsignature:\n  inputs: [{ name: x, datatype: FP32, shape: [-1, 3, 48, 192] }]\n',
      });
      const config = await load(undefined, { CLS_INSTANCES: '2' });
      expect(Object.keys(config.models['cls']!.versions)).toEqual(['2', '3']);
      expect(config.models['cls']).toMatchObject({
        instances: 2,
        batching: { batcher: 'dynamic', maxBatchSize: 16, options: { maxQueueDelayMs: 2 } },
        options: { sessionOptions: { intraOpNumThreads: 2 } },
        versionPolicy: { latest: 2 },
        signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }], declaredIn: abs('models/cls/config.yaml') },
        repository: { modelDir: abs('models/cls'), configFile: abs('models/cls/config.yaml') },
      });
    });

    it('should refuse path and versions, and name the file in schema errors', async () => {
      write({ 'models/cls/1/model.onnx': 'x', 'models/cls/config.yaml': 'path: ./other.onnx\n' });
      expect((await loadError()).message).toContain(`${abs('models/cls/config.yaml')}: path: not allowed in a repository model's config.yaml`);
      write({ 'models/cls/config.yaml': 'instances: 0\nversionPolicy: newest\n' });
      const err = await loadError();
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toBe(`${abs('models/cls/config.yaml')}: instances: must be an integer ≥ 1, or "auto", got 0\n${abs('models/cls/config.yaml')}: versionPolicy: must be "all", got "newest"`);
      write({ 'models/cls/config.yaml': 'versionPolicy: { latest: 0 }\n' });
      expect((await loadError()).message).toBe(`${abs('models/cls/config.yaml')}: versionPolicy.latest: must be an integer ≥ 1, got 0`);
      write({ 'models/cls/config.yaml': 'versionPolicy: { newest: 1 }\n' });
      expect((await loadError()).message).toContain('versionPolicy: unknown key "newest" (allowed: latest, specific)');
    });

    it('should report a YAML syntax error with its line and column', async () => {
      write({ 'models/cls/1/model.onnx': 'x', 'models/cls/config.yml': 'instances: [1\n' });
      const err = await loadError();
      expect(err.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(err.message).toMatch(new RegExp(`^${abs('models/cls/config.yml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax error`));
    });
  });

  describe('having models without config', () => {
    it("should serve each with the defaults and Triton's latest version (numeric order, 10 after 9)", async () => {
      write({ 'models/plain/1/model.onnx': 'x', 'models/plain/9/model.onnx': 'x', 'models/plain/10/model.onnx': 'x', 'models/README.md': 'notes', 'models/.git/HEAD': 'x' });
      const config = await load();
      expect(Object.keys(config.models)).toEqual(['plain']);
      expect(config.models['plain']).toMatchObject({ backend: 'onnxruntime', batching: { batcher: 'passthrough', options: {} }, instances: 'auto', versionPolicy: { latest: 1 }, repository: { modelDir: abs('models/plain') } });
      expect(config.models['plain']!.repository?.configFile).toBeUndefined();
      expect(Object.keys(config.models['plain']!.versions)).toEqual(['10']);
    });
  });

  describe('having a mixed folder and models: of its own', () => {
    it('should serve every kind of model folder beside the configured models, configured ones first', async () => {
      write({
        'models/triton/1/model.onnx': 'x',
        'models/triton/config.pbtxt': 'max_batch_size: 2',
        'models/yaml/1/model.onnx': 'x',
        'models/yaml/config.yaml': 'warmup: false',
        'models/bare/1/model.onnx': 'x',
        'other.onnx': 'x',
      });
      const config = await load('repository: ./models\nmodels:\n  own: { path: ./other.onnx }\n');
      expect(Object.keys(config.models)).toEqual(['own', 'bare', 'triton', 'yaml']);
      expect(config.models['own']!.repository).toBeUndefined();
      expect(config.models['own']!.versionPolicy).toBeUndefined();
      expect(config.models['triton']!.batching.maxBatchSize).toBe(2);
      expect(config.models['yaml']!.warmup).toBe(false);
    });

    it('should read `repository` from JSON and JS configs, relative to their folder', async () => {
      write({ 'conf/models/m/1/model.onnx': 'x', 'conf/tessera.config.json': '{"repository": "./models"}', 'js/models/m/1/model.onnx': 'x', 'js/tessera.config.mjs': 'export default ({ configDir }) => ({ repository: `${configDir}/models` });' });
      expect((await loadConfig({ cwd: abs('conf') })).models['m']!.versions['1']!.path).toBe(abs('conf/models/m/1/model.onnx'));
      expect((await loadConfig({ cwd: abs('js') })).models['m']!.versions['1']!.path).toBe(abs('js/models/m/1/model.onnx'));
    });

    it('should work from resolveConfig with an object, synchronously', () => {
      write({ 'models/m/1/model.onnx': 'x' });
      const config = resolveConfig({ repository: './models', server: { port: '${PORT:-9000}' } }, { configDir: dir, env: {} });
      expect(Object.keys(config.models)).toEqual(['m']);
      expect(config.sections).toEqual({});
    });
  });

  describe('having version policies', () => {
    it.each([
      ['version_policy: { all {} }', ['1', '2', '10']],
      ['version_policy: { latest { num_versions: 2 } }', ['2', '10']],
      ['version_policy: { specific { versions: [1, 10] } }', ['1', '10']],
    ])('should serve only the version folders %s selects', async (policy, versions) => {
      write({ 'models/m/1/model.onnx': 'x', 'models/m/2/model.onnx': 'x', 'models/m/10/model.onnx': 'x', 'models/m/config.pbtxt': policy });
      expect(Object.keys((await load()).models['m']!.versions)).toEqual(versions);
    });

    it('should warn about specific versions that have no folder, and skip a model left with none', async () => {
      write({
        'models/m/1/model.onnx': 'x',
        'models/m/config.yaml': 'versionPolicy: { specific: [1, 3] }',
        'models/gone/1/model.onnx': 'x',
        'models/gone/config.pbtxt': 'version_policy: { specific { versions: [4] } }',
      });
      const config = await load();
      expect(Object.keys(config.models)).toEqual(['m']);
      expect(config.warnings).toEqual([
        `${abs('models/gone/config.pbtxt')}: skipped: versionPolicy specific: [4] selects none of the version folders (1)`,
        `${abs('models/m/config.yaml')}: versionPolicy specific: [1, 3]: no version folder 3; serving 1`,
      ]);
    });

    it('should apply versionPolicy to a models: entry too, strictly', async () => {
      write({ 'a.onnx': 'x', 'b.onnx': 'x', 'c.onnx': 'x' });
      const versions = '{ "1": { path: ./a.onnx }, "2": { path: ./b.onnx }, "3": { path: ./c.onnx } }';
      const config = await load(`models:\n  m: { versions: ${versions}, versionPolicy: { latest: 2 } }\n`);
      expect(Object.keys(config.models['m']!.versions)).toEqual(['2', '3']);
      const err = await loadError(`models:\n  m: { versions: ${versions}, versionPolicy: { specific: [1, 4] } }\n`);
      expect(err.message).toBe(`${abs('tessera.config.yaml')}: models.m.versionPolicy: specific: [1, 4] names version 4, which the model does not have (its versions: 1, 2, 3)`);
    });
  });

  describe('having a model both in the folder and under models:', () => {
    beforeEach(() => {
      write({
        'models/m/1/model.onnx': 'x',
        'models/m/2/model.onnx': 'x',
        'models/m/config.pbtxt': 'max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 1000 }\ninstance_group { count: 2 kind: KIND_CPU }\ninput [{ name: "x" dims: [4] }]',
        'own.onnx': 'x',
      });
    });

    it("should let the models: keys override the folder's, merging objects key by key", async () => {
      const config = await load('repository: ./models\nmodels:\n  m: { instances: 1, batching: { maxQueueSize: 64 }, sessionOptions: { intraOpNumThreads: 1 } }\n');
      expect(config.models['m']).toMatchObject({
        instances: 1,
        batching: { batcher: 'dynamic', maxBatchSize: 8, options: { maxQueueDelayMs: 1, maxQueueSize: 64 } },
        options: { sessionOptions: { intraOpNumThreads: 1 } },
        repository: { modelDir: abs('models/m') },
      });
      expect(Object.keys(config.models['m']!.versions)).toEqual(['2']);
    });

    it("should take versionPolicy and signature from models: whole", async () => {
      const config = await load('repository: ./models\nmodels:\n  m: { versionPolicy: all, signature: { inputs: [{ name: y }] } }\n');
      expect(Object.keys(config.models['m']!.versions)).toEqual(['1', '2']);
      expect(config.models['m']!.versionPolicy).toBe('all');
      expect(config.models['m']!.signature).toEqual({ inputs: [{ name: 'y' }] });
    });

    it("should replace the folder's versions (and its version policy) by path or versions given under models:", async () => {
      const config = await load('repository: ./models\nmodels:\n  m: { path: ./own.onnx }\n');
      expect(versionsOf(config, 'm')).toEqual({ '1': abs('own.onnx') });
      expect(config.models['m']).toMatchObject({ instances: 2, batching: { maxBatchSize: 8 } });
      expect(config.models['m']!.versionPolicy).toBeUndefined();
    });
  });

  describe('having a bad layout', () => {
    it('should refuse a repository folder that does not exist, or is a file, naming the path', async () => {
      expect((await loadError()).message).toBe(`${abs('tessera.config.yaml')}: repository: the folder ${abs('models')} does not exist`);
      write({ models: 'not a folder' });
      expect((await loadError()).message).toBe(`${abs('tessera.config.yaml')}: repository: ${abs('models')} is not a folder`);
    });

    it('should refuse an empty repository folder', async () => {
      mkdirSync(abs('models'));
      const err = await loadError();
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toBe(`${abs('tessera.config.yaml')}: repository: ${abs('models')} has no model folders; expected Triton's layout, <model>/<version>/model.onnx (or model.py)`);
    });

    it('should refuse a model with both config.pbtxt and config.yaml, naming the two files', async () => {
      write({ 'models/m/1/model.onnx': 'x', 'models/m/config.pbtxt': '', 'models/m/config.yaml': '' });
      expect((await loadError()).message).toBe(`${abs('models/m')}: the model has two config files, ${abs('models/m/config.pbtxt')} and ${abs('models/m/config.yaml')}; keep one (config.pbtxt for Triton's fields, config.yaml for Tessera's)`);
    });

    it('should skip, with warnings, a version folder without the model file, a model without versions and names that cannot be models', async () => {
      write({
        'models/m/1/model.onnx': 'x',
        'models/m/2/model.py': 'x',
        'models/m/3/notes.txt': 'x',
        'models/m/v4/model.onnx': 'x',
        'models/m/labels/x.txt': 'x',
        'models/empty/config.pbtxt': 'max_batch_size: 1',
        'models/bad name/1/model.onnx': 'x',
      });
      const config = await load();
      expect(Object.keys(config.models)).toEqual(['m']);
      expect(config.warnings).toEqual([
        `${abs('models/bad name')}: skipped: "bad name" cannot be a model name (a letter or digit, then letters, digits, "_", "." or "-")`,
        `${abs('models/empty')}: skipped: no version folder holds model.onnx (expected empty/<version>/model.onnx, versions being positive integers)`,
        `${abs('models/m/2')}: skipped: no model.onnx in the version folder; it has model.py, a Python model: @tessera/backend-python serves those (config.pbtxt \`backend: "python"\`)`,
        `${abs('models/m/3')}: skipped: no model.onnx in the version folder`,
        `${abs('models/m/v4')}: ignored: version folders are positive integers without leading zeros (1, 2, 10)`,
      ]);
    });

    it('should refuse a folder where no model can be served, with the reasons, and hint when it names a model folder', async () => {
      write({ 'models/cls/1/model.onnx': 'x', 'models/cls/config.pbtxt': '' });
      const err = await loadError('repository: ./models/cls\n');
      expect(err.message).toContain(`${abs('tessera.config.yaml')}: repository: no model in ${abs('models/cls')} can be served: ${abs('models/cls/1')}: skipped: no version folder holds model.onnx`);
      expect(err.message).toContain(`looks like a version folder: \`repository\` should name the folder that holds the model folders (${abs('models')})`);
    });

    it('should report config.pbtxt syntax errors with file:line:col, every broken model at once', async () => {
      write({ 'models/a/1/model.onnx': 'x', 'models/a/config.pbtxt': 'name: "a"\nmax_batch_size 8\n', 'models/b/1/model.onnx': 'x', 'models/b/config.pbtxt': 'platform: "tensorrt_plan"' });
      const err = await loadError();
      expect(err.code).toBe('TESSERA_E_CONFIG_PARSE');
      expect(err.message).toContain(`${abs('models/a/config.pbtxt')}:2:16: expected ":" after the field name "max_batch_size", got "8"`);
      expect(err.message).toContain(`${abs('models/b/config.pbtxt')}:1:11: platform "tensorrt_plan" is not served: @tessera/backend-tensorrt runs ONNX models through ONNX Runtime's TensorRT provider, not plans`);
    });

    it('should refuse a repository that is not a string through the schema', async () => {
      const err = await loadError('repository: [./models]\n');
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toBe(`${abs('tessera.config.yaml')}: repository: must be a non-empty string, got ["./models"]`);
    });

    it('should follow a symlinked model file', async () => {
      write({ 'real.onnx': 'x' });
      mkdirSync(abs('models/m/1'), { recursive: true });
      symlinkSync(abs('real.onnx'), abs('models/m/1/model.onnx'));
      expect(versionsOf(await load(), 'm')).toEqual({ '1': abs('models/m/1/model.onnx') });
    });
  });
});

describe(listRepository, () => {
  it('should list every model folder, servable or not, with its versions and what its policy serves, without throwing for one', () => {
    write({
      'models/ok/1/model.onnx': 'x',
      'models/ok/2/model.onnx': 'x',
      'models/broken/1/model.onnx': 'x',
      'models/broken/config.pbtxt': 'backend: "tensorrt"',
      'models/none/config.yaml': '',
    });
    const listing = listRepository(abs('models'), { env: {} });
    expect(listing.models.map((m) => ({ name: m.name, versions: m.versions, served: m.served, error: m.error?.code, model: m.model !== undefined }))).toEqual([
      { name: 'broken', versions: [], served: [], error: 'TESSERA_E_CONFIG_INVALID', model: false },
      { name: 'none', versions: [], served: [], error: undefined, model: false },
      { name: 'ok', versions: ['1', '2'], served: ['2'], error: undefined, model: true },
    ]);
    expect(catchError(() => scanRepository(abs('models'), { env: {} })).message).toContain('backend "tensorrt" is not served');
  });
});
