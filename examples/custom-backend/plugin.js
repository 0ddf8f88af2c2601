// @ts-check
/**
 * A Tessera plugin with one backend, `js-threshold`, in plain ESM JavaScript (no build step).
 *
 * A threshold model turns rows of scores into labels: input `scores` FP32 [N, width] → output
 * `labels` BOOL [N, width] (score > threshold) and `count` INT32 [N] (labels set per row). It needs
 * no model file; its settings are keys of the model's config section:
 *
 *   models:
 *     spam-flags: { backend: js-threshold, threshold: 0.8, width: 4 }
 *
 * The JSDoc types come from '@tessera/core', so an editor checks this file as TypeScript would.
 */
import { TesseraError, definePlugin } from '@tessera/core';

/**
 * @typedef {import('@tessera/core').Backend} Backend
 * @typedef {import('@tessera/core').InferenceBatch} InferenceBatch
 * @typedef {import('@tessera/core').JSONSchema} JSONSchema
 * @typedef {import('@tessera/core').LoadContext} LoadContext
 * @typedef {import('@tessera/core').ModelInstance} ModelInstance
 * @typedef {import('@tessera/core').ModelMetadata} ModelMetadata
 * @typedef {import('@tessera/core').ModelVersionSpec} ModelVersionSpec
 * @typedef {import('@tessera/core').Tensor} Tensor
 */

/** `platform` in the model metadata (`GET /v2/models/{name}`). */
export const PLATFORM = 'js_threshold';

/** Used when the model section leaves `threshold` or `width` out. */
export const DEFAULT_THRESHOLD = 0.5;
export const DEFAULT_WIDTH = 4;
/** Rows per execution when the model section sets no `batching.maxBatchSize`. */
export const DEFAULT_MAX_BATCH_SIZE = 64;

/**
 * The backend's own keys of a model section. The core validates each model section against it
 * before anything loads (a typo or a wrong type stops the server with the path and the value);
 * the keys the core owns (`backend`, `path`, `versions`, `batching`, …) are not part of it.
 * Defaults are applied in `load`, next to the code that uses them.
 * @type {JSONSchema}
 */
export const MODEL_CONFIG_SCHEMA = {
  type: 'object',
  properties: {
    threshold: { type: 'number', description: `A score above this is labelled true (default ${DEFAULT_THRESHOLD}).` },
    width: { type: 'integer', minimum: 1, maximum: 4096, description: `Scores per row (default ${DEFAULT_WIDTH}).` },
  },
};

/**
 * One loaded threshold model version. It holds no native resource, but follows the contract a
 * backend holding one must: `execute` takes a whole batch, `unload` is idempotent and later calls
 * to `execute` reject with a TesseraError.
 * @implements {ModelInstance}
 */
export class ThresholdModel {
  /** @type {ModelMetadata} */
  metadata;
  #label;
  #threshold;
  #width;
  #unloaded = false;

  /**
   * @param {ModelVersionSpec} spec
   * @param {{ threshold: number, width: number, maxBatchSize: number }} settings
   */
  constructor(spec, { threshold, width, maxBatchSize }) {
    this.#label = `${spec.model} v${spec.version}`;
    // compared in FP32, the scores' precision: a score sent as 0.8 is not above a threshold of 0.8
    this.#threshold = Math.fround(threshold);
    this.#width = width;
    // The core validates every request against this before the backend sees it: input names,
    // datatypes, ranks, the fixed width, and dim 0 ≤ maxBatchSize, shared by all inputs.
    this.metadata = {
      platform: PLATFORM,
      inputs: [{ name: 'scores', datatype: 'FP32', shape: [-1, width] }],
      outputs: [
        { name: 'labels', datatype: 'BOOL', shape: [-1, width] },
        { name: 'count', datatype: 'INT32', shape: [-1] },
      ],
      maxBatchSize,
    };
  }

  /**
   * Runs a batch: one or more requests, each with its own rows. Returns one list of output tensors
   * per request, in request order. Rows are independent here, so each request is computed from
   * its own tensor without concatenating the batch first (a native backend would concatenate
   * along dim 0, run once and split the outputs).
   * @param {InferenceBatch} batch
   * @param {AbortSignal} signal
   * @returns {Promise<Tensor[][]>}
   */
  async execute(batch, signal) {
    if (this.#unloaded) throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `${this.#label} is unloaded`);
    if (signal.aborted) throw new TesseraError('TESSERA_E_REQUEST_CANCELLED', `${this.#label}: the batch was cancelled before it ran`, { cause: signal.reason });
    return batch.requests.map((request) => {
      // already checked by the core: present, FP32, shape [rows, width]
      const scores = /** @type {import('@tessera/core').Tensor<'FP32'>} */ (request.inputs.find((t) => t.name === 'scores'));
      const rows = scores.shape[0] ?? 0;
      const width = this.#width;
      const labels = new Uint8Array(rows * width);
      const count = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        let n = 0;
        for (let i = r * width; i < (r + 1) * width; i++) {
          const score = scores.data[i];
          // NaN > threshold is false: an unknown score is not a positive label
          if (score !== undefined && score > this.#threshold) {
            labels[i] = 1;
            n++;
          }
        }
        count[r] = n;
      }
      /** @type {Tensor[]} */
      const outputs = [
        { name: 'labels', datatype: 'BOOL', shape: [rows, this.#width], data: labels },
        { name: 'count', datatype: 'INT32', shape: [rows], data: count },
      ];
      // a request may ask for some outputs only; returning more is allowed, fewer is not
      const wanted = request.outputs;
      return wanted ? outputs.filter((t) => wanted.includes(t.name)) : outputs;
    });
  }

  /** Frees the model; called once by the core, but safe to call again. */
  async unload() {
    this.#unloaded = true;
  }
}

/**
 * The backend: a stateless loader, registered once under a name and asked to load every model
 * version (and every instance of it) whose section says `backend: js-threshold`.
 * @implements {Backend}
 */
export class ThresholdBackend {
  modelConfigSchema = MODEL_CONFIG_SCHEMA;
  /** No model file: a model section needs neither `path` nor `versions`. */
  requiresPath = false;

  /**
   * @param {ModelVersionSpec} spec the model section (version keys applied), validated
   * @param {LoadContext} ctx a logger bound to the model, and a shutdown signal
   * @returns {Promise<ThresholdModel>}
   */
  async load(spec, ctx) {
    const config = /** @type {{ threshold?: number, width?: number, batching?: { maxBatchSize?: number } }} */ (spec.config);
    const threshold = config.threshold ?? DEFAULT_THRESHOLD;
    const width = config.width ?? DEFAULT_WIDTH;
    const maxBatchSize = config.batching?.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    if (ctx.signal.aborted) throw new TesseraError('TESSERA_E_MODEL_LOAD', `${spec.model} v${spec.version}: the load was aborted (the server is shutting down)`);
    ctx.logger.info({ threshold, width, maxBatchSize }, 'threshold model loaded');
    return new ThresholdModel(spec, { threshold, width, maxBatchSize });
  }
}

/** The plugin: what `plugins: [./plugin.js]` loads. The loader checks `core` before `register`. */
export default definePlugin({
  name: 'tessera-example-threshold',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('js-threshold', new ThresholdBackend());
  },
});
