/**
 * Logs end to end, through the real CLI (pino JSON on stdout): exactly one access-log line per
 * request with its request id, trace id (= the `X-Trace-Id` response header), model, version,
 * status and duration; `server.logLevel` respected; and no secret or request body anywhere in the
 * output — an upstream `apiKey` from `${VLLM_API_KEY}`, a client's `Authorization` header, the
 * tracing exporter's `authorization` header and URL credentials, `?token=` query strings, prompt
 * text — at `info` and at `debug`, for good and for failing requests.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { cliPath, startTessera, writeTestModels } from '@tessera/core/testing';
import type { TestModelCatalog } from '@tessera/core/testing';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { startVllmStandInProcess } from '@tessera/vllm-stand-in';
import { freePort, http, tempDir, writeConfig } from './helpers.js';
import type { OtlpReceiver } from './otlp-receiver.js';
import { jsonLines, newTraceparent, startOtlpReceiver, waitFor } from './otlp-receiver.js';

/** Every string that must never be written by the server, with what it is. */
const SECRETS = {
  upstreamApiKey: 'upstream-key-5d1e9c',
  clientToken: 'client-secret-xyz',
  collectorToken: 'collector-secret',
  collectorUrlPassword: 'collector-url-pw-77a1',
  queryToken: 'query-token-3b8f0a',
  promptMarker: 'PROMPT-MARKER-c4f2e8',
  bodyMarker: 'BODY-MARKER-9a6d21',
};

const CLEAN_ENV: Record<string, string | undefined> = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).map((k) => [k, undefined]));
const CLIENT_AUTH = { authorization: `Bearer ${SECRETS.clientToken}` };

let dir: string;
let models: TestModelCatalog;
let receiver: OtlpReceiver;
let standIn: VllmStandInProcess;

/**
 * `startTessera` for levels above info: the `server ready` line it waits for is an info line, so
 * this one listens on a port chosen here and polls `/v2/health/ready` instead.
 */
async function startQuietTessera(config: string, port: number, env: Record<string, string | undefined>): Promise<TesseraProcess> {
  const child = spawn(process.execPath, [cliPath(), 'serve', '-c', config], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => stdout.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null && !stopping) child.kill(signal);
    stopping ??= exited;
    return stopping;
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tessera exited with ${child.exitCode}\n${stdout.join('\n')}\n${stderr.join('\n')}`);
    const ready = await fetch(`${url}/v2/health/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`tessera did not become ready within 30 s\n${stdout.join('\n')}\n${stderr.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, port, child, stdout, stderr, stop, exited };
}

async function startServer(logLevel: string): Promise<TesseraProcess> {
  const quiet = logLevel !== 'info' && logLevel !== 'debug' && logLevel !== 'trace';
  const port = quiet ? await freePort() : 0;
  const collector = new URL(receiver.url);
  collector.username = 'otlp';
  collector.password = SECRETS.collectorUrlPassword;
  const config = await writeConfig(
    dir,
    {
      server: { host: '127.0.0.1', port, logLevel },
      plugins: ['@tessera/tracing'],
      tracing: {
        endpoint: collector.href,
        protocol: 'http/json',
        serviceName: 'tessera-logs-it',
        headers: { authorization: `Bearer ${SECRETS.collectorToken}` },
        batch: { scheduledDelay: 50 },
      },
      models: {
        affine: { path: models.affine.path, batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 1 } },
        chat: { backend: 'vllm', upstreams: [standIn.url], apiKey: '${VLLM_API_KEY}', health: { interval: '200ms' } },
      },
    },
    `tessera.${logLevel}.yaml`,
  );
  const env = { ...CLEAN_ENV, VLLM_API_KEY: SECRETS.upstreamApiKey };
  return quiet ? startQuietTessera(config, port, env) : startTessera({ args: ['serve', '-c', config], env });
}

beforeAll(async () => {
  dir = await tempDir('tessera-logs-');
  models = await writeTestModels(dir);
  // the stand-in demands the key, so a request that succeeds proves the key was sent
  [receiver, standIn] = await Promise.all([startOtlpReceiver(), startVllmStandInProcess('chat', { env: { VLLM_API_KEY: SECRETS.upstreamApiKey } })]);
}, 60_000);

afterAll(async () => {
  await standIn?.stop();
  await receiver?.close();
});

const tensor = (data: unknown[] = [1, 2, 3, 4]) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data }] });
const chat = (extra: Record<string, unknown> = {}) => ({ model: 'chat', messages: [{ role: 'user', content: `Please repeat ${SECRETS.promptMarker} back.` }], max_tokens: 4, ...extra });

/** What one request should leave in the access log. */
interface Expected {
  id: string;
  status: number;
  model?: string;
  version?: string;
  code?: string;
  url: string;
  /** The response's X-Trace-Id. */
  traceId: string | null;
}

/**
 * Sends every kind of request, good and failing, each with a known `x-request-id`, the client
 * secret and (where it fits) a query token and the prompt marker. Returns what each should log.
 */
async function exercise(server: TesseraProcess, prefix: string): Promise<Expected[]> {
  const out: Expected[] = [];
  const send = async (id: string, path: string, init: RequestInit & { json?: unknown }, expected: Omit<Expected, 'id' | 'traceId' | 'url'>) => {
    const res = await http(`${server.url}${path}`, { ...init, headers: { ...CLIENT_AUTH, 'x-request-id': `${prefix}-${id}`, ...(init.headers as Record<string, string>) } });
    expect(res.status, `${id}: ${res.text}`).toBe(expected.status);
    out.push({ id: `${prefix}-${id}`, traceId: res.headers.get('x-trace-id'), url: path.split('?')[0]!, ...expected });
    return res;
  };
  const q = `?token=${SECRETS.queryToken}`;
  await send('tensor-ok', `/v2/models/affine/infer${q}`, { json: tensor(), headers: { traceparent: newTraceparent().traceparent } }, { status: 200, model: 'affine', version: '1' });
  await send('tensor-versioned', `/v2/models/affine/versions/1/infer${q}`, { json: tensor() }, { status: 200, model: 'affine', version: '1' });
  await send('predict-ok', `/v1/predict${q}`, { json: { model: 'affine', inputs: { x: [[1, 2, 3, 4]] } } }, { status: 200, model: 'affine', version: '1' });
  await send('tensor-unknown-model', `/v2/models/no-such-model/infer${q}`, { json: tensor() }, { status: 404, code: 'TESSERA_E_MODEL_NOT_FOUND' });
  await send('tensor-bad-data', `/v2/models/affine/infer${q}`, { json: tensor([SECRETS.bodyMarker, 2, 3, 4]) }, { status: 400, model: 'affine', version: '1', code: 'TESSERA_E_INPUT_DATA' });
  await send(
    'tensor-bad-json',
    `/v2/models/affine/infer${q}`,
    { method: 'POST', body: `{"inputs": [${SECRETS.bodyMarker}`, headers: { 'content-type': 'application/json' } },
    { status: 400, code: 'TESSERA_E_REQUEST_INVALID' },
  );
  await send('chat-ok', `/v1/chat/completions${q}`, { json: chat() }, { status: 200, model: 'chat', version: '1' });
  const stream = await send('chat-stream', `/v1/chat/completions${q}`, { json: chat({ stream: true }) }, { status: 200, model: 'chat', version: '1' });
  expect(stream.text).toContain('data: [DONE]');
  await send('chat-bad-body', `/v1/chat/completions${q}`, { json: { model: 'chat', messages: SECRETS.promptMarker } }, { status: 400, code: 'TESSERA_E_REQUEST_INVALID' });
  await send('chat-unknown-model', `/v1/chat/completions${q}`, { json: { ...chat(), model: 'no-such-llm' } }, { status: 404, code: 'TESSERA_E_MODEL_NOT_FOUND' });
  await standIn.setFaults({ failNext: 1 });
  await send('chat-upstream-500', `/v1/chat/completions${q}`, { json: chat() }, { status: 502, model: 'chat', version: '1', code: 'TESSERA_E_UPSTREAM_FAILED' });
  await standIn.setFaults({ dropStreams: 1, dropAfterTokens: 1 });
  await send('chat-stream-broken', `/v1/chat/completions${q}`, { json: chat({ stream: true, max_tokens: 8 }) }, { status: 200, model: 'chat', version: '1', code: 'TESSERA_E_STREAM_INTERRUPTED' });
  await send('metrics', `/metrics${q}`, { method: 'GET' }, { status: 200 });
  await send('unknown-route', `/no/such/route${q}`, { method: 'GET' }, { status: 404, code: 'TESSERA_E_ROUTE_NOT_FOUND' });

  // a client that leaves a stream: one line, 499. Over node:http without an agent, so that the
  // socket is really gone (fetch's pool may leave a fresh connection open, which holds up shutdown)
  await standIn.setFaults({ tokenDelayMs: 100 });
  const gone = await new Promise<string | null>((resolve, reject) => {
    const body = JSON.stringify(chat({ stream: true, max_tokens: 50 }));
    const req = request(
      `${server.url}/v1/chat/completions${q}`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...CLIENT_AUTH, 'x-request-id': `${prefix}-chat-client-gone` } },
      (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', () => {
          req.destroy();
          resolve((res.headers['x-trace-id'] as string | undefined) ?? null);
        });
      },
    );
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end(body);
  });
  out.push({ id: `${prefix}-chat-client-gone`, status: 499, model: 'chat', version: '1', url: '/v1/chat/completions', traceId: gone });
  await standIn.setFaults({ tokenDelayMs: null });
  return out;
}

/** The access-log lines (`msg: 'request'`) of a process. */
const accessLines = (server: TesseraProcess) => jsonLines(server.stdout).filter((l) => l.msg === 'request');

/** Waits until every expected request has its access line (the client-gone one comes a little later). */
async function waitForAccessLines(server: TesseraProcess, expected: Expected[]): Promise<void> {
  await waitFor(() => expected.every((e) => accessLines(server).some((l) => l.reqId === e.id)), {
    message: () => `access lines missing for ${expected.filter((e) => !accessLines(server).some((l) => l.reqId === e.id)).map((e) => e.id).join(', ')}`,
  });
}

/** Every secret or marker found in the output: `name: line`. */
function leaks(server: TesseraProcess): string[] {
  const found: string[] = [];
  for (const [stream, lines] of [['stdout', server.stdout], ['stderr', server.stderr]] as const) {
    for (const line of lines) {
      for (const [name, secret] of Object.entries(SECRETS)) if (line.includes(secret)) found.push(`${name} in ${stream}: ${line}`);
    }
  }
  return found;
}

describe.each(['info', 'debug'])('at logLevel %s', (level) => {
  let server: TesseraProcess;
  let expected: Expected[];

  beforeAll(async () => {
    await standIn.reset();
    server = await startServer(level);
    expected = await exercise(server, level);
    await waitForAccessLines(server, expected);
    // shutdown logs count too
    expect(await server.stop()).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('should write exactly one access line per request, with reqId, traceId = X-Trace-Id, model, version, status and ms', () => {
    const lines = accessLines(server);
    for (const e of expected) {
      const mine = lines.filter((l) => l.reqId === e.id);
      expect(mine, `access lines of ${e.id}`).toHaveLength(1);
      const line = mine[0]!;
      expect(line.level, e.id).toBe(30);
      expect(line.status, e.id).toBe(e.status);
      expect(line.url, e.id).toBe(e.url);
      expect(line.model, e.id).toBe(e.model);
      expect(line.version, e.id).toBe(e.version);
      if (e.code) expect(line.code, e.id).toBe(e.code);
      expect(typeof line.ms, e.id).toBe('number');
      expect(line.ms as number, e.id).toBeGreaterThanOrEqual(0);
      expect(e.traceId, `${e.id}: X-Trace-Id`).toMatch(/^[0-9a-f]{32}$/);
      expect(line.traceId, e.id).toBe(e.traceId);
      expect(typeof line.time, e.id).toBe('number');
    }
    // and no access line for anything else (health probes of the stand-in are outgoing, not requests)
    expect(lines.map((l) => l.reqId).sort()).toEqual(expected.map((e) => e.id).sort());
  });

  it('should have sent the upstream key and the collector credentials (so their absence from the logs means something)', async () => {
    expect(accessLines(server).find((l) => l.reqId === `${level}-chat-ok`)?.status).toBe(200);
    await waitFor(() => receiver.exports.some((e) => e.headers.authorization === `Bearer ${SECRETS.collectorToken}`), { message: () => 'no export with the collector token' });
  });

  it('should never write a secret, a query string or a request body, on stdout or stderr', () => {
    expect(leaks(server)).toEqual([]);
    const all = [...server.stdout, ...server.stderr].join('\n');
    expect(all).not.toContain('?token=');
    expect(all).not.toMatch(/Bearer [^"\\[]/);
    // the plugin says where it exports to, without credentials, and names the header only
    const start = jsonLines(server.stdout).find((l) => l.msg === 'tracing: exporting spans over OTLP');
    expect(start).toMatchObject({ endpoint: `${receiver.url}/v1/traces`, headers: ['authorization'] });
  });

  it('should log a 5xx at error level, without the request body', () => {
    const errors = jsonLines(server.stdout).filter((l) => l.reqId === `${level}-chat-upstream-500` && l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('TESSERA_E_UPSTREAM_FAILED');
  });

  it('should keep secrets out of the exported spans too', () => {
    const exported = receiver.exports.map((e) => e.body).join('\n');
    for (const [name, secret] of Object.entries(SECRETS)) expect(exported.includes(secret), `${name} in an exported span`).toBe(false);
  });
});

describe('at logLevel warn', () => {
  let server: TesseraProcess;

  beforeAll(async () => {
    await standIn.reset();
    server = await startServer('warn');
    await exercise(server, 'warn');
    expect(await server.stop()).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('should write no access lines and nothing below warn, but still the errors', () => {
    const lines = jsonLines(server.stdout);
    expect(lines.filter((l) => l.msg === 'request')).toEqual([]);
    expect(lines.filter((l) => (l.level as number) < 40)).toEqual([]);
    expect(lines.some((l) => l.reqId === 'warn-chat-upstream-500' && l.level === 50)).toBe(true);
    expect(leaks(server)).toEqual([]);
  });
});
