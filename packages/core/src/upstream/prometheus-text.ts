/**
 * A small parser for the Prometheus text exposition format (version 0.0.4, what `/metrics`
 * endpoints such as vLLM's, Triton's and Tessera's own serve), enough to read samples in a health
 * probe. `prom-client` only writes this format, and no installed package reads it.
 *
 * One sample per line: `name{label="value",...} value [timestamp]`.
 * - Lines starting with `#` (`# HELP`, `# TYPE`, other comments) and blank lines are skipped;
 *   histogram and summary series come out as their plain samples (`_bucket`, `_sum`, `_count`).
 * - Label values unescape `\\`, `\"` and `\n`; a trailing comma in the label set is allowed.
 * - Values are floats, `NaN`, `+Inf`, `-Inf` (case-insensitive, as Go's ParseFloat reads them).
 * - The optional timestamp is kept as written (milliseconds since the epoch in this format).
 * - Also read: Prometheus 3 quoted names (`{"my.metric",label="v"} 1`), CRLF line ends, and an
 *   OpenMetrics exemplar after the value (`... 1 # {trace_id="x"} 1`), which is ignored.
 * Malformed lines are skipped, or throw a `SyntaxError` naming the line with `strict: true`.
 */

/** One sample line of a Prometheus text exposition. */
export interface PrometheusSample {
  /** The metric name as exposed, e.g. `vllm:num_requests_running` or `http_requests_total`. */
  name: string;
  /** The sample's labels (unescaped values); `{}` when it has none. */
  labels: Readonly<Record<string, string>>;
  /** The sample value; may be `NaN` or `±Infinity`. */
  value: number;
  /** The timestamp as written after the value, if any (ms since the epoch in this format). */
  timestamp?: number;
}

/** Options of {@link parsePrometheusText}. */
export interface ParsePrometheusTextOptions {
  /** Throw a `SyntaxError` on the first malformed line instead of skipping it. Default false. */
  strict?: boolean;
}

const METRIC_NAME_START = /[a-zA-Z_:]/;
const METRIC_NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_NAME_START = /[a-zA-Z_]/;
const LABEL_NAME_CHAR = /[a-zA-Z0-9_]/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INF = /^[+-]?inf(?:inity)?$/i;
const NAN = /^nan$/i;

class LineError extends Error {}

/** Parses a number token of the format: a decimal float, `NaN`, `+Inf`/`-Inf`. */
function parseNumber(token: string, what: string): number {
  if (FLOAT.test(token)) return Number(token);
  if (INF.test(token)) return token.startsWith('-') ? -Infinity : Infinity;
  if (NAN.test(token)) return NaN;
  throw new LineError(`invalid ${what} ${JSON.stringify(token)}`);
}

/** A cursor over one line. */
class LineScanner {
  i = 0;
  constructor(readonly line: string) {}

  get done(): boolean {
    return this.i >= this.line.length;
  }

  peek(): string | undefined {
    return this.line[this.i];
  }

  /** Skips spaces and tabs; returns how many. */
  blanks(): number {
    const start = this.i;
    while (this.line[this.i] === ' ' || this.line[this.i] === '\t') this.i++;
    return this.i - start;
  }

  expect(ch: string): void {
    if (this.line[this.i] !== ch) throw new LineError(`expected ${JSON.stringify(ch)} at column ${this.i + 1}`);
    this.i++;
  }

  identifier(start: RegExp, rest: RegExp, what: string): string {
    const from = this.i;
    if (!start.test(this.line[this.i] ?? '')) throw new LineError(`expected a ${what} at column ${this.i + 1}`);
    this.i++;
    while (rest.test(this.line[this.i] ?? '')) this.i++;
    return this.line.slice(from, this.i);
  }

  /** A double-quoted string with the format's escapes (`\\`, `\"`, `\n`). */
  quoted(): string {
    this.expect('"');
    let out = '';
    for (;;) {
      const ch = this.line[this.i++];
      if (ch === undefined) throw new LineError('unterminated quoted string');
      if (ch === '"') return out;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = this.line[this.i++];
      if (esc === '\\') out += '\\';
      else if (esc === '"') out += '"';
      else if (esc === 'n') out += '\n';
      else throw new LineError(`invalid escape sequence \\${esc ?? ''} in a quoted string`);
    }
  }

  /** The next run of non-blank characters. */
  token(): string {
    const from = this.i;
    while (this.i < this.line.length && this.line[this.i] !== ' ' && this.line[this.i] !== '\t') this.i++;
    return this.line.slice(from, this.i);
  }
}

function parseSampleLine(line: string): PrometheusSample {
  const s = new LineScanner(line);
  let name: string | undefined;
  // no prototype: a label named `__proto__` or `constructor` is just a label
  const labels = Object.create(null) as Record<string, string>;
  if (s.peek() !== '{') name = s.identifier(METRIC_NAME_START, METRIC_NAME_CHAR, 'metric name');
  let gap = s.blanks();
  if (s.peek() === '{') {
    s.i++;
    let first = true;
    for (;;) {
      s.blanks();
      if (s.peek() === '}') {
        s.i++;
        break;
      }
      const quotedName = s.peek() === '"';
      const labelName = quotedName ? s.quoted() : s.identifier(LABEL_NAME_START, LABEL_NAME_CHAR, 'label name');
      s.blanks();
      if (quotedName && first && name === undefined && (s.peek() === ',' || s.peek() === '}')) {
        name = labelName; // Prometheus 3: `{"metric.name", label="v"}`
      } else {
        s.expect('=');
        s.blanks();
        const value = s.quoted();
        if (Object.hasOwn(labels, labelName)) throw new LineError(`duplicate label ${JSON.stringify(labelName)}`);
        labels[labelName] = value;
        s.blanks();
      }
      first = false;
      if (s.peek() === ',') {
        s.i++;
        continue;
      }
      s.expect('}');
      break;
    }
    gap = s.blanks();
  }
  if (name === undefined || name === '') throw new LineError('missing metric name');
  if (gap === 0) throw new LineError(`expected a blank before the value at column ${s.i + 1}`);
  const value = parseNumber(s.token(), 'value');
  const sample: PrometheusSample = { name, labels, value };
  s.blanks();
  if (!s.done && s.peek() !== '#') {
    sample.timestamp = parseNumber(s.token(), 'timestamp');
    if (!Number.isFinite(sample.timestamp)) throw new LineError('invalid timestamp');
    s.blanks();
  }
  // anything left must be an OpenMetrics exemplar (`# {...} value`), which is ignored
  if (!s.done && s.peek() !== '#') throw new LineError(`unexpected text at column ${s.i + 1}`);
  return sample;
}

/**
 * Parses a Prometheus text exposition into its samples, in order. See the module comment for
 * what is accepted.
 *
 * @throws SyntaxError with `strict: true`, on the first malformed line (1-based line number in the message).
 */
export function parsePrometheusText(text: string, options: ParsePrometheusTextOptions = {}): PrometheusSample[] {
  const samples: PrometheusSample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    line = line.replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    try {
      samples.push(parseSampleLine(line));
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      if (options.strict) throw new SyntaxError(`Prometheus text, line ${n + 1}: ${err.message}`);
    }
  }
  return samples;
}

/**
 * The value of the first metric among `names` that has at least one sample matching `labels`
 * (every given label equal; other labels free), summed over its matching series. Names are tried
 * in order, so list the current name first and older names after it (engines rename metrics
 * across versions). Undefined when none of the names has a matching sample. A `NaN` sample makes
 * the sum `NaN`.
 */
export function sampleValue(samples: readonly PrometheusSample[], names: readonly string[], labels?: Readonly<Record<string, string>>): number | undefined {
  const wanted = labels === undefined ? [] : Object.entries(labels);
  for (const name of names) {
    let found = false;
    let sum = 0;
    for (const sample of samples) {
      if (sample.name !== name) continue;
      if (!wanted.every(([k, v]) => sample.labels[k] === v)) continue;
      found = true;
      sum += sample.value;
    }
    if (found) return sum;
  }
  return undefined;
}
