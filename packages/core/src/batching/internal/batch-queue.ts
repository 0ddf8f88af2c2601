import type { InferenceRequest } from '../../contracts/backend.js';
import type { Tensor } from '../../contracts/tensor.js';

/** A batch being executed on an instance. */
export interface RunningBatch {
  controller: AbortController;
  /** Requests in it. */
  size: number;
  /** Requests whose client went away; at `size` the execution is aborted. */
  aborted: number;
  samples: number;
  /**
   * When it started executing: its dispatch, or — handed to an instance that was still running the
   * batch before it (`ModelInstance.acceptsNextBatch`) — a prediction of that batch's end until
   * it ends, then its end.
   */
  startedAt: number;
}

/** One submitted request, from admission until it settles. */
export interface Entry {
  request: InferenceRequest;
  signal: AbortSignal;
  samples: number;
  /** 0-based priority level (0 = highest). */
  level: number;
  /** Arrival order, across every sub-queue. */
  seq: number;
  enqueuedAt: number;
  queue: SubQueue;
  state: 'queued' | 'running' | 'done';
  batch: RunningBatch | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: (outputs: Tensor[]) => void;
  reject: (err: unknown) => void;
  onAbort: () => void;
}

/** Requests of one shape key, one FIFO per priority level. */
export class SubQueue {
  readonly levels: Entry[][];
  size = 0;

  constructor(
    readonly key: string,
    levels: number,
  ) {
    this.levels = Array.from({ length: levels }, () => []);
  }

  head(): Entry | undefined {
    for (const level of this.levels) if (level.length > 0) return level[0];
    return undefined;
  }
}

/** The batch a sub-queue can form now. */
export interface Plan {
  entries: Entry[];
  samples: number;
  /** Full, or the next request does not fit: waiting cannot grow it. */
  full: boolean;
  /** Entries in the largest prefix whose samples are a preferred size (0: none). */
  preferred: number;
  /** When the oldest of `entries` arrived. */
  oldest: number;
}

/** How batches are bounded: `batched` false (maxBatchSize 0) means one request per batch. */
export interface BatchLimits {
  batched: boolean;
  /** Samples per batch (1 when not batched). */
  maxBatch: number;
  /** Preferred batch sizes, in samples. */
  preferred: ReadonlySet<number>;
}

/**
 * Requests with equal keys may share an execution. Inputs arrive validated, in the model's input
 * order, so the datatypes and non-batch dims of each position are the key.
 */
export function shapeKey(request: InferenceRequest, batched: boolean): string {
  if (!batched) return '';
  return request.inputs.map((t) => `${t.datatype}\u0000${t.shape.slice(1).join(',')}`).join('\u0001');
}

/**
 * The batch a sub-queue can form now: highest priority first, FIFO, until a request does not fit.
 * The head always goes, so a request is never stuck behind a limit it cannot meet.
 */
export function planBatch(queue: SubQueue, limits: BatchLimits): Plan {
  const entries: Entry[] = [];
  let samples = 0;
  let full = false;
  let preferred = 0;
  let oldest = Number.POSITIVE_INFINITY;
  outer: for (const level of queue.levels) {
    for (const e of level) {
      if (entries.length > 0 && (!limits.batched || samples + e.samples > limits.maxBatch)) {
        full = true;
        break outer;
      }
      entries.push(e);
      samples += e.samples;
      if (e.enqueuedAt < oldest) oldest = e.enqueuedAt;
      if (limits.preferred.has(samples)) preferred = entries.length;
    }
  }
  if (!limits.batched || samples >= limits.maxBatch) full = true;
  return { entries, samples, full, preferred, oldest };
}

/** The waiting requests of one model version: a sub-queue per shape key. */
export class BatchQueue {
  readonly #queues = new Map<string, SubQueue>();
  readonly #levels: number;
  #size = 0;

  constructor(levels: number) {
    this.#levels = levels;
  }

  /** Requests waiting, over every sub-queue. */
  get size(): number {
    return this.#size;
  }

  /** The sub-queue of `key`, created when there is none. */
  subQueue(key: string): SubQueue {
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = new SubQueue(key, this.#levels);
      this.#queues.set(key, queue);
    }
    return queue;
  }

  /** Appends an entry to its sub-queue (`entry.queue`) at its level. */
  add(entry: Entry): void {
    entry.queue.levels[entry.level]!.push(entry);
    entry.queue.size++;
    this.#size++;
  }

  /** Takes an entry out, if it is still queued; an emptied sub-queue goes. */
  remove(entry: Entry): void {
    const level = entry.queue.levels[entry.level]!;
    const i = level.indexOf(entry);
    if (i < 0) return;
    level.splice(i, 1);
    entry.queue.size--;
    this.#size--;
    if (entry.queue.size === 0) this.#queues.delete(entry.queue.key);
  }

  /** The sub-queues, the one whose head has the highest priority (then the oldest) first. */
  byHead(): SubQueue[] {
    const queues = [...this.#queues.values()];
    if (queues.length > 1) queues.sort(byHead);
    return queues;
  }

  /** Samples waiting at `level` or above (requests, when `batched` is false). */
  ahead(level: number, batched: boolean): number {
    let ahead = 0;
    for (const queue of this.#queues.values()) {
      for (let l = 0; l <= level; l++) for (const e of queue.levels[l]!) ahead += batched ? e.samples : 1;
    }
    return ahead;
  }
}

function byHead(x: SubQueue, y: SubQueue): number {
  const a = x.head()!;
  const b = y.head()!;
  return a.level - b.level || a.seq - b.seq;
}
