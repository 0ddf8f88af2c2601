// The baseline: onnxruntime-node `session.run` called back to back, each session in a process of
// its own (bench/lib/raw-worker.mjs), swept over parallel sessions × intra-op threads
// (bench/lib/raw-sweep.mjs). Prints one JSON line. Run by bench/run.mjs; by hand:
//   node bench/raw.mjs '{"model":"cls","batches":[1,8],"durationMs":2000,"warmupMs":500}'
//   node bench/raw.mjs '{"model":"cls","batches":[1,8,32],"sweep":false}'       # one session, default threads only
//   node bench/raw.mjs '{"model":"det","batches":[1,4,16],"sessions":[1,2],"threads":[0,1]}'
// Arguments: model (cls, det), batches (of the default point: one session, the base options'
// threads), durationMs / warmupMs (per batch size), sessionOptions (the base: ORT's defaults, or
// BENCH_THREADS's intraOpNumThreads), sweep (false: the default point only), sessions / threads (the
// grid: see sweepGrid), top (batch sizes of the default point carried to the others), cores
// (default: os.availableParallelism()), referenceFile (where the batch-1 output is written).
import os from 'node:os';
import { benchModels } from './lib/common.mjs';
import { rawSweep } from './lib/raw-sweep.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const model = benchModels()[args.model ?? 'cls'];
if (!model) throw new Error(`unknown model ${args.model}`);
const batches = args.batches ?? model.batches;
const sessionOptions = args.sessionOptions ?? {};
const result = await rawSweep({
  model: model.key,
  batches,
  cores: args.cores ?? os.availableParallelism(),
  durationMs: args.durationMs ?? 3000,
  warmupMs: args.warmupMs ?? 1000,
  sessionOptions,
  referenceFile: args.referenceFile,
  // no batch size asked for: only the reference output (one session)
  sweep: args.sweep !== false && batches.length > 0,
  sessions: args.sessions,
  threads: args.threads,
  top: args.top ?? 2,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(
  `${JSON.stringify({
    model: model.key,
    modelName: model.name,
    inputShape: [-1, ...model.sampleShape],
    sessionOptions: { executionProviders: ['cpu'], ...sessionOptions },
    ...result,
  })}\n`,
);
