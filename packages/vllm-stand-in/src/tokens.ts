/**
 * Deterministic "tokens" for the vLLM stand-in: words from a fixed vocabulary, chosen by a small
 * PRNG seeded from the prompt, so the same request always produces the same text. Every string a
 * stream sends per token (the word, with and without a leading space, and its JSON encoding) is
 * built once here, so generating a token allocates nothing.
 */

/** The stand-in's vocabulary: one word per token. */
export const STAND_IN_VOCABULARY: readonly string[] = [
  'the', 'model', 'answers', 'with', 'a', 'short', 'reply', 'about', 'tokens', 'and', 'streams', 'that',
  'arrive', 'one', 'by', 'in', 'order', 'from', 'vLLM', 'stand-in', 'server', 'which', 'follows', 'its',
  'protocol', 'for', 'tests', 'benchmarks', 'every', 'word', 'is', 'chosen', 'seeded', 'prompt', 'text',
  'so', 'same', 'request', 'gets', 'output', 'again', 'when', 'replayed', 'later', 'on', 'another', 'replica',
  'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'world', 'data', 'batch', 'queue', 'cache',
  'prefix', 'decode', 'prefill', 'done',
];

/** Token ids reported for generated tokens (`return_token_ids`) start here. */
export const TOKEN_ID_BASE = 1000;

/** Precomputed forms of one vocabulary word. */
export interface TokenForms {
  /** The word as the first token of an output (no leading space). */
  readonly first: string;
  /** The word after another token (one leading space). */
  readonly next: string;
  /** `JSON.stringify(first)`. */
  readonly firstJson: string;
  /** `JSON.stringify(next)`. */
  readonly nextJson: string;
}

/** Builds the per-word strings for a vocabulary. */
export function buildVocabulary(words: readonly string[]): TokenForms[] {
  if (words.length === 0) throw new Error('the stand-in vocabulary must not be empty');
  return words.map((w) => ({ first: w, next: ` ${w}`, firstJson: JSON.stringify(w), nextJson: JSON.stringify(` ${w}`) }));
}

/** 32-bit FNV-1a hash of a string (UTF-16 code units). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The token sequence of one output (one choice of one prompt): xorshift32 seeded by the prompt
 * hash and the choice index. `next()` returns a vocabulary index.
 */
export class TokenSequence {
  #state: number;
  readonly #size: number;

  constructor(promptHash: number, choice: number, vocabularySize: number) {
    // Never 0: xorshift would stay at 0 forever.
    this.#state = (fnv1a(String(choice), promptHash) || 0x9e3779b9) >>> 0;
    this.#size = vocabularySize;
  }

  /** The next token's vocabulary index. */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#state = x;
    return x % this.#size;
  }
}

/** Tokens a text counts as: its whitespace-separated words (at least 0). */
export function countWords(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // space, \t, \n, \v, \f, \r
    const space = c === 32 || (c >= 9 && c <= 13);
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      count++;
    }
  }
  return count;
}

/** Tokens the chat template adds around each message (role header, end-of-turn marker). */
export const CHAT_TOKENS_PER_MESSAGE = 4;
/** Tokens the generation prompt adds (`<|im_start|>assistant\n`). */
export const CHAT_GENERATION_PROMPT_TOKENS = 3;
/** The BOS token a completion prompt starts with. */
export const COMPLETION_BOS_TOKENS = 1;

/**
 * The text of a chat message's `content`: a string, or the `text` of its parts (other part types,
 * such as images, count as one token each).
 */
export function messageText(content: unknown): { text: string; extraTokens: number } {
  if (typeof content === 'string') return { text: content, extraTokens: 0 };
  if (!Array.isArray(content)) return { text: '', extraTokens: 0 };
  let text = '';
  let extraTokens = 0;
  for (const part of content as unknown[]) {
    if (part !== null && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
      text += (text ? '\n' : '') + (part as { text: string }).text;
    } else {
      extraTokens++;
    }
  }
  return { text, extraTokens };
}

/** The rendered prompt of a chat request and its token count, as the stand-in's "chat template" sees it. */
export function renderChatPrompt(messages: readonly Record<string, unknown>[], addGenerationPrompt: boolean): { text: string; tokens: number } {
  let text = '';
  let tokens = addGenerationPrompt ? CHAT_GENERATION_PROMPT_TOKENS : 0;
  for (const m of messages) {
    const { text: content, extraTokens } = messageText(m.content);
    const role = typeof m.role === 'string' ? m.role : '';
    text += `<|${role}|>\n${content}\n`;
    tokens += CHAT_TOKENS_PER_MESSAGE + countWords(content) + extraTokens;
  }
  if (addGenerationPrompt) text += '<|assistant|>\n';
  return { text, tokens };
}

/** Token count of a completion prompt given as text. */
export function completionPromptTokens(prompt: string): number {
  return COMPLETION_BOS_TOKENS + countWords(prompt);
}

/** Fake prompt token ids for `return_token_ids`: deterministic, one per prompt token. */
export function fakePromptTokenIds(promptHash: number, count: number): number[] {
  const ids = new Array<number>(count);
  let x = promptHash || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    ids[i] = x % 32000;
  }
  return ids;
}
