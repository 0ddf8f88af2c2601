/**
 * Every failure Tessera reports carries a stable code and an HTTP status. Codes are never reused;
 * `docs/errors.md` lists each one, and a test keeps the two equal.
 */

export interface ErrorCodeInfo {
  /** HTTP status sent when this error reaches a client. */
  status: number;
  /** One line: what happened and what to do, for the docs table (`checkErrorCodeDocs` compares codes and statuses, not this text). */
  description: string;
}

/** The catalogue of error codes. Add new codes at the end of their area; never rename one. */
export const ERROR_CODES = {
  // configuration (reported by the CLI before anything serves)
  TESSERA_E_CONFIG_NOT_FOUND: { status: 500, description: 'No config file was found (cosmiconfig searched for `tessera`), or the file given with `-c` does not exist.' },
  TESSERA_E_CONFIG_PARSE: { status: 500, description: 'The config file could not be read or parsed (YAML/JSON syntax, or a JS/TS module that throws), or a `repository` model\'s config.pbtxt or config.yaml (with file:line:col).' },
  TESSERA_E_CONFIG_INVALID: { status: 500, description: 'The config does not match the schema; the message names the path, the value and what is allowed.' },
  TESSERA_E_CONFIG_ENV: { status: 500, description: 'A `${VAR}` reference names an environment variable that is not set and has no `:-default`.' },
  // plugins
  TESSERA_E_PLUGIN_NOT_FOUND: { status: 500, description: 'A plugin named in `plugins:` (or the package that provides a backend) is not installed; install it or fix the path.' },
  TESSERA_E_PLUGIN_INVALID: { status: 500, description: 'A plugin module does not default-export a value made by `definePlugin(...)`.' },
  TESSERA_E_PLUGIN_CORE_RANGE: { status: 500, description: "A plugin's `core` range does not include this @tessera/core version; upgrade the plugin or the core." },
  TESSERA_E_PLUGIN_CONFIG: { status: 500, description: "A plugin's config section does not match the plugin's schema." },
  TESSERA_E_PLUGIN_REGISTER: { status: 500, description: "A plugin's `register` threw or bound something twice." },
  // models and backends
  TESSERA_E_BACKEND_UNKNOWN: { status: 500, description: 'A model names a backend that no loaded plugin provides.' },
  TESSERA_E_MODEL_LOAD: { status: 500, description: 'A model version failed to load (missing file, invalid model, backend error); the message gives the reason.' },
  TESSERA_E_MODEL_WARMUP: { status: 500, description: 'A model version loaded but its warm-up inference failed.' },
  TESSERA_E_MODEL_NOT_FOUND: { status: 404, description: 'The request names a model that is not configured.' },
  TESSERA_E_MODEL_VERSION_NOT_FOUND: { status: 404, description: 'The request names a version that the model does not have.' },
  TESSERA_E_MODEL_NOT_READY: { status: 503, description: 'The model (or the requested version) is not ready: loading, warming up, draining, unloaded or failed. Retry later.' },
  TESSERA_E_MODEL_UNSUPPORTED: { status: 400, description: 'The model does not support this kind of request (e.g. tensor inference on a generative model).' },
  // server state
  TESSERA_E_SERVER_DRAINING: { status: 503, description: 'The server is shutting down and admits no new requests; retry on another replica.' },
  TESSERA_E_ROUTE_NOT_FOUND: { status: 404, description: 'No endpoint matches the method and URL.' },
  TESSERA_E_SERVER_CLUSTER_PARTIAL: { status: 500, description: "The server runs several workers (`server.workers` > 1) and a management request run on every one of them (repository load or unload, a routing action) did not end alike: a status differed, or a worker failed, timed out, died or was not running; the message says which workers applied it and which did not (with each one's status or error). Retry it once every worker is ready, or put the change in the config and send SIGHUP to the primary process, so that every worker serves the same state." },
  // requests
  TESSERA_E_REQUEST_INVALID: { status: 400, description: 'The request body is malformed: not JSON, or not the shape the protocol defines; the message names the field.' },
  TESSERA_E_REQUEST_TOO_LARGE: { status: 413, description: 'The request body exceeds `server.bodyLimit`.' },
  TESSERA_E_REQUEST_MEDIA_TYPE: { status: 415, description: 'The request has a content type the endpoint does not accept (send application/json; inference also takes binary tensor data with `Inference-Header-Content-Length`).' },
  TESSERA_E_INPUT_UNKNOWN: { status: 400, description: 'The request has an input the model does not declare.' },
  TESSERA_E_INPUT_MISSING: { status: 400, description: 'The request lacks an input the model requires.' },
  TESSERA_E_INPUT_DUPLICATE: { status: 400, description: 'The request names the same input twice.' },
  TESSERA_E_INPUT_DATATYPE: { status: 400, description: "An input's datatype differs from the model's." },
  TESSERA_E_INPUT_SHAPE: { status: 400, description: "An input's shape does not fit the model's (rank, fixed dims, or a batch dim over the model's max batch size)." },
  TESSERA_E_INPUT_DATA: { status: 400, description: "An input's data does not match its shape and datatype (element count, or a value of the wrong type or out of range)." },
  TESSERA_E_OUTPUT_UNKNOWN: { status: 400, description: 'The request asks for an output the model does not declare.' },
  TESSERA_E_REQUEST_CANCELLED: { status: 499, description: 'The client went away before the answer was ready; the request was dropped.' },
  TESSERA_E_REQUEST_BINARY: {
    status: 400,
    description:
      "A binary tensor request (Triton's binary data extension) is malformed: `Inference-Header-Content-Length` is not an integer within the body, the JSON header does not parse, or the inputs' `binary_data_size` do not match the bytes after the header or their shape and datatype.",
  },
  TESSERA_E_INPUT_TOO_LARGE: { status: 413, description: 'An input tensor\'s shape has more elements than `server.limits.maxTensorElements` (or a dim larger than it), or the request\'s inputs together more than `server.limits.maxRequestElements`; refused before any tensor memory is allocated. Split the request or raise the limit.' },
  TESSERA_E_REQUEST_TOO_DEEP: { status: 400, description: 'A JSON body (or the JSON header of a binary inference request) nests arrays and objects deeper than `server.limits.maxJsonDepth`; refused before it is parsed.' },
  TESSERA_E_REQUEST_HEADERS_TOO_LARGE: { status: 431, description: 'The request line, URL and headers together exceed `server.limits.maxHeaderSize`; the connection is closed.' },
  TESSERA_E_REQUEST_TIMEOUT: { status: 408, description: 'The client did not send the whole request (head and body) within `server.limits.requestTimeout`; the connection is closed.' },
  TESSERA_E_REQUEST_URL: { status: 400, description: 'The URL cannot be read: an invalid percent-encoding (`%zz`, an encoded null byte in a path parameter).' },
  TESSERA_E_REQUEST_URL_TOO_LONG: { status: 414, description: 'A path parameter (a model name or version in the URL) is longer than 100 characters (fastify\'s `maxParamLength`).' },
  TESSERA_E_REQUEST_DEADLINE_INVALID: { status: 400, description: 'A deadline header cannot be read: `X-Request-Timeout` must be milliseconds or a duration (`250`, `1.5s`, `2m`), `grpc-timeout` up to 8 digits and a unit of H, M, S, m, u, n (`100m`, `2S`); sent once each.' },
  TESSERA_E_REQUEST_DEADLINE_EXCEEDED: { status: 504, description: "The request's deadline (the smallest of `X-Request-Timeout`, `grpc-timeout`, `parameters.timeout` and the model's `timeout`, counted from its arrival) passed after its work started (processing, execution, a generation): it was answered at the deadline and its result dropped. A deadline already past on arrival is answered at once. Retry with a longer deadline, or later." },
  // queueing
  TESSERA_E_QUEUE_FULL: { status: 503, description: "The model version's batching queue already holds `batching.maxQueueSize` requests, or a generative model already runs `generation.maxConcurrent` generations with `generation.maxQueued` waiting; retry after `Retry-After` or on another replica." },
  TESSERA_E_QUEUE_TIMEOUT: { status: 503, description: "The request waited in the batching queue (or a generation's wait queue) past its timeout before its work started: `batching.timeoutMs`, or the request's deadline (`X-Request-Timeout`, `grpc-timeout`, `parameters.timeout`, the model's `timeout`). The model is overloaded; retry after `Retry-After`." },
  TESSERA_E_QUEUE_SHED: { status: 503, description: 'The dynamic batcher predicted that the request would miss `batching.latencyBudgetMs` (time queued + expected wait + expected execution) and dropped it early; retry after `Retry-After`.' },
  // authentication (auth)
  TESSERA_E_AUTH_REQUIRED: { status: 401, description: 'The request carries no credential and the endpoint needs one (`auth`); send `Authorization: Bearer <key or token>` or `x-api-key: <key>`.' },
  TESSERA_E_AUTH_INVALID: { status: 401, description: 'The API key is not one the server knows, or the bearer JWT is invalid (signature, expiry, issuer, audience, algorithm); the message says which check failed, never the credential. Use a valid key or get a new token.' },
  TESSERA_E_AUTH_FORBIDDEN: { status: 403, description: 'The credential is valid but lacks the scope the endpoint needs (`infer`, `admin` or `metrics`), or may not use the model the request names.' },
  TESSERA_E_AUTH_UNAVAILABLE: { status: 503, description: 'The bearer JWT could not be checked because the JWKS URL (`auth.jwt.jwks`) cannot be fetched (timeout, error status, invalid JSON); retry after `Retry-After`, or check the issuer.' },
  // rate limits (server.rateLimit)
  TESSERA_E_RATE_LIMITED: { status: 429, description: 'The client (its API key or token, else its address) sent more than `server.rateLimit.max` requests in `timeWindow` (or its key\'s own `rateLimit`); retry after `Retry-After` seconds. The `RateLimit-*` headers say the limit, what remains and when the window resets.' },
  TESSERA_E_RATE_LIMIT_UNAVAILABLE: { status: 503, description: 'The shared rate-limit store (`server.rateLimit.redis`) cannot be reached and `onStoreError` is `deny`; retry after `Retry-After`, or check Redis.' },
  // execution
  TESSERA_E_INFERENCE_FAILED: { status: 500, description: 'The backend failed while executing the request; the message gives its reason.' },
  TESSERA_E_SERVER_INTERNAL: { status: 500, description: 'An unexpected fault inside Tessera. Please report it with the log line that carries the request id.' },
  TESSERA_E_INSTANCE_RESTARTING: { status: 503, description: "The worker thread running one of the model's instances died (the message says why) and is being restarted with backoff: the requests it held, and those arriving before it is back when no other instance of the version can take them, get this code; retry after `Retry-After`. `/v2/models/{m}/ready` says `restarting` while no instance can serve." },
  // upstream replicas (remote backends such as vLLM)
  TESSERA_E_UPSTREAM_UNAVAILABLE: { status: 503, description: 'No replica of the model is healthy (all ejected, starting or restarting); retry after `Retry-After`.' },
  TESSERA_E_UPSTREAM_FAILED: { status: 502, description: 'The upstream replica failed (connection refused or reset, a 5xx answer, or a malformed body) on every replica tried; the message names the replica and the cause.' },
  TESSERA_E_UPSTREAM_TIMEOUT: { status: 504, description: "The upstream replica did not answer within the backend's timeout (`connectTimeout`, `headersTimeout` or `idleTimeout` of the model)." },
  TESSERA_E_UPSTREAM_REJECTED: { status: 400, description: "The upstream engine refused the request as invalid (its 4xx answer, e.g. an unsupported parameter or a prompt over the context length); the engine's message, type and param are passed through with its status." },
  TESSERA_E_STREAM_INTERRUPTED: { status: 502, description: 'A streamed generation broke after its first bytes reached the client (the replica died or dropped the stream); the stream ends with an error event and `data: [DONE]`. Retry the request.' },
  TESSERA_E_LAUNCH_FAILED: { status: 500, description: 'A managed replica (`launch:`) could not be started or did not become healthy within `launch.startupTimeout`; the message gives the exit code and the last lines it printed.' },
  // pipeline extension points (added with the serving pipeline)
  TESSERA_E_PROCESSOR_FAILED: { status: 500, description: 'A pre- or post-processing step of the model failed, or produced tensors that do not fit the model; the message names the step. (A step refusing the input itself answers with a 4xx code.)' },
  TESSERA_E_ROUTER_FAILED: { status: 500, description: "The model's router threw something other than a TesseraError while choosing a version; the message names the strategy." },
  TESSERA_E_HOOK_FAILED: { status: 500, description: 'A request hook threw something other than a TesseraError; the message names the hook. (A hook refusing a request answers with its own code, e.g. 401 or 429.)' },
  TESSERA_E_STATE_STORE: { status: 500, description: 'The state store (`server.stateDir`) could not be read or written; the message gives the file and the cause.' },
  TESSERA_E_ROUTING_ACTION_UNKNOWN: { status: 404, description: "`POST /v1/routing/{model}/{action}` names an action the model's router does not take; the message lists the ones it does (`GET /v1/routing/{model}` shows them as `actions`)." },
  // images (the built-in `image` processor; docs/processors.md)
  TESSERA_E_IMAGE_INVALID: { status: 400, description: 'An image element cannot be decoded: empty, neither an image nor base64 (or a `data:` URL) of one, or a corrupt or truncated file; the message names the input and element.' },
  TESSERA_E_IMAGE_FORMAT: { status: 400, description: "An image element is in a format the model's `image` step does not take (GIF, TIFF, SVG, BMP, AVIF…, or one left out of its `formats`); the message names the format found and those allowed." },
  TESSERA_E_IMAGE_TOO_LARGE: { status: 400, description: "An image element is larger than the model's `image` step allows: more encoded bytes than `maxBytes`, or more pixels (width × height, read from its header before decoding) than `maxPixels`." },
  // command line
  TESSERA_E_CLI_USAGE: { status: 500, description: 'The `tessera` command line is wrong: an unknown command or option, or an option value out of range; see `tessera --help`.' },
  // tuning (`tessera tune`; docs/tuning.md)
  TESSERA_E_TUNE_BUDGET_UNMET: { status: 500, description: '`tessera tune` measured no point that answered every request with its p99 latency within `--latency-budget`; it prints the table and the closest point, and writes no overlay.' },
  TESSERA_E_TUNE_SERVER: { status: 500, description: '`tessera tune`: a server under test did not start, refused or did not apply a config reload, or exited during the sweep; the message has its last log lines.' },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code of the core's catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** A core code or one a plugin declared with `defineErrorCodes`. */
export type AnyErrorCode = ErrorCode | (string & {});

/** `OWNER_E_AREA_WHAT`: an upper-case namespace, `_E_`, an area and what went wrong. */
export const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9]*_E_[A-Z0-9]+_[A-Z0-9_]+$/;

/** Codes declared by plugins, shared by every copy of the core loaded in the process. */
const PLUGIN_CODES: Map<string, ErrorCodeInfo> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@tessera/core/plugin-error-codes')] ??= new Map()) as Map<string, ErrorCodeInfo>;

/** The catalogue entry of a core or plugin code. */
export function errorCodeInfo(code: string): ErrorCodeInfo | undefined {
  return (ERROR_CODES as Record<string, ErrorCodeInfo>)[code] ?? PLUGIN_CODES.get(code);
}

/** Makes a TesseraError of one code; its status comes from the code's declaration. */
export type ErrorFactory = (message: string, options?: { cause?: unknown; headers?: Record<string, string>; openai?: OpenAIErrorFields }) => TesseraError;

/** What `defineErrorCodes` returns: one factory per code, and the declarations (for `definePlugin({ errorCodes })` and docs tests). */
export type DeclaredErrorCodes<T extends Record<string, ErrorCodeInfo>> = { readonly [K in keyof T]: ErrorFactory } & { readonly codes: Readonly<T> };

/**
 * Declares a plugin's error codes (fastify's `createError`, one factory per code): each code
 * `OWNER_E_AREA_WHAT` (e.g. `ACME_E_QUOTA_EXCEEDED`) with its HTTP status and a one-line
 * description for the docs. Pass the result to `definePlugin({ errorCodes })`, and keep the
 * plugin's README table equal to it with `checkErrorCodeDocs` from `@tessera/core/testing`.
 *
 * ```ts
 * export const errors = defineErrorCodes({
 *   ACME_E_QUOTA_EXCEEDED: { status: 429, description: 'The key used up its daily quota; retry tomorrow.' },
 * });
 * throw errors.ACME_E_QUOTA_EXCEEDED(`key ${keyId} used its ${quota} requests`, { headers: { 'retry-after': '3600' } });
 * ```
 * Throws when a code does not follow the pattern, is a core code, or was declared before with
 * another status or description.
 */
export function defineErrorCodes<const T extends Record<string, ErrorCodeInfo>>(codes: T): DeclaredErrorCodes<T> {
  const out: Record<string, unknown> = { codes: Object.freeze({ ...codes }) };
  for (const [code, info] of Object.entries(codes)) {
    if (!ERROR_CODE_PATTERN.test(code)) throw new Error(`error code '${code}' must look like OWNER_E_AREA_WHAT (upper case, e.g. ACME_E_QUOTA_EXCEEDED)`);
    if (code in ERROR_CODES) throw new Error(`error code '${code}' is one of the core's; declare a code of your own namespace`);
    if (!Number.isInteger(info.status) || info.status < 400 || info.status > 599) throw new Error(`error code '${code}': status must be an HTTP error status (400-599), got ${info.status}`);
    const known = PLUGIN_CODES.get(code);
    if (known && (known.status !== info.status || known.description !== info.description)) {
      const what = known.status !== info.status ? `statuses (${known.status} and ${info.status})` : `descriptions ("${known.description}" and "${info.description}")`;
      throw new Error(`error code '${code}' is declared twice with different ${what}: one code, one meaning (another plugin, or two copies of this one, declares it)`);
    }
    PLUGIN_CODES.set(code, { status: info.status, description: info.description });
    out[code] = ((message, options = {}) => new TesseraError(code, message, options)) satisfies ErrorFactory;
  }
  return Object.freeze(out) as DeclaredErrorCodes<T>;
}

/** The fields of an OpenAI error object besides `message`. */
export interface OpenAIErrorFields {
  type?: string;
  param?: string | null;
  code?: string | number | null;
}

/** The one error class of the core (and of plugins). `code` is stable; `status` is the HTTP status. */
export class TesseraError extends Error {
  override readonly name = 'TesseraError';
  readonly code: AnyErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string> | undefined;
  /**
   * OpenAI error fields to send instead of the defaults derived from the status, e.g. an upstream
   * engine's own `type`/`param`/`code` when its error is passed through.
   */
  readonly openai: OpenAIErrorFields | undefined;

  /**
   * `status` overrides the catalogue's only where the status is data, not a choice: an upstream
   * engine's own 4xx passed through. Plugin codes take the status they were declared with.
   */
  constructor(code: AnyErrorCode, message: string, options: { cause?: unknown; status?: number; headers?: Record<string, string>; openai?: OpenAIErrorFields } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? errorCodeInfo(code)?.status ?? 500;
    this.headers = options.headers;
    this.openai = options.openai;
  }
}

/** Whether `err` is a TesseraError (also across duplicated copies of the core package). */
export function isTesseraError(err: unknown): err is TesseraError {
  return err instanceof TesseraError || (err instanceof Error && err.name === 'TesseraError' && typeof (err as TesseraError).code === 'string');
}

/** A short message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
