// The baseline: onnxruntime-node `session.run` called back to back in a process of its own, at
// each batch size. Prints one JSON line. Run by bench/run.mjs; by hand:
//   node bench/raw.mjs '{"model":"cls","batches":[1,8],"durationMs":2000,"warmupMs":500}'
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { benchModels, makeSample, summarize, tileSample } from './lib/common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const model = benchModels()[args.model ?? 'cls'];
if (!model) throw new Error(`unknown model ${args.model}`);
const batches = args.batches ?? model.batches;
const durationMs = args.durationMs ?? 3000;
const warmupMs = args.warmupMs ?? 1000;
const sessionOptions = { executionProviders: ['cpu'], ...(args.sessionOptions ?? {}) };

const session = await ort.InferenceSession.create(model.file, sessionOptions);
const sample = makeSample(model, args.seed ?? 42);

function feedsFor(batch) {
  return { [model.input]: new ort.Tensor('float32', tileSample(sample, batch), [batch, ...model.sampleShape]) };
}

// The reference output (batch 1) that served answers are checked against.
if (args.referenceFile) {
  const out = await session.run(feedsFor(1));
  const first = out[session.outputNames[0]];
  await writeFile(args.referenceFile, JSON.stringify({ name: session.outputNames[0], shape: first.dims, data: Array.from(first.data) }));
}

const results = [];
for (const batch of batches) {
  const feeds = feedsFor(batch);
  // warm-up: ORT plans and allocates for a new shape on its first runs
  const warmEnd = performance.now() + warmupMs;
  for (let i = 0; i < 3 || performance.now() < warmEnd; i++) await session.run(feeds);
  const latencies = [];
  const start = performance.now();
  const end = start + durationMs;
  while (latencies.length < 5 || performance.now() < end) {
    const t0 = performance.now();
    await session.run(feeds);
    latencies.push(performance.now() - t0);
  }
  const elapsedS = (performance.now() - start) / 1000;
  const lat = summarize(latencies);
  const row = {
    batch,
    runs: lat.count,
    latencyMs: { mean: lat.mean, p50: lat.p50, p90: lat.p90, p99: lat.p99, max: lat.max },
    samplesPerSec: (batch * lat.count) / elapsedS,
    perSampleMs: lat.p50 / batch,
  };
  results.push(row);
  process.stderr.write(`raw ${model.key} batch ${batch}: p50 ${lat.p50.toFixed(3)} ms, ${row.samplesPerSec.toFixed(1)} samples/s\n`);
}

await session.release();
const best = results.reduce((a, b) => (b.samplesPerSec > (a?.samplesPerSec ?? -1) ? b : a), undefined);
process.stdout.write(
  `${JSON.stringify({
    model: model.key,
    modelName: model.name,
    inputShape: [-1, ...model.sampleShape],
    sessionOptions,
    onnxruntime: ort.env.versions?.common ?? null,
    batches: results,
    best: best ? { batch: best.batch, samplesPerSec: best.samplesPerSec } : null,
  })}\n`,
);
