/**
 * A Triton repository folder with a Python model (`adder/config.pbtxt` with `backend: "python"`,
 * `adder/1/model.py`) served through `repository:` by the real CLI, over HTTP: the scan maps
 * config.pbtxt's input/output to the backend's inputs/outputs, and model.py's `initialize` gets
 * them back as Triton's model config. The folder is written into a temp folder outside the repository.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonMissing, writeModel } from './models.js';

const missing = pythonMissing();

/** SUM = A + B, in the datatype config.pbtxt declares for SUM (read from args, as Triton's examples do). */
const ADDER_PY = `import json
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.dtype = pb_utils.triton_string_to_numpy(pb_utils.get_output_config_by_name(config, "SUM")["data_type"])
        self.max_batch_size = config["max_batch_size"]

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "A").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "B").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("SUM", (a + b).astype(self.dtype)), pb_utils.Tensor("MBS", np.full((a.shape[0], 1), self.max_batch_size, dtype=np.int32))]))
        return responses
`;

const ADDER_PBTXT = `name: "adder"
backend: "python"
max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 1000 }
instance_group [ { count: 1, kind: KIND_CPU } ]
input [
  { name: "A", data_type: TYPE_FP32, dims: [ 3 ] },
  { name: "B", data_type: TYPE_FP32, dims: [ 3 ] }
]
output [
  { name: "SUM", data_type: TYPE_FP64, dims: [ 3 ] },
  { name: "MBS", data_type: TYPE_INT32, dims: [ 1 ] }
]
`;

describe.skipIf(missing !== undefined)(`a Triton repository folder with a Python model${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let server: TesseraProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-python-repo-'));
    const models = path.join(dir, 'models');
    const adder = await writeModel(models, 'adder', ADDER_PY);
    await writeFile(path.join(adder, 'config.pbtxt'), ADDER_PBTXT);
    const file = path.join(dir, 'tessera.config.json');
    await writeFile(file, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, plugins: ['@tessera/backend-python'], repository: './models' }, null, 2));
    server = await startTessera({ args: ['serve', '-c', file], timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("should serve adder/1/model.py with config.pbtxt's tensors (batch dim prepended) and answer a correct sum over HTTP", async () => {
    const meta = await fetch(`${server.url}/v2/models/adder`);
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({
      name: 'adder',
      versions: ['1'],
      platform: 'python',
      inputs: [{ name: 'A', datatype: 'FP32', shape: [-1, 3] }, { name: 'B', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'SUM', datatype: 'FP64', shape: [-1, 3] }, { name: 'MBS', datatype: 'INT32', shape: [-1, 1] }],
    });
    const res = await fetch(`${server.url}/v2/models/adder/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          { name: 'A', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
          { name: 'B', datatype: 'FP32', shape: [2, 3], data: [0.5, 20, 300, -4, 50, 600] },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model_name: string; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
    expect(body.model_name).toBe('adder');
    const out = Object.fromEntries(body.outputs.map((o) => [o.name, o]));
    expect(out['SUM']).toMatchObject({ datatype: 'FP64', shape: [2, 3], data: [1.5, 22, 303, 0, 55, 606] });
    // initialize saw config.pbtxt's max_batch_size
    expect(out['MBS']).toMatchObject({ shape: [2, 1], data: [8, 8] });
  });
});
