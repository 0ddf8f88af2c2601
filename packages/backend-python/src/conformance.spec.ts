import path from 'node:path';
import type { DataType, Tensor } from '@tessera/core';
import type { ConformanceModel } from '@tessera/core/testing';
import { describeBackendConformance, makeTempDir, writeTestModels } from '@tessera/core/testing';
import { describe, it } from 'vitest';
import { IDENTITY_PY, fp32, pythonMissing, readmeExample, writeModel } from '../test/models.js';
import { PythonBackend } from './backend.js';

const missing = pythonMissing();

if (missing) {
  describe('backend conformance: python', () => {
    it.skip(`skipped: ${missing}`, () => undefined);
  });
} else {
  const root = await makeTempDir('tessera-python-conformance-');
  const addSub = await writeModel(root, 'add_sub', readmeExample());
  const identityDir = await writeModel(root, 'identity', IDENTITY_PY);
  const broken = await writeModel(root, 'broken', 'this is not python(\n');
  // only their metadata, inputs and reference outputs are used: the ONNX files are not loaded
  const onnx = await writeTestModels(path.join(root, 'onnx'));

  const io = { inputs: [fp32('INPUT0'), fp32('INPUT1')], outputs: [fp32('OUTPUT0'), fp32('OUTPUT1')] };
  const adder: ConformanceModel = {
    name: 'add_sub (the README example)',
    path: addSub,
    config: { ...io },
    metadata: io,
    batchable: true,
    makeInputs(batch, seed = 0) {
      const make = (name: string, k: number): Tensor => ({ name, datatype: 'FP32', shape: [batch, 4], data: Float32Array.from({ length: batch * 4 }, (_, i) => (i + 1) * (seed + k) * 0.25 - 3) });
      return [make('INPUT0', 1), make('INPUT1', 2)];
    },
    expected([a, b]) {
      const x = a!.data as Float32Array;
      const y = b!.data as Float32Array;
      return [
        { name: 'OUTPUT0', datatype: 'FP32', shape: [...a!.shape], data: x.map((v, i) => v + y[i]!) },
        { name: 'OUTPUT1', datatype: 'FP32', shape: [...a!.shape], data: x.map((v, i) => v - y[i]!) },
      ];
    },
    tolerance: 1e-6,
  };

  const identity = Object.fromEntries(
    (Object.entries(onnx.identity) as [DataType, ConformanceModel][]).map(([datatype, m]) => [
      datatype,
      { ...m, name: `identity ${datatype}`, path: identityDir, config: { inputs: m.metadata.inputs, outputs: m.metadata.outputs } },
    ]),
  );

  describeBackendConformance({
    name: 'python',
    createBackend: () => new PythonBackend(),
    models: {
      batchable: adder,
      identity,
      corrupt: { path: broken, config: { ...io } },
      missing: { path: path.join(root, 'no-such-model'), config: { ...io } },
    },
  });
}
