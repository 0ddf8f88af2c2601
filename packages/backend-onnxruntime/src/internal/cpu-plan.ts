/**
 * How the ONNX Runtime backend sizes itself for the cores it may use (`availableCores()` of the
 * core: `taskset`, cpusets and the cgroup CPU quota included), when the config leaves `instances`
 * at `auto` (the default) and `sessionOptions.intraOpNumThreads` unset. packages/backend-onnxruntime/README.md (Sizing)
 * shows the measurements behind the rule (bench/sizing.mjs, 16 cores).
 *
 * 1. **Leave cores to the server.** ONNX Runtime's default pool takes one spinning thread per
 *    core; on a machine that also parses HTTP bodies, frames replies, runs the load balancer's or
 *    the client's side of loopback and decodes images (libuv's pool), the model's threads and the
 *    event loop then fight for every core: a 16-core server reached 0.41× the model's own
 *    throughput. Above 4 cores, a quarter of them (rounded up) is left to the rest of the server;
 *    on up to 4 cores nothing is: on 2 there is nothing to split, and a worker of
 *    `server.workers` (4 cores of 16 by default) served more with 4 instances than with 3.
 * 2. **Many sessions of few threads rather than one wide one.** On 16 cores the PP-OCR classifier
 *    ran 3942 samples/s as one session of ORT's default threads and 7504/s as 16 single-threaded
 *    sessions side by side; the detector 324/s and 1211/s (8 × 2). Intra-op threading pays only
 *    for operators large enough to split, and each parallel section wakes and joins its threads; a
 *    single-threaded session has no pool to wake, so it was also the fastest at batch 1 once served
 *    (p50 1.85 ms against 2.73 ms for 2 × 6). Large models have such operators, and a session's
 *    memory grows with the model: the threads per instance grow with the model file
 *    (`threadsPerInstance`).
 * 3. **Within memory.** Each session holds the weights and its arena (about twice the file), so
 *    `auto` plans no more instances than fit in a quarter of the memory the process may use.
 *
 * A rule cannot know every model: `tessera tune` measures the real one on the real machine and
 * writes the best setting into a config overlay.
 */

/**
 * Cores left to the event loop, libuv's pool and the network stack: none on up to 4 cores (a
 * worker of `server.workers` gets 4 on 16: 4 instances each served the classifier at 6,529/s
 * against 5,837/s with 3), else a quarter (rounded up).
 */
export function reservedCores(cores: number): number {
  return cores <= 4 ? 0 : Math.ceil(cores / 4);
}

/** The cores the model's threads may use, all instances together (at least 1). */
export function modelCores(cores: number): number {
  return Math.max(1, cores - reservedCores(cores));
}

const MiB = 2 ** 20;

/**
 * Intra-op threads an `auto` instance gets for a model file of `bytes`: 1 below 32 MiB (the
 * mobile and detection-sized models, whose operators are too small to split well), 2 below
 * 256 MiB (ResNet-50, BERT-base-sized), 4 above.
 */
export function threadsPerInstance(bytes: number): number {
  if (bytes < 32 * MiB) return 1;
  if (bytes < 256 * MiB) return 2;
  return 4;
}

/** What `instances: auto` and the thread division look at. */
export interface MachineShare {
  cores: number;
  /** Memory the process may use, bytes (`availableMemory()`). */
  memoryBytes: number;
  /** The model file's size, bytes (0 when unknown). */
  modelBytes: number;
}

/**
 * `instances: auto`: the model's cores in instances of `threadsPerInstance(modelBytes)` threads
 * (of `intraOpNumThreads` when set), at least 1, and no more than a quarter of the memory holds at
 * about twice the file each.
 */
export function autoInstanceCount(share: MachineShare, intraOpNumThreads?: number): number {
  const threads = intraOpNumThreads !== undefined && intraOpNumThreads > 0 ? intraOpNumThreads : threadsPerInstance(share.modelBytes);
  const byCores = Math.max(1, Math.floor(modelCores(share.cores) / threads));
  const byMemory = share.modelBytes > 0 ? Math.max(1, Math.floor(share.memoryBytes / 4 / (2 * share.modelBytes))) : byCores;
  return Math.min(byCores, byMemory);
}

/** Threads of each of `instances` instances when `intraOpNumThreads` is unset: the model's cores divided among them (at least 1 each). */
export function autoIntraOpThreads(cores: number, instances: number): number {
  return Math.max(1, Math.floor(modelCores(cores) / Math.max(1, instances)));
}

/**
 * `workerSpinMs` when unset: 1 ms from 4 cores on (the cores of this process: a worker of
 * `server.workers` counts its share), else 0. Measured on 16 cores (PP-OCR classifier, concurrency
 * 1): p50 2.61 ms with 0.5 ms of polling, 1.92 ms with 1 ms — the next request came 0.5–1 ms after
 * the answer. Until 2026-12-06 it took 5 cores, so the 4 workers of 4 cores that `server.workers:
 * auto` starts on 16 never polled: turning it on there cut the classifier's p50 at concurrency 1 from
 * 2.18 to 1.90 ms and raised its throughput at 64 connections from 4,767 to 5,714 samples/s
 * (`bench/sizing-followup.sh`). On 2 cores polling took the core the event loop needed.
 */
export function defaultWorkerSpinMs(cores: number): number {
  return cores >= 4 ? 1 : 0;
}
