/**
 * The custom-backend example's backend against the conformance suite of `@tessera/core/testing`,
 * in process, as its README shows (example.int.spec.ts then serves it with the CLI).
 */
import type { Tensor } from '@tessera/core';
import type { ConformanceModel } from '@tessera/core/testing';
import { describeBackendConformance } from '@tessera/core/testing';
import { ThresholdBackend } from './plugin.js';

/** A threshold model as the conformance suite sees it: settings, metadata, inputs and a reference. */
function thresholdModel(threshold: number, width: number): ConformanceModel {
  return {
    name: `threshold ${threshold} × ${width}`,
    config: { threshold, width },
    metadata: {
      inputs: [{ name: 'scores', datatype: 'FP32', shape: [-1, width] }],
      outputs: [
        { name: 'labels', datatype: 'BOOL', shape: [-1, width] },
        { name: 'count', datatype: 'INT32', shape: [-1] },
      ],
    },
    batchable: true,
    makeInputs(batch, seed = 0) {
      const data = new Float32Array(batch * width);
      // a spread of scores in [0, 1), the threshold itself among them (not above it: false)
      for (let i = 0; i < data.length; i++) data[i] = i % 5 === 0 ? threshold : ((i * 37 + seed * 101) % 97) / 97;
      return [{ name: 'scores', datatype: 'FP32', shape: [batch, width], data }];
    },
    expected(inputs) {
      const limit = Math.fround(threshold);
      const scores = inputs[0] as Tensor<'FP32'>;
      const rows = scores.shape[0]!;
      const labels = new Uint8Array(rows * width);
      const count = new Int32Array(rows);
      scores.data.forEach((s, i) => {
        if (s > limit) {
          labels[i] = 1;
          count[Math.floor(i / width)]! += 1;
        }
      });
      return [
        { name: 'labels', datatype: 'BOOL', shape: [rows, width], data: labels },
        { name: 'count', datatype: 'INT32', shape: [rows], data: count },
      ];
    },
    tolerance: 0,
  };
}

describeBackendConformance({
  name: 'js-threshold (examples/custom-backend)',
  createBackend: () => new ThresholdBackend(),
  models: { batchable: thresholdModel(0.8, 4), others: [thresholdModel(0.25, 7)] },
});
