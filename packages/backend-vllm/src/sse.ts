/**
 * An incremental reader of server-sent events as vLLM (and OpenAI) send them: events separated by
 * a blank line, each with one or more `data:` lines. Yields each event's data (lines joined with
 * `\n`); comments and other fields are skipped. Tolerates `\r\n` line ends and events split
 * anywhere across network chunks.
 */
export async function* readSseData(body: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const piece of body) {
    buffer += typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true });
    let start = 0;
    for (;;) {
      const end = eventEnd(buffer, start);
      if (end < 0) break;
      const data = eventData(buffer.slice(start, end));
      start = end + separatorLength(buffer, end);
      if (data !== undefined) yield data;
    }
    if (start > 0) buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  const data = eventData(buffer);
  if (data !== undefined && buffer.trim().length > 0) yield data;
}

/** Index where the next blank-line separator begins, or -1. */
function eventEnd(buffer: string, from: number): number {
  const lf = buffer.indexOf('\n\n', from);
  const crlf = buffer.indexOf('\r\n\r\n', from);
  if (lf < 0) return crlf;
  if (crlf < 0) return lf;
  return Math.min(lf, crlf);
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
