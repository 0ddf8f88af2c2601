/**
 * A strict parser of the protobuf text format (Triton's `config.pbtxt`), without a schema: it gives
 * the fields as written, in order, each with its line and column, and the mapping decides what
 * they mean. Every syntax error names `file:line:col`.
 */
import { TesseraError } from '../errors.js';

/** Where something starts in the file: 1-based line and column. */
export interface PbtxtPosition {
  line: number;
  col: number;
}

/** A quoted string (adjacent strings concatenated, escapes decoded). */
export interface PbtxtString extends PbtxtPosition {
  kind: 'string';
  value: string;
}

/** A number as written (`text`) and its value (`inf`, `nan` included). */
export interface PbtxtNumber extends PbtxtPosition {
  kind: 'number';
  value: number;
  text: string;
}

/** A bare word: an enum value (`TYPE_FP32`, `KIND_GPU`) or `true`/`false`. */
export interface PbtxtIdentifier extends PbtxtPosition {
  kind: 'identifier';
  value: string;
}

/** A message: `{ ... }` or `< ... >`; the top of the file is one too. */
export interface PbtxtMessage extends PbtxtPosition {
  kind: 'message';
  fields: PbtxtField[];
}

/** `name: []`: no values, but the field was written (`dims: []` is a scalar's shape, not a missing one). */
export interface PbtxtEmptyList extends PbtxtPosition {
  kind: 'empty-list';
}

export type PbtxtValue = PbtxtString | PbtxtNumber | PbtxtIdentifier | PbtxtMessage | PbtxtEmptyList;

/**
 * One value of a field. A list (`dims: [1, 2]`, `input [ {…}, {…} ]`) gives one field per
 * element, as repeating the field would, each with `inList` set; an empty list gives one field
 * with an `empty-list` value.
 */
export interface PbtxtField extends PbtxtPosition {
  name: string;
  value: PbtxtValue;
  inList: boolean;
}

/** A `TESSERA_E_CONFIG_PARSE` error at a place in a text file, with the line and a caret under the column. */
export function textFileError(code: 'TESSERA_E_CONFIG_PARSE' | 'TESSERA_E_CONFIG_INVALID', file: string, text: string, at: PbtxtPosition, message: string): TesseraError {
  const source = text.split(/\r?\n/)[at.line - 1];
  const frame = source === undefined || source.trim() === '' ? '' : `\n    ${source}\n    ${' '.repeat(Math.max(0, at.col - 1))}^`;
  return new TesseraError(code, `${file}:${at.line}:${at.col}: ${message}${frame}`);
}

type Token =
  | (PbtxtPosition & { type: 'ident'; text: string })
  | (PbtxtPosition & { type: 'number'; text: string })
  | (PbtxtPosition & { type: 'string'; value: string; text: string })
  | (PbtxtPosition & { type: 'symbol'; text: string })
  | (PbtxtPosition & { type: 'end'; text: '' });

const SYMBOLS = new Set([':', '{', '}', '<', '>', '[', ']', ',', ';', '-', '/', '.']);
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };
const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const NUMBER = /^(?:0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*|(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?|(?:0|[1-9][0-9]*)(?:[eE][+-]?[0-9]+[fF]?|[fF]))$/;

/** Splits the text into tokens; `#` starts a comment that runs to the end of the line. */
class Lexer {
  readonly #text: string;
  readonly #fail: (at: PbtxtPosition, message: string) => never;
  #i = 0;
  #line = 1;
  #col = 1;

  constructor(text: string, fail: (at: PbtxtPosition, message: string) => never) {
    this.#text = text;
    this.#fail = fail;
  }

  next(): Token {
    this.#skipSpace();
    const at = { line: this.#line, col: this.#col };
    const c = this.#text[this.#i];
    if (c === undefined) return { ...at, type: 'end', text: '' };
    if (IDENT_START.test(c)) {
      let end = this.#i;
      while (end < this.#text.length && IDENT_PART.test(this.#text[end]!)) end++;
      return { ...at, type: 'ident', text: this.#advance(end - this.#i) };
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(this.#text[this.#i + 1] ?? ''))) {
      let end = this.#i;
      // greedy over what a number can contain, then checked as a whole: `1.2.3` and `08` are errors
      while (end < this.#text.length && /[0-9A-Za-z_.+-]/.test(this.#text[end]!)) {
        const ch = this.#text[end]!;
        if ((ch === '+' || ch === '-') && !/[eE]/.test(this.#text[end - 1]!)) break;
        end++;
      }
      const text = this.#text.slice(this.#i, end);
      if (!NUMBER.test(text)) this.#fail(at, `invalid number ${JSON.stringify(text)}`);
      return { ...at, type: 'number', text: this.#advance(end - this.#i) };
    }
    if (c === '"' || c === "'") return this.#string(at, c);
    if (SYMBOLS.has(c)) return { ...at, type: 'symbol', text: this.#advance(1) };
    return this.#fail(at, `unexpected character ${JSON.stringify(c)}`);
  }

  #advance(n: number): string {
    const s = this.#text.slice(this.#i, this.#i + n);
    for (const ch of s) {
      if (ch === '\n') {
        this.#line++;
        this.#col = 1;
      } else this.#col++;
    }
    this.#i += n;
    return s;
  }

  #skipSpace(): void {
    while (this.#i < this.#text.length) {
      const c = this.#text[this.#i]!;
      if (c === '#') {
        const nl = this.#text.indexOf('\n', this.#i);
        this.#advance((nl === -1 ? this.#text.length : nl) - this.#i);
      } else if (/\s/.test(c)) this.#advance(1);
      else return;
    }
  }

  /** A quoted string: bytes (escapes may write any byte) read as UTF-8. */
  #string(at: PbtxtPosition, quote: string): Token {
    const start = this.#i;
    const bytes: number[] = [];
    this.#advance(1);
    for (;;) {
      const here = { line: this.#line, col: this.#col };
      const c = this.#text[this.#i];
      if (c === undefined || c === '\n') this.#fail(at, 'unterminated string (strings end on the line they start; join lines with adjacent strings: "a" "b")');
      if (c === quote) {
        this.#advance(1);
        break;
      }
      if (c !== '\\') {
        const cp = this.#text.codePointAt(this.#i)!;
        const ch = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(ch, 'utf8'));
        this.#advance(ch.length);
        continue;
      }
      const e = this.#text[this.#i + 1];
      if (e === undefined) this.#fail(here, 'unterminated string');
      if (SIMPLE_ESCAPES[e] !== undefined) {
        bytes.push(SIMPLE_ESCAPES[e]);
        this.#advance(2);
      } else if (/[0-7]/.test(e)) {
        const m = /^[0-7]{1,3}/.exec(this.#text.slice(this.#i + 1))![0];
        const value = parseInt(m, 8);
        if (value > 255) this.#fail(here, `octal escape \\${m} is more than one byte`);
        bytes.push(value);
        this.#advance(1 + m.length);
      } else if (e === 'x' || e === 'X') {
        const m = /^[0-9A-Fa-f]{1,2}/.exec(this.#text.slice(this.#i + 2))?.[0];
        if (!m) this.#fail(here, '\\x must be followed by one or two hex digits');
        bytes.push(parseInt(m, 16));
        this.#advance(2 + m.length);
      } else if (e === 'u' || e === 'U') {
        const digits = e === 'u' ? 4 : 8;
        const m = new RegExp(`^[0-9A-Fa-f]{${digits}}`).exec(this.#text.slice(this.#i + 2))?.[0];
        if (!m) this.#fail(here, `\\${e} must be followed by ${digits} hex digits`);
        const cp = parseInt(m, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.#fail(here, `\\${e}${m} is not a Unicode scalar value`);
        bytes.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
        this.#advance(2 + digits);
      } else this.#fail(here, `unknown escape \\${e} (known: \\n \\t \\r \\\\ \\" \\' \\ooo \\xHH \\uXXXX …)`);
    }
    return { ...at, type: 'string', value: Buffer.from(bytes).toString('utf8'), text: this.#text.slice(start, this.#i) };
  }
}

/** Recursive descent over the tokens, one token of lookahead. */
class Parser {
  readonly #lexer: Lexer;
  readonly #fail: (at: PbtxtPosition, message: string) => never;
  #token: Token;

  constructor(text: string, fail: (at: PbtxtPosition, message: string) => never) {
    this.#fail = fail;
    this.#lexer = new Lexer(text, fail);
    this.#token = this.#lexer.next();
  }

  document(): PbtxtMessage {
    const fields = this.#fields(undefined, undefined);
    return { kind: 'message', fields, line: 1, col: 1 };
  }

  #take(): Token {
    const t = this.#token;
    this.#token = this.#lexer.next();
    return t;
  }

  #is(text: string): boolean {
    return this.#token.type === 'symbol' && this.#token.text === text;
  }

  #describe(t: Token): string {
    return t.type === 'end' ? 'the end of the file' : JSON.stringify(t.text);
  }

  /** Fields until `close` (or the end of the file at the top), each optionally followed by `,` or `;`. */
  #fields(close: string | undefined, open: PbtxtPosition | undefined): PbtxtField[] {
    const fields: PbtxtField[] = [];
    const opened = open ? ` opened at ${open.line}:${open.col}` : '';
    for (;;) {
      const t = this.#token;
      if (close === undefined ? t.type === 'end' : this.#is(close)) return fields;
      if (t.type === 'end') this.#fail(t, `expected "${close}" to close the message${opened}, got the end of the file`);
      if (this.#is('}') || this.#is('>')) this.#fail(t, close === undefined ? `unexpected "${t.text}": no message is open` : `expected "${close}" to close the message${opened}, got "${t.text}"`);
      fields.push(...this.#field());
      if (this.#is(',') || this.#is(';')) this.#take();
    }
  }

  #field(): PbtxtField[] {
    const t = this.#take();
    if (t.type === 'symbol' && t.text === '[') this.#fail(t, 'extension and Any fields ([…] names) are not supported in config.pbtxt');
    if (t.type !== 'ident') this.#fail(t, `expected a field name, got ${this.#describe(t)}`);
    const at = { line: t.line, col: t.col };
    const field = (value: PbtxtValue, inList: boolean): PbtxtField => ({ name: t.text, value, inList, ...at });
    const colon = this.#is(':');
    if (colon) this.#take();
    if (this.#is('{') || this.#is('<')) return [field(this.#message(), false)];
    if (this.#is('[')) {
      const open = this.#token;
      const items = this.#list(t.text, colon);
      return items.length === 0 ? [field({ kind: 'empty-list', line: open.line, col: open.col }, true)] : items.map((v) => field(v, true));
    }
    if (!colon) this.#fail(this.#token, `expected ":" after the field name ${JSON.stringify(t.text)}, got ${this.#describe(this.#token)}`);
    return [field(this.#scalar(), false)];
  }

  #message(): PbtxtMessage {
    const open = this.#take();
    const close = open.text === '{' ? '}' : '>';
    const fields = this.#fields(close, open);
    this.#take();
    return { kind: 'message', fields, line: open.line, col: open.col };
  }

  /** `[a, b]` of scalars (after a colon) or `[{…}, {…}]` of messages; `[]` is empty. */
  #list(name: string, colon: boolean): PbtxtValue[] {
    const open = this.#take();
    const items: PbtxtValue[] = [];
    if (this.#is(']')) {
      this.#take();
      return items;
    }
    for (;;) {
      const message = this.#is('{') || this.#is('<');
      if (!message && !colon) this.#fail(this.#token, `expected ":" before a list of values of ${JSON.stringify(name)} (a list without ":" holds messages)`);
      const item = message ? this.#message() : this.#scalar();
      if (items.length > 0 && (item.kind === 'message') !== (items[0]!.kind === 'message')) this.#fail(item, `the list of ${JSON.stringify(name)} mixes messages and values`);
      items.push(item);
      if (this.#is(',')) {
        this.#take();
        if (this.#is(']')) this.#fail(this.#token, 'expected a value after ",", got "]"');
        continue;
      }
      if (this.#is(']')) {
        this.#take();
        return items;
      }
      const t = this.#token;
      this.#fail(t, t.type === 'end' ? `expected "]" to close the list opened at ${open.line}:${open.col}, got the end of the file` : `expected "," or "]" in the list, got ${this.#describe(t)}`);
    }
  }

  #scalar(): PbtxtString | PbtxtNumber | PbtxtIdentifier {
    const t = this.#take();
    if (t.type === 'string') {
      let value = t.value;
      // adjacent strings are one string ("a" "b" is "ab")
      while (this.#token.type === 'string') value += (this.#take() as { value: string }).value;
      return { kind: 'string', value, line: t.line, col: t.col };
    }
    if (t.type === 'symbol' && t.text === '-') {
      const n = this.#take();
      if (n.type === 'number') return { kind: 'number', value: -numberValue(n.text), text: `-${n.text}`, line: t.line, col: t.col };
      if (n.type === 'ident' && /^(inf|infinity|nan)$/i.test(n.text)) return { kind: 'number', value: -numberValue(n.text), text: `-${n.text}`, line: t.line, col: t.col };
      this.#fail(n, `expected a number after "-", got ${this.#describe(n)}`);
    }
    if (t.type === 'number') return { kind: 'number', value: numberValue(t.text), text: t.text, line: t.line, col: t.col };
    if (t.type === 'ident') {
      if (/^(inf|infinity|nan)$/i.test(t.text)) return { kind: 'number', value: numberValue(t.text), text: t.text, line: t.line, col: t.col };
      return { kind: 'identifier', value: t.text, line: t.line, col: t.col };
    }
    return this.#fail(t, `expected a value (a string, a number or a name), got ${this.#describe(t)}`);
  }
}

function numberValue(text: string): number {
  if (/^(inf|infinity)$/i.test(text)) return Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (/^0[xX]/.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return parseInt(text, 8);
  return Number(text.replace(/[fF]$/, ''));
}

/**
 * Parses protobuf text format: fields `name: value`, messages `name { … }` / `name: < … >`,
 * lists `name: [1, 2]` and `name [ {…}, {…} ]`, strings in either quote with C escapes (adjacent
 * strings join), numbers (decimal, hex, octal, floats, `inf`, `nan`), enum names, `#` comments,
 * optional `,`/`;` between fields. Throws `TESSERA_E_CONFIG_PARSE` with `file:line:col`, the line
 * and a caret.
 */
export function parsePbtxt(text: string, file: string): PbtxtMessage {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const fail = (at: PbtxtPosition, message: string): never => {
    throw textFileError('TESSERA_E_CONFIG_PARSE', file, body, at, message);
  };
  return new Parser(body, fail).document();
}
