/**
 * Credentials never leave the request: the real CLI with `auth` (an API key from `${ENV}`, a keys
 * file, a JWKS file), `logLevel: debug` (pino JSON on stdout) and `@tessera/tracing` exporting
 * OTLP/JSON to a receiver in this process. Authenticated and refused requests over every way of
 * sending a credential, then: no key or token string in any log line, in any exported span (raw
 * OTLP body), in the 401/403 bodies and headers, or in the `/metrics` text; and the principal's id
 * is what identifies a caller.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera, writeTestModels } from '@tessera/core/testing';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, tempDir, writeConfig } from './helpers.js';
import type { OtlpReceiver } from './otlp-receiver.js';
import { startOtlpReceiver, waitFor } from './otlp-receiver.js';

const CLEAN_ENV: Record<string, string | undefined> = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).map((k) => [k, undefined]));

const SECRET = {
  envKey: 'env-key-SECRET-4c1e7a9b2d',
  fileKey: 'file-key-SECRET-8d3f2a6c1b',
  wrongKey: 'wrong-key-SECRET-5e9b0c4d7a',
  metricsKey: 'metrics-key-SECRET-2f7a1c9e3b',
};
const INFER = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

let dir: string;
let receiver: OtlpReceiver;
let server: TesseraProcess;
let token: string;
let forged: string;
/** Every string that must never be written anywhere. */
let secrets: string[];

beforeAll(async () => {
  dir = await tempDir('tessera-auth-secrets-');
  const models = await writeTestModels(dir);
  receiver = await startOtlpReceiver();
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  await writeFile(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] }));
  token = await new SignJWT({ scope: 'infer', sub: 'svc-jwt' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://issuer.test/').setExpirationTime('5m').sign(privateKey);
  const [h, p] = token.split('.');
  forged = `${h}.${p}.${'A'.repeat(40)}`;
  secrets = [...Object.values(SECRET), token, ...token.split('.').filter((part) => part.length > 20), forged.split('.')[2]!];
  await writeFile(path.join(dir, 'keys.yaml'), `- { name: from-file, key: ${SECRET.fileKey} }\n`);
  const config = await writeConfig(dir, {
    server: { host: '127.0.0.1', port: 0, logLevel: 'debug' },
    plugins: ['@tessera/tracing'],
    tracing: { endpoint: receiver.url, protocol: 'http/json', serviceName: 'tessera-auth-it', sampleRatio: 1, batch: { scheduledDelay: 50 } },
    models: { affine: { path: models.affine.path } },
    auth: {
      apiKeys: [
        { name: 'from-env', key: '${TEST_API_KEY}', scopes: ['infer'] },
        { name: 'scraper', key: SECRET.metricsKey, scopes: ['metrics'] },
      ],
      apiKeysFile: './keys.yaml',
      jwt: { jwks: './jwks.json', issuer: 'https://issuer.test/', algorithms: ['RS256'] },
      metrics: 'protected',
    },
  });
  server = await startTessera({ args: ['serve', '-c', config], env: { ...CLEAN_ENV, TEST_API_KEY: SECRET.envKey } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await receiver?.close();
});

describe('credentials in logs, spans, errors and metrics', () => {
  const answers: { status: number; text: string; headers: string }[] = [];
  const send = async (url: string, headers: Record<string, string>, json: unknown = INFER) => {
    const r = await http(url, { json, headers });
    answers.push({ status: r.status, text: r.text, headers: JSON.stringify([...r.headers.entries()]) });
    return r;
  };

  beforeAll(async () => {
    const infer = `${server.url}/v2/models/affine/infer`;
    const ok = [
      await send(infer, { authorization: `Bearer ${SECRET.envKey}` }),
      await send(infer, { 'x-api-key': SECRET.fileKey }),
      await send(infer, { authorization: `Bearer ${token}` }),
      await send(`${server.url}/v1/predict`, { authorization: `Bearer ${token}` }, { model: 'affine', inputs: { x: [[1, 2, 3, 4]] } }),
    ];
    for (const r of ok) expect(r.status, r.text).toBe(200);
    const refused = [
      await send(infer, { authorization: `Bearer ${SECRET.wrongKey}` }),
      await send(infer, { 'x-api-key': SECRET.wrongKey }),
      await send(infer, { authorization: `Bearer ${forged}` }),
      await send(infer, { authorization: SECRET.wrongKey }),
      await send(infer, { authorization: `Basic ${Buffer.from(`user:${SECRET.wrongKey}`).toString('base64')}` }),
      await send(`${server.url}/v1/chat/completions`, { authorization: `Bearer ${SECRET.wrongKey}` }, { model: 'affine', messages: [{ role: 'user', content: 'hi' }] }),
      await send(`${server.url}/v2/repository/index`, { authorization: `Bearer ${SECRET.envKey}` }, {}),
      await send(infer, { 'x-api-key': SECRET.metricsKey }),
    ];
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401, 403, 403]);
    const metrics = await http(`${server.url}/metrics`, { headers: { 'x-api-key': SECRET.metricsKey } });
    expect(metrics.status).toBe(200);
    answers.push({ status: metrics.status, text: metrics.text, headers: JSON.stringify([...metrics.headers.entries()]) });
    // every request above is one access-log line and one server span
    await waitFor(() => server.stdout.filter((l) => l.includes('"msg":"request"')).length >= 13, { timeoutMs: 10_000 });
    await waitFor(() => receiver.spans.filter((sp) => sp.name.startsWith('POST ') || sp.name.startsWith('GET ')).length >= 13, { timeoutMs: 10_000 });
  }, 30_000);

  const leaks = (text: string): string[] => secrets.filter((secret) => text.includes(secret));

  it('should write no key or token into any log line, at debug', () => {
    const all = [...server.stdout, ...server.stderr].join('\n');
    expect(server.stdout.length).toBeGreaterThan(13);
    expect(leaks(all)).toEqual([]);
  });

  it('should put no key or token into any exported span (the raw OTLP bodies)', () => {
    expect(receiver.exports.length).toBeGreaterThan(0);
    expect(leaks(receiver.exports.map((e) => e.body).join('\n'))).toEqual([]);
    const refusedSpans = receiver.spans.filter((sp) => JSON.stringify(sp.attributes).includes('TESSERA_E_AUTH_'));
    expect(refusedSpans.length).toBeGreaterThanOrEqual(8);
  });

  it('should echo no key or token in any answer (bodies and headers of 401s, 403s) or in /metrics', () => {
    expect(answers.length).toBe(13);
    expect(leaks(answers.map((a) => `${a.text}\n${a.headers}`).join('\n'))).toEqual([]);
    const metrics = answers.at(-1)!.text;
    expect(metrics).toMatch(/tessera_auth_refused_total\{reason="invalid"\} [1-9]/);
    expect(metrics).toMatch(/tessera_auth_refused_total\{reason="forbidden"\} 2/);
  });
});
