import { describeBackendConformance, makeTempDir, writeTestModels } from '@tessera/core/testing';
import { OnnxRuntimeBackend } from './backend.js';

// the suite registers its tests at collection time, so the models are written before it is called
const models = await writeTestModels(await makeTempDir('tessera-ort-conformance-'));

describeBackendConformance({
  name: 'onnxruntime',
  createBackend: () => new OnnxRuntimeBackend(),
  models: {
    batchable: models.affine,
    others: [models.affineV2, models.multiIo, models.fixed, models.dynamicImage],
    identity: models.identity,
    corrupt: { path: models.corrupt.path },
    missing: { path: models.missingPath },
  },
});
