/**
 * An incremental decoder of server-sent events as vLLM (and OpenAI) send them: events separated
 * by a blank line, each with one or more `data:` lines. `push` takes the body's pieces as they
 * arrive and returns the data of each event they completed (lines joined with `\n`); `end`
 * returns a last event the body ended without its blank line. Comments and other fields are
 * skipped; `\r\n` line ends and events split anywhere across pieces are taken. Synchronous, so a
 * reader yields events without one more async step per event.
 */
export class SseDecoder {
  readonly #decoder = new TextDecoder();
  #buffer = '';
  // until a `\r` shows up, a blank line can only be `\n\n`: one search instead of two per event
  #crlf = false;

  /** The data of every event `piece` completed, in order (often exactly one). */
  push(piece: Buffer | Uint8Array | string): string[] {
    const text = typeof piece === 'string' ? piece : this.#decoder.decode(piece, { stream: true });
    if (!this.#crlf && text.includes('\r')) this.#crlf = true;
    // the common case (vLLM writes each event at once): one whole `data: …\n\n` event, nothing buffered
    if (this.#buffer === '' && !this.#crlf && text.startsWith('data: ') && text.indexOf('\n') === text.length - 2 && text.endsWith('\n\n')) return [text.slice(6, -2)];
    const out: string[] = [];
    const buffer = this.#buffer + text;
    let start = 0;
    for (;;) {
      const end = eventEnd(buffer, start, this.#crlf);
      if (end < 0) break;
      const data = eventData(buffer.slice(start, end));
      start = end + separatorLength(buffer, end);
      if (data !== undefined) out.push(data);
    }
    this.#buffer = start > 0 ? buffer.slice(start) : buffer;
    return out;
  }

  /** At the end of the body: a last event without its blank line, if any. */
  end(): string[] {
    const buffer = this.#buffer + this.#decoder.decode();
    this.#buffer = '';
    const data = eventData(buffer);
    return data !== undefined && buffer.trim().length > 0 ? [data] : [];
  }
}

/** Each event's data of a body of server-sent events (see {@link SseDecoder}). */
export async function* readSseData(body: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new SseDecoder();
  for await (const piece of body) yield* decoder.push(piece);
  yield* decoder.end();
}

/** Index where the next blank-line separator begins, or -1. */
function eventEnd(buffer: string, from: number, crlf: boolean): number {
  const lf = buffer.indexOf('\n\n', from);
  if (!crlf) return lf;
  const cr = buffer.indexOf('\r\n\r\n', from);
  if (lf < 0) return cr;
  if (cr < 0) return lf;
  return Math.min(lf, cr);
}

function separatorLength(buffer: string, at: number): number {
  return buffer.startsWith('\r\n\r\n', at) ? 4 : 2;
}

function eventData(event: string): string | undefined {
  // the common case: one `data: ` line
  if (event.startsWith('data: ') && event.indexOf('\n') < 0) return event.slice(6);
  let data: string | undefined;
  for (const raw of event.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data;
}
