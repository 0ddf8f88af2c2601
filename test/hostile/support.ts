/**
 * What the hostile-input tests share: a Tessera server of the source tree (not `dist`: no build
 * step between an edit and its test) listening on loopback with real ONNX Runtime sessions on the
 * test models and a generative fake model for the OpenAI API, small limits so that each one is
 * cheap to reach, and a raw `node:net` client for requests `fetch` would normalise or refuse to
 * send (lying lengths, duplicate headers, invalid UTF-8, a client that stops mid-body).
 */
import { connect } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import onnxRuntimePlugin from '@tessera/backend-onnxruntime';
import { resolveConfig } from '../../packages/core/src/config/resolve.js';
import type { GenerateChunk } from '../../packages/core/src/contracts/backend.js';
import type { TesseraPlugin } from '../../packages/core/src/plugins/define-plugin.js';
import { definePlugin } from '../../packages/core/src/plugins/define-plugin.js';
import { TesseraServer } from '../../packages/core/src/server.js';
import { FakeBackend } from '../../packages/core/src/testing/fake-backend.js';
import { MemoryStateStore } from '../../packages/core/src/testing/memory-state-store.js';
import type { TestModelCatalog } from '../../packages/core/src/testing/test-models.js';
import { writeTestModels } from '../../packages/core/src/testing/test-models.js';

/** The limits the hostile server runs with (small, so that each is cheap to reach). */
export const LIMITS = {
  bodyLimit: 1024 * 1024,
  maxTensorElements: 100_000,
  maxRequestElements: 150_000,
  maxJsonDepth: 32,
  maxHeaderSize: 8 * 1024,
  requestTimeoutMs: 1500,
  maxMessages: 50,
  maxChoices: 4,
};

export interface HostileServer {
  server: TesseraServer;
  url: string;
  port: number;
  models: TestModelCatalog;
  close(): Promise<void>;
}

/** A chat completion (non-streamed) or its one chunk (streamed), whatever was asked. */
async function* answer(): AsyncGenerator<GenerateChunk> {
  yield { data: { id: 'cmpl-1', object: 'chat.completion', created: 1, model: 'llm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] } };
}

const llmPlugin = definePlugin({
  name: 'hostile-llm',
  version: '1.0.0',
  core: '^0.1.0',
  register(ctx) {
    ctx.registerBackend('fake-llm', new FakeBackend({ generate: () => answer() }));
  },
});

/** Starts the server on 127.0.0.1 with a free port. */
export async function startHostileServer(): Promise<HostileServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tessera-hostile-'));
  const models = await writeTestModels(dir);
  const { bodyLimit, requestTimeoutMs, ...limits } = LIMITS;
  const config = resolveConfig(
    {
      server: { host: '127.0.0.1', port: 0, bodyLimit, limits: { ...limits, requestTimeout: requestTimeoutMs } },
      models: {
        affine: { path: models.affine.path, batching: { maxBatchSize: 8, maxQueueDelayMs: 1 } },
        'multi-io': { path: models.multiIo.path },
        fixed: { path: models.fixed.path },
        'dynamic-image': { path: models.dynamicImage.path, batching: { maxBatchSize: 4 } },
        'id-bytes': { path: models.identity.BYTES.path, batching: { maxBatchSize: 8 } },
        'id-fp16': { path: models.identity.FP16.path },
        'id-bool': { path: models.identity.BOOL.path },
        'id-int64': { path: models.identity.INT64.path },
        llm: { backend: 'fake-llm' },
      },
    },
    { configDir: dir, env: {} },
  );
  // the backend is built against the core's dist; the brand makes it a plugin of this copy too
  const onnxruntime = onnxRuntimePlugin as unknown as TesseraPlugin;
  const server = new TesseraServer({ config, plugins: [onnxruntime, llmPlugin], logger: pino({ level: 'silent' }), stateStore: () => new MemoryStateStore() });
  const { url, port } = await server.start();
  return { server, url, port, models, close: () => server.close() };
}

/** A raw answer: status 0 when the server closed the connection without one. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export interface RawOptions {
  /** The request has no `Connection: close` (a client that stops): only the server can end it. */
  stall?: boolean;
  /** Give up (and destroy the socket) after this long; the answer is then status -1. */
  timeoutMs?: number;
}

/** Sends `bytes` as they are on a fresh connection and reads the first answer (or the close). */
export function rawRequest(port: number, bytes: Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    let settled = false;
    const done = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(timedOut ? { status: -1, headers: {}, body: '', json: undefined } : parseAnswer(Buffer.concat(chunks)));
    };
    const timer = setTimeout(() => done(true), options.timeoutMs ?? 10_000);
    // never half-closed: Node aborts a request whose client sent FIN before the answer; the
    // requests say `Connection: close`, so the server ends the connection once it answered
    socket.on('connect', () => void socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (complete(Buffer.concat(chunks))) done(false);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** Whether `buf` holds a whole answer (head and a body of its Content-Length). */
function complete(buf: Buffer): boolean {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
  return length !== null && buf.length >= end + 4 + Number(length[1]);
}

function parseAnswer(buf: Buffer): RawAnswer {
  const end = buf.indexOf('\r\n\r\n');
  if (buf.length === 0 || end === -1) return { status: 0, headers: {}, body: buf.toString('utf8'), json: undefined };
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const body = buf.subarray(end + 4).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    // not JSON
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body, json };
}

/** The `code` of a Tessera error body, or of an OpenAI-shaped one. */
export function codeOf(json: unknown): string | undefined {
  const body = json as { code?: unknown; error?: unknown } | undefined;
  if (typeof body?.code === 'string') return body.code;
  const nested = body?.error as { code?: unknown } | undefined;
  return typeof nested?.code === 'string' ? nested.code : undefined;
}

/** Whether an error body has the shape its path promises: `{error, code}`, or OpenAI's under /v1 (but /v1/predict). */
export function wellFormedError(urlPath: string, json: unknown): boolean {
  const body = json as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object') return false;
  const openai = urlPath.startsWith('/v1/') && !urlPath.startsWith('/v1/predict');
  if (openai) {
    const e = body['error'] as Record<string, unknown> | undefined;
    return typeof e?.['message'] === 'string' && typeof e['code'] === 'string';
  }
  return typeof body['error'] === 'string' && typeof body['code'] === 'string';
}

/** A good request to the affine model, over fetch: the server still answers after whatever came before. */
export async function goodRequest(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/v2/models/affine/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
  });
  return { status: res.status, body: await res.json() };
}
