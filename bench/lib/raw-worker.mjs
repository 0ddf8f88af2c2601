// One raw ONNX Runtime session in a process of its own, forked by bench/lib/raw-sweep.mjs (IPC):
// S of these run at once for the "S sessions × T threads" points of the raw sweep. onnxruntime-node
// 1.30's session.run is a synchronous native call, so parallel sessions need processes (or threads).
//
// Messages from the parent:
//   { type: 'warm', batch, untilMs }          run back to back until `untilMs` (epoch ms); answers
//                                             { type: 'warmed', lastRunMs }
//   { type: 'measure', batch, startMs, endMs } run back to back from now; the runs that complete in
//                                             [startMs, endMs] count; answers { type: 'measured', … }
//   { type: 'exit' }                          release the session and leave
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { benchModels, makeSample, tileSample } from './common.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const model = benchModels()[args.model];
if (!model) throw new Error(`raw-worker: unknown model ${args.model}`);
const sessionOptions = { executionProviders: ['cpu'], ...(args.sessionOptions ?? {}) };
const session = await ort.InferenceSession.create(model.file, sessionOptions);
const sample = makeSample(model, args.seed ?? 42);
/** Epoch milliseconds with sub-millisecond resolution: the window is shared by several processes. */
const now = () => performance.timeOrigin + performance.now();

// A parent killed with SIGKILL (bench/run.mjs stopping its children) runs no exit hook, and the
// loops below may not yield to the IPC channel's 'disconnect': they look for a new parent instead.
const parent = process.ppid;
let lookedAt = 0;
function exitIfOrphaned(t) {
  if (t - lookedAt < 200) return;
  lookedAt = t;
  if (process.ppid !== parent) process.exit(0);
}
process.on('disconnect', () => process.exit(0));

function feedsFor(batch) {
  return { [model.input]: new ort.Tensor('float32', tileSample(sample, batch), [batch, ...model.sampleShape]) };
}

// The reference output (batch 1) that served answers are checked against.
if (args.referenceFile) {
  const out = await session.run(feedsFor(1));
  const first = out[session.outputNames[0]];
  await writeFile(args.referenceFile, JSON.stringify({ name: session.outputNames[0], shape: first.dims, data: Array.from(first.data) }));
}

let feeds = null;
let feedsBatch = 0;
const feedsAt = (batch) => {
  if (feedsBatch !== batch) {
    feeds = feedsFor(batch);
    feedsBatch = batch;
  }
  return feeds;
};

async function warm({ batch, untilMs }) {
  const f = feedsAt(batch);
  let lastRunMs = 0;
  // at least two runs: ORT plans and allocates for a new shape on its first one
  for (let i = 0; i < 2 || now() < untilMs; i++) {
    const t0 = now();
    exitIfOrphaned(t0);
    await session.run(f);
    lastRunMs = now() - t0;
  }
  return { type: 'warmed', lastRunMs };
}

async function measure({ batch, startMs, endMs }) {
  const f = feedsAt(batch);
  const latencies = [];
  let completions = 0;
  let cpu0 = null;
  let cpuFrom = 0;
  // Runs go on back to back from the message to the first completion after the window: every
  // session keeps the cores as busy at the window's edges as inside it. A run counts when it
  // completes inside the window (the one running across the start counts, the one across the end
  // does not: on average the two cancel); latencies are those of runs wholly inside it.
  for (;;) {
    const t0 = now();
    exitIfOrphaned(t0);
    if (cpu0 === null && t0 >= startMs) {
      cpu0 = process.cpuUsage();
      cpuFrom = t0;
    }
    await session.run(f);
    const t1 = now();
    if (t1 > endMs) break;
    if (t1 >= startMs) {
      completions++;
      if (t0 >= startMs) latencies.push(t1 - t0);
    }
  }
  const cpu = cpu0 === null ? null : process.cpuUsage(cpu0);
  const spanMs = now() - cpuFrom;
  return { type: 'measured', batch, completions, latencies, cpuPct: cpu === null || spanMs <= 0 ? null : ((cpu.user + cpu.system) / 1000 / spanMs) * 100 };
}

process.on('message', (m) => {
  const reply = (answer) => process.send(answer);
  const fail = (err) => process.send({ type: 'error', error: String(err?.stack ?? err) });
  if (m.type === 'warm') warm(m).then(reply, fail);
  else if (m.type === 'measure') measure(m).then(reply, fail);
  else if (m.type === 'exit') {
    process.removeAllListeners('disconnect');
    session.release().finally(() => process.disconnect());
  }
});
process.send({ type: 'ready', pid: process.pid, onnxruntime: ort.env.versions?.common ?? null });
