import type { Logger } from 'pino';
import type { GenerateRequest, InferenceRequest } from '../contracts/backend.js';
import type { RequestEvent, ServingEvents, TensorTimings } from '../contracts/events.js';
import type { HookRequest, InferHookContext } from '../contracts/hook.js';
import type { ProcessContext } from '../contracts/processor.js';
import type { RouteOutcome, RouteRequest, RouteTarget } from '../contracts/router.js';
import type { Tensor } from '../contracts/tensor.js';
import { TesseraError, errorMessage, isTesseraError } from '../errors.js';
import type { ModelEntry, ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { ATTR, traceRoute } from '../telemetry/tracing.js';
import { isDeadlineExceeded, parametersTimeout, parseGrpcTimeout, parseRequestTimeout, withinDeadline } from './deadline.js';
import { Generation, GenerationObserver, pickGenerative } from './generation.js';
import type { HookChain } from './hooks.js';
import { modelInputsFrom, runSteps } from './processors.js';
import type { ServingRequest } from './serving-request.js';
import type { ShadowWork } from './shadow.js';
import { ShadowMirror } from './shadow.js';
import { GeneratedText } from './shadow-compare.js';
import type { DecodedInferRequest, GenerateCall, Signature, TensorCall, TensorResult } from './types.js';
import type { TensorLimits } from './validate.js';
import { DEFAULT_TENSOR_LIMITS, selectOutputs, validateInferRequest } from './validate.js';

/** Headers every generation may forward (tracing, the request id), besides those the instance declares. */
const BASE_GENERATE_HEADERS = ['x-request-id', 'traceparent', 'tracestate'] as const;
const RETRY_AFTER = { 'retry-after': '1' };

export interface ServingPipelineOptions {
  registry: ModelRegistry;
  events: ServingEvents;
  hooks: HookChain;
  logger: Logger;
  /** False while the server drains: serving requests get 503. */
  admitting: () => boolean;
  /** Element limits of tensor requests (`server.limits`; default `DEFAULT_TENSOR_LIMITS`). */
  limits?: TensorLimits;
  /**
   * Throws when the request's credential may not use the model it names (`auth`): checked before
   * the model is looked up, so a refused caller learns neither whether it exists nor whether it is ready.
   */
  admitModel?: (request: ServingRequest, model: string) => void;
}

/** Which version serves a request, and why. */
interface Routed {
  entry: ModelEntry;
  v: ModelVersion;
  /** The router's choice (absent: the client named the version). */
  target: RouteTarget | undefined;
}

/**
 * The one path every serving request takes, whatever protocol it came in on. Protocol adapters
 * decode, call `infer` or `generate`, and encode; the HTTP edge calls `admit` when a request
 * arrives and `finish` when its answer was sent. In order:
 *
 *   admit     onRequest hooks (every endpoint)
 *   infer /   draining? → route (router, or the version the client named; readiness enforced) →
 *   generate  preInfer hooks → validate against the version's signature (once) → preprocess →
 *             batcher (or the generation, drain-tracked) → postprocess → select outputs
 *   finish    the `request` event → the router's outcome → shadow copies → onResponse hooks
 */
export class ServingPipeline {
  readonly #registry: ModelRegistry;
  readonly #events: ServingEvents;
  readonly #hooks: HookChain;
  readonly #logger: Logger;
  readonly #admitting: () => boolean;
  readonly #limits: TensorLimits;
  readonly #admitModel: ((request: ServingRequest, model: string) => void) | undefined;
  readonly #shadows: ShadowMirror;
  /** Per model: requests admitted at arrival (`screen`) whose bodies are still being read. */
  readonly #incoming = new WeakMap<ModelEntry, { n: number }>();
  /** Routers whose `observe` threw (logged once each). */
  readonly #faultyRouters = new Set<string>();
  #turn = 0;

  constructor(options: ServingPipelineOptions) {
    this.#registry = options.registry;
    this.#events = options.events;
    this.#hooks = options.hooks;
    this.#logger = options.logger;
    this.#admitting = options.admitting;
    this.#limits = options.limits ?? DEFAULT_TENSOR_LIMITS;
    this.#admitModel = options.admitModel;
    this.#shadows = new ShadowMirror({
      events: options.events,
      logger: options.logger,
      observe: (entry, outcome) => this.#observe(entry, outcome),
      tensor: (v, request, signal) => this.#runTensor(v, request, request.id ?? 'shadow', signal),
      validate: (v, decoded) => validateInferRequest(resolveDecoded(decoded, v.signature!), v.signature!, this.#limits),
    });
  }

  /** Whether `admit` has any work (no onRequest hook: the edge skips it). */
  get admits(): boolean {
    return this.#hooks.hasOnRequest;
  }

  /** A request arrived (any endpoint): the onRequest hooks. Rejects with the refusal to answer. */
  async admit(request: ServingRequest): Promise<void> {
    request.admitted = true;
    await this.#hooks.onRequest(hookView(request));
  }

  /**
   * At arrival, for serving endpoints, before the body is read: the deadline headers
   * (`X-Request-Timeout`, `grpc-timeout`: 400 when unreadable, 504 when already past), and, when
   * the URL names the model, 503 TESSERA_E_QUEUE_FULL when every version that could take the
   * request has a full queue, so that a refused body is never buffered. Throws the refusal.
   */
  screen(request: ServingRequest): void {
    const { headers } = request;
    const timeout = headers['x-request-timeout'];
    const grpc = headers['grpc-timeout'];
    if (timeout !== undefined) request.limitDeadline(parseRequestTimeout(timeout), 'X-Request-Timeout');
    if (grpc !== undefined) request.limitDeadline(parseGrpcTimeout(grpc), 'grpc-timeout');
    if (request.pastDeadline) throw request.deadlineError('on arrival');
    const model = request.params['model'];
    if (model !== undefined && this.#admitting()) this.#refuseWhenFull(request, model, request.params['version']);
  }

  /** A tensor request: routed, validated, pre-processed, batched, post-processed; the outputs asked for. */
  async infer(request: ServingRequest, call: TensorCall): Promise<TensorResult> {
    request.bodyRead();
    const { entry, v, target } = this.#route(request, call.model, call.version, 'tensor');
    if (entry.config.timeoutMs > 0) request.limitDeadline(entry.config.timeoutMs, `models.${entry.name}.timeout`);
    // before anything about the model is told (a hook may hide models from a caller)
    if (this.#hooks.hasPreInfer) await this.#hooks.preInfer(inferContext(request, 'tensor', entry, v));
    if (!v.batcher || !v.signature) {
      throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' does not accept tensor inference requests${v.instances[0]?.generate ? ': it is a generative model; use the OpenAI-compatible API (/v1/chat/completions)' : ''}`);
    }
    const validating = performance.now();
    const inference = validateInferRequest(resolveDecoded(call.request, v.signature), v.signature, this.#limits);
    if (request.trace) inference.trace = request.trace;
    if (v.requestHeaders.length > 0) inference.headers = pickHeaders(request, v.requestHeaders, false);
    const timeout = parametersTimeout(inference.parameters);
    if (timeout !== undefined) request.limitDeadline(timeout, 'parameters.timeout');
    // valid from here on: what follows counts for the version's statistics (success or fail)
    const timings: TensorTimings = (request.tensorTimings = { inputMs: performance.now() - validating, outputMs: 0 });
    if (request.pastDeadline) throw request.deadlineError('before its work started');
    const outputs = await this.#runTensor(v, inference, request.id, request.workSignal, request.deadline !== undefined ? request : undefined, timings);
    if (target?.shadow?.length) this.#shadowLater(request, entry, target.shadow, v.version, { tensor: call.request, primary: outputs });
    const predictions = v.post.at(-1)?.processor.predictions;
    return { model: entry.name, version: v.version, id: inference.id, outputs, ...(predictions ? { predictions } : {}) };
  }

  /** A generation: routed, counted for the drain, its first chunk awaited (a failure before it is a plain error). */
  async generate(request: ServingRequest, call: GenerateCall): Promise<Generation> {
    const { entry, v, target } = this.#route(request, call.body.model, undefined, 'generate');
    if (entry.config.timeoutMs > 0) request.limitDeadline(entry.config.timeoutMs, `models.${entry.name}.timeout`);
    if (this.#hooks.hasPreInfer) await this.#hooks.preInfer(inferContext(request, 'generate', entry, v));
    const instance = pickGenerative(v, this.#turn++);
    if (!instance) {
      throw new TesseraError('TESSERA_E_MODEL_UNSUPPORTED', `model '${entry.name}' is not a generative model: use the Open Inference Protocol (/v2/models/${entry.name}/infer)`);
    }
    if (request.pastDeadline) throw request.deadlineError('before the generation started');
    const signal = request.workSignal;
    // only requests with a deadline race it: the others keep the plain path
    const timed = request.deadline !== undefined;
    // a slot (or a place in the wait queue) before anything is asked of the backend
    const slot = v.admitGeneration(signal);
    const done = typeof slot === 'function' ? slot : await slot;
    const { body } = call;
    const stream = body.stream === true;
    const wantsUsage = body.stream_options?.include_usage === true;
    // ask for usage on every stream so that tokens are counted; the client sees it only if it asked
    const upstreamBody = stream && !wantsUsage ? { ...body, stream_options: { ...body.stream_options, include_usage: true } } : body;
    const generateRequest: GenerateRequest = { kind: call.kind, body: upstreamBody, stream, headers: pickHeaders(request, v.requestHeaders, true), ...(request.trace ? { trace: request.trace } : {}) };
    const observer = new GenerationObserver(request.started);
    const primary: ShadowWork['primary'] = target?.shadow?.length ? { text: (observer.text = new GeneratedText()), ok: false } : undefined;
    const onEnd = ({ ok }: { ok: boolean }): void => {
      if (primary) primary.ok = ok;
      done();
      observer.emit(this.#events, v, generateRequest, ok);
      request.ttftMs = observer.ttftMs(stream);
      request.tpotMs = observer.tpotMs(stream);
      if (request.span) {
        request.spanAttributes = {
          ...(observer.promptTokens !== undefined ? { [ATTR.inputTokens]: observer.promptTokens } : {}),
          ...(observer.completionTokens !== undefined ? { [ATTR.outputTokens]: observer.completionTokens } : {}),
        };
      }
    };
    let generation: Generation;
    try {
      const iterator = instance.generate!(generateRequest, signal)[Symbol.asyncIterator]();
      const first = timed ? await withinDeadline(iterator.next(), signal, () => request.deadlineError(stream ? 'before the first chunk' : 'before the response')) : await iterator.next();
      if (!stream) {
        if (first.done) throw new TesseraError('TESSERA_E_UPSTREAM_FAILED', 'the backend ended the generation without a response');
        await iterator.return?.();
      }
      const deadline = timed ? { signal, error: () => request.deadlineError('during the stream') } : undefined;
      generation = new Generation({ stream, iterator, first, observer, wantsUsage, onEnd, ...(deadline ? { deadline } : {}) });
    } catch (err) {
      onEnd({ ok: false });
      if (timed && isDeadlineExceeded(signal.reason) && !isDeadlineExceeded(err)) throw request.deadlineError('before the generation answered');
      throw err;
    }
    if (primary) this.#shadowLater(request, entry, target!.shadow!, v.version, { generate: { kind: call.kind, body }, primary });
    return generation;
  }

  /**
   * The answer was sent (or the client left): once per request. Reports the request to the
   * exporters, the outcome to the router, sends the shadow copies, runs the onResponse hooks.
   */
  finish(request: ServingRequest, status: number, durationMs: number): void {
    if (request.finished) return;
    request.finished = true;
    request.release();
    const { endpoint } = request;
    if (endpoint !== 'health' && endpoint !== 'metrics' && endpoint !== 'unknown') {
      const event: RequestEvent = {
        id: request.id,
        method: request.method,
        path: request.path,
        route: request.route ?? '',
        protocol: request.protocol,
        endpoint,
        model: request.model,
        version: request.version,
        status,
        durationMs,
      };
      if (request.code) event.code = request.code;
      if (request.tensorTimings) event.tensor = request.tensorTimings;
      this.#events.emit('request', event);
    }
    const routed = request.routed;
    if (routed && request.version !== undefined) {
      const judged = request.outcomeStatus ?? status;
      const outcome: RouteOutcome = {
        id: request.id,
        model: routed.entry.name,
        version: request.version,
        explicit: routed.target === undefined,
        shadow: false,
        kind: routed.kind,
        status: judged,
        statusClass: statusClass(judged),
        durationMs,
        at: performance.now(),
      };
      if (routed.target) outcome.target = routed.target;
      if (request.code) outcome.code = request.code;
      if (request.ttftMs !== undefined) outcome.ttftMs = request.ttftMs;
      if (request.tpotMs !== undefined) outcome.tpotMs = request.tpotMs;
      this.#observe(routed.entry, outcome);
    }
    if (request.afterAnswer) for (const start of request.afterAnswer.splice(0)) start();
    if (request.admitted && this.#hooks.hasOnResponse) {
      this.#hooks.onResponse({ ...hookView(request), protocol: request.protocol, model: request.model, version: request.version, status, code: request.code, durationMs });
    }
    if (routed) {
      routed.held?.inflight.leave();
      routed.entry.inflight.leave();
    }
  }

  /** Waits for the shadow copies in flight (shutdown). */
  drainShadows(): Promise<void> {
    return this.#shadows.drain();
  }

  /**
   * Draining check, then the version: the one the client named (404 unknown, 503 not ready), or
   * the router's choice, checked by the core (a router cannot hand out a version that is not ready).
   */
  #route(request: ServingRequest, model: string, version: string | undefined, kind: 'tensor' | 'generate'): Routed {
    if (!this.#admitting()) throw new TesseraError('TESSERA_E_SERVER_DRAINING', 'the server is shutting down; retry on another replica', { headers: RETRY_AFTER });
    this.#admitModel?.(request, model);
    const entry = this.#registry.require(model);
    request.model = entry.name;
    let v: ModelVersion;
    let target: RouteTarget | undefined;
    if (version !== undefined) {
      v = this.#registry.requireVersion(entry, version);
      const shadows = entry.router.shadowsFor ? this.#callRouter(entry, () => entry.router.shadowsFor!(routeRequest(request, entry, kind, version), entry.candidates())) : undefined;
      if (shadows?.length) target = { version: v.version, shadow: [...shadows] };
      request.routed = { entry, kind, held: v };
      if (target) request.routed.target = target;
    } else {
      target = this.#callRouter(entry, () => entry.router.select(routeRequest(request, entry, kind), entry.candidates()));
      const chosen = target ? entry.versions.get(target.version) : undefined;
      if (!chosen) {
        throw new TesseraError('TESSERA_E_ROUTER_FAILED', `model '${entry.name}': routing strategy '${entry.config.routing.strategy}' chose version '${String(target?.version)}', which the model does not have`);
      }
      v = chosen;
      request.routed = { entry, kind, target, held: v };
    }
    request.version = v.version;
    // counted until the answer: a reload retires this object (and closes its entry's router) only after it
    entry.inflight.hold();
    v.inflight.hold();
    if (request.trace) traceRoute(request.trace, entry.name, v.version, target?.shadow);
    if (!v.ready) {
      throw new TesseraError('TESSERA_E_MODEL_NOT_READY', `model '${entry.name}' version ${v.version} is not ready (${v.state}${v.reason ? `: ${v.reason}` : ''})`, { headers: RETRY_AFTER });
    }
    return { entry, v, target };
  }

  /**
   * Refuses (503 TESSERA_E_QUEUE_FULL) a request to `model` when the version it names, or every
   * ready version a router could choose, has a full batching queue. Anything else — an unknown or
   * unready model, a generative one — is left to the request's normal path, which answers it.
   */
  #refuseWhenFull(request: ServingRequest, model: string, version: string | undefined): void {
    // a caller that may not use the model learns nothing about it (same answer as the normal path)
    this.#admitModel?.(request, model);
    const entry = this.#registry.get(model);
    if (!entry) return;
    let incoming = this.#incoming.get(entry);
    if (!incoming) this.#incoming.set(entry, (incoming = { n: 0 }));
    // requests admitted before whose bodies are still coming will take queue places first
    const ahead = incoming.n;
    let full = 0;
    let open = false;
    for (const v of version !== undefined ? [entry.versions.get(version)] : entry.versions.values()) {
      if (version === undefined && !v?.ready) continue;
      if (!v?.ready || !v.batcher) return;
      if (v.batcher.saturated?.(ahead)) full++;
      else open = true;
    }
    if (full > 0 && !open) {
      throw new TesseraError('TESSERA_E_QUEUE_FULL', `model '${entry.name}'${version !== undefined ? ` version ${version}` : ''}: the batching queue is full (batching.maxQueueSize, counting the requests whose bodies are still arriving); refused before the body was read, retry later`, {
        headers: RETRY_AFTER,
      });
    }
    if (full + (open ? 1 : 0) === 0) return;
    request.countIncoming(incoming);
  }

  #callRouter<T>(entry: ModelEntry, call: () => T): T {
    try {
      return call();
    } catch (err) {
      if (isTesseraError(err)) throw err;
      throw new TesseraError('TESSERA_E_ROUTER_FAILED', `model '${entry.name}': routing strategy '${entry.config.routing.strategy}' failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  #observe(entry: ModelEntry, outcome: RouteOutcome): void {
    // a shadow copy that ended after a reload closed the router it was routed by
    if (entry.routerClosed) return;
    try {
      entry.router.observe(outcome);
    } catch (err) {
      if (this.#faultyRouters.has(entry.name)) return;
      this.#faultyRouters.add(entry.name);
      this.#logger.error({ err, model: entry.name }, `the router of '${entry.name}' threw in observe (further failures are not logged): ${errorMessage(err)}`);
    }
  }

  /**
   * Pre-processing, the batcher, post-processing and output selection for one validated request.
   * `timed` (a request with a deadline): steps are raced against it, and a result that comes
   * after it is dropped (504); the batchers answer at the deadline themselves (`Batcher.submit`).
   * `timings` (client requests; shadow copies have none) gets the pre and post phases.
   */
  async #runTensor(v: ModelVersion, request: InferenceRequest, id: string, signal: AbortSignal, timed?: ServingRequest, timings?: TensorTimings): Promise<Tensor[]> {
    const signature = v.signature!;
    const wanted = request.outputs;
    let submitted = request;
    if (v.pre.length > 0 || v.post.length > 0) {
      submitted = { ...request };
      const ctx: ProcessContext = { model: v.model, version: v.version, stage: 'pre', id, parameters: request.parameters ?? {}, signal, ...(wanted ? { outputs: wanted } : {}) };
      if (v.pre.length > 0) {
        const preStarted = performance.now();
        const pre = runSteps(v.pre, request.inputs, ctx);
        const produced = await (timed ? withinDeadline(pre, signal, () => timed.deadlineError('during pre-processing')) : pre);
        submitted.inputs = modelInputsFrom(produced, v.metadata!, v.pre.at(-1)!.name, `${v.model} v${v.version}`);
        if (timings) timings.inputMs += performance.now() - preStarted;
      }
      // post steps may need any output of the model: ask for all of them
      if (v.post.length > 0) delete submitted.outputs;
      let outputs = await (timed ? this.#submitTimed(v, submitted, signal, timed) : v.batcher!.submit(submitted, signal));
      const postStarted = performance.now();
      if (v.post.length > 0) {
        const post = runSteps(v.post, outputs, { ...ctx, stage: 'post' });
        outputs = await (timed ? withinDeadline(post, signal, () => timed.deadlineError('during post-processing')) : post);
      }
      const selected = selectOutputs(outputs, wanted, signature);
      if (timings) timings.outputMs = performance.now() - postStarted;
      return selected;
    }
    const outputs = await (timed ? this.#submitTimed(v, submitted, signal, timed) : v.batcher!.submit(submitted, signal));
    if (!timings) return selectOutputs(outputs, wanted, signature);
    const selecting = performance.now();
    const selected = selectOutputs(outputs, wanted, signature);
    timings.outputMs = performance.now() - selecting;
    return selected;
  }

  /** The batcher's answer for a request with a deadline: one that comes after it (a batcher that ignores its signal) is dropped. */
  async #submitTimed(v: ModelVersion, request: InferenceRequest, signal: AbortSignal, timed: ServingRequest): Promise<Tensor[]> {
    if (timed.pastDeadline) throw timed.deadlineError('before its execution');
    const outputs = await v.batcher!.submit(request, signal);
    if (timed.pastDeadline) throw timed.deadlineError('during its execution; the result is dropped');
    return outputs;
  }

  #shadowLater(request: ServingRequest, entry: ModelEntry, versions: readonly string[], primary: string, work: ShadowWork): void {
    (request.afterAnswer ??= []).push(() => {
      for (const version of versions) {
        if (version === primary) continue;
        const v = entry.versions.get(version);
        if (!v?.ready || !this.#admitting()) continue;
        this.#shadows.send(entry, v, work, request.id);
      }
    });
  }
}

function resolveDecoded(request: TensorCall['request'], signature: Signature): DecodedInferRequest {
  return typeof request === 'function' ? request(signature) : request;
}

function routeRequest(request: ServingRequest, entry: ModelEntry, kind: 'tensor' | 'generate', version?: string): RouteRequest {
  return { model: entry.name, ...(version !== undefined ? { version } : {}), kind, protocol: request.protocol, id: request.id, headers: request.headers };
}

function inferContext(request: ServingRequest, kind: 'tensor' | 'generate', entry: ModelEntry, v: ModelVersion): InferHookContext {
  return { ...hookView(request), protocol: request.protocol, kind, model: entry.name, version: v.version };
}

/** What hooks see of a request (a plain object: hooks may spread or keep it). */
function hookView(request: ServingRequest): HookRequest {
  const { id, method, path, route, endpoint, params, headers, ip, locals } = request;
  return { id, method, path, route, endpoint, params, headers, ip, locals, setResponseHeader: (name, value) => request.setResponseHeader(name, value) };
}

function statusClass(status: number): RouteOutcome['statusClass'] {
  if (status < 400) return 'ok';
  return status < 500 ? 'client_error' : 'server_error';
}

/**
 * The headers a backend gets: the request id (the client's or the server's), tracing headers for
 * generations, and those the instance declared.
 */
function pickHeaders(request: ServingRequest, declared: readonly string[], generate: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const names = generate ? [...BASE_GENERATE_HEADERS, ...declared] : declared;
  for (const name of names) {
    const value = request.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  if (generate && !out['x-request-id']) out['x-request-id'] = request.id;
  return out;
}
