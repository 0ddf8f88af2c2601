import type { InferenceBatch, InferenceRequest, ModelInstance, ModelMetadata, ProbeResult, Replica, RequestResult, ServingEvents, Tensor } from '@tessera/core';
import { ReplicaPool, TesseraError, decodeBinaryInferResponse, encodeBinaryInferRequest, isTesseraError } from '@tessera/core';
import type { Logger } from 'pino';
import type { RemoteModelConfig } from './config.js';
import { modelPath } from './config.js';
import type { UpstreamMetadata } from './metadata.js';
import { metadataDifference, parseMetadata } from './metadata.js';
import { upstreamFailure, upstreamStatusError } from './upstream-errors.js';

interface InstanceOptions {
  model: string;
  config: RemoteModelConfig;
  logger: Logger;
  events: ServingEvents;
}

/** An upstream's answer, read whole. */
interface UpstreamAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
}

/**
 * One `backend: remote` model version: a pool of OIP v2 upstreams behind one `execute`. Each
 * request of a batch is forwarded on its own (binary or JSON), to the pool's pick; an upstream
 * that fails (no answer, timeout, 5xx) is reported to the pool and the request goes to the next
 * one — always before any byte reached the client, as the whole answer is read before returning.
 */
export class RemoteModelInstance implements ModelInstance {
  /** The client's request id reaches `execute` (and the upstream) only because it is declared here. */
  readonly requestHeaders: readonly string[] = ['x-request-id'];
  readonly pool: ReplicaPool;
  readonly #opts: InstanceOptions;
  readonly #path: string;
  /** Upstreams whose metadata matched (at load or on their first good probe). */
  readonly #checked = new Set<string>();
  #metadata: ModelMetadata | undefined;
  #closed = false;

  constructor(opts: InstanceOptions) {
    this.#opts = opts;
    const { config, model } = opts;
    this.#path = modelPath(config);
    this.pool = new ReplicaPool({
      name: model,
      strategy: config.strategy,
      probe: (replica, signal) => this.#probe(replica, signal),
      probeIntervalMs: config.health.intervalMs,
      probeTimeoutMs: config.health.timeoutMs,
      ejectAfterFailures: config.health.ejectAfterFailures,
      readmitAfterSuccesses: config.health.readmitAfterSuccesses,
      logger: opts.logger,
      onHealthChange: (replica, healthy, reason) => opts.events.emit('upstream', { model, upstream: replica.url, healthy, ...(reason ? { reason } : {}) }),
    });
  }

  /** The metadata the upstreams agreed on (set by the backend before the pool starts). */
  get metadata(): ModelMetadata {
    if (!this.#metadata) throw new Error(`${this.#opts.model}: metadata read before load`);
    return this.#metadata;
  }

  /** Sets the agreed metadata and the upstreams that reported it. */
  agreed(metadata: ModelMetadata, upstreams: readonly string[]): void {
    this.#metadata = metadata;
    for (const url of upstreams) this.#checked.add(url);
  }

  /** True while any upstream is healthy. */
  async ready(): Promise<boolean> {
    return this.pool.snapshot().some((r) => r.healthy);
  }

  /** Which upstreams are down, and why. */
  get notReadyReason(): string | undefined {
    const down = this.pool.snapshot().filter((r) => !r.healthy);
    if (down.length === 0) return undefined;
    return `upstreams down: ${down.map((r) => `${r.url} (${r.state}${r.lastError ? `: ${r.lastError}` : ''})`).join(', ')}`;
  }

  /** What the config left open and was resolved, for the model configuration extension. */
  get settings(): Readonly<Record<string, unknown>> {
    const { config } = this.#opts;
    return { upstreams: config.upstreams, remoteModel: config.remoteModel, ...(config.remoteVersion ? { remoteVersion: config.remoteVersion } : {}), binary: config.binary };
  }

  /** One HTTP exchange with an upstream, read whole; rejects on no answer (connection, `timeoutMs`). */
  async request(url: string, path: string, init: { method: string; headers?: Record<string, string>; body?: Buffer; signal?: AbortSignal; timeoutMs: number }): Promise<UpstreamAnswer> {
    const timeout = AbortSignal.timeout(init.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const res = await fetch(url + path, {
        method: init.method,
        headers: { ...this.#opts.config.headers, ...init.headers },
        ...(init.body ? { body: init.body } : {}),
        signal,
      });
      return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    } catch (err) {
      throw upstreamFailure(url, err, timeout.aborted && !init.signal?.aborted);
    }
  }

  /** Reads the model's metadata (and `max_batch_size` where the upstream has the config extension) from one upstream. */
  async fetchMetadata(url: string, signal?: AbortSignal, timeoutMs = this.#opts.config.timeoutMs): Promise<UpstreamMetadata> {
    let res: UpstreamAnswer;
    try {
      res = await this.request(url, this.#path, { method: 'GET', timeoutMs, ...(signal ? { signal } : {}) });
    } catch (err) {
      return { url, unreachable: (err as Error).message };
    }
    if (res.status >= 500) return { url, unreachable: `GET ${this.#path} answered HTTP ${res.status}` };
    if (res.status !== 200) return { url, refused: `answered GET ${this.#path} with HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 300)}` };
    let config: unknown;
    try {
      const c = await this.request(url, `${this.#path}/config`, { method: 'GET', timeoutMs, ...(signal ? { signal } : {}) });
      // no configuration extension (KServe): no batching
      if (c.status === 200) config = JSON.parse(c.body.toString('utf8'));
    } catch {
      config = undefined;
    }
    try {
      return { url, metadata: parseMetadata(url, JSON.parse(res.body.toString('utf8')), config) };
    } catch (err) {
      return { url, refused: `sent model metadata that cannot be read: ${(err as Error).message}` };
    }
  }

  /** Readiness of the model (or the server) on the upstream; an upstream not yet checked must also report the agreed metadata. */
  async #probe(replica: Replica, signal: AbortSignal): Promise<ProbeResult> {
    const { config } = this.#opts;
    const path = config.health.check === 'model' ? `${this.#path}/ready` : '/v2/health/ready';
    const res = await this.request(replica.url, path, { method: 'GET', signal, timeoutMs: config.health.timeoutMs });
    if (res.status !== 200) return { healthy: false, reason: `${path} answered ${res.status}` };
    if (!this.#checked.has(replica.url) && this.#metadata) {
      const answer = await this.fetchMetadata(replica.url, signal, config.health.timeoutMs);
      if (!('metadata' in answer)) return { healthy: false, reason: 'unreachable' in answer ? answer.unreachable : answer.refused };
      const diff = metadataDifference(this.#metadata, answer.metadata);
      if (diff) return { healthy: false, reason: `its model differs from the other upstreams': ${diff}` };
      this.#checked.add(replica.url);
    }
    return { healthy: true };
  }

  /**
   * Nothing to warm here: the upstreams warm their own models, and the first probe round already
   * reached them. (Without it the core would send zeros shaped from the metadata, dynamic dims as 1,
   * which a real upstream model may refuse.)
   */
  async warmup(): Promise<void> {}

  async execute(batch: InferenceBatch, signal: AbortSignal): Promise<RequestResult[]> {
    // no batching across requests: each goes to an upstream on its own (possibly different ones)
    return Promise.all(batch.requests.map((r) => this.#forward(r, signal).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))));
  }

  /** The request body for the upstream: binary (JSON header + tensor bytes) or plain JSON. */
  #encode(req: InferenceRequest): { body: Buffer; headers: Record<string, string> } {
    const { binary } = this.#opts.config;
    const outputs = req.outputs?.map((name) => ({ name, binary }));
    const encoded = encodeBinaryInferRequest(
      req.inputs.map((t) => ({ ...t, binary })),
      { ...(req.id !== undefined ? { id: req.id } : {}), ...(req.parameters ? { parameters: req.parameters } : {}), binaryOutput: binary, ...(outputs ? { outputs } : {}) },
    );
    if (binary) return { body: encoded.body, headers: encoded.headers };
    return { body: encoded.body, headers: { 'content-type': 'application/json' } };
  }

  async #forward(req: InferenceRequest, signal: AbortSignal): Promise<Tensor[]> {
    const { config, model, logger } = this.#opts;
    const { body, headers } = this.#encode(req);
    const requestId = req.headers?.['x-request-id'];
    if (requestId) headers['x-request-id'] = requestId;
    const path = `${this.#path}/infer`;
    const tried = new Set<Replica>();
    let lastError: TesseraError | undefined;
    for (let attempt = 0; attempt < config.maxAttempts; attempt++) {
      const replica = this.pool.pick({ exclude: tried });
      if (!replica) break;
      tried.add(replica);
      const release = this.pool.acquire(replica);
      try {
        const res = await this.request(replica.url, path, { method: 'POST', headers, body, signal, timeoutMs: config.timeoutMs });
        if (res.status !== 200) throw upstreamStatusError(replica.url, res.status, res.body.toString('utf8'));
        const tensors = decode(replica.url, res);
        this.pool.reportSuccess(replica);
        return tensors;
      } catch (err) {
        const e = isTesseraError(err) ? err : upstreamFailure(replica.url, err, false);
        if (signal.aborted) throw new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client went away; the upstream request was aborted');
        if (e.code === 'TESSERA_E_UPSTREAM_REJECTED') {
          // the request's fault, not the upstream's: answer the client, do not retry
          this.pool.reportSuccess(replica);
          throw e;
        }
        this.pool.reportFailure(replica, e);
        lastError = e;
        logger.warn({ upstream: replica.url, code: e.code, attempt: attempt + 1 }, `${model}: upstream failed, trying another: ${e.message}`);
      } finally {
        release();
      }
    }
    if (lastError) throw lastError;
    throw this.pool.unavailableError(`model '${model}' has no healthy upstream`);
  }

  async unload(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.close();
    for (const r of this.pool.snapshot()) this.#opts.events.emit('upstream', { model: this.#opts.model, upstream: r.url, healthy: false, removed: true });
  }
}

/** The upstream's answer (binary or JSON) back to tensors. */
function decode(url: string, res: UpstreamAnswer): Tensor[] {
  try {
    const decoded = decodeBinaryInferResponse(res.body, res.headers.get('inference-header-content-length'));
    return decoded.outputs.map(({ name, datatype, shape, data }) => ({ name, datatype, shape, data }));
  } catch (err) {
    throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', `upstream ${url} sent an inference response that cannot be read: ${(err as Error).message}`, { cause: err });
  }
}
