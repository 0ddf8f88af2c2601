/**
 * The container image (deploy/docker/Dockerfile), really built and run: scripts/build-image.sh builds it
 * with buildah (on a local Debian base from debootstrap unless TESSERA_IMAGE_REGISTRY_BASE=1), the test
 * checks its config (non-root, HEALTHCHECK, port), starts `tessera serve` inside it with
 * `buildah run --isolation chroot` (the host's network: the server listens on 127.0.0.1), runs the
 * image's own health check, sends a real inference to the baked PP-OCR model and stops it.
 * Needs root and `apt-get install -y buildah debootstrap`; without buildah it skips with a reason.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, http } from '../integration/helpers.js';

const BUILDAH = process.env.BUILDAH ?? 'buildah';
const TAG = 'localhost/tessera:test';
const BUILD_TIMEOUT_MS = 9 * 60_000;

interface Run { code: number; stdout: string; stderr: string }

function exec(bin: string, args: string[], options: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run & { missing?: boolean }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: ROOT, timeout: options.timeout ?? 60_000, env: options.env ?? process.env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e?.code === 'ENOENT') resolve({ code: -1, stdout, stderr, missing: true });
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

const buildahMissing = (await exec(BUILDAH, ['--version'])).missing === true;
const notRoot = process.getuid?.() !== 0;
const skipReason = buildahMissing
  ? `buildah is not installed (apt-get install -y buildah debootstrap)`
  : notRoot ? 'buildah needs root here (no rootless setup)' : undefined;
if (skipReason) console.warn(`[image.int.spec] SKIPPED the container image tests: ${skipReason}`);

/** Runs a command in a fresh container of the image (chroot isolation); removes the container after. */
async function inImage(container: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  return exec(BUILDAH, ['run', '--isolation', 'chroot', ...envArgs, container, '--', ...args]);
}

describe.skipIf(skipReason !== undefined)('container image (buildah)', () => {
  let container = '';
  let image: { Docker?: { config?: Record<string, any> }; OCIv1?: { config?: Record<string, any> } };

  beforeAll(async () => {
    const env = { ...process.env, TESSERA_LOCAL_BASE: process.env.TESSERA_IMAGE_REGISTRY_BASE === '1' ? '0' : '1' };
    const built = await exec('scripts/build-image.sh', [TAG], { timeout: BUILD_TIMEOUT_MS, env });
    if (built.code !== 0) throw new Error(`scripts/build-image.sh failed (${built.code}):\n${(built.stdout + built.stderr).slice(-4000)}`);
    image = JSON.parse((await exec(BUILDAH, ['inspect', '--type', 'image', TAG])).stdout);
    const from = await exec(BUILDAH, ['from', '--pull-never', TAG]);
    if (from.code !== 0) throw new Error(`buildah from: ${from.stderr}`);
    container = from.stdout.trim();
  }, BUILD_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    if (container) await exec(BUILDAH, ['rm', container]);
  });

  it('runs as uid 10001, exposes 8000, has a HEALTHCHECK on /v2/health/ready and `tessera` as entrypoint', () => {
    const config = image.Docker?.config ?? {};
    expect(config.User).toBe('10001:10001');
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8000/tcp']);
    expect(config.Healthcheck?.Test?.join(' ')).toContain('/v2/health/ready');
    expect(config.Entrypoint).toEqual(['tessera']);
    expect(config.Cmd).toEqual(['serve', '-c', '/opt/tessera/tessera.config.yaml']);
  });

  it('has production dependencies only, /bin/sh and sleep, and writes only to /tmp and /var/lib/tessera', async () => {
    const r = await inImage(container, ['sh', '-c', [
      'id -u', 'command -v sleep', 'command -v tessera',
      'test ! -e /opt/tessera/node_modules/turbo && echo no-turbo',
      'test ! -e /opt/tessera/node_modules/vitest && echo no-vitest',
      'touch /tmp/w && echo tmp-ok', 'touch /var/lib/tessera/w && echo state-ok',
      'touch /opt/tessera/w 2>/dev/null || echo opt-ro', 'touch /etc/w 2>/dev/null || echo etc-ro',
      'rm -f /tmp/w /var/lib/tessera/w',
    ].join('; ')]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      '10001', '/usr/bin/sleep', '/usr/local/bin/tessera', 'no-turbo', 'no-vitest', 'tmp-ok', 'state-ok', 'opt-ro', 'etc-ro',
    ]);
  });

  it('serves the default config: health check passes and a real inference answers', async () => {
    const port = await freePort();
    // SIGTERM to `buildah run` reaches the server (it drains and exits); no TESSERA_PARENT_PID: its parent is buildah's
    const server: ChildProcess = spawn(BUILDAH, ['run', '--isolation', 'chroot', '--env', `TESSERA_PORT=${port}`, '--env', 'TESSERA_HOST=127.0.0.1',
      container, '--', 'tessera', 'serve', '-c', '/opt/tessera/tessera.config.yaml'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    server.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    server.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    const exited = once(server, 'exit');
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}):\n${log.slice(-3000)}`);
        const ready = await fetch(`${base}/v2/health/ready`).then((r) => r.status, () => 0);
        if (ready === 200) break;
        if (Date.now() > deadline) throw new Error(`not ready after 120 s:\n${log.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      // the image's HEALTHCHECK command, run inside the image
      const check = image.Docker?.config?.Healthcheck?.Test as string[];
      expect(check[0]).toBe('CMD');
      const health = await inImage(container, check.slice(1), { TESSERA_PORT: String(port) });
      expect(health.code, `HEALTHCHECK: ${health.stdout}${health.stderr}`).toBe(0);

      // an upright dark text line on white: a real PNG through the baked PP-OCR text-orientation model
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="192" height="48"><rect width="192" height="48" fill="white"/>` +
        `<text x="6" y="34" font-size="28" font-family="sans-serif" fill="black">Tessera 2026</text></svg>`;
      const png = await sharp(Buffer.from(svg)).png().toBuffer();
      const res = await http(`${base}/v1/predict`, { method: 'POST', json: { model: 'text-orientation', inputs: { image: png.toString('base64') } } });
      expect(res.status).toBe(200);
      expect(res.body.model_name).toBe('text-orientation');
      expect(res.body.predictions).toHaveLength(1);
      expect(['0', '180']).toContain(res.body.predictions[0].label);
      expect(res.body.predictions[0].score).toBeGreaterThan(0.5);
      expect(res.body.predictions[0].score).toBeLessThanOrEqual(1);
    } finally {
      if (server.exitCode === null) server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    // stopped: nothing listens on the port any more, and the image's health check says so
    expect(await fetch(`http://127.0.0.1:${port}/v2/health/live`).then(() => 'up', () => 'down')).toBe('down');
    const check = image.Docker?.config?.Healthcheck?.Test as string[];
    expect((await inImage(container, check.slice(1), { TESSERA_PORT: String(port) })).code).not.toBe(0);
  }, 180_000);
});
