// A stand-in OTLP/HTTP trace collector for bench/tracing.mjs: node:http on 127.0.0.1, in a process
// of its own. It accepts `POST <prefix>/v1/traces` (http/protobuf or http/json, gzip or not),
// counts requests, bytes and spans (by span name) per <prefix> (each contender exports under its
// own prefix, e.g. http://127.0.0.1:PORT/on-1.0 → /on-1.0/v1/traces) and answers 200 with an
// empty ExportTraceServiceResponse. It keeps nothing else: the spans are counted and dropped.
//   GET /stats   → { "<prefix>": { requests, bytes, spans, byName, firstAt, lastAt, decodeErrors, contentTypes } }
//   GET /health  → 200
//   node bench/lib/otlp-sink.mjs '{"port":4318}'
import http from 'node:http';
import { gunzipSync, inflateSync } from 'node:zlib';

const args = JSON.parse(process.argv[2] ?? '{}');
const port = Number(args.port ?? 4318);

/** Per-prefix counters. */
const stats = new Map();

function statsFor(prefix) {
  let s = stats.get(prefix);
  if (!s) {
    s = { requests: 0, bytes: 0, spans: 0, byName: {}, firstAt: null, lastAt: null, decodeErrors: 0, lastDecodeError: null, contentTypes: {} };
    stats.set(prefix, s);
  }
  return s;
}

// ---- a minimal protobuf walker: only what is needed to find Span.name ------------------------

function varint(buf, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    // lengths and tags fit in 2^53; multiply rather than shift past 31 bits
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

/** Calls `onField(field, start, end)` for every length-delimited field of the message in buf[start, end). */
function eachLenField(buf, start, end, onField) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) [, pos] = varint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      if (pos + len > end) throw new Error('truncated field');
      onField(field, pos, pos + len);
      pos += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  if (pos !== end) throw new Error('message overran its length');
}

/**
 * Span names of an ExportTraceServiceRequest (protobuf): resource_spans = 1 → scope_spans = 2 →
 * spans = 2 → name = 5.
 */
function spanNamesProtobuf(buf, onName) {
  eachLenField(buf, 0, buf.length, (f1, s1, e1) => {
    if (f1 !== 1) return;
    eachLenField(buf, s1, e1, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachLenField(buf, s2, e2, (f3, s3, e3) => {
        if (f3 !== 2) return;
        let name = '';
        eachLenField(buf, s3, e3, (f4, s4, e4) => {
          if (f4 === 5) name = buf.toString('utf8', s4, e4);
        });
        onName(name);
      });
    });
  });
}

function spanNamesJson(buf, onName) {
  const req = JSON.parse(buf.toString('utf8'));
  for (const rs of req.resourceSpans ?? req.resource_spans ?? []) {
    for (const ss of rs.scopeSpans ?? rs.scope_spans ?? []) for (const span of ss.spans ?? []) onName(span.name ?? '');
  }
}

// ---- the server -------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const url = req.url.split('?')[0];
  if (req.method === 'GET' && url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (req.method === 'GET' && url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Object.fromEntries(stats)));
    return;
  }
  if (req.method !== 'POST' || !url.endsWith('/v1/traces')) {
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  const prefix = url.slice(0, -'/v1/traces'.length) || '/';
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    chunks.push(c);
    size += c.length;
  });
  req.on('end', () => {
    const s = statsFor(prefix);
    const now = Date.now();
    s.requests++;
    s.bytes += size;
    s.firstAt ??= now;
    s.lastAt = now;
    const type = String(req.headers['content-type'] ?? '').split(';')[0].trim();
    s.contentTypes[type] = (s.contentTypes[type] ?? 0) + 1;
    const json = type === 'application/json';
    try {
      let body = Buffer.concat(chunks, size);
      const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
      if (encoding === 'gzip') body = gunzipSync(body);
      else if (encoding === 'deflate') body = inflateSync(body);
      const count = (name) => {
        s.spans++;
        s.byName[name] = (s.byName[name] ?? 0) + 1;
      };
      if (json) spanNamesJson(body, count);
      else spanNamesProtobuf(body, count);
    } catch (err) {
      s.decodeErrors++;
      s.lastDecodeError = String(err?.message ?? err);
    }
    // an empty ExportTraceServiceResponse: no partial_success, i.e. everything accepted
    if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)).closeAllConnections());
