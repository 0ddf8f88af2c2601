import type { GenerateChunk, GenerateRequest, ModelInstance } from '../contracts/backend.js';
import type { ServingEvents } from '../contracts/events.js';
import type { TesseraError } from '../errors.js';
import type { ModelVersion } from '../registry/model-registry.js';
import { withinDeadline } from './deadline.js';
import type { GeneratedText } from './shadow-compare.js';

/** Generated text (or a tool call) in a serialised chunk: a non-empty content, text or reasoning string. */
const TEXT_IN_JSON = /"(?:content|text|reasoning_content)":"(?!")|"tool_calls":\[\{/;
const CONTENT = '"content":"';

/** `TEXT_IN_JSON.test(json)`, answered by one plain search for the common chunk (a chat delta with content). */
function hasTextJson(json: string): boolean {
  const i = json.indexOf(CONTENT);
  // a quote right after is an empty string (the role chunk): other fields or choices may still have text
  if (i >= 0 && json.charCodeAt(i + CONTENT.length) !== 34) return true;
  return TEXT_IN_JSON.test(json);
}

/** What the core tracks while a generation streams: the timings and token counts of DESIGN §6. */
export class GenerationObserver {
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  /** Chunks that carried generated text, a fallback count when the engine reports no usage. */
  textChunks = 0;
  promptTokens: number | undefined;
  completionTokens: number | undefined;
  /** The generated text, collected only for a request with shadow copies (to compare theirs with it). */
  text: GeneratedText | undefined;

  constructor(readonly started: number) {}

  /** Takes one chunk's timings and counts; returns whether it carried usage (only such a chunk can be usage-only). */
  see(chunk: GenerateChunk): boolean {
    this.text?.see(chunk);
    if (chunk.data) return this.#seeData(chunk.data);
    if (chunk.json !== undefined) return this.#seeJson(chunk.json);
    return false;
  }

  #seeData(data: Readonly<Record<string, unknown>>): boolean {
    const { choices, usage } = data as { choices?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null };
    const hasUsage = !!usage && typeof usage === 'object';
    if (hasUsage) {
      if (typeof usage.prompt_tokens === 'number') this.promptTokens = usage.prompt_tokens;
      if (typeof usage.completion_tokens === 'number') this.completionTokens = usage.completion_tokens;
    }
    if (Array.isArray(choices) && hasText(choices)) this.#text();
    return hasUsage;
  }

  /** A forwarded chunk: parsed only when it carries usage; text is found in the string. */
  #seeJson(json: string): boolean {
    if (json.includes('"usage":{')) {
      try {
        this.#seeData(JSON.parse(json) as Record<string, unknown>);
      } catch {
        // not ours to judge: the client gets the bytes as the backend sent them
      }
      return true;
    }
    if (hasTextJson(json)) this.#text();
    return false;
  }

  #text(): void {
    const now = performance.now();
    this.firstTokenAt ??= now;
    this.lastTokenAt = now;
    this.textChunks++;
  }

  /** Time to the first generated text (streaming only). */
  ttftMs(stream: boolean): number | undefined {
    return stream && this.firstTokenAt !== undefined ? this.firstTokenAt - this.started : undefined;
  }

  /** Mean time per output token after the first (streaming, ≥ 2 output tokens). */
  tpotMs(stream: boolean): number | undefined {
    const outputTokens = this.completionTokens ?? this.textChunks;
    if (!stream || this.firstTokenAt === undefined || this.lastTokenAt === undefined || outputTokens < 2) return undefined;
    return (this.lastTokenAt - this.firstTokenAt) / (outputTokens - 1);
  }

  emit(events: ServingEvents, v: ModelVersion, req: GenerateRequest, ok: boolean): void {
    const ttftMs = this.ttftMs(req.stream);
    const tpotMs = this.tpotMs(req.stream);
    events.emit('generation', {
      model: v.model,
      version: v.version,
      kind: req.kind,
      stream: req.stream,
      ok,
      ...(ttftMs !== undefined ? { ttftMs } : {}),
      ...(tpotMs !== undefined ? { tpotMs } : {}),
      ...(this.promptTokens !== undefined ? { promptTokens: this.promptTokens } : {}),
      ...(this.completionTokens !== undefined ? { completionTokens: this.completionTokens } : {}),
      durationMs: performance.now() - this.started,
    });
  }
}

function hasText(choices: unknown[]): boolean {
  for (const c of choices as { delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: unknown }; text?: unknown }[]) {
    if (typeof c.text === 'string' && c.text.length > 0) return true;
    const d = c.delta;
    if (d && ((typeof d.content === 'string' && d.content.length > 0) || (typeof d.reasoning_content === 'string' && d.reasoning_content.length > 0) || d.tool_calls)) return true;
  }
  return false;
}

/** The usage-only chunk the core asked for on the client's behalf (`choices: []` with usage). */
export function isUsageOnly(chunk: GenerateChunk): boolean {
  if (chunk.data) {
    const { choices, usage } = chunk.data as { choices?: unknown; usage?: unknown };
    return Array.isArray(choices) && choices.length === 0 && !!usage;
  }
  const json = chunk.json ?? '';
  return json.includes('"choices":[]') && json.includes('"usage":{');
}

/** An instance of the version that generates, taking turns among several. */
export function pickGenerative(v: ModelVersion, turn: number): ModelInstance | undefined {
  const n = v.instances.length;
  for (let i = 0; i < n; i++) {
    const inst = v.instances[(turn + i) % n]!;
    if (inst.generate) return inst;
  }
  return undefined;
}

/** A generation's deadline: the request's work signal and the error to end the stream with. */
export interface GenerationDeadline {
  signal: AbortSignal;
  error: () => TesseraError;
}

/** What `Generation.end` reports. */
export interface GenerationEnd {
  ok: boolean;
  /** The observer's timings and counts, for the request's accounting. */
  observer: GenerationObserver;
}

/**
 * A generation in progress, as the pipeline hands it to a protocol adapter: the response of a
 * non-streamed one, or the stream's chunks to write (the usage chunk the core asked for on the
 * client's behalf already left out). The adapter calls `end` once with the outcome, and `close`
 * when it stops reading early (the backend's generator is closed, which aborts its upstream work).
 */
export class Generation {
  readonly stream: boolean;
  /** A non-streamed generation's whole response (already ended). */
  readonly response: GenerateChunk | undefined;
  readonly #iterator: AsyncIterator<GenerateChunk>;
  readonly #observer: GenerationObserver;
  readonly #wantsUsage: boolean;
  readonly #onEnd: (end: GenerationEnd) => void;
  readonly #deadline: GenerationDeadline | undefined;
  #first: IteratorResult<GenerateChunk> | undefined;
  #ended = false;

  constructor(options: {
    stream: boolean;
    iterator: AsyncIterator<GenerateChunk>;
    first: IteratorResult<GenerateChunk>;
    observer: GenerationObserver;
    wantsUsage: boolean;
    onEnd: (end: GenerationEnd) => void;
    /** The request's deadline, when it has one: each pull is raced against it. */
    deadline?: GenerationDeadline;
  }) {
    this.#deadline = options.deadline;
    this.stream = options.stream;
    this.#iterator = options.iterator;
    this.#observer = options.observer;
    this.#wantsUsage = options.wantsUsage;
    this.#onEnd = options.onEnd;
    this.#first = options.first;
    if (!options.stream && !options.first.done) {
      this.response = options.first.value;
      options.observer.see(options.first.value);
    }
  }

  /** The next chunk to write, or undefined at the end of the stream. Rejects when the stream broke. */
  async next(): Promise<GenerateChunk | undefined> {
    for (;;) {
      const next = this.#first ?? (await this.#pull());
      this.#first = undefined;
      if (next.done) return undefined;
      // a chunk without usage cannot be the usage-only one: no second search of its text
      if (this.#observer.see(next.value) && !this.#wantsUsage && isUsageOnly(next.value)) continue;
      return next.value;
    }
  }

  /** The backend's next chunk; past the deadline its error, whether or not the backend heeded the abort. */
  #pull(): Promise<IteratorResult<GenerateChunk>> {
    const d = this.#deadline;
    return d ? withinDeadline(this.#iterator.next(), d.signal, d.error) : this.#iterator.next();
  }

  /** Closes the backend's generator (not awaited: a generator inside a step finishes the step first). */
  close(): void {
    void this.#iterator.return?.()?.catch(() => undefined);
  }

  /** Reports the outcome once: drain tracking, the `generation` event, the request's timings. */
  end(ok: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd({ ok, observer: this.#observer });
  }
}
