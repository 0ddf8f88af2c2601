/**
 * Test support for the observability integration specs (tracing, logs, promtool):
 *
 * - `startOtlpReceiver()`: a minimal OpenTelemetry collector, an OTLP/HTTP **JSON** receiver on
 *   127.0.0.1 (`POST /v1/traces`). It decodes `resourceSpans → scopeSpans → spans` into flat
 *   `ReceivedSpan`s (ids as lowercase hex, attributes as plain values, the resource's attributes
 *   kept on each span) and answers `200 {}` as a collector does. Protobuf is refused with 415, so a
 *   server configured for `http/json` that sends protobuf fails loudly.
 * - `waitFor()`: polls a condition (stdout lines of a child process, spans) until it holds.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** OTLP `Span.SpanKind` values. */
export const SPAN_KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
/** OTLP `Status.StatusCode` values. */
export const STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export type AttributeValue = string | number | boolean | AttributeValue[] | null;
export type Attributes = Record<string, AttributeValue>;

export interface ReceivedLink {
  traceId: string;
  spanId: string;
  attributes: Attributes;
}

export interface ReceivedEvent {
  name: string;
  attributes: Attributes;
}

/** One span as the receiver got it, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** `SPAN_KIND.*`. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  links: ReceivedLink[];
  events: ReceivedEvent[];
  /** `STATUS_CODE.*` and the message, if any. */
  status: { code: number; message: string | undefined };
  /** The attributes of the span's resource (`service.name`, …). */
  resource: Attributes;
  /** The instrumentation scope (`@tessera/core`, …). */
  scope: { name: string; version: string | undefined };
}

/** One export request as received. */
export interface ReceivedExport {
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body (decompressed). */
  body: string;
  spans: ReceivedSpan[];
}

export interface OtlpReceiver {
  /** Base URL for `tracing.endpoint`, e.g. `http://127.0.0.1:40123` (the exporter appends `/v1/traces`). */
  url: string;
  /** Every span received so far, in arrival order. */
  spans: ReceivedSpan[];
  /** Every export request received so far. */
  exports: ReceivedExport[];
  /** Requests the receiver could not decode (wrong path, protobuf, bad JSON): each a short reason. */
  rejected: string[];
  /**
   * Resolves with the spans once, for every name in `names`, as many spans of that name have
   * arrived as it is listed (restricted to spans for which `filter` holds); rejects after
   * `timeoutMs` naming what is missing.
   */
  waitForSpans(names: readonly string[], options?: { filter?: (s: ReceivedSpan) => boolean; timeoutMs?: number }): Promise<ReceivedSpan[]>;
  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[];
  /** Forgets what was received. */
  clear(): void;
  close(): Promise<void>;
}

/** Decodes an OTLP/JSON `AnyValue`. 64-bit integers arrive as strings or numbers; both become numbers. */
function anyValue(v: Record<string, unknown> | undefined): AttributeValue {
  if (!v) return null;
  if ('stringValue' in v) return String(v.stringValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(anyValue);
  if ('bytesValue' in v) return String(v.bytesValue);
  return null;
}

function attributes(list: unknown): Attributes {
  const out: Attributes = {};
  for (const a of (list as { key: string; value?: Record<string, unknown> }[] | undefined) ?? []) out[a.key] = anyValue(a.value);
  return out;
}

/** OTLP/JSON ids are hex strings (not base64, unlike protobuf's JSON mapping); normalise case. */
function id(value: unknown): string {
  return typeof value === 'string' ? value.toLowerCase() : '';
}

function nanos(value: unknown): bigint {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return BigInt(value);
  return 0n;
}

/** Flattens an `ExportTraceServiceRequest` in OTLP/JSON. Throws on a body of another shape. */
export function decodeOtlpJson(body: string): ReceivedSpan[] {
  const parsed = JSON.parse(body) as { resourceSpans?: unknown };
  if (!Array.isArray(parsed.resourceSpans)) throw new Error('no resourceSpans array');
  const out: ReceivedSpan[] = [];
  for (const rs of parsed.resourceSpans as { resource?: { attributes?: unknown }; scopeSpans?: unknown[] }[]) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of (rs.scopeSpans ?? []) as { scope?: { name?: string; version?: string }; spans?: unknown[] }[]) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version };
      for (const raw of (ss.spans ?? []) as Record<string, unknown>[]) {
        const status = (raw.status ?? {}) as { code?: number | string; message?: string };
        const parent = id(raw.parentSpanId);
        out.push({
          traceId: id(raw.traceId),
          spanId: id(raw.spanId),
          parentSpanId: parent === '' ? undefined : parent,
          name: typeof raw.name === 'string' ? raw.name : '',
          kind: Number(raw.kind ?? 0),
          startTimeUnixNano: nanos(raw.startTimeUnixNano),
          endTimeUnixNano: nanos(raw.endTimeUnixNano),
          attributes: attributes(raw.attributes),
          links: ((raw.links ?? []) as Record<string, unknown>[]).map((l) => ({ traceId: id(l.traceId), spanId: id(l.spanId), attributes: attributes(l.attributes) })),
          events: ((raw.events ?? []) as Record<string, unknown>[]).map((e) => ({ name: typeof e.name === 'string' ? e.name : '', attributes: attributes(e.attributes) })),
          status: { code: Number(status.code ?? 0), message: status.message === undefined || status.message === '' ? undefined : status.message },
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

/** Starts the receiver on 127.0.0.1, on a free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const exports: ReceivedExport[] = [];
  const rejected: string[] = [];
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reject = (status: number, reason: string): void => {
        rejected.push(reason);
        wake();
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 3, message: reason }));
      };
      const url = req.url ?? '';
      if (req.method !== 'POST' || url.split('?')[0] !== '/v1/traces') return reject(404, `${req.method} ${url}: not the traces endpoint`);
      const type = String(req.headers['content-type'] ?? '');
      if (!type.includes('application/json')) return reject(415, `content-type ${type}: this receiver takes OTLP/JSON only`);
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const body = raw.toString('utf8');
      let received: ReceivedSpan[];
      try {
        received = decodeOtlpJson(body);
      } catch (err) {
        return reject(400, `undecodable OTLP/JSON: ${(err as Error).message}`);
      }
      exports.push({ path: url, headers: req.headers, body, spans: received });
      spans.push(...received);
      wake();
      // ExportTraceServiceResponse: an empty object means every span was accepted
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
    rejected,
    async waitForSpans(names, options = {}) {
      const timeoutMs = options.timeoutMs ?? 10_000;
      const filter = options.filter ?? (() => true);
      const missing = (): string[] => {
        const counts = new Map<string, number>();
        for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
        const out: string[] = [];
        for (const [n, want] of counts) {
          const have = spans.filter((s) => s.name === n && filter(s)).length;
          if (have < want) out.push(`${n} (${have}/${want})`);
        }
        return out;
      };
      await waitFor(() => missing().length === 0, {
        timeoutMs,
        message: () =>
          `spans missing after ${timeoutMs} ms: ${missing().join(', ')}; received ${spans.length}: ${spans.map((s) => s.name).join(', ') || 'none'}` +
          (rejected.length ? `; rejected exports: ${rejected.join('; ')}` : ''),
        waiters,
      });
      const wanted = new Set(names);
      return spans.filter((s) => wanted.has(s.name) && filter(s));
    },
    trace: (traceId) => spans.filter((s) => s.traceId === traceId),
    clear() {
      spans.length = 0;
      exports.length = 0;
      rejected.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}

/**
 * Resolves once `check()` is true; polls every 20 ms (and whenever a waiter in `waiters` is
 * woken). Rejects after `timeoutMs` with `message()`.
 */
export async function waitFor(check: () => boolean, options: { timeoutMs?: number; message?: () => string; waiters?: Set<() => void> } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(options.message?.() ?? `condition not met within ${timeoutMs} ms`);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        options.waiters?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(20, left));
      options.waiters?.add(done);
    });
  }
}

/** The pino JSON lines among a process's stdout lines (others are skipped). */
export function jsonLines(lines: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a partial or non-JSON line
    }
  }
  return out;
}

/** A W3C `traceparent` with fresh random ids (sampled). */
export function newTraceparent(): { traceparent: string; traceId: string; spanId: string } {
  const hex = (bytes: number): string => Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('');
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceparent: `00-${traceId}-${spanId}-01`, traceId, spanId };
}
