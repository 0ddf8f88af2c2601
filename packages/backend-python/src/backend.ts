import path from 'node:path';
import type { Backend, CounterMetric, JSONSchema, LoadContext, ModelVersionSpec } from '@tessera/core';
import { errorMessage } from '@tessera/core';
import { PYTHON_MODEL_CONFIG_SCHEMA, resolveProcessConfig, resolveRestartPolicy } from './config.js';
import { PythonModelInstance } from './instance.js';
import { PYTHON_DIR, WORKER_SCRIPT, declaredMetadata, initializeArgs, label, loadError, locateModel } from './internal/layout.js';
import { WorkerSupervisor } from './internal/supervisor.js';
import { PythonWorker, WorkerStartError } from './internal/worker-process.js';

/** The counter of worker restarts, shared with the other backends that restart workers (same name, labels). */
export const RESTARTS_METRIC = {
  name: 'tessera_backend_restarts_total',
  help: 'Attempts to replace the dead worker of a model instance (a failed attempt, retried later, counts again).',
  labelNames: ['model', 'version'],
} as const;

/**
 * Triton's Python-backend contract: each instance of a model is a Python process running the
 * user's `model.py` (`TritonPythonModel` with `initialize`, `execute(requests)`, `finalize`), fed
 * whole batches, its tensors passed through a shared-memory file. A worker that dies is replaced
 * with backoff (`restart`).
 */
export class PythonBackend implements Backend {
  readonly modelConfigSchema: JSONSchema = PYTHON_MODEL_CONFIG_SCHEMA;
  readonly requiresPath = true;

  /**
   * Finds model.py, takes the declared inputs and outputs, starts the worker process and runs the
   * model's `initialize`. Rejects with TESSERA_E_MODEL_LOAD saying why: the file, a missing
   * declaration, the interpreter, or the last line of the Python traceback.
   */
  async load(spec: ModelVersionSpec, ctx: LoadContext): Promise<PythonModelInstance> {
    const location = await locateModel(spec);
    const metadata = declaredMetadata(spec);
    const proc = resolveProcessConfig(spec.config);
    const pythonPath = [PYTHON_DIR, ...proc.path.map((p) => path.resolve(location.modelDir, p)), proc.env['PYTHONPATH'] ?? process.env['PYTHONPATH']].filter((p): p is string => !!p);
    const env: NodeJS.ProcessEnv = { ...process.env, ...proc.env, PYTHONPATH: pythonPath.join(path.delimiter), PYTHONUNBUFFERED: '1' };
    const args = initializeArgs(spec, location, metadata);
    const start = (signal?: AbortSignal): Promise<PythonWorker> =>
      PythonWorker.start({
        label: label(spec),
        interpreter: proc.interpreter,
        script: WORKER_SCRIPT,
        modelFile: location.modelFile,
        cwd: location.versionDir,
        env,
        args,
        startTimeoutMs: proc.startTimeoutMs,
        logger: ctx.logger,
        ...(signal ? { signal } : {}),
      });
    let restarts: CounterMetric | undefined;
    try {
      restarts = ctx.metrics?.counter(RESTARTS_METRIC);
    } catch (err) {
      ctx.logger.warn({ err }, `${RESTARTS_METRIC.name} could not be registered; worker restarts are logged only`);
    }
    let supervisor: WorkerSupervisor;
    try {
      supervisor = await WorkerSupervisor.start({
        label: label(spec),
        instance: `instance ${spec.instanceIndex + 1} of ${spec.instanceCount}`,
        policy: resolveRestartPolicy(spec.config),
        start: () => start(),
        firstStart: () => start(ctx.signal),
        logger: ctx.logger,
        restarts,
        labels: { model: spec.model, version: spec.version },
      });
    } catch (err) {
      if (err instanceof WorkerStartError) {
        if (err.traceback) ctx.logger.error(`${label(spec)}: model.py failed to load:\n${err.traceback}`);
        throw loadError(spec, `model.py failed to load: ${err.message}`, err);
      }
      throw loadError(spec, `the Python worker failed: ${errorMessage(err)}`, err);
    }
    const worker = supervisor.current();
    ctx.logger.debug({ pid: worker.pid, python: worker.info.python, numpy: worker.info.numpy, maxBatchSize: metadata.maxBatchSize }, 'python worker ready');
    return new PythonModelInstance(spec, supervisor, metadata, { interpreter: proc.interpreter, python: worker.info.python, numpy: worker.info.numpy });
  }
}
