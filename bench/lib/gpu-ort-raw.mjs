// One ONNX Runtime session on one execution provider, in a process of its own (forked by
// bench/gpu.mjs, IPC): a WebGPU device that crashes takes this process down, not the benchmark.
// Times `session.run` at each batch size and writes each batch's first output to a file
// (<outDir>/<model>-<provider>-b<batch>.f32) for the comparison of providers.
//
// Argument (JSON): { model, provider, detSize, batches, warmupRuns, minRuns, maxRuns, timeBoxMs,
// deadline (epoch ms), outDir, sessionOptions }. Messages to the parent, in order:
//   { type: 'unavailable', message }                 the session could not be created (ORT's message)
//   { type: 'created', createMs, onnxruntime, inputNames, outputNames }
//   { type: 'point', batch, …timeRuns, samplesPerSec, output: { file, name, shape } }
//   { type: 'skipped', batch, reason }               the deadline passed before the batch
//   { type: 'error', batch, message }                a run failed
//   { type: 'done' }
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { gpuBatch, gpuModels, timeRuns } from './gpu-common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const model = gpuModels(args.detSize)[args.model];
if (!model) throw new Error(`gpu-ort-raw: unknown model ${args.model}`);
const send = (m) => new Promise((resolve) => process.send(m, resolve));
process.on('disconnect', () => process.exit(0));

let session;
const t0 = performance.now();
try {
  session = await ort.InferenceSession.create(model.file, { ...(args.sessionOptions ?? {}), executionProviders: [args.provider] });
} catch (err) {
  await send({ type: 'unavailable', message: String(err?.message ?? err).trim() });
  process.exit(0);
}
await send({ type: 'created', createMs: performance.now() - t0, onnxruntime: ort.env.versions?.common ?? null, inputNames: session.inputNames, outputNames: session.outputNames });

const outputName = session.outputNames[0];
for (const batch of args.batches) {
  if (Date.now() > args.deadline) {
    await send({ type: 'skipped', batch, reason: 'the time budget of this phase ran out' });
    continue;
  }
  try {
    const feeds = { [model.input]: new ort.Tensor('float32', gpuBatch(model, batch), [batch, ...model.sampleShape]) };
    // the first run's output is the one compared (WebGPU compiles its shaders during this run)
    const f0 = performance.now();
    const first = await session.run(feeds);
    const firstRunMs = performance.now() - f0;
    const out = first[outputName];
    const file = path.join(args.outDir, `${model.key}-${args.provider}-b${batch}.f32`);
    await writeFile(file, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    const t = await timeRuns(() => session.run(feeds), { warmupRuns: Math.max(0, args.warmupRuns - 1), minRuns: args.minRuns, maxRuns: args.maxRuns, timeBoxMs: args.timeBoxMs, deadline: args.deadline });
    await send({ type: 'point', batch, ...t, firstRunMs, warmupMs: [firstRunMs, ...t.warmupMs], samplesPerSec: t.p50Ms ? (batch * 1000) / t.p50Ms : null, output: { file, name: outputName, shape: out.dims } });
  } catch (err) {
    await send({ type: 'error', batch, message: String(err?.message ?? err).trim() });
  }
}
await session.release();
await send({ type: 'done' });
process.disconnect();
