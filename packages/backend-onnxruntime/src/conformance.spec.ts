import type { ConformanceModel } from '@tessera/core/testing';
import { describeBackendConformance, makeTempDir, writeTestModels } from '@tessera/core/testing';
import { OnnxRuntimeBackend } from './backend.js';

// the suite registers its tests at collection time, so the models are written before it is called
const models = await writeTestModels(await makeTempDir('tessera-ort-conformance-'));

// once with the default (each session in a worker thread), once with `runInWorker: false` (on the main thread)
for (const runInWorker of [true, false]) {
  const config = runInWorker ? {} : { runInWorker: false };
  const withConfig = <M extends object>(m: M): M & { config: Record<string, unknown> } => ({ ...m, config: { ...(m as { config?: Record<string, unknown> }).config, ...config } });
  describeBackendConformance({
    name: runInWorker ? 'onnxruntime' : 'onnxruntime (runInWorker: false)',
    createBackend: () => new OnnxRuntimeBackend(),
    models: {
      batchable: withConfig(models.affine),
      others: [models.affineV2, models.multiIo, models.fixed, models.dynamicImage].map(withConfig),
      identity: Object.fromEntries(Object.entries(models.identity).map(([datatype, m]) => [datatype, withConfig<ConformanceModel>(m)])),
      corrupt: withConfig({ path: models.corrupt.path }),
      missing: withConfig({ path: models.missingPath }),
    },
  });
}
