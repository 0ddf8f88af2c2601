import type { ModelInstance, ModelMetadata } from '../contracts/backend.js';
import type { Batcher } from '../contracts/batcher.js';
import type { ModelState } from '../contracts/events.js';
import type { RouteCandidate, Router } from '../contracts/router.js';
import type { ModelConfig } from '../config/types.js';
import type { ProcessorStep } from '../pipeline/processors.js';
import type { Signature } from '../pipeline/types.js';
import { compareVersions } from '../routing/latest-router.js';

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
  /** Generations (LLM requests) in progress; they bypass the batcher, so draining waits on them here. */
  #generations = 0;
  #generationsIdle: (() => void) | undefined;

  constructor(
    readonly model: string,
    readonly version: string,
  ) {}

  /** The version's metadata (instance 0's; all instances of a version load the same artifact). */
  get metadata(): ModelMetadata | undefined {
    return this.instances[0]?.metadata;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  /**
   * Ready and able to serve now: the lifecycle state, and every instance's own `ready()` (remote
   * backends answer false while none of their replicas is healthy).
   */
  async serving(): Promise<boolean> {
    if (!this.ready) return false;
    const answers = await Promise.all(this.instances.map((i) => (i.ready ? i.ready().catch(() => false) : Promise.resolve(true))));
    return answers.every(Boolean);
  }

  /** Counts a generation in; call the returned function once when it ends. */
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
  /** Serialises load/unload operations on this model. */
  operation: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly config: ModelConfig,
    readonly router: Router,
    /** Per version: the backend-specific options (model keys + version overrides), validated. */
    readonly backendOptions: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  ) {
    const labels = Object.keys(config.versions).sort(compareVersions);
    for (const v of labels) this.versions.set(v, new ModelVersion(name, v));
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
