/**
 * A stand-in for vLLM's OpenAI-compatible server, for tests and benchmarks; follows vLLM's
 * protocol as of version 0.26 (the `vllm/entrypoints/openai/{chat_completion,completion,engine,
 * models}` layout of vLLM ≥ 0.16, serving files, `api_server.py`, `vllm/v1/metrics/loggers.py`).
 *
 * What it reproduces, byte for byte where vLLM's output is deterministic:
 *
 * - `POST /v1/chat/completions` and `POST /v1/completions`, streaming (SSE `data: {json}\n\n`,
 *   `text/event-stream; charset=utf-8`, chat chunks serialized with `exclude_unset` as vLLM does,
 *   completion chunks with every field, a usage chunk with `choices: []` for
 *   `stream_options.include_usage`, `continuous_usage_stats`, `data: [DONE]`) and not (every
 *   field of vLLM's response models, nulls included);
 * - vLLM's errors: `{"error": {message, type, param, code}}` with its statuses, types and messages;
 * - `GET /v1/models`, `GET /health` (200 with an empty body, 503 when unhealthy), `GET /metrics`
 *   (`vllm:num_requests_running`/`waiting`, `vllm:kv_cache_usage_perc` or the older
 *   `vllm:gpu_cache_usage_perc`, token counters), `GET /version`, `GET /load`, `--api-key`'s 401;
 * - continuous batching: at most `maxNumSeqs` sequences run, the rest wait (and show as waiting);
 *   a client that disconnects aborts its sequences at once.
 *
 * Tokens are words of a fixed vocabulary chosen by a PRNG seeded from the prompt; prompt tokens
 * are counted as whitespace-separated words plus a per-message template overhead.
 *
 * For tests it records the requests it receives and takes faults (an unhealthy `/health`, 500s,
 * sockets reset before the headers, streams dropped mid-way), through its JS handle and through a
 * control surface under `/stand-in/` that vLLM does not have.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StandInMetrics } from './metrics.js';
import type { ErrorReply, GenerationRequest, StandInPrompt, ValidationContext } from './protocol.js';
import {
  internalServerError,
  jsonDecodeError,
  missingBodyError,
  unsupportedMediaTypeError,
  validateChatRequest,
  validateCompletionRequest,
} from './protocol.js';
import type { TokenForms } from './tokens.js';
import { STAND_IN_VOCABULARY, TOKEN_ID_BASE, TokenSequence, buildVocabulary, fakePromptTokenIds, fnv1a } from './tokens.js';

/** The vLLM version whose protocol the stand-in follows (reported by `/version` and in `system_fingerprint`). */
export const VLLM_STAND_IN_PROTOCOL_VERSION = '0.26.0';

/** Options of `startVllmStandIn`. Every one is optional. */
export interface VllmStandInOptions {
  /** The model as `vllm serve MODEL` gets it: the `root` in `/v1/models`, and the served name when `servedModelName` is not given. Default `stand-in/model`. */
  model?: string;
  /** `--served-model-name`: the names requests may use; the first is the one responses and metrics report. */
  servedModelName?: string | readonly string[];
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 (the default) picks a free one. */
  port?: number;
  /** `--max-model-len`: prompt + output tokens at most. Default 4096. */
  maxModelLen?: number;
  /** `--max-num-seqs`: sequences running at once; more wait in the queue. Default 256. */
  maxNumSeqs?: number;
  /** Prefill time before the first token, in ms. Default 0. */
  ttftMs?: number;
  /** Time between two tokens of a sequence, in ms. 0 (the default) generates as fast as the event loop and the sockets allow. */
  tokenDelayMs?: number;
  /**
   * Output tokens when a request gives no `max_tokens`/`max_completion_tokens` (as a generation
   * config's `max_new_tokens` would set). `null` = vLLM's own default, the rest of the context.
   * Default 16.
   */
  defaultMaxTokens?: number | null;
  /** Emit `vllm:gpu_cache_usage_perc` (vLLM < 0.10) instead of `vllm:kv_cache_usage_perc`. */
  legacyMetricNames?: boolean;
  /** `--api-key`: `/v1/*` requests need `Authorization: Bearer <key>` (any of them when several). */
  apiKey?: string | readonly string[];
  /** KV cache size in tokens, for `kv_cache_usage_perc` (running sequences reserve prompt + max tokens). Default `maxModelLen × maxNumSeqs / 4`. */
  kvCacheTokens?: number;
  /** `system_fingerprint` of responses; `null` omits it (`--fingerprint-mode none`). Default `vllm-<version>[-tp<n>]-<hash8>`. */
  systemFingerprint?: string | null;
  /** `--tensor-parallel-size` (only shows in the fingerprint). */
  tensorParallelSize?: number;
  /** `--enable-auto-tool-choice`: without it (and without a tool parser), requests with `tools` get vLLM's 400. */
  enableAutoToolChoice?: boolean;
  /** `--tool-call-parser`: allows `tool_choice: "required"` and named tools (no tool calls are generated). */
  toolCallParser?: string;
  /** `--enable-request-id-headers`: answer with an `X-Request-Id` header. */
  enableRequestIdHeaders?: boolean;
  /** Words to generate from (default `STAND_IN_VOCABULARY`). */
  vocabulary?: readonly string[];
  /** Requests kept for `stats().requests`. Default 50. */
  keepRequests?: number;
}

/** Faults a test can switch on; `setFaults` merges a partial object into the current ones. */
export interface VllmStandInFaults {
  /** `GET /health` answers 503 (as vLLM does when its engine is dead). */
  unhealthy: boolean;
  /** The next N generation requests get vLLM's 500 (`InternalServerError`). */
  failNext: number;
  /** The next N generation requests have their socket destroyed before any response header. */
  resetNext: number;
  /** The next N streaming responses are cut (socket destroyed, no `[DONE]`) after `dropAfterTokens` tokens. */
  dropStreams: number;
  /** Tokens sent before a dropped stream is cut (0 = right after the headers). Default 1. */
  dropAfterTokens: number;
  /** Overrides `ttftMs` while set. */
  ttftMs: number | null;
  /** Overrides `tokenDelayMs` while set. */
  tokenDelayMs: number | null;
  /** Overrides the reported KV cache usage (0..1) while set. */
  kvCacheUsage: number | null;
}

/** A request the stand-in received, as recorded for tests. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it was not JSON. */
  body: unknown;
  /** `Date.now()` when the body had arrived. */
  receivedAt: number;
}

/** Counters and recent requests of a stand-in. Generation requests are those to `/v1/chat/completions` and `/v1/completions`. */
export interface VllmStandInStats {
  /** Generation requests received. */
  received: number;
  /** Generation requests answered in full (200, stream ended with `[DONE]`). */
  completed: number;
  /** Generation requests whose client disconnected before the end; their sequences were freed at once. */
  aborted: number;
  /** Generation requests answered with an error status (validation, auth, injected 500s). */
  failed: number;
  /** Streams cut by the `dropStreams` fault. */
  dropped: number;
  /** Sockets destroyed by the `resetNext` fault. */
  reset: number;
  /** Sequences running now. */
  running: number;
  /** Sequences waiting for a slot now. */
  waiting: number;
  /** Prompt tokens prefilled, in total. */
  promptTokens: number;
  /** Tokens generated, in total. */
  generationTokens: number;
  /** The last requests (all paths except `/stand-in/*`, `/health` and `/metrics`), oldest first. */
  requests: RecordedRequest[];
  /** The last generation request, if any. */
  lastRequest: RecordedRequest | undefined;
}

/** A running stand-in. */
export interface VllmStandIn {
  /** `http://host:port` (no `/v1`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The names requests may use; the first is reported in responses. */
  readonly servedModelNames: readonly string[];
  /** Stops listening and destroys open connections (streams in flight end without `[DONE]`). */
  close(): Promise<void>;
  /** A snapshot of the counters and recorded requests. */
  stats(): VllmStandInStats;
  /** Merges faults into the current ones and returns the result. */
  setFaults(faults: Partial<VllmStandInFaults>): VllmStandInFaults;
  /** The current faults. */
  faults(): VllmStandInFaults;
  /** Clears the faults, the counters, the metrics and the recorded requests (requests in flight go on). */
  reset(): void;
}

const DEFAULT_FAULTS: VllmStandInFaults = {
  unhealthy: false,
  failNext: 0,
  resetNext: 0,
  dropStreams: 0,
  dropAfterTokens: 1,
  ttftMs: null,
  tokenDelayMs: null,
  kvCacheUsage: null,
};

const FAULT_KEYS = Object.keys(DEFAULT_FAULTS) as (keyof VllmStandInFaults)[];

/** Starts a stand-in and resolves once it listens. */
export async function startVllmStandIn(options: VllmStandInOptions = {}): Promise<VllmStandIn> {
  const standIn = new StandInServer(options);
  await standIn.listen();
  return standIn;
}

function randomHex16(): string {
  return randomBytes(8).toString('hex');
}

/** `http://host:port` for a listening address (wildcards become loopback). */
function urlFor(host: string, port: number): string {
  let h = host;
  if (h === '0.0.0.0' || h === '') h = '127.0.0.1';
  else if (h === '::') h = '::1';
  return h.includes(':') ? `http://[${h}]:${port}` : `http://${h}:${port}`;
}

type Sleeper = { timer: NodeJS.Timeout | undefined; immediate: NodeJS.Immediate | undefined; wake: (() => void) | undefined };

/** One sequence (one choice of one prompt) being generated. */
interface Sequence {
  /** Index in the response's `choices`. */
  index: number;
  prompt: StandInPrompt;
  tokens: TokenSequence;
  count: number;
  /** Output text so far (kept when stop strings or a non-streaming reply need it). */
  text: string;
  /** Characters of `text` already sent (streams hold back `max(len(stop)) - 1` characters, as vLLM does). */
  sent: number;
  finish: 'stop' | 'length' | null;
  stopReason: string | null;
  tokenIds: number[] | undefined;
  /** Completions with `echo`: the prompt still has to be sent in front of the first delta. */
  echoPending: boolean;
}

/** A sequence's finish reason, read afresh (a `#step` call may have set it). */
function finishOf(s: Sequence): Sequence['finish'] {
  return s.finish;
}

/** A generation request in flight. */
class Active {
  state: 'new' | 'waiting' | 'running' | 'done' = 'new';
  /** The response ended normally. */
  finished = false;
  /** The client went away first. */
  aborted = false;
  /** The `dropStreams` fault cut it. */
  dropped = false;
  /** `cancel()` ran (abort, drop or the server closing). */
  cancelled = false;
  readonly sleeper: Sleeper = { timer: undefined, immediate: undefined, wake: undefined };
  admit: (() => void) | undefined;
  readonly arrivedAt = performance.now();
  readonly slots: number;
  readonly reservedTokens: number;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly gen: GenerationRequest,
    maxNumSeqs: number,
  ) {
    const sequences = gen.prompts.length * gen.n;
    this.slots = Math.max(1, Math.min(maxNumSeqs, sequences));
    this.reservedTokens = gen.prompts.reduce((sum, p) => sum + (p.tokens + p.maxTokens) * gen.n, 0);
  }

  get gone(): boolean {
    return this.aborted || this.dropped || this.cancelled;
  }

  /** Waits `ms` (0: until the next turn of the event loop); `cancel()` ends the wait early. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = this.sleeper;
      s.wake = resolve;
      if (ms > 0) s.timer = setTimeout(resolve, ms);
      else s.immediate = setImmediate(resolve);
    });
  }

  /** Ends any wait at once (the request is over). */
  cancel(): void {
    this.cancelled = true;
    const s = this.sleeper;
    if (s.timer) clearTimeout(s.timer);
    if (s.immediate) clearImmediate(s.immediate);
    s.timer = undefined;
    s.immediate = undefined;
    const wake = s.wake;
    s.wake = undefined;
    wake?.();
    const admit = this.admit;
    this.admit = undefined;
    admit?.();
  }
}

/** The continuous-batching scheduler: `maxNumSeqs` slots, FIFO waiting queue. */
class Scheduler {
  running = 0;
  waiting = 0;
  reservedTokens = 0;
  readonly #queue: Active[] = [];

  constructor(readonly maxNumSeqs: number) {}

  /** Takes slots, or queues; resolves when running. `undefined` when it runs at once. */
  acquire(a: Active): Promise<void> | undefined {
    if (this.#queue.length === 0 && this.running + a.slots <= this.maxNumSeqs) {
      this.#run(a);
      return undefined;
    }
    a.state = 'waiting';
    this.waiting += a.slots;
    this.#queue.push(a);
    return new Promise((resolve) => {
      a.admit = resolve;
    });
  }

  /** Gives back a request's slots (or its place in the queue) and admits waiters. */
  release(a: Active): void {
    if (a.state === 'running') {
      this.running -= a.slots;
      this.reservedTokens -= a.reservedTokens;
    } else if (a.state === 'waiting') {
      const i = this.#queue.indexOf(a);
      if (i >= 0) this.#queue.splice(i, 1);
      this.waiting -= a.slots;
    }
    a.state = 'done';
    this.#pump();
  }

  #run(a: Active): void {
    a.state = 'running';
    this.running += a.slots;
    this.reservedTokens += a.reservedTokens;
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.running + this.#queue[0]!.slots <= this.maxNumSeqs) {
      const a = this.#queue.shift()!;
      this.waiting -= a.slots;
      this.#run(a);
      const admit = a.admit;
      a.admit = undefined;
      admit?.();
    }
  }
}

const JSON_HEADERS = { 'content-type': 'application/json', server: 'uvicorn' } as const;

function sendJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function sendError(res: ServerResponse, e: ErrorReply, extra?: Record<string, string>): void {
  sendJson(res, e.status, e.body, extra);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Resolves when the response can take more data, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The JSON of a `usage` object with vLLM's field order. */
function usageJson(prompt: number, completion: number, withDetails: boolean): string {
  return `{"prompt_tokens":${prompt},"total_tokens":${prompt + completion},"completion_tokens":${completion}${withDetails ? ',"prompt_tokens_details":null' : ''}}`;
}

/** The stand-in itself. */
class StandInServer implements VllmStandIn {
  readonly servedModelNames: readonly string[];
  readonly #model: string;
  readonly #modelJson: string;
  readonly #opts: Required<Pick<VllmStandInOptions, 'maxModelLen' | 'maxNumSeqs' | 'ttftMs' | 'tokenDelayMs' | 'legacyMetricNames' | 'kvCacheTokens' | 'keepRequests' | 'enableRequestIdHeaders'>>;
  readonly #apiKeys: readonly string[];
  readonly #fingerprint: string | null;
  readonly #fingerprintJson: string;
  readonly #validation: ValidationContext;
  readonly #vocab: TokenForms[];
  readonly #scheduler: Scheduler;
  readonly #metrics = new StandInMetrics();
  readonly #server: Server;
  readonly #active = new Set<Active>();
  readonly #requestedHost: string;
  readonly #requestedPort: number;
  #faults: VllmStandInFaults = { ...DEFAULT_FAULTS };
  #counts = { received: 0, completed: 0, aborted: 0, failed: 0, dropped: 0, reset: 0 };
  #requests: RecordedRequest[] = [];
  #lastGeneration: RecordedRequest | undefined;
  #port = 0;
  #closing: Promise<void> | undefined;
  readonly #modelCreated = Math.floor(Date.now() / 1000);

  constructor(options: VllmStandInOptions) {
    const model = options.model ?? 'stand-in/model';
    const served = options.servedModelName === undefined ? [model] : typeof options.servedModelName === 'string' ? [options.servedModelName] : [...options.servedModelName];
    if (served.length === 0) throw new Error('servedModelName: give at least one name');
    this.servedModelNames = served;
    this.#model = model;
    this.#modelJson = JSON.stringify(served[0]);
    const maxModelLen = options.maxModelLen ?? 4096;
    const maxNumSeqs = options.maxNumSeqs ?? 256;
    this.#opts = {
      maxModelLen,
      maxNumSeqs,
      ttftMs: options.ttftMs ?? 0,
      tokenDelayMs: options.tokenDelayMs ?? 0,
      legacyMetricNames: options.legacyMetricNames ?? false,
      kvCacheTokens: options.kvCacheTokens ?? Math.max(1, Math.floor((maxModelLen * maxNumSeqs) / 4)),
      keepRequests: options.keepRequests ?? 50,
      enableRequestIdHeaders: options.enableRequestIdHeaders ?? false,
    };
    this.#apiKeys = options.apiKey === undefined ? [] : typeof options.apiKey === 'string' ? [options.apiKey] : [...options.apiKey];
    const tp = options.tensorParallelSize ?? 1;
    this.#fingerprint =
      options.systemFingerprint === undefined
        ? ['vllm-' + VLLM_STAND_IN_PROTOCOL_VERSION, ...(tp > 1 ? [`tp${tp}`] : []), fnv1a(`${model}|${maxModelLen}`).toString(16).padStart(8, '0')].join('-')
        : options.systemFingerprint;
    this.#fingerprintJson = JSON.stringify(this.#fingerprint);
    this.#validation = {
      servedModelNames: served,
      maxModelLen,
      defaultMaxTokens: options.defaultMaxTokens === undefined ? 16 : options.defaultMaxTokens,
      enableAutoToolChoice: options.enableAutoToolChoice ?? false,
      toolCallParser: options.toolCallParser,
    };
    this.#vocab = buildVocabulary(options.vocabulary ?? STAND_IN_VOCABULARY);
    this.#scheduler = new Scheduler(maxNumSeqs);
    this.#requestedHost = options.host ?? '127.0.0.1';
    this.#requestedPort = options.port ?? 0;
    this.#server = createServer({ noDelay: true, keepAlive: true }, (req, res) => this.#handle(req, res));
    // uvicorn's keep-alive timeout is 5 s, as is Node's default.
    this.#server.keepAliveTimeout = 5000;
  }

  get host(): string {
    return this.#requestedHost;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return urlFor(this.#requestedHost, this.#port);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#requestedPort, this.#requestedHost, () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
      for (const a of this.#active) a.cancel();
    });
    return this.#closing;
  }

  stats(): VllmStandInStats {
    return {
      ...this.#counts,
      running: this.#scheduler.running,
      waiting: this.#scheduler.waiting,
      promptTokens: this.#metrics.promptTokens,
      generationTokens: this.#metrics.generationTokens,
      requests: [...this.#requests],
      lastRequest: this.#lastGeneration,
    };
  }

  setFaults(faults: Partial<VllmStandInFaults>): VllmStandInFaults {
    for (const key of Object.keys(faults)) {
      if (!FAULT_KEYS.includes(key as keyof VllmStandInFaults)) throw new Error(`unknown stand-in fault \`${key}\` (known: ${FAULT_KEYS.join(', ')})`);
    }
    this.#faults = { ...this.#faults, ...faults };
    return this.faults();
  }

  faults(): VllmStandInFaults {
    return { ...this.#faults };
  }

  reset(): void {
    this.#faults = { ...DEFAULT_FAULTS };
    this.#counts = { received: 0, completed: 0, aborted: 0, failed: 0, dropped: 0, reset: 0 };
    this.#requests = [];
    this.#lastGeneration = undefined;
    this.#metrics.reset();
  }

  // -------------------------------------------------------------------------------------------
  // routing

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const method = req.method ?? 'GET';

    switch (path) {
      case '/health':
        if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
        req.resume();
        res.writeHead(this.#faults.unhealthy ? 503 : 200, { server: 'uvicorn', 'content-length': 0 });
        res.end();
        return;
      case '/ping':
        if (method !== 'GET' && method !== 'POST') return this.#methodNotAllowed(res, 'GET, POST');
        req.resume();
        res.writeHead(this.#faults.unhealthy ? 503 : 200, { server: 'uvicorn', 'content-length': 0 });
        res.end();
        return;
      case '/metrics':
        if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
        req.resume();
        return this.#sendMetrics(res);
      case '/version':
        if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
        this.#record(req, path, undefined);
        req.resume();
        return sendJson(res, 200, JSON.stringify({ version: VLLM_STAND_IN_PROTOCOL_VERSION }));
      case '/load':
        if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
        req.resume();
        return sendJson(res, 200, JSON.stringify({ server_load: this.#active.size }));
      case '/stand-in/stats':
      case '/stand-in/faults':
      case '/stand-in/reset':
        this.#control(req, res, path, method).catch(() => res.destroy());
        return;
      default:
        break;
    }

    // vLLM's AuthenticationMiddleware runs before routing, for every /v1 path.
    if (path.startsWith('/v1') && this.#apiKeys.length > 0 && !this.#authorized(req)) {
      if (path === '/v1/chat/completions' || path === '/v1/completions') {
        this.#counts.received++;
        this.#counts.failed++;
      }
      req.resume();
      return sendJson(res, 401, '{"error":"Unauthorized"}');
    }

    switch (path) {
      case '/v1/models':
        if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
        this.#record(req, path, undefined);
        req.resume();
        return sendJson(res, 200, this.#modelsJson());
      case '/v1/chat/completions':
      case '/v1/completions':
        if (method !== 'POST') return this.#methodNotAllowed(res, 'POST');
        this.#generation(req, res, path === '/v1/chat/completions' ? 'chat' : 'completion').catch((err: unknown) => {
          if (!res.headersSent) sendError(res, internalServerError(String(err)));
          else res.destroy();
        });
        return;
      default:
        req.resume();
        return sendJson(res, 404, '{"detail":"Not Found"}');
    }
  }

  #methodNotAllowed(res: ServerResponse, allow: string): void {
    sendJson(res, 405, '{"detail":"Method Not Allowed"}', { allow });
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (!header) return false;
    const space = header.indexOf(' ');
    const scheme = space < 0 ? header : header.slice(0, space);
    const token = space < 0 ? '' : header.slice(space + 1);
    return scheme.toLowerCase() === 'bearer' && this.#apiKeys.includes(token);
  }

  #record(req: IncomingMessage, path: string, body: unknown): RecordedRequest {
    const entry: RecordedRequest = { method: req.method ?? 'GET', path, headers: { ...req.headers }, body, receivedAt: Date.now() };
    this.#requests.push(entry);
    if (this.#requests.length > this.#opts.keepRequests) this.#requests.splice(0, this.#requests.length - this.#opts.keepRequests);
    return entry;
  }

  #modelsJson(): string {
    return JSON.stringify({
      object: 'list',
      data: this.servedModelNames.map((id) => ({
        id,
        object: 'model',
        created: this.#modelCreated,
        owned_by: 'vllm',
        root: this.#model,
        parent: null,
        max_model_len: this.#opts.maxModelLen,
        permission: [
          {
            id: `modelperm-${randomHex16()}`,
            object: 'model_permission',
            created: this.#modelCreated,
            allow_create_engine: false,
            allow_sampling: true,
            allow_logprobs: true,
            allow_search_indices: false,
            allow_view: true,
            allow_fine_tuning: false,
            organization: '*',
            group: null,
            is_blocking: false,
          },
        ],
      })),
    });
  }

  #kvCacheUsage(): number {
    if (this.#faults.kvCacheUsage !== null) return this.#faults.kvCacheUsage;
    return Math.min(1, this.#scheduler.reservedTokens / this.#opts.kvCacheTokens);
  }

  #sendMetrics(res: ServerResponse): void {
    const text = this.#metrics.render({
      modelName: this.servedModelNames[0]!,
      running: this.#scheduler.running,
      waiting: this.#scheduler.waiting,
      kvCacheUsage: this.#kvCacheUsage(),
      legacyMetricNames: this.#opts.legacyMetricNames,
    });
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text), server: 'uvicorn' });
    res.end(text);
  }

  async #control(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
    const body = await readBody(req);
    if (path === '/stand-in/stats') {
      if (method !== 'GET') return this.#methodNotAllowed(res, 'GET');
      return sendJson(res, 200, JSON.stringify(this.stats()));
    }
    if (path === '/stand-in/reset') {
      if (method !== 'POST') return this.#methodNotAllowed(res, 'POST');
      this.reset();
      return sendJson(res, 200, JSON.stringify({ ok: true }));
    }
    if (method === 'GET') return sendJson(res, 200, JSON.stringify(this.faults()));
    if (method !== 'POST') return this.#methodNotAllowed(res, 'GET, POST');
    try {
      const parsed: unknown = body.length ? JSON.parse(body.toString('utf8')) : {};
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the body must be a JSON object of faults');
      return sendJson(res, 200, JSON.stringify(this.setFaults(parsed)));
    } catch (err) {
      return sendJson(res, 400, JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
    }
  }

  // -------------------------------------------------------------------------------------------
  // generation

  async #generation(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion'): Promise<void> {
    const raw = await readBody(req);
    const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    let body: unknown;
    let parseError: SyntaxError | undefined;
    const text = raw.toString('utf8');
    if (raw.length === 0) body = undefined;
    else {
      try {
        body = JSON.parse(text);
      } catch (err) {
        parseError = err as SyntaxError;
        body = text;
      }
    }
    this.#counts.received++;
    this.#lastGeneration = this.#record(req, path, body);

    const faults = this.#faults;
    if (faults.resetNext > 0) {
      faults.resetNext--;
      this.#counts.reset++;
      req.socket.destroy();
      return;
    }
    if (faults.failNext > 0) {
      faults.failNext--;
      return this.#fail(res, internalServerError());
    }

    const contentType = (req.headers['content-type'] ?? '').toLowerCase();
    if (contentType.split(';', 1)[0]!.trim() !== 'application/json') return this.#fail(res, unsupportedMediaTypeError());
    if (raw.length === 0) return this.#fail(res, missingBodyError());
    if (parseError) {
      const m = /position (\d+)/.exec(parseError.message);
      return this.#fail(res, jsonDecodeError(m ? Number(m[1]) : 0, 'Expecting value'));
    }

    const validated = kind === 'chat' ? validateChatRequest(body, this.#validation) : validateCompletionRequest(body, this.#validation);
    if (!validated.ok) return this.#fail(res, validated.error);
    const gen = validated.request;

    const header = req.headers['x-request-id'];
    const baseId = (typeof header === 'string' ? header : undefined) ?? gen.requestId ?? randomHex16();
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${baseId}`;
    const extraHeaders: Record<string, string> = this.#opts.enableRequestIdHeaders ? { 'x-request-id': typeof header === 'string' ? header : randomBytes(16).toString('hex') } : {};

    const a = new Active(req, res, gen, this.#opts.maxNumSeqs);
    this.#active.add(a);
    res.on('close', () => this.#onClose(a));

    if (gen.stream) {
      // Starlette sends the headers of a StreamingResponse before the first chunk is ready.
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', server: 'uvicorn', ...extraHeaders });
      res.flushHeaders();
    }

    const waiting = this.#scheduler.acquire(a);
    if (waiting) await waiting;
    if (a.gone) return;
    const admittedAt = performance.now();
    this.#metrics.queueTime.observe((admittedAt - a.arrivedAt) / 1000);

    const ttft = faults.ttftMs ?? this.#opts.ttftMs;
    if (ttft > 0) await a.sleep(ttft);
    if (a.gone) return;
    this.#metrics.promptTokens += gen.kind === 'chat' ? gen.prompts[0]!.tokens : gen.prompts.reduce((s, p) => s + p.tokens, 0);

    if (gen.stream) await this.#stream(a, id);
    else await this.#respond(a, id, extraHeaders);
  }

  #fail(res: ServerResponse, e: ErrorReply): void {
    this.#counts.failed++;
    sendError(res, e);
  }

  #onClose(a: Active): void {
    this.#active.delete(a);
    if (a.state === 'done') return;
    if (!a.finished && !a.dropped) {
      a.aborted = true;
      this.#counts.aborted++;
      const sequences = a.gen.prompts.length * a.gen.n;
      this.#metrics.success.abort += sequences;
    }
    a.cancel();
    this.#scheduler.release(a);
  }

  /** Ends a request normally: metrics, counters, slots. */
  #finish(a: Active, sequences: Sequence[]): void {
    a.finished = true;
    this.#counts.completed++;
    const now = performance.now();
    for (const s of sequences) this.#metrics.success[s.finish ?? 'length']++;
    this.#metrics.e2e.observe((now - a.arrivedAt) / 1000);
    this.#scheduler.release(a);
    this.#active.delete(a);
  }

  #sequences(gen: GenerationRequest): Sequence[] {
    const out: Sequence[] = [];
    gen.prompts.forEach((prompt, p) => {
      for (let c = 0; c < gen.n; c++) {
        out.push({
          index: p * gen.n + c,
          prompt,
          tokens: new TokenSequence(prompt.hash, c, this.#vocab.length),
          count: 0,
          text: '',
          sent: 0,
          finish: null,
          stopReason: null,
          tokenIds: gen.returnTokenIds ? [] : undefined,
          echoPending: gen.kind === 'completion' && gen.echo,
        });
      }
    });
    return out;
  }

  /**
   * Generates one token of a sequence; returns its vocabulary index. Updates the text, stop
   * strings (vLLM's `check_stop_strings`: only once more than `min_tokens` tokens exist; the
   * output is cut before the stop string unless `include_stop_str_in_output`), and length.
   */
  #step(s: Sequence, gen: GenerationRequest, keepText: boolean): number {
    const v = s.tokens.next();
    s.count++;
    this.#metrics.generationTokens++;
    s.tokenIds?.push(TOKEN_ID_BASE + v);
    const forms = this.#vocab[v]!;
    const piece = s.count === 1 ? forms.first : forms.next;
    if (keepText || gen.stop.length > 0) s.text += piece;
    if (gen.stop.length > 0 && s.count > gen.minTokens) {
      for (const stop of gen.stop) {
        const from = Math.max(0, s.text.length - piece.length - stop.length + 1);
        const at = s.text.indexOf(stop, from);
        if (at < 0) continue;
        s.finish = 'stop';
        s.stopReason = stop;
        const end = gen.includeStopStrInOutput ? at + stop.length : at;
        if (end < s.text.length) s.text = s.text.slice(0, end);
        return v;
      }
    }
    if (s.count >= s.prompt.maxTokens) s.finish = 'length';
    return v;
  }

  async #respond(a: Active, id: string, extraHeaders: Record<string, string>): Promise<void> {
    const gen = a.gen;
    const seqs = this.#sequences(gen);
    const delay = this.#faults.tokenDelayMs ?? this.#opts.tokenDelayMs;
    let first = true;
    for (;;) {
      let open = false;
      for (const s of seqs) {
        if (s.finish) continue;
        this.#step(s, gen, true);
        if (!finishOf(s)) open = true;
      }
      if (first) {
        first = false;
        this.#metrics.ttft.observe((performance.now() - a.arrivedAt) / 1000);
      }
      if (!open) break;
      if (delay > 0) {
        await a.sleep(delay);
        if (a.gone) return;
      }
    }
    if (a.gone) return;
    const created = Math.floor(Date.now() / 1000);
    const completionTokens = seqs.reduce((sum, s) => sum + s.count, 0);
    const promptTokens = gen.kind === 'chat' ? gen.prompts[0]!.tokens : gen.prompts.reduce((sum, p) => sum + p.tokens, 0);
    const usage = { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens, prompt_tokens_details: null };
    let body: string;
    if (gen.kind === 'chat') {
      const prompt = gen.prompts[0]!;
      body = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: this.servedModelNames[0],
        choices: seqs.map((s) => ({
          index: s.index,
          message: { role: gen.role, content: s.text, refusal: null, annotations: null, audio: null, function_call: null, tool_calls: [], reasoning: null },
          logprobs: null,
          finish_reason: s.finish,
          stop_reason: s.stopReason,
          token_ids: s.tokenIds ?? null,
          routed_experts: null,
        })),
        service_tier: null,
        system_fingerprint: this.#fingerprint,
        usage,
        prompt_logprobs: null,
        prompt_token_ids: gen.returnTokenIds ? fakePromptTokenIds(prompt.hash, prompt.tokens) : null,
        prompt_text: null,
        kv_transfer_params: null,
      });
    } else {
      body = JSON.stringify({
        id,
        object: 'text_completion',
        created,
        model: this.servedModelNames[0],
        choices: seqs.map((s) => ({
          index: s.index,
          text: s.echoPending ? s.prompt.text + s.text : s.text,
          logprobs: null,
          finish_reason: s.finish,
          stop_reason: s.stopReason,
          token_ids: s.tokenIds ?? null,
          prompt_logprobs: null,
          prompt_token_ids: gen.returnTokenIds ? (s.prompt.tokenIds ?? fakePromptTokenIds(s.prompt.hash, s.prompt.tokens)) : null,
        })),
        service_tier: null,
        system_fingerprint: this.#fingerprint,
        usage,
        kv_transfer_params: null,
      });
    }
    this.#finish(a, seqs);
    sendJson(a.res, 200, body, extraHeaders);
  }

  async #stream(a: Active, id: string): Promise<void> {
    const gen = a.gen;
    const res = a.res;
    const seqs = this.#sequences(gen);
    const chat = gen.kind === 'chat';
    const created = Math.floor(Date.now() / 1000);
    const head = chat
      ? `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${this.#modelJson},"choices":[{"index":`
      : `data: {"id":${JSON.stringify(id)},"object":"text_completion","created":${created},"model":${this.#modelJson},"choices":[{"index":`;
    const holdBack = gen.stop.length > 0 && !gen.includeStopStrInOutput ? Math.max(...gen.stop.map((s) => s.length)) - 1 : 0;
    const useText = gen.stop.length > 0;
    const promptTokensOf = (s: Sequence): number => s.prompt.tokens;
    const totalPromptTokens = chat ? gen.prompts[0]!.tokens : gen.prompts.reduce((sum, p) => sum + p.tokens, 0);

    let drop = -1;
    if (this.#faults.dropStreams > 0) {
      this.#faults.dropStreams--;
      drop = Math.max(0, this.#faults.dropAfterTokens);
    }
    let tokensSent = 0;
    /** The `dropStreams` fault: cut the connection once what was written has left. */
    const cut = (data: string): void => {
      a.dropped = true;
      this.#counts.dropped++;
      res.write(data, () => res.destroy());
    };
    if (drop === 0) return cut('');

    let firstStep = true;
    for (;;) {
      let open = false;
      let out = '';
      for (const s of seqs) {
        if (s.finish) continue;
        if (firstStep && chat) {
          // The role chunk, sent with the first output of each choice.
          const usage = gen.continuousUsage ? `,"usage":${usageJson(promptTokensOf(s), 0, false)}` : '';
          const promptIds = gen.returnTokenIds ? JSON.stringify(fakePromptTokenIds(s.prompt.hash, s.prompt.tokens)) : 'null';
          out += `${head}${s.index},"delta":{"role":${JSON.stringify(gen.role)},"content":""},"logprobs":null,"finish_reason":null}]${usage},"prompt_token_ids":${promptIds},"prompt_text":null}\n\n`;
        }
        const v = this.#step(s, gen, false);
        let deltaJson: string;
        if (useText) {
          const end = finishOf(s) ? s.text.length : Math.max(s.sent, s.text.length - holdBack);
          deltaJson = JSON.stringify((s.echoPending ? s.prompt.text : '') + s.text.slice(s.sent, end));
          s.sent = end;
        } else {
          const forms = this.#vocab[v]!;
          deltaJson = s.echoPending ? JSON.stringify(s.prompt.text + (s.count === 1 ? forms.first : forms.next)) : s.count === 1 ? forms.firstJson : forms.nextJson;
        }
        const echoIds = s.echoPending && gen.returnTokenIds ? JSON.stringify(s.prompt.tokenIds ?? fakePromptTokenIds(s.prompt.hash, s.prompt.tokens)) : 'null';
        s.echoPending = false;
        const tokenIds = gen.returnTokenIds ? `[${TOKEN_ID_BASE + v}]` : 'null';
        const fin = finishOf(s);
        const finish = fin ? `"${fin}"` : 'null';
        if (chat) {
          const usage = gen.continuousUsage ? `,"usage":${usageJson(promptTokensOf(s), s.count, false)}` : '';
          if (fin) {
            const fp = !gen.includeUsage && this.#fingerprint !== null ? `,"system_fingerprint":${this.#fingerprintJson}` : '';
            out += `${head}${s.index},"delta":{"content":${deltaJson}},"logprobs":null,"finish_reason":${finish},"stop_reason":${s.stopReason === null ? 'null' : JSON.stringify(s.stopReason)},"token_ids":${tokenIds}}]${usage}${fp}}\n\n`;
          } else {
            out += `${head}${s.index},"delta":{"content":${deltaJson}},"logprobs":null,"finish_reason":null,"token_ids":${tokenIds}}]${usage}}\n\n`;
          }
        } else {
          const usage = gen.continuousUsage ? usageJson(promptTokensOf(s), s.count, true) : 'null';
          const stopReason = s.stopReason === null ? 'null' : JSON.stringify(s.stopReason);
          out += `${head}${s.index},"text":${deltaJson},"logprobs":null,"finish_reason":${finish},"stop_reason":${stopReason},"prompt_token_ids":${echoIds},"token_ids":${tokenIds}}],"usage":${usage}}\n\n`;
        }
        if (!fin) open = true;
      }
      if (firstStep) {
        firstStep = false;
        this.#metrics.ttft.observe((performance.now() - a.arrivedAt) / 1000);
      }
      if (!open) {
        if (gen.includeUsage) {
          const completion = seqs.reduce((sum, s) => sum + s.count, 0);
          const fp = this.#fingerprint !== null && chat ? `,"system_fingerprint":${this.#fingerprintJson}` : '';
          out += `${head.slice(0, head.length - '{"index":'.length)}],"usage":${usageJson(totalPromptTokens, completion, false)}${fp}}\n\n`;
        }
        out += 'data: [DONE]\n\n';
        this.#finish(a, seqs);
        res.end(out);
        return;
      }
      tokensSent++;
      if (drop >= 0 && tokensSent >= drop) return cut(out);
      const writable = res.write(out);
      if (!writable) {
        await drained(res);
        if (a.gone) return;
      }
      const delay = this.#faults.tokenDelayMs ?? this.#opts.tokenDelayMs;
      await a.sleep(delay);
      if (a.gone) return;
    }
  }
}
