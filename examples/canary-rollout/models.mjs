/**
 * The canary-rollout example's model versions, generated: four ONNX files that share one signature,
 * FP32 `x` ['batch', 16] → FP32 `scores` ['batch', 4] (softmax scores of four labels), so that any
 * of them can be a version of the same model.
 *
 * - `good-v1.onnx`: softmax(x·W + b).
 * - `good-v2.onnx`: the same with slightly different weights (W + a little noise): same labels for
 *   most inputs, slightly different scores — the new model a rollout promotes.
 * - `faulty.onnx`: good-v1's scores, times a Gather from a 4-element table whose index is computed
 *   from the input: 0, or 10 when `x[i][0] > FAULT_THRESHOLD`. Index 10 is out of range, so ONNX
 *   Runtime fails *at run time* on those inputs (the model loads and warms up with zeros); the
 *   others get good-v1's answer exactly. With x uniform in [-1, 1), a quarter of requests fail.
 * - `slow.onnx`: good-v1's scores, plus a chain of SLOW_MATMULS input-dependent 256×256 MatMuls
 *   (not constant, so ONNX Runtime cannot fold them away) whose result shifts every logit by the
 *   same tiny amount (softmax ignores it): the same answers, several ms later.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildOnnxModel, mulberry32 } from '@tessera/core/testing';

/** Features per row of `x`. */
export const FEATURES = 16;
/** Labels per row of `scores`. */
export const LABELS = 4;
/** `faulty.onnx` fails for a request where some row has `x[row][0]` above this. */
export const FAULT_THRESHOLD = 0.5;
/** 256×256 MatMuls that `slow.onnx` runs per execution. */
export const SLOW_MATMULS = 24;
const SLOW_DIM = 256;

/** The files `writeCanaryModels` writes, by name. */
export const MODEL_FILES = /** @type {const} */ (['good-v1', 'good-v2', 'faulty', 'slow']);

/**
 * Small seeded PRNG (mulberry32), so that the files are the same on every run.
 * @param {number} seed
 * @returns {() => number} uniform in [0, 1)
 */
export function rng(seed) {
  return mulberry32(seed);
}

/**
 * @param {number} length
 * @param {() => number} random
 * @param {number} scale
 */
function uniform(length, random, scale) {
  return Float32Array.from({ length }, () => Math.fround((random() * 2 - 1) * scale));
}

/**
 * One row of `x` as clients send it: 16 values uniform in [-1, 1). `faulty.onnx` fails on it when
 * `isFaultyInput(row)`.
 * @param {() => number} random
 * @returns {number[]}
 */
export function randomRow(random) {
  return Array.from({ length: FEATURES }, () => Math.fround(random() * 2 - 1));
}

/**
 * Whether `faulty.onnx` fails on a request with these rows (any row over the threshold fails the
 * whole execution, as ONNX Runtime fails a whole run).
 * @param {readonly (readonly number[])[]} rows
 */
export function isFaultyInput(rows) {
  return rows.some((row) => (row[0] ?? 0) > FAULT_THRESHOLD);
}

const W1 = uniform(FEATURES * LABELS, rng(1), 1);
const B1 = uniform(LABELS, rng(2), 0.1);
const noise = uniform(FEATURES * LABELS, rng(3), 0.08);
const W2 = W1.map((w, i) => Math.fround(w + (noise[i] ?? 0)));

/**
 * The scores `good-v1.onnx` (also `faulty.onnx` where it answers, and `slow.onnx`) or
 * `good-v2.onnx` give for these rows, computed in JavaScript (float64; ONNX Runtime's float32
 * answers are within 1e-6).
 * @param {'good-v1' | 'good-v2'} model
 * @param {readonly (readonly number[])[]} rows
 * @returns {number[][]}
 */
export function referenceScores(model, rows) {
  const weights = model === 'good-v1' ? W1 : W2;
  return rows.map((row) => {
    const logits = Array.from({ length: LABELS }, (_, j) => {
      let sum = B1[j] ?? 0;
      for (let i = 0; i < FEATURES; i++) sum += (row[i] ?? 0) * (weights[i * LABELS + j] ?? 0);
      return sum;
    });
    const top = Math.max(...logits);
    const exp = logits.map((l) => Math.exp(l - top));
    const total = exp.reduce((a, b) => a + b, 0);
    return exp.map((e) => e / total);
  });
}

/**
 * The label (arg-max) of each row of scores.
 * @param {readonly (readonly number[])[]} scores
 */
export function labels(scores) {
  return scores.map((row) => row.indexOf(Math.max(...row)));
}

/** @typedef {import('@tessera/core/testing').OnnxModelSpec} OnnxModelSpec */

const IO = {
  inputs: [{ name: 'x', datatype: /** @type {const} */ ('FP32'), shape: ['batch', FEATURES] }],
  outputs: [{ name: 'scores', datatype: /** @type {const} */ ('FP32'), shape: ['batch', LABELS] }],
};

/**
 * The classifier's initializers and nodes up to `logits` ['batch', 4].
 * @param {Float32Array} weights
 * @returns {Pick<OnnxModelSpec, 'initializers' | 'nodes'>}
 */
function linear(weights) {
  return {
    initializers: [
      { name: 'W', datatype: 'FP32', dims: [FEATURES, LABELS], data: weights },
      { name: 'b', datatype: 'FP32', dims: [LABELS], data: B1 },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['logits'] },
    ],
  };
}

/**
 * @param {Float32Array} weights
 * @returns {OnnxModelSpec}
 */
function classifier(weights) {
  const { initializers, nodes } = linear(weights);
  return { ...IO, initializers, nodes: [...(nodes ?? []), { op: 'Softmax', inputs: ['logits'], outputs: ['scores'], attributes: { axis: 1 } }] };
}

/** @returns {OnnxModelSpec} */
function faulty() {
  const { initializers, nodes } = linear(W1);
  return {
    ...IO,
    initializers: [
      ...(initializers ?? []),
      { name: 'first', datatype: 'INT64', dims: [1], data: BigInt64Array.of(0n) },
      { name: 'second', datatype: 'INT64', dims: [1], data: BigInt64Array.of(1n) },
      { name: 'features', datatype: 'INT64', dims: [1], data: BigInt64Array.of(1n) },
      { name: 'threshold', datatype: 'FP32', dims: [], data: Float32Array.of(FAULT_THRESHOLD) },
      { name: 'ten', datatype: 'INT64', dims: [], data: BigInt64Array.of(10n) },
      // four entries: valid indices are -4..3, so index 10 fails inside Gather
      { name: 'table', datatype: 'FP32', dims: [LABELS], data: Float32Array.of(1, 1, 1, 1) },
    ],
    nodes: [
      ...(nodes ?? []),
      { op: 'Softmax', inputs: ['logits'], outputs: ['probs'], attributes: { axis: 1 } },
      { op: 'Slice', inputs: ['x', 'first', 'second', 'features'], outputs: ['x0'] }, // x[:, 0:1]
      { op: 'Greater', inputs: ['x0', 'threshold'], outputs: ['over'] },
      { op: 'Cast', inputs: ['over'], outputs: ['over_i64'], attributes: { to: 7 } }, // INT64
      { op: 'Mul', inputs: ['over_i64', 'ten'], outputs: ['index'] }, // 0 or 10, ['batch', 1]
      { op: 'Gather', inputs: ['table', 'index'], outputs: ['one'], attributes: { axis: 0 } },
      { op: 'Mul', inputs: ['probs', 'one'], outputs: ['scores'] },
    ],
  };
}

/** @returns {OnnxModelSpec} */
function slow() {
  const { initializers, nodes } = linear(W1);
  const chain = [];
  for (let i = 0; i < SLOW_MATMULS; i++) {
    chain.push({ op: 'MatMul', inputs: [`a${i}`, 'M'], outputs: [`m${i}`] });
    chain.push({ op: 'Tanh', inputs: [`m${i}`], outputs: [`a${i + 1}`] });
  }
  return {
    ...IO,
    initializers: [
      ...(initializers ?? []),
      // scaled by 1/16 so that tanh stays away from saturation and every step costs the same
      { name: 'M', datatype: 'FP32', dims: [SLOW_DIM, SLOW_DIM], data: uniform(SLOW_DIM * SLOW_DIM, rng(4), 1 / 16) },
      { name: 'one', datatype: 'FP32', dims: [], data: Float32Array.of(1) },
      { name: 'tiny', datatype: 'FP32', dims: [], data: Float32Array.of(1e-6) },
    ],
    nodes: [
      ...(nodes ?? []),
      // a0 = M · (1 + 1e-6 · mean(x)): depends on the input, so the chain runs on every request
      { op: 'ReduceMean', inputs: ['x'], outputs: ['mean'], attributes: { keepdims: 0 } },
      { op: 'Mul', inputs: ['mean', 'tiny'], outputs: ['mean_tiny'] },
      { op: 'Add', inputs: ['mean_tiny', 'one'], outputs: ['factor'] },
      { op: 'Mul', inputs: ['M', 'factor'], outputs: ['a0'] },
      ...chain,
      // every logit shifted by the same amount (< 1e-6): softmax gives good-v1's scores
      { op: 'ReduceMean', inputs: [`a${SLOW_MATMULS}`], outputs: ['c'], attributes: { keepdims: 0 } },
      { op: 'Mul', inputs: ['c', 'tiny'], outputs: ['shift'] },
      { op: 'Add', inputs: ['logits', 'shift'], outputs: ['shifted'] },
      { op: 'Softmax', inputs: ['shifted'], outputs: ['scores'], attributes: { axis: 1 } },
    ],
  };
}

/**
 * Writes `good-v1.onnx`, `good-v2.onnx`, `faulty.onnx` and `slow.onnx` into `dir` (created if
 * needed; the files are deterministic, existing ones are overwritten).
 * @param {string} dir
 * @returns {Promise<Record<(typeof MODEL_FILES)[number], string>>} the absolute path of each file
 */
export async function writeCanaryModels(dir) {
  await mkdir(dir, { recursive: true });
  /** @type {Record<(typeof MODEL_FILES)[number], OnnxModelSpec>} */
  const specs = { 'good-v1': classifier(W1), 'good-v2': classifier(W2), faulty: faulty(), slow: slow() };
  /** @type {Record<string, string>} */
  const paths = {};
  for (const name of MODEL_FILES) {
    const file = path.resolve(dir, `${name}.onnx`);
    await writeFile(file, buildOnnxModel({ ...specs[name], graphName: name }));
    paths[name] = file;
  }
  return /** @type {Record<(typeof MODEL_FILES)[number], string>} */ (paths);
}
