/**
 * The backend conformance suite against the TensorRT backend with `fallback: cpu`: on a machine
 * without TensorRT (this one) every model serves on the CPU through the ONNX Runtime backend, and
 * must behave as any tensor backend does.
 */
import type { ConformanceModel } from '@tessera/core/testing';
import { describeBackendConformance, makeTempDir, writeTestModels } from '@tessera/core/testing';
import { TensorRtBackend } from './backend.js';

// the suite registers its tests at collection time, so the models are written before it is called
const models = await writeTestModels(await makeTempDir('tessera-trt-conformance-'));

const FALLBACK = { tensorrt: { fallback: 'cpu' } };
const withConfig = <M extends object>(m: M, extra: Record<string, unknown> = {}): M & { config: Record<string, unknown> } => ({
  ...m,
  config: { ...(m as { config?: Record<string, unknown> }).config, ...FALLBACK, ...extra },
});

describeBackendConformance({
  name: 'tensorrt (fallback: cpu)',
  createBackend: () => new TensorRtBackend(),
  models: {
    batchable: withConfig(models.affine),
    others: [
      withConfig(models.affineV2),
      withConfig(models.multiIo),
      withConfig(models.fixed),
      // height and width are dynamic: TensorRT needs their sizes (here those makeInputs uses)
      withConfig(models.dynamicImage, { warmupShapes: { x: [1, 3, 4, 5] } }),
    ],
    identity: Object.fromEntries(Object.entries(models.identity).map(([datatype, m]) => [datatype, withConfig<ConformanceModel>(m)])),
    corrupt: withConfig({ path: models.corrupt.path }),
    missing: withConfig({ path: models.missingPath }),
  },
});
