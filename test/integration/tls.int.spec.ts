/**
 * `server.tls` through the real CLI: HTTPS with a certificate made by `openssl` for the test (a CA,
 * a server certificate for 127.0.0.1, client certificates from that CA and from another), mutual
 * TLS when `ca` is set (no certificate, or one from another CA, is refused in the handshake), the
 * ready line's https URL, and a missing file refused at start with the key that names it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { runTesseraCli, startTessera, writeTestModels } from '@tessera/core/testing';
import { tempDir, writeConfig } from './helpers.js';

const OPENSSL = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim();

let dir: string;
let models: TestModelCatalog;
const servers: TesseraProcess[] = [];
const INFER = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

function openssl(...args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
}

/** A CA (`name`.crt/.key). */
function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
}

/** A certificate signed by `ca`, for `cn` (with 127.0.0.1 as its address when it is a server's). */
async function makeCert(name: string, ca: string, cn: string, server: boolean): Promise<void> {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  const ext = server ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n';
  await writeFile(path.join(dir, `${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
}

const file = (name: string) => readFile(path.join(dir, name));

async function serve(name: string, tls: Record<string, string>): Promise<TesseraProcess> {
  const config = await writeConfig(dir, { server: { tls }, models: { affine: { path: models.affine.path } } }, `${name}.yaml`);
  const p = await startTessera({ args: ['serve', '-c', config, '--port', '0', '--host', '127.0.0.1'] });
  servers.push(p);
  return p;
}

async function infer(url: string, connect: Record<string, unknown>): Promise<number> {
  const agent = new Agent({ connect });
  try {
    const res = await request(`${url}/v2/models/affine/infer`, { method: 'POST', body: INFER, headers: { 'content-type': 'application/json' }, dispatcher: agent });
    await res.body.text();
    return res.statusCode;
  } finally {
    await agent.close();
  }
}

describe.skipIf(!OPENSSL)(`server.tls${OPENSSL ? '' : ' (skipped: openssl is not installed; Debian package "openssl")'}`, () => {
  beforeAll(async () => {
    dir = await tempDir('tessera-tls-');
    models = await writeTestModels(dir);
    makeCa('ca');
    makeCa('other-ca');
    await makeCert('server', 'ca', '127.0.0.1', true);
    await makeCert('client', 'ca', 'client-app', false);
    await makeCert('stranger', 'other-ca', 'stranger', false);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('serves HTTPS with the configured certificate, and plain HTTP to the port gets no answer', async () => {
    const s = await serve('https', { cert: 'server.crt', key: 'server.key' });
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await infer(s.url, { ca: await file('ca.crt') })).toBe(200);
    // a client that does not trust the CA refuses the server
    await expect(infer(s.url, {})).rejects.toThrow(/self.signed|unable to verify|certificate/i);
    const plain = await fetch(s.url.replace('https:', 'http:') + '/v2/health/live').then(
      (r) => r.status,
      () => 'failed',
    );
    expect(plain === 'failed' || plain === 400).toBe(true);
  });

  it('with ca: requires a client certificate signed by it (mutual TLS)', async () => {
    const s = await serve('mtls', { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' });
    const ca = await file('ca.crt');
    expect(await infer(s.url, { ca, cert: await file('client.crt'), key: await file('client.key') })).toBe(200);
    await expect(infer(s.url, { ca })).rejects.toThrow();
    await expect(infer(s.url, { ca, cert: await file('stranger.crt'), key: await file('stranger.key') })).rejects.toThrow();
  });

  it('a missing certificate file stops the start with the key that names it', async () => {
    const config = await writeConfig(dir, { server: { tls: { cert: 'nope.crt', key: 'server.key' } }, models: { affine: { path: models.affine.path } } }, 'missing.yaml');
    const r = await runTesseraCli({ args: ['serve', '-c', config, '--port', '0'] });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TESSERA_E_CONFIG_INVALID: server\.tls\.cert: cannot read .*nope\.crt/);
  });
});
