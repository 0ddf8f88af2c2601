/**
 * Request validation of the vLLM stand-in, in vLLM's order and with vLLM's error shapes:
 *
 * 1. the request model (pydantic, FastAPI's `RequestValidationError`): wrong types, missing fields
 *    and the models' `mode="before"` validators → 400 with `type: "Bad Request"` (FastAPI's status
 *    phrase, not `BadRequestError`) and the pydantic error list as the message;
 * 2. the served model (`_check_model`) → 404 `NotFoundError`, `param: "model"`;
 * 3. tokenization limits (`TokenizeParams`) → 400 `BadRequestError`, `param` `max_tokens` /
 *    `max_completion_tokens` / `input_tokens`;
 * 4. sampling parameters (`SamplingParams._verify_args`) → 400 `BadRequestError`.
 *
 * Messages of `VLLMValidationError`s end with ` (parameter=…, value=…)` as its `__str__` makes
 * them. Sources: vllm/entrypoints/openai/{chat_completion,completion,engine}/protocol.py,
 * vllm/renderers/params.py, vllm/sampling_params.py, vllm/entrypoints/utils.py, api_server.py.
 */
import { completionPromptTokens, fnv1a, renderChatPrompt } from './tokens.js';

/** The JSON body of a vLLM error response: `{"error": {message, type, param, code}}`. */
export interface VllmErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

/** An error response: status and the JSON text of its body. */
export interface ErrorReply {
  status: number;
  body: string;
}

/** Builds vLLM's `ErrorResponse` (current shape, vLLM ≥ 0.10: `{"error": {...}}`). */
export function vllmError(status: number, type: string, message: string, param: string | null = null): ErrorReply {
  const body: VllmErrorBody = { error: { message, type, param, code: status } };
  return { status, body: JSON.stringify(body) };
}

/** What the engine's `Internal server error` looks like (a `GenerationError` turned into a response). */
export function internalServerError(message = 'Internal server error'): ErrorReply {
  return vllmError(500, 'InternalServerError', message);
}

/** `VLLMValidationError.__str__`: the message with ` (parameter=…, value=…)` appended. */
function validationMessage(message: string, parameter?: string, value?: unknown): string {
  const extras: string[] = [];
  if (parameter !== undefined) extras.push(`parameter=${parameter}`);
  if (value !== undefined && value !== null) extras.push(`value=${pyStr(value)}`);
  return extras.length ? `${message} (${extras.join(', ')})` : message;
}

/** A `VLLMValidationError` turned into a response by `create_error_response`. */
function validationError(message: string, parameter?: string, value?: unknown): ErrorReply {
  return vllmError(400, 'BadRequestError', validationMessage(message, parameter, value), parameter ?? null);
}

// ---------------------------------------------------------------------------------------------
// Python renderings, for messages that vLLM builds with f-strings and repr()

/** Python's `str()` of a JSON value (floats that are whole print as `2.0` only via `pyFloat`). */
function pyStr(value: unknown): string {
  if (typeof value === 'string') return value;
  return pyRepr(value);
}

/** Python's `str()` of a float: `3.0`, `0.5`, `1e-05`. */
export function pyFloat(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return `${value}.0`;
  if (value !== 0 && Math.abs(value) < 1e-4) {
    const [m, e] = value.toExponential().split('e');
    const exp = Number(e);
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(value);
}

/** Python's `repr()` of a JSON value (dicts, lists, tuples marked with `PyTuple`). */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of value) {
      if (ch === '\\') out += '\\\\';
      else if (ch === quote) out += `\\${quote}`;
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\t') out += '\\t';
      else out += ch;
    }
    return out + quote;
  }
  if (value instanceof PyTuple) return value.items.length === 1 ? `(${pyRepr(value.items[0])},)` : `(${value.items.map(pyRepr).join(', ')})`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  }
  return typeof value === 'bigint' ? value.toString() : '?';
}

/** A tuple for `pyRepr` (pydantic's `loc`). */
class PyTuple {
  constructor(readonly items: readonly unknown[]) {}
}

// ---------------------------------------------------------------------------------------------
// Pydantic-style validation of the request model

interface PydanticError {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
  /** The `VLLMValidationError.parameter` of a `value_error`, for the response's `param`. */
  parameter?: string;
}

/**
 * FastAPI's `RequestValidationError` as vLLM's handler renders it: 400, `type: "Bad Request"`,
 * message `str(exc)` + ` ` + `str(exc.errors())`. Errors are pydantic error dicts, or plain
 * strings (as `validate_json_request` raises them).
 */
function requestValidationError(errors: (PydanticError | string)[]): ErrorReply {
  const reprs = errors.map((e) =>
    typeof e === 'string' ? pyRepr(e) : pyRepr({ type: e.type, loc: new PyTuple(e.loc), msg: e.msg, input: e.input, ...(e.ctx ? { ctx: e.ctx } : {}) }),
  );
  const strs = errors.map((e, i) => (typeof e === 'string' ? e : reprs[i]!));
  const head = `${errors.length} validation error${errors.length === 1 ? '' : 's'}:\n${strs.map((r) => `  ${r}`).join('\n')}`;
  const message = `${head} [${reprs.join(', ')}]`;
  const param = errors.find((e): e is PydanticError => typeof e !== 'string' && e.parameter !== undefined)?.parameter ?? null;
  return vllmError(400, 'Bad Request', message, param);
}

/** The error of a JSON body that does not parse. */
export function jsonDecodeError(position: number, detail: string): ErrorReply {
  return requestValidationError([{ type: 'json_invalid', loc: ['body', position], msg: 'JSON decode error', input: {}, ctx: { error: detail } }]);
}

/** `validate_json_request`: a body that is not `application/json`. */
export function unsupportedMediaTypeError(): ErrorReply {
  return requestValidationError(["Unsupported Media Type: Only 'application/json' is allowed"]);
}

/** The error of a request without a body. */
export function missingBodyError(): ErrorReply {
  return requestValidationError([{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]);
}

const BOOL_TRUE = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const BOOL_FALSE = new Set(['false', 'f', 'no', 'n', 'off', '0']);
const INT_STRING = /^\s*[+-]?\d+\s*$/;
const FLOAT_STRING = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Reads the fields of one request body in pydantic's lax mode, collecting errors. */
class FieldReader {
  readonly errors: PydanticError[] = [];
  constructor(readonly body: Record<string, unknown>) {}

  #fail(name: string, type: string, msg: string, input: unknown): undefined {
    this.errors.push({ type, loc: ['body', name], msg, input });
    return undefined;
  }

  /** `int` (nullable: `int | None`); absent → `undefined`, explicit null → `null`. */
  int(name: string, nullable = true): number | null | undefined {
    if (!(name in this.body)) return undefined;
    const v = this.body[name];
    if (v === null) return nullable ? null : this.#fail(name, 'int_type', 'Input should be a valid integer', v);
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return v;
      return this.#fail(name, 'int_from_float', 'Input should be a valid integer, got a number with a fractional part', v);
    }
    if (typeof v === 'string') {
      if (INT_STRING.test(v)) return Number(v);
      return this.#fail(name, 'int_parsing', 'Input should be a valid integer, unable to parse string as an integer', v);
    }
    return this.#fail(name, 'int_type', 'Input should be a valid integer', v);
  }

  /** `float` (nullable: `float | None`). */
  float(name: string, nullable = true): number | null | undefined {
    if (!(name in this.body)) return undefined;
    const v = this.body[name];
    if (v === null) return nullable ? null : this.#fail(name, 'float_type', 'Input should be a valid number', v);
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'number') return v;
    if (typeof v === 'string') {
      if (FLOAT_STRING.test(v)) return Number(v);
      return this.#fail(name, 'float_parsing', 'Input should be a valid number, unable to parse string as a number', v);
    }
    return this.#fail(name, 'float_type', 'Input should be a valid number', v);
  }

  /** `bool` (nullable: `bool | None`). */
  bool(name: string, nullable = true): boolean | null | undefined {
    if (!(name in this.body)) return undefined;
    const v = this.body[name];
    return this.boolValue(v, ['body', name], nullable);
  }

  /** A boolean at any location. */
  boolValue(v: unknown, loc: (string | number)[], nullable = true): boolean | null | undefined {
    if (v === null) {
      if (nullable) return null;
      this.errors.push({ type: 'bool_type', loc, msg: 'Input should be a valid boolean', input: v });
      return undefined;
    }
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number' && (v === 0 || v === 1)) return v === 1;
    if (typeof v === 'string' && BOOL_TRUE.has(v.toLowerCase())) return true;
    if (typeof v === 'string' && BOOL_FALSE.has(v.toLowerCase())) return false;
    if (typeof v === 'number' || typeof v === 'string') {
      this.errors.push({ type: 'bool_parsing', loc, msg: 'Input should be a valid boolean, unable to interpret input', input: v });
    } else {
      this.errors.push({ type: 'bool_type', loc, msg: 'Input should be a valid boolean', input: v });
    }
    return undefined;
  }

  /** `str` (nullable: `str | None`). */
  str(name: string, nullable = true): string | null | undefined {
    if (!(name in this.body)) return undefined;
    const v = this.body[name];
    if (v === null && nullable) return null;
    if (typeof v === 'string') return v;
    return this.#fail(name, 'string_type', 'Input should be a valid string', v);
  }

  /** `str | list[str] | None` (`stop`). */
  strOrList(name: string): string[] | undefined {
    if (!(name in this.body)) return undefined;
    const v = this.body[name];
    if (v === null) return [];
    if (typeof v === 'string') return [v];
    if (Array.isArray(v)) {
      let ok = true;
      v.forEach((item, i) => {
        if (typeof item !== 'string') {
          ok = false;
          this.errors.push({ type: 'string_type', loc: ['body', name, 'list[str]', i], msg: 'Input should be a valid string', input: item });
        }
      });
      return ok ? (v as string[]) : undefined;
    }
    this.errors.push({ type: 'string_type', loc: ['body', name, 'str'], msg: 'Input should be a valid string', input: v });
    this.errors.push({ type: 'list_type', loc: ['body', name, 'list[str]'], msg: 'Input should be a valid list', input: v });
    return undefined;
  }

  /** `StreamOptions | None`: `{include_usage: bool | None = True, continuous_usage_stats: bool | None = False}`. */
  streamOptions(): { includeUsage: boolean; continuousUsage: boolean } | null | undefined {
    if (!('stream_options' in this.body)) return undefined;
    const v = this.body.stream_options;
    if (v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.errors.push({ type: 'model_type', loc: ['body', 'stream_options'], msg: 'Input should be a valid dictionary or instance of StreamOptions', input: v });
      return undefined;
    }
    const o = v as Record<string, unknown>;
    const includeUsage = 'include_usage' in o ? this.boolValue(o.include_usage, ['body', 'stream_options', 'include_usage']) : true;
    const continuous = 'continuous_usage_stats' in o ? this.boolValue(o.continuous_usage_stats, ['body', 'stream_options', 'continuous_usage_stats']) : false;
    return { includeUsage: includeUsage ?? false, continuousUsage: continuous ?? false };
  }
}

/** A `mode="before"` model validator failing: pydantic's `value_error` at `('body',)`. */
function beforeValidatorError(body: unknown, message: string, parameter?: string): PydanticError {
  const text = validationMessage(message, parameter);
  return {
    type: 'value_error',
    loc: ['body'],
    msg: `Value error, ${text}`,
    input: body,
    ctx: { error: { toString: () => text } },
    ...(parameter === undefined ? {} : { parameter }),
  };
}

// ---------------------------------------------------------------------------------------------
// The parsed request

/** One prompt of a generation request (a chat request has one). */
export interface StandInPrompt {
  /** The rendered prompt text (chat: the stand-in's chat template applied). */
  text: string;
  /** Its token count. */
  tokens: number;
  /** Hash seeding the generated tokens. */
  hash: number;
  /** Token ids given by the client (completions with token prompts). */
  tokenIds?: number[];
  /** Tokens this prompt may generate (after `max_tokens` and the context limit). */
  maxTokens: number;
}

/** A validated `/v1/chat/completions` or `/v1/completions` request. */
export interface GenerationRequest {
  kind: 'chat' | 'completion';
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  /** Choices per prompt (`n`). */
  n: number;
  prompts: StandInPrompt[];
  stop: string[];
  includeStopStrInOutput: boolean;
  minTokens: number;
  /** Completions: echo the prompt before the output. */
  echo: boolean;
  returnTokenIds: boolean;
  /** The body's `request_id`, if any. */
  requestId: string | undefined;
  /** The role of the reply (`assistant`, or the last message's role when `add_generation_prompt` is false). */
  role: string;
}

/** What validation needs to know about the server. */
export interface ValidationContext {
  servedModelNames: readonly string[];
  maxModelLen: number;
  /** Fallback `max_tokens` (vLLM's `default_sampling_params.max_tokens`); null = the rest of the context. */
  defaultMaxTokens: number | null;
  enableAutoToolChoice: boolean;
  toolCallParser: string | undefined;
}

type Validated = { ok: true; request: GenerationRequest } | { ok: false; error: ErrorReply };

const GREEDY_EPS = 1e-5;

/** Validates a chat completion request body. */
export function validateChatRequest(body: unknown, ctx: ValidationContext): Validated {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, error: requestValidationError([{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: body }]) };
  }
  const b = body as Record<string, unknown>;

  // mode="before" validators (ChatCompletionRequest)
  if (b.stream_options && !b.stream) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, 'Stream options can only be defined when `stream=True`.', 'stream_options')]) };
  }
  const topLogprobs = b.top_logprobs;
  if (typeof topLogprobs === 'number') {
    if (topLogprobs < 0 && topLogprobs !== -1) {
      return { ok: false, error: requestValidationError([beforeValidatorError(b, '`top_logprobs` must be a positive value or -1.', 'top_logprobs')]) };
    }
    if ((topLogprobs === -1 || topLogprobs > 0) && !b.logprobs) {
      return { ok: false, error: requestValidationError([beforeValidatorError(b, 'when using `top_logprobs`, `logprobs` must be set to true.', 'top_logprobs')]) };
    }
  }
  if (b.tool_choice !== undefined && b.tool_choice !== null && b.tool_choice !== 'none' && (b.tools === undefined || b.tools === null)) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, 'When using `tool_choice`, `tools` must be set.')]) };
  }
  if (b.continue_final_message && b.add_generation_prompt) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, 'Cannot set both `continue_final_message` and `add_generation_prompt` to True.')]) };
  }

  const r = new FieldReader(b);
  let messages: Record<string, unknown>[] | undefined;
  if (!('messages' in b)) {
    r.errors.push({ type: 'missing', loc: ['body', 'messages'], msg: 'Field required', input: b });
  } else if (!Array.isArray(b.messages)) {
    r.errors.push({ type: 'list_type', loc: ['body', 'messages'], msg: 'Input should be a valid list', input: b.messages });
  } else {
    messages = [];
    (b.messages as unknown[]).forEach((m, i) => {
      if (m === null || typeof m !== 'object' || Array.isArray(m)) {
        r.errors.push({ type: 'dict_type', loc: ['body', 'messages', i], msg: 'Input should be a valid dictionary', input: m });
      } else if (typeof (m as Record<string, unknown>).role !== 'string') {
        r.errors.push({ type: 'missing', loc: ['body', 'messages', i, 'role'], msg: 'Field required', input: m });
      } else {
        messages!.push(m as Record<string, unknown>);
      }
    });
  }
  const model = r.str('model');
  const frequencyPenalty = r.float('frequency_penalty');
  const presencePenalty = r.float('presence_penalty');
  r.bool('logprobs');
  r.int('top_logprobs');
  const maxTokens = r.int('max_tokens');
  const maxCompletionTokens = r.int('max_completion_tokens');
  const n = r.int('n');
  r.int('seed');
  const stop = r.strOrList('stop');
  const stream = r.bool('stream');
  const streamOptions = r.streamOptions();
  const temperature = r.float('temperature');
  const topP = r.float('top_p');
  const topK = r.int('top_k');
  const minP = r.float('min_p');
  const repetitionPenalty = r.float('repetition_penalty');
  r.float('length_penalty', false);
  const minTokens = r.int('min_tokens', false);
  const includeStop = r.bool('include_stop_str_in_output', false);
  r.bool('ignore_eos', false);
  r.bool('echo', false);
  const addGenerationPrompt = r.bool('add_generation_prompt', false);
  r.bool('continue_final_message', false);
  r.bool('add_special_tokens', false);
  r.bool('skip_special_tokens', false);
  const returnTokenIds = r.bool('return_token_ids');
  const requestId = r.str('request_id', false);
  r.int('priority', false);
  r.str('user');
  if (r.errors.length > 0 || messages === undefined) return { ok: false, error: requestValidationError(r.errors) };

  const modelError = checkModel(model, ctx);
  if (modelError) return { ok: false, error: modelError };

  // tool_choice needs a tool parser (OpenAIServingChat.render_chat_request)
  const toolChoice = b.tool_choice ?? (b.tools ? 'auto' : 'none');
  if (!ctx.toolCallParser && toolChoice !== null && toolChoice !== 'none') {
    if (toolChoice === 'auto' && !ctx.enableAutoToolChoice) {
      return { ok: false, error: vllmError(400, 'BadRequestError', '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set') };
    }
    if (toolChoice !== 'auto') {
      const shown = typeof toolChoice === 'string' ? toolChoice : pyRepr(toolChoice);
      return { ok: false, error: vllmError(400, 'BadRequestError', `tool_choice="${shown}" requires --tool-call-parser to be set`) };
    }
  }

  const addGen = addGenerationPrompt ?? true;
  const rendered = renderChatPrompt(messages, addGen);
  const outputParam = maxCompletionTokens !== undefined && maxCompletionTokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const requested = maxCompletionTokens ?? maxTokens ?? null;
  const limit = checkLength(rendered.tokens, requested, outputParam, ctx);
  if (typeof limit !== 'number') return { ok: false, error: limit };

  const nValue = n ?? 1;
  const sampling = checkSampling({
    n: nValue,
    presencePenalty: presencePenalty ?? 0,
    frequencyPenalty: frequencyPenalty ?? 0,
    repetitionPenalty: repetitionPenalty ?? 1,
    temperature: temperature ?? 1,
    topP: topP ?? 1,
    topK: topK ?? 0,
    minP: minP ?? 0,
    maxTokens: limit,
    minTokens: minTokens ?? 0,
    stop: stop ?? [],
  });
  if (sampling) return { ok: false, error: sampling };

  const lastRole = messages.length ? (messages[messages.length - 1]!.role as string) : 'assistant';
  return {
    ok: true,
    request: {
      kind: 'chat',
      stream: stream ?? false,
      includeUsage: (stream ?? false) && (streamOptions?.includeUsage ?? false),
      continuousUsage: (stream ?? false) && (streamOptions?.includeUsage ?? false) && (streamOptions?.continuousUsage ?? false),
      n: nValue,
      prompts: [{ text: rendered.text, tokens: rendered.tokens, hash: fnv1a(rendered.text), maxTokens: limit }],
      stop: stop ?? [],
      includeStopStrInOutput: includeStop ?? false,
      minTokens: minTokens ?? 0,
      echo: false,
      returnTokenIds: returnTokenIds ?? false,
      requestId: requestId ?? undefined,
      role: addGen ? 'assistant' : lastRole,
    },
  };
}

/** Validates a (legacy) completion request body. */
export function validateCompletionRequest(body: unknown, ctx: ValidationContext): Validated {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, error: requestValidationError([{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: body }]) };
  }
  const b = body as Record<string, unknown>;

  // mode="before" validators (CompletionRequest)
  if (typeof b.logprobs === 'number' && b.logprobs < 0) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, '`logprobs` must be a positive value.', 'logprobs')]) };
  }
  if (b.stream_options && !b.stream) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, 'Stream options can only be defined when `stream=True`.', 'stream_options')]) };
  }
  const rawPrompt = b.prompt;
  if ((rawPrompt === undefined || rawPrompt === null || rawPrompt === '') && (b.prompt_embeds === undefined || b.prompt_embeds === null)) {
    return { ok: false, error: requestValidationError([beforeValidatorError(b, 'Either prompt or prompt_embeds must be provided and non-empty.')]) };
  }

  const r = new FieldReader(b);
  const model = r.str('model');
  const echo = r.bool('echo');
  const frequencyPenalty = r.float('frequency_penalty');
  r.int('logprobs');
  const maxTokens = r.int('max_tokens');
  const n = r.int('n', false);
  const presencePenalty = r.float('presence_penalty');
  r.int('seed');
  const stop = r.strOrList('stop');
  const stream = r.bool('stream');
  const streamOptions = r.streamOptions();
  const suffix = r.str('suffix');
  const temperature = r.float('temperature');
  const topP = r.float('top_p');
  r.str('user');
  const topK = r.int('top_k');
  const minP = r.float('min_p');
  const repetitionPenalty = r.float('repetition_penalty');
  r.float('length_penalty', false);
  const minTokens = r.int('min_tokens', false);
  const includeStop = r.bool('include_stop_str_in_output', false);
  r.bool('ignore_eos', false);
  r.bool('add_special_tokens', false);
  const returnTokenIds = r.bool('return_token_ids');
  const requestId = r.str('request_id', false);
  r.int('priority', false);

  // prompt: list[int] | list[list[int]] | str | list[str] | None
  let prompts: { text: string; tokenIds?: number[] }[] | undefined;
  if (typeof rawPrompt === 'string') prompts = [{ text: rawPrompt }];
  else if (Array.isArray(rawPrompt)) {
    const items = rawPrompt as unknown[];
    if (items.every((x) => typeof x === 'number' && Number.isInteger(x))) prompts = [{ text: '', tokenIds: items as number[] }];
    else if (items.every((x) => typeof x === 'string')) prompts = items.map((text) => ({ text }));
    else if (items.every((x) => Array.isArray(x) && (x as unknown[]).every((y) => typeof y === 'number' && Number.isInteger(y)))) {
      prompts = (items as number[][]).map((ids) => ({ text: '', tokenIds: ids }));
    }
  }
  if (prompts === undefined && rawPrompt !== undefined && rawPrompt !== null) {
    r.errors.push({ type: 'string_type', loc: ['body', 'prompt', 'str'], msg: 'Input should be a valid string', input: rawPrompt });
  }
  if (r.errors.length > 0 || prompts === undefined) return { ok: false, error: requestValidationError(r.errors) };

  const modelError = checkModel(model, ctx);
  if (modelError) return { ok: false, error: modelError };
  if (suffix !== undefined && suffix !== null) return { ok: false, error: vllmError(400, 'BadRequestError', 'suffix is not currently supported') };

  // CompletionRequest.max_tokens defaults to 16; an explicit null falls back to the server default.
  const requested = maxTokens === undefined ? 16 : maxTokens;
  const parsed: StandInPrompt[] = [];
  for (const p of prompts) {
    const tokens = p.tokenIds ? p.tokenIds.length : completionPromptTokens(p.text);
    const limit = checkLength(tokens, requested, 'max_tokens', ctx);
    if (typeof limit !== 'number') return { ok: false, error: limit };
    const hash = p.tokenIds ? fnv1a(p.tokenIds.join(',')) : fnv1a(p.text);
    parsed.push({ text: p.text, tokens, hash, maxTokens: limit, ...(p.tokenIds ? { tokenIds: p.tokenIds } : {}) });
  }

  const nValue = n ?? 1;
  for (const p of parsed) {
    const sampling = checkSampling({
      n: nValue,
      presencePenalty: presencePenalty ?? 0,
      frequencyPenalty: frequencyPenalty ?? 0,
      repetitionPenalty: repetitionPenalty ?? 1,
      temperature: temperature ?? 1,
      topP: topP ?? 1,
      topK: topK ?? 0,
      minP: minP ?? 0,
      maxTokens: p.maxTokens,
      minTokens: minTokens ?? 0,
      stop: stop ?? [],
    });
    if (sampling) return { ok: false, error: sampling };
  }

  return {
    ok: true,
    request: {
      kind: 'completion',
      stream: stream ?? false,
      includeUsage: (stream ?? false) && (streamOptions?.includeUsage ?? false),
      continuousUsage: (stream ?? false) && (streamOptions?.includeUsage ?? false) && (streamOptions?.continuousUsage ?? false),
      n: nValue,
      prompts: parsed,
      stop: stop ?? [],
      includeStopStrInOutput: includeStop ?? false,
      minTokens: minTokens ?? 0,
      echo: echo ?? false,
      returnTokenIds: returnTokenIds ?? false,
      requestId: requestId ?? undefined,
      role: 'assistant',
    },
  };
}

/** `OpenAIServing._check_model`: no model (or an empty one) means the default model. */
function checkModel(model: string | null | undefined, ctx: ValidationContext): ErrorReply | undefined {
  if (!model || ctx.servedModelNames.includes(model)) return undefined;
  return vllmError(404, 'NotFoundError', `The model \`${model}\` does not exist.`, 'model');
}

/**
 * `TokenizeParams` checks and `get_max_tokens`: returns the tokens the prompt may generate, or the
 * error. `requested` is the request's `max_tokens`/`max_completion_tokens` (null = not given).
 */
function checkLength(promptTokens: number, requested: number | null, param: string, ctx: ValidationContext): number | ErrorReply {
  const maxModelLen = ctx.maxModelLen;
  const maxOutput = requested || 0;
  if (maxOutput > maxModelLen) {
    return validationError(
      `${param}=${maxOutput} cannot be greater than max_model_len=max_total_tokens=${maxModelLen}. Please request fewer output tokens.`,
      param,
      maxOutput,
    );
  }
  const maxInput = maxModelLen - maxOutput;
  if (promptTokens > maxInput) {
    return validationError(
      `You passed ${promptTokens} input tokens and requested ${maxOutput} output tokens. However, the model's context length is only ${maxModelLen} tokens, resulting in a maximum input length of ${maxInput} tokens. Please reduce the length of the input prompt.`,
      'input_tokens',
      promptTokens,
    );
  }
  if (maxModelLen < promptTokens) {
    return vllmError(400, 'BadRequestError', `Input length (${promptTokens}) exceeds model's maximum context length (${maxModelLen}).`);
  }
  const fallback = requested ?? ctx.defaultMaxTokens;
  const rest = maxModelLen - promptTokens;
  return fallback === null ? rest : Math.min(rest, fallback);
}

interface SamplingValues {
  n: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  maxTokens: number;
  minTokens: number;
  stop: string[];
}

/** `SamplingParams._verify_args` (and `_verify_greedy_sampling`), in vLLM's order. */
function checkSampling(s: SamplingValues): ErrorReply | undefined {
  if (s.n < 1) return validationError(`n must be at least 1, got ${s.n}.`, 'n', s.n);
  if (!(s.presencePenalty >= -2 && s.presencePenalty <= 2)) return validationError(`presence_penalty must be in [-2, 2], got ${pyFloat(s.presencePenalty)}.`);
  if (!(s.frequencyPenalty >= -2 && s.frequencyPenalty <= 2)) return validationError(`frequency_penalty must be in [-2, 2], got ${pyFloat(s.frequencyPenalty)}.`);
  if (s.repetitionPenalty <= 0) return validationError(`repetition_penalty must be greater than zero, got ${pyFloat(s.repetitionPenalty)}.`);
  if (s.temperature < 0) return validationError(`temperature must be non-negative, got ${pyFloat(s.temperature)}.`, 'temperature', pyFloat(s.temperature));
  if (s.temperature > 2) return validationError(`temperature must be in [0, 2], got ${pyFloat(s.temperature)}.`, 'temperature', pyFloat(s.temperature));
  if (!(s.topP > 0 && s.topP <= 1)) return validationError(`top_p must be in (0, 1], got ${pyFloat(s.topP)}.`, 'top_p', pyFloat(s.topP));
  if (s.topK < -1) return validationError(`top_k must be 0 (disable), or at least 1, got ${s.topK}.`);
  if (!(s.minP >= 0 && s.minP <= 1)) return validationError(`min_p must be in [0, 1], got ${pyFloat(s.minP)}.`);
  if (s.maxTokens < 1) return validationError(`max_tokens must be at least 1, got ${s.maxTokens}.`, 'max_tokens', s.maxTokens);
  if (s.minTokens < 0) return validationError(`min_tokens must be greater than or equal to 0, got ${s.minTokens}.`);
  if (s.minTokens > s.maxTokens) return validationError(`min_tokens must be less than or equal to max_tokens=${s.maxTokens}, got ${s.minTokens}.`);
  if (s.stop.some((x) => !x)) return validationError('stop cannot contain an empty string.');
  if (s.temperature < GREEDY_EPS && s.n > 1) return validationError(`n must be 1 when using greedy sampling, got ${s.n}.`);
  return undefined;
}
