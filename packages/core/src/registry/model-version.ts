import type { ModelInstance, ModelMetadata } from '../contracts/backend.js';
import type { Batcher } from '../contracts/batcher.js';
import type { ModelState } from '../contracts/events.js';
import type { RouteCandidate, Router } from '../contracts/router.js';
import type { GenerationLimits, ModelConfig } from '../config/types.js';
import type { ProcessorStep } from '../pipeline/processors.js';
import type { Signature } from '../pipeline/types.js';
import { errorMessage } from '../errors.js';
import { compareVersions } from '../routing/latest-router.js';
import type { ReleaseSlot } from './generation-gate.js';
import { GenerationGate } from './generation-gate.js';

/** `generation` when a version is made without its model's config (tests). */
const DEFAULT_GENERATION_LIMITS: GenerationLimits = { maxConcurrent: 1024, maxQueued: 64 };

/** One version of a model and where it is in its lifecycle. */
export class ModelVersion {
  state: ModelState = 'loading';
  /** Why the version failed, when `state` is `failed`. */
  reason: string | undefined;
  instances: ModelInstance[] = [];
  batcher: Batcher | undefined;
  /** The tensors it is served with (after its processors); set when it is ready, for tensor models. */
  signature: Signature | undefined;
  pre: ProcessorStep[] = [];
  post: ProcessorStep[] = [];
  /** Whether a warm-up really ran (the backend's, or the core's inference of zeros). */
  warmed = false;
  /** The request headers its instances declared (`ModelInstance.requestHeaders`). */
  requestHeaders: readonly string[] = [];
  /** The artifact as it was when the instances loaded (`statArtifact`): a reload compares it to see a replaced file. */
  artifact: string | undefined;
  /**
   * Set when the version was started on the instances of an older object of the same label (a
   * reload that changed only its processors or generation limits): resolves when that object has
   * finished its requests, so the instances are never unloaded under it.
   */
  inheritedFrom: Promise<void> | undefined;
  /** Requests routed to this object and not answered yet; a reload retires it when they are done. */
  readonly inflight = new InFlight();
  /** Generations (LLM requests) in progress; they bypass the batcher, so draining waits on them here. */
  #generations = 0;
  #generationsIdle: (() => void) | undefined;
  /** Admission of generations (`generation.maxConcurrent`, `maxQueued`). */
  readonly generations: GenerationGate;

  constructor(
    readonly model: string,
    readonly version: string,
    generation: GenerationLimits = DEFAULT_GENERATION_LIMITS,
  ) {
    this.generations = new GenerationGate(`${model} v${version}`, generation);
  }

  /** The version's metadata (instance 0's; all instances of a version load the same artifact). */
  get metadata(): ModelMetadata | undefined {
    return this.instances[0]?.metadata;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  /**
   * Ready and able to serve now: the lifecycle state, and at least one instance whose own `ready()`
   * answers true (remote backends answer false while none of their replicas is healthy; an ONNX
   * Runtime instance while its worker restarts, its requests going to the others meanwhile).
   */
  async serving(): Promise<boolean> {
    return (await this.availability()).serving;
  }

  /**
   * `serving()`, and why not when it is false: the reason the version failed, its state, or what
   * its instances say (`ModelInstance.notReadyReason`, e.g. `restarting: …`). A `ready()` that
   * throws counts as not ready.
   */
  async availability(): Promise<{ serving: boolean; reason?: string }> {
    if (!this.ready) return { serving: false, reason: this.reason ?? `${this.state}` };
    if (this.instances.length === 0) return { serving: false, reason: 'no instance is loaded' };
    // a `ready()` that throws (synchronously too) or rejects is a no, with its message as the reason
    const thrown: string[] = [];
    const ask = async (i: ModelInstance): Promise<boolean> => {
      try {
        return i.ready ? Boolean(await i.ready()) : true;
      } catch (err) {
        thrown.push(`its ready() failed: ${errorMessage(err)}`);
        return false;
      }
    };
    const answers = await Promise.all(this.instances.map(ask));
    if (answers.some(Boolean)) return { serving: true };
    const said = this.instances.map((i) => {
      try {
        return i.notReadyReason;
      } catch {
        return undefined;
      }
    });
    const reasons = [...new Set([...said, ...thrown].filter((r): r is string => typeof r === 'string' && r.length > 0))];
    return { serving: false, reason: reasons.length > 0 ? reasons.join('; ') : 'loaded, but its instances cannot serve now (e.g. no healthy upstream replica)' };
  }

  /**
   * Admits a client's generation under `generation` (a slot now, or after waiting in the queue)
   * and counts it in for the drain; call the returned function once when it ends.
   * @throws TesseraError 503 TESSERA_E_QUEUE_FULL when the version runs and queues all it may;
   *   the promise rejects with 503 TESSERA_E_QUEUE_TIMEOUT (deadline) or 499 (client gone) while waiting.
   */
  admitGeneration(signal: AbortSignal): ReleaseSlot | Promise<ReleaseSlot> {
    const slot = this.generations.acquire(signal);
    const counted = this.beginGeneration();
    if (typeof slot === 'function') {
      return () => {
        slot();
        counted();
      };
    }
    return slot.then(
      (release) => () => {
        release();
        counted();
      },
      (err: unknown) => {
        counted();
        throw err;
      },
    );
  }

  /** Counts a generation in for the drain (not against `generation`: shadow copies); call the returned function once when it ends. */
  beginGeneration(): () => void {
    this.#generations++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#generations === 0) this.#generationsIdle?.();
    };
  }

  /** Resolves when no generation is in progress. */
  generationsDrained(): Promise<void> {
    if (this.#generations === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#generationsIdle;
      this.#generationsIdle = () => {
        this.#generationsIdle = undefined;
        previous?.();
        resolve();
      };
    });
  }
}

/** A configured model: its versions, oldest first, and its router. */
export class ModelEntry {
  readonly versions = new Map<string, ModelVersion>();
  /** True after an operator unloaded the model through the repository API; readiness skips it. */
  unloaded = false;
  /** True once the registry closed `router` (a reload replaced or removed the model): outcomes are no longer reported to it. */
  routerClosed = false;
  /** Requests routed through this entry and not answered yet: its router hears their outcomes. */
  readonly inflight = new InFlight();

  constructor(
    readonly name: string,
    readonly config: ModelConfig,
    readonly router: Router,
    /** Per version: the backend-specific options (model keys + version overrides), validated. */
    readonly backendOptions: ReadonlyMap<string, Record<string, unknown>> = new Map(),
    /** Version objects carried over from the model's previous entry (a reload), by label. */
    carried: ReadonlyMap<string, ModelVersion> = new Map(),
  ) {
    const labels = Object.keys(config.versions).sort(compareVersions);
    for (const v of labels) this.versions.set(v, carried.get(v) ?? new ModelVersion(name, v, config.generation));
  }

  candidates(): RouteCandidate[] {
    const out: RouteCandidate[] = [];
    for (const v of this.versions.values()) out.push({ version: v.version, ready: v.ready });
    return out;
  }

  get ready(): boolean {
    for (const v of this.versions.values()) if (!v.ready) return false;
    return this.versions.size > 0;
  }

  /** The newest ready version (else the newest), for metadata requests that name none. */
  latest(): ModelVersion | undefined {
    let best: ModelVersion | undefined;
    for (const v of this.versions.values()) {
      if (v.ready && (!best || compareVersions(v.version, best.version) > 0)) best = v;
    }
    return best ?? [...this.versions.values()].at(-1);
  }
}

/** Requests routed to a version object or a model entry and not answered yet, and who waits for none to be left. */
export class InFlight {
  #n = 0;
  #waiters: (() => void)[] = [];

  /** A request was routed here; call `leave()` once when it is answered. */
  hold(): void {
    this.#n++;
  }

  leave(): void {
    if (this.#n > 0 && --this.#n === 0) for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves when no request held here is unanswered. */
  idle(): Promise<void> {
    if (this.#n === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
