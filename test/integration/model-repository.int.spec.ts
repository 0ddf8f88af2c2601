/**
 * A Triton-style `repository` folder served by the real CLI: the PP-OCR classifier with a
 * config.pbtxt, generated models with config.yaml, none, version policies, an override in
 * `models:`, and a config.pbtxt whose declared dims the model does not have.
 */
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { runTesseraCli, startTessera, writeTestModels } from '@tessera/core/testing';
import { CLS_MODEL, http, tempDir, writeConfig } from './helpers.js';

const CLS_PBTXT = `# the PP-OCR text direction classifier, as a Triton user would describe it
name: "text-orientation"
platform: "onnxruntime_onnx"
max_batch_size: 8
dynamic_batching {
  preferred_batch_size: [ 4 ]
  max_queue_delay_microseconds: 500
}
input [
  {
    name: "x"
    data_type: TYPE_FP32
    dims: [ 3, 48, 192 ]
  }
]
output [
  {
    name: "softmax_0.tmp_0"
    data_type: TYPE_FP32
    dims: [ 2 ]
    label_filename: "orientation_labels.txt"
  }
]
instance_group [ { count: 1, kind: KIND_CPU } ]
`;

/** affine's x is FP32 [batch, 4]: dims [5] cannot match. */
const WRONG_DIMS_PBTXT = 'max_batch_size: 8\ninput [ { name: "x" data_type: TYPE_FP32 dims: [ 5 ] } ]\n';

let dir: string;
let models: TestModelCatalog;
let server: TesseraProcess;

/** Puts `file` at `<repo>/<model>/<version>/model.onnx`. */
async function place(repo: string, model: string, version: string, file: string, link = false): Promise<void> {
  const target = path.join(dir, repo, model, version, 'model.onnx');
  await mkdir(path.dirname(target), { recursive: true });
  if (link) await symlink(file, target);
  else await copyFile(file, target);
}

async function writeFileIn(repo: string, file: string, text: string): Promise<void> {
  const target = path.join(dir, repo, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, text);
}

beforeAll(async () => {
  dir = await tempDir('tessera-model-repository-');
  models = await writeTestModels(path.join(dir, 'generated'));
  await place('models', 'text-orientation', '1', CLS_MODEL, true);
  await writeFileIn('models', 'text-orientation/config.pbtxt', CLS_PBTXT);
  await writeFileIn('models', 'text-orientation/orientation_labels.txt', 'upright\nupside-down\n');
  // versions 1 and 3 served (specific), 2 not, 4 has no model file
  await place('models', 'affine', '1', models.affine.path);
  await place('models', 'affine', '2', models.affine.path);
  await place('models', 'affine', '3', models.affineV2.path);
  await mkdir(path.join(dir, 'models/affine/4'), { recursive: true });
  await writeFileIn('models', 'affine/config.yaml', 'versionPolicy: { specific: [1, 3] }\nbatching: { maxBatchSize: 4, maxQueueDelayMs: 1 }\n');
  // no config: Triton's default policy serves the latest only
  await place('models', 'identity', '1', models.identity.FP32.path);
  await place('models', 'identity', '2', models.identity.FP32.path);
  // all versions in its config.pbtxt, but `models:` below asks for the latest only
  await place('models', 'multi', '1', models.multiIo.path);
  await place('models', 'multi', '2', models.multiIo.path);
  await writeFileIn('models', 'multi/config.pbtxt', 'max_batch_size: 16\nversion_policy: { all { } }\ninput [ { name: "a" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "b" data_type: TYPE_INT32 dims: [ 2 ] } ]\n');
  await place('models', 'wrong-dims', '1', models.affine.path);
  await writeFileIn('models', 'wrong-dims/config.pbtxt', WRONG_DIMS_PBTXT);
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, exitOnModelError: false },
    repository: './models',
    models: { multi: { versionPolicy: { latest: 1 } } },
  });
  server = await startTessera({ args: ['serve', '-c', config] });
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

describe('a repository folder served by the CLI', () => {
  it("should describe the classifier from the folder, with config.pbtxt's max_batch_size", async () => {
    const res = await http(`${server.url}/v2/models/text-orientation`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'text-orientation',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
      parameters: { version: '1', max_batch_size: 8 },
    });
  });

  it('should classify with the real model: one probability pair per image', async () => {
    const batch = 2;
    const data = Array.from({ length: batch * 3 * 48 * 192 }, (_, i) => ((i * 7919) % 255) / 255 - 0.5);
    const res = await http(`${server.url}/v2/models/text-orientation/infer`, { json: { inputs: [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192], data }] } });
    expect(res.status).toBe(200);
    const [out] = res.body.outputs;
    expect(out).toMatchObject({ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [2, 2] });
    for (let row = 0; row < batch; row++) {
      const [p0, p1] = out.data.slice(row * 2, row * 2 + 2);
      expect(p0 + p1).toBeCloseTo(1, 4);
      expect(Math.min(p0, p1)).toBeGreaterThanOrEqual(0);
    }
  });

  it("should answer Triton's classification extension with the labels of config.pbtxt's label_filename", async () => {
    const data = Array.from({ length: 2 * 3 * 48 * 192 }, (_, i) => ((i * 7919) % 255) / 255 - 0.5);
    const json = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3, 48, 192], data }] };
    const raw = await http(`${server.url}/v2/models/text-orientation/infer`, { json });
    const res = await http(`${server.url}/v2/models/text-orientation/infer`, { json: { ...json, outputs: [{ name: 'softmax_0.tmp_0', parameters: { classification: 2 } }] } });
    expect(res.status, res.text).toBe(200);
    const [out] = res.body.outputs;
    expect(out).toMatchObject({ name: 'softmax_0.tmp_0', datatype: 'BYTES', shape: [2, 2] });
    const probabilities: number[] = raw.body.outputs[0].data;
    for (let row = 0; row < 2; row++) {
      const [p0, p1] = probabilities.slice(row * 2, row * 2 + 2) as [number, number];
      const best = p1 > p0 ? 1 : 0;
      const label = ['upright', 'upside-down'];
      expect(out.data.slice(row * 2, row * 2 + 2)).toEqual([`${[p0, p1][best]!.toFixed(6)}:${best}:${label[best]}`, `${[p0, p1][1 - best]!.toFixed(6)}:${1 - best}:${label[1 - best]}`]);
    }
    // binary output too (what tritonclient asks for by default)
    const bin = await http(`${server.url}/v2/models/text-orientation/infer`, { json: { ...json, outputs: [{ name: 'softmax_0.tmp_0', parameters: { classification: 1, binary_data: true } }] } });
    expect(bin.status).toBe(200);
    expect(bin.text).toMatch(/"datatype":"BYTES","shape":\[2,1\],"parameters":\{"binary_data_size":\d+\}/);
    expect(bin.text).toMatch(/\d\.\d{6}:[01]:(upright|upside-down)/);
  });

  it('should serve the versions the policy selects, and no other', async () => {
    expect((await http(`${server.url}/v2/models/affine`)).body.versions).toEqual(['1', '3']);
    const x = { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] };
    const v1 = await http(`${server.url}/v2/models/affine/versions/1/infer`, { json: { inputs: [x] } });
    expect(v1.body.outputs[0].data).toEqual([3, 5, 7, 9]);
    const v3 = await http(`${server.url}/v2/models/affine/versions/3/infer`, { json: { inputs: [x] } });
    expect(v3.body.outputs[0].data).toEqual([2, 5, 8, 11]);
    // no version: the latest router picks the highest served version
    const latest = await http(`${server.url}/v2/models/affine/infer`, { json: { inputs: [x] } });
    expect([latest.body.model_version, latest.body.outputs[0].data]).toEqual(['3', [2, 5, 8, 11]]);
    expect((await http(`${server.url}/v2/models/affine/versions/2`)).body.code).toBe('TESSERA_E_MODEL_VERSION_NOT_FOUND');
    expect((await http(`${server.url}/v2/models/affine/versions/4`)).status).toBe(404);
    expect((await http(`${server.url}/v2/models/identity`)).body.versions).toEqual(['2']);
    // models: overrode the folder's `all`
    expect((await http(`${server.url}/v2/models/multi`)).body.versions).toEqual(['2']);
  });

  it('should have logged what it skipped', () => {
    const log = server.stdout.join('\n');
    expect(log).toContain(`${path.join(dir, 'models/affine/4')}: skipped: no model.onnx in the version folder`);
  });

  it("should fail the version whose model does not match config.pbtxt's dims, naming the field and the model's shape", async () => {
    const index = await http(`${server.url}/v2/repository/index`, { method: 'POST' });
    expect(index.status).toBe(200);
    const rows = index.body as { name: string; version: string; state: string; reason?: string }[];
    expect(rows.filter((r) => r.state === 'READY').map((r) => `${r.name}/${r.version}`).sort()).toEqual(['affine/1', 'affine/3', 'identity/2', 'multi/2', 'text-orientation/1']);
    const failed = rows.find((r) => r.name === 'wrong-dims')!;
    expect(failed.state).toBe('UNAVAILABLE');
    expect(failed.reason).toContain(`wrong-dims v1 does not match the signature declared in ${path.join(dir, 'models/wrong-dims/config.pbtxt')}`);
    expect(failed.reason).toContain('input[0] "x" (line 2; dims [5] exclude the batch dim, max_batch_size 8): declares shape [-1, 5], the model\'s input "x" has shape [-1, 4]');
    expect((await http(`${server.url}/v2/models/wrong-dims/ready`)).status).toBe(503);
  });
});

describe('the CLI with a repository folder', () => {
  it('should validate it, listing the models and the versions served', async () => {
    const config = await writeConfig(dir, { repository: './models', models: { multi: { versionPolicy: { latest: 1 } } } }, 'validate.yaml');
    const { code, stdout, stderr } = await runTesseraCli({ args: ['validate', '-c', config] });
    expect(code, stderr).toBe(0);
    // what serve would log: the version folder without a model file, skipped as Triton skips it
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tessera: warning: .*models\/affine\/4: skipped: no model\.onnx in the version folder$/)]);
    expect(stdout).toContain('5 model(s): multi (onnxruntime, v2); affine (onnxruntime, v1, v3); identity (onnxruntime, v2); text-orientation (onnxruntime, v1); wrong-dims (onnxruntime, v1)');
  });

  it('should refuse to start with exitOnModelError when a declared signature does not match', async () => {
    await place('strict', 'wrong-dims', '1', models.affine.path);
    await writeFileIn('strict', 'wrong-dims/config.pbtxt', WRONG_DIMS_PBTXT);
    const config = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, exitOnModelError: true }, repository: './strict' }, 'strict.yaml');
    const { code, stdout, stderr } = await runTesseraCli({ args: ['serve', '-c', config] });
    expect(code).not.toBe(0);
    expect(`${stdout}\n${stderr}`).toContain('declares shape [-1, 5], the model\'s input "x" has shape [-1, 4]');
  });

  it('should refuse a config.pbtxt that does not parse, with file:line:col', async () => {
    await place('broken', 'm', '1', models.affine.path);
    await writeFileIn('broken', 'm/config.pbtxt', 'max_batch_size: 8\ninput [ { name: "x" dims: [4 } ]\n');
    const config = await writeConfig(dir, { repository: './broken' }, 'broken.yaml');
    const { code, stderr } = await runTesseraCli({ args: ['validate', '-c', config] });
    expect(code).not.toBe(0);
    expect(stderr).toContain(`${path.join(dir, 'broken/m/config.pbtxt')}:2:30: expected "," or "]" in the list, got "}"`);
  });
});
