import type { GenerateChunk, GenerateRequest, ModelInstance, ModelMetadata, ServingEvents } from '@tessera/core';
import { ReplicaPool, TRACE_ATTRIBUTES, TesseraError, errorMessage, parsePrometheusText, recordError, sampleValue, spanTime, startClientSpan } from '@tessera/core';
import type { ProbeResult, Replica } from '@tessera/core';
import type { Logger } from 'pino';
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { VllmModelConfig } from './config.js';
import type { ReplicaSupervisor } from './launch/supervisor.js';
import { SseDecoder } from './sse.js';

/** vLLM's platform string in model metadata. */
export const VLLM_PLATFORM = 'vllm';

/** Queue metrics as vLLM names them; older releases used the names after the first. */
export const VLLM_METRICS = {
  running: ['vllm:num_requests_running'],
  waiting: ['vllm:num_requests_waiting'],
  kvCacheUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'],
} as const;

const PATHS: Record<GenerateRequest['kind'], string> = { chat: '/v1/chat/completions', completion: '/v1/completions' };

interface InstanceOptions {
  model: string;
  version: string;
  config: VllmModelConfig;
  logger: Logger;
  events: ServingEvents;
}

/**
 * One `backend: vllm` model version: a pool of vLLM replicas behind one `generate`. Picks a replica
 * per request (least-loaded, round-robin or prefix-affinity), retries on another replica while
 * nothing has reached the client, streams the replica's server-sent events through without
 * re-encoding them, and aborts the upstream request the moment the client goes away.
 */
export class VllmModelInstance implements ModelInstance {
  readonly metadata: ModelMetadata = { platform: VLLM_PLATFORM, inputs: [], outputs: [], maxBatchSize: 0 };
  /** The session-affinity header (`balance.sessionHeader`) reaches `generate` only because it is declared here. */
  readonly requestHeaders: readonly string[];
  readonly pool: ReplicaPool;
  readonly #opts: InstanceOptions;
  readonly #servedModel: string;
  readonly #clients = new Map<string, Pool>();
  readonly #headers: Record<string, string>;
  #supervisor: ReplicaSupervisor | undefined;
  #closed = false;

  constructor(opts: InstanceOptions) {
    this.#opts = opts;
    const { config, model } = opts;
    this.requestHeaders = [config.balance.sessionHeader.toLowerCase()];
    // the replicas serve `servedModelName`; managed ones serve what they were launched with
    this.#servedModel = config.servedModelName ?? config.launch?.servedModelName ?? config.launch?.model ?? model;
    this.#headers = { 'content-type': 'application/json', ...(config.apiKey ? { authorization: `Bearer ${config.apiKey}` } : {}) };
    this.pool = new ReplicaPool({
      name: model,
      strategy: config.balance.strategy,
      probe: (replica, signal) => this.#probe(replica, signal),
      probeIntervalMs: config.health.intervalMs,
      probeTimeoutMs: config.health.timeoutMs,
      ejectAfterFailures: config.health.ejectAfterFailures,
      readmitAfterSuccesses: config.health.readmitAfterSuccesses,
      affinity: { loadFactor: config.balance.loadFactor },
      logger: opts.logger,
      onHealthChange: (replica, healthy, reason) => opts.events.emit('upstream', { model, upstream: replica.url, healthy, ...(reason ? { reason } : {}) }),
    });
  }

  /** Adds a replica (configured, or started by the supervisor). */
  addReplica(url: string): void {
    if (this.#closed) return;
    this.pool.add(url);
  }

  /** Takes a replica out (its managed process stopped for good). */
  removeReplica(url: string): void {
    this.pool.remove(url);
    this.#opts.events.emit('upstream', { model: this.#opts.model, upstream: url, healthy: false, removed: true });
    const client = this.#clients.get(url);
    this.#clients.delete(url);
    void client?.close().catch(() => undefined);
  }

  /** A managed replica is up (started, or restarted after a crash): back into rotation. */
  replicaUp(url: string): void {
    if (this.#closed) return;
    if (!this.pool.get(url)) this.pool.add(url);
    else void this.pool.probeNow(url);
  }

  /** A managed replica's process died: out of rotation at once, until it is up again. */
  replicaDown(url: string, reason: string): void {
    if (this.#closed) return;
    this.pool.eject(url, reason);
  }

  set supervisor(s: ReplicaSupervisor | undefined) {
    this.#supervisor = s;
  }

  async ready(): Promise<boolean> {
    return this.pool.snapshot().some((r) => r.healthy);
  }

  #client(url: string): Pool {
    let client = this.#clients.get(url);
    if (!client) {
      const { config } = this.#opts;
      client = new Pool(url, {
        connections: config.connections,
        pipelining: 1,
        connectTimeout: config.connectTimeoutMs,
        headersTimeout: config.headersTimeoutMs,
        bodyTimeout: config.idleTimeoutMs,
        keepAliveTimeout: 30_000,
      });
      this.#clients.set(url, client);
    }
    return client;
  }

  /** `GET /health`, then the queue from `GET /metrics` (when enabled). */
  async #probe(replica: Replica, signal: AbortSignal): Promise<ProbeResult> {
    const client = this.#client(replica.url);
    const health = await client.request({ path: '/health', method: 'GET', signal, headers: this.#headers });
    await health.body.dump();
    if (health.statusCode !== 200) return { healthy: false, reason: `/health answered ${health.statusCode}` };
    if (!this.#opts.config.health.scrapeMetrics) return { healthy: true };
    try {
      const res = await client.request({ path: '/metrics', method: 'GET', signal, headers: this.#headers });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return { healthy: true };
      }
      const samples = parsePrometheusText(await res.body.text());
      const load: NonNullable<ProbeResult['load']> = {};
      const running = sampleValue(samples, [...VLLM_METRICS.running]);
      const waiting = sampleValue(samples, [...VLLM_METRICS.waiting]);
      const kv = sampleValue(samples, [...VLLM_METRICS.kvCacheUsage]);
      if (running !== undefined) load.running = running;
      if (waiting !== undefined) load.waiting = waiting;
      if (kv !== undefined) load.kvCacheUsage = kv;
      return { healthy: true, load };
    } catch (err) {
      if (signal.aborted) throw err;
      // a replica whose metrics cannot be read still serves
      return { healthy: true };
    }
  }

  /** The consistent-hashing key for `prefix-affinity`: the session header, or the prompt's first characters. */
  #affinityKey(req: GenerateRequest): string | undefined {
    const { balance } = this.#opts.config;
    if (balance.strategy !== 'prefix-affinity') return undefined;
    const session = req.headers[balance.sessionHeader.toLowerCase()];
    if (session) return `s:${session}`;
    const source = req.kind === 'chat' ? req.body.messages : req.body.prompt;
    const text = typeof source === 'string' ? source : JSON.stringify(source ?? '');
    return `p:${text.slice(0, balance.prefixChars)}`;
  }

  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<GenerateChunk> {
    const { config, model } = this.#opts;
    const body = JSON.stringify({ ...req.body, model: this.#servedModel });
    const headers: Record<string, string> = { ...this.#headers, accept: req.stream ? 'text/event-stream' : 'application/json' };
    for (const name of ['x-request-id', 'traceparent', 'tracestate']) {
      const value = req.headers[name];
      if (value) headers[name] = value;
    }
    const affinityKey = this.#affinityKey(req);
    const tried = new Set<Replica>();
    let lastError: TesseraError | undefined;
    for (let attempt = 0; attempt < config.maxAttempts; attempt++) {
      const replica = this.pool.pick({ ...(affinityKey !== undefined ? { affinityKey } : {}), exclude: tried });
      if (!replica) break;
      tried.add(replica);
      const release = this.pool.acquire(replica);
      let sent = false;
      const attemptHeaders = req.trace ? { ...headers } : headers;
      const span = startClientSpan(
        req.trace,
        `POST ${PATHS[req.kind]}`,
        { 'http.request.method': 'POST', 'url.full': replica.url + PATHS[req.kind], [TRACE_ATTRIBUTES.upstream]: replica.url, [TRACE_ATTRIBUTES.model]: model, 'tessera.attempt': attempt + 1 },
        attemptHeaders,
      );
      let spanError: unknown;
      try {
        let res: Dispatcher.ResponseData;
        try {
          res = await this.#client(replica.url).request({ path: PATHS[req.kind], method: 'POST', headers: attemptHeaders, body, signal });
        } catch (err) {
          if (signal.aborted) throw cancelled();
          throw upstreamFailure(replica.url, err);
        }
        span?.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode !== 200) {
          const text = await res.body.text().catch(() => '');
          const e = upstreamStatusError(replica.url, res.statusCode, text);
          if (e.code === 'TESSERA_E_UPSTREAM_REJECTED') {
            // the request's fault, not the replica's: answer the client, do not retry
            this.pool.reportSuccess(replica);
            throw e;
          }
          throw e;
        }
        if (!req.stream) {
          const text = await res.body.text();
          const data = parseJsonObject(text, replica.url);
          sent = true;
          yield { data, json: text };
          this.pool.reportSuccess(replica);
          return;
        }
        let finished = false;
        /** An event to forward, or undefined for `[DONE]` and what follows it; throws for an error event. */
        const forward = (data: string): string | undefined => {
          if (finished) return undefined; // nothing follows [DONE]; read to the end so the connection is reused
          if (data === '[DONE]') {
            finished = true;
            return undefined;
          }
          if (data.charCodeAt(0) !== 123 /* { */) throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', `replica ${replica.url} sent an event that is not a JSON object: ${data.slice(0, 200)}`);
          // an error event (current vLLM: {"error": {...}}; older: {"object": "error", ...}); chunks start with {"id"
          if (data.startsWith('{"error"') || data.startsWith('{"object"')) {
            const chunk = parseJsonObject(data, replica.url);
            if (chunk.error !== undefined || chunk.object === 'error') throw upstreamStreamError(replica.url, chunk.error ?? chunk);
          }
          return data;
        };
        try {
          // chunks are forwarded as the replica wrote them, unparsed; only errors are read. The
          // events are split here, synchronously: no async step per event between body and client
          const events = new SseDecoder();
          for await (const piece of res.body) {
            for (const data of events.push(piece as Buffer)) {
              const json = forward(data);
              if (json === undefined) continue;
              sent = true;
              yield { json };
            }
          }
          for (const data of events.end()) {
            const json = forward(data);
            if (json === undefined) continue;
            sent = true;
            yield { json };
          }
        } catch (err) {
          if (signal.aborted) throw cancelled();
          throw isTesseraErrorOf(err) ? err : upstreamFailure(replica.url, err, 'the stream broke');
        } finally {
          // a client that left (or an error): close the upstream connection so vLLM aborts the sequence
          if (!finished) res.body.destroy();
        }
        if (!finished) throw new TesseraError('TESSERA_E_STREAM_INTERRUPTED', `replica ${replica.url} ended the stream without [DONE]`);
        this.pool.reportSuccess(replica);
        return;
      } catch (err) {
        spanError = err;
        const e = err as TesseraError;
        if (e.code === 'TESSERA_E_REQUEST_CANCELLED' || e.code === 'TESSERA_E_UPSTREAM_REJECTED') throw e;
        this.pool.reportFailure(replica, e);
        if (sent) {
          throw e.code === 'TESSERA_E_STREAM_INTERRUPTED' ? e : new TesseraError('TESSERA_E_STREAM_INTERRUPTED', e.message, { cause: e, ...(e.openai ? { openai: e.openai } : {}) });
        }
        // nothing reached the client yet: try another replica
        lastError = e;
        this.#opts.logger.warn({ upstream: replica.url, code: e.code, attempt: attempt + 1 }, `${model}: replica failed before the first byte, trying another: ${e.message}`);
      } finally {
        release();
        if (span) {
          if (spanError) recordError(span, spanError);
          span.end(spanTime());
        }
      }
    }
    if (lastError) throw lastError;
    throw this.pool.unavailableError(`model '${model}' has no healthy replica`);
  }

  async unload(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.close();
    for (const r of this.pool.snapshot()) this.#opts.events.emit('upstream', { model: this.#opts.model, upstream: r.url, healthy: false, removed: true });
    await this.#supervisor?.stop();
    await Promise.all([...this.#clients.values()].map((c) => c.close().catch(() => undefined)));
    this.#clients.clear();
  }
}

function isTesseraErrorOf(err: unknown): err is TesseraError {
  return err instanceof Error && err.name === 'TesseraError';
}

function cancelled(): TesseraError {
  return new TesseraError('TESSERA_E_REQUEST_CANCELLED', 'the client went away; the upstream request was aborted');
}

function upstreamFailure(url: string, err: unknown, what = 'the request failed'): TesseraError {
  if (isTesseraErrorOf(err)) return err;
  const timeout =
    err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError;
  const cause = (err as { cause?: { code?: string } }).cause;
  const detail = cause?.code ? `${errorMessage(err)} (${cause.code})` : errorMessage(err);
  return new TesseraError(timeout ? 'TESSERA_E_UPSTREAM_TIMEOUT' : 'TESSERA_E_UPSTREAM_FAILED', `replica ${url}: ${what}: ${detail}`, { cause: err });
}

interface UpstreamErrorObject {
  message?: unknown;
  type?: unknown;
  param?: unknown;
  code?: unknown;
}

/** vLLM's error bodies: `{"error": {...}}` (current) or `{"object": "error", "message", …}` (older). */
function errorObject(text: string): UpstreamErrorObject | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; object?: unknown; message?: unknown };
    if (parsed.error && typeof parsed.error === 'object') return parsed.error;
    if (parsed.object === 'error' || typeof parsed.message === 'string') return parsed;
  } catch {
    // not JSON
  }
  return undefined;
}

function openaiFields(e: UpstreamErrorObject): { type?: string; param?: string | null; code?: string | number | null } {
  return {
    ...(typeof e.type === 'string' ? { type: e.type } : {}),
    ...(typeof e.param === 'string' || e.param === null ? { param: e.param } : {}),
    ...(typeof e.code === 'string' || typeof e.code === 'number' || e.code === null ? { code: e.code } : {}),
  };
}

function upstreamStatusError(url: string, status: number, text: string): TesseraError {
  const e = errorObject(text);
  const message = typeof e?.message === 'string' ? e.message : text.slice(0, 500) || `HTTP ${status}`;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    // auth problems between gateway and replica are the gateway's config, not the client's request
    if (status === 401 || status === 403) {
      return new TesseraError('TESSERA_E_UPSTREAM_FAILED', `replica ${url} refused the gateway's credentials (HTTP ${status}): check the model's apiKey`);
    }
    return new TesseraError('TESSERA_E_UPSTREAM_REJECTED', message, { status, ...(e ? { openai: openaiFields(e) } : {}) });
  }
  return new TesseraError('TESSERA_E_UPSTREAM_FAILED', `replica ${url} answered HTTP ${status}: ${message}`, { ...(e ? { openai: openaiFields(e) } : {}) });
}

function upstreamStreamError(url: string, error: unknown): TesseraError {
  const e = typeof error === 'object' && error ? (error as UpstreamErrorObject) : { message: String(error) };
  const message = typeof e.message === 'string' ? e.message : 'the engine reported an error';
  return new TesseraError('TESSERA_E_STREAM_INTERRUPTED', `replica ${url}: ${message}`, { openai: openaiFields(e) });
}

function parseJsonObject(text: string, url: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', `replica ${url} sent a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', `replica ${url} sent JSON that is not an object`);
  return parsed as Record<string, unknown>;
}
