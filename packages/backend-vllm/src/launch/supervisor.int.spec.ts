/**
 * The replica supervisor with the vLLM stand-in executable (`@tessera/vllm-stand-in`'s
 * `bin/vllm-stand-in.js`, run with this node) as `vllm`: start, the command line and
 * CUDA_VISIBLE_DEVICES each replica gets, restarts with backoff, failed starts, startup timeouts,
 * and stop (SIGTERM, SIGKILL). Needs the built packages (`npm run build`), as `npm test` does.
 * The launch section's schema and command line are unit-tested in config.spec.ts.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isTesseraError } from '@tessera/core';
import { processAlive } from '@tessera/core/testing';
import { VLLM_STAND_IN_BIN } from '@tessera/vllm-stand-in';
import type { LaunchConfig } from './index.js';
import { ReplicaSupervisor, vllmServeArgs } from './index.js';

const BUILT_CLI = join(dirname(VLLM_STAND_IN_BIN), '..', 'dist', 'cli.js');

interface LogEntry {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

function testLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const log =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      if (typeof obj === 'string') entries.push({ level, obj: {}, msg: obj });
      else entries.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });
    };
  const logger = { trace: log('trace'), debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), fatal: log('fatal') };
  return { logger: logger as unknown as Logger, entries };
}

/** The `VLLM_STAND_IN_ARGS` line each stand-in printed, by replica. */
function printedArgs(entries: LogEntry[]): Map<number, any> {
  const out = new Map<number, any>();
  for (const e of entries) {
    if (e.level === 'debug' && e.msg.startsWith('VLLM_STAND_IN_ARGS ')) out.set(e.obj.replica as number, JSON.parse(e.msg.slice('VLLM_STAND_IN_ARGS '.length)));
  }
  return out;
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

function config(overrides: Partial<LaunchConfig> = {}): LaunchConfig {
  return {
    command: process.execPath,
    args: [VLLM_STAND_IN_BIN],
    model: 'org/stand-in',
    basePort: 0,
    gpus: [[0]],
    healthInterval: 50,
    startupTimeout: '20s',
    stopTimeout: '5s',
    ...overrides,
  };
}

const supervisors: ReplicaSupervisor[] = [];
let tmp: string;

function supervise(options: Omit<ConstructorParameters<typeof ReplicaSupervisor>[0], 'logger' | 'modelName'> & { modelName?: string }): { supervisor: ReplicaSupervisor; entries: LogEntry[] } {
  const { logger, entries } = testLogger();
  const supervisor = new ReplicaSupervisor({ modelName: 'chat', logger, ...options });
  supervisors.push(supervisor);
  return { supervisor, entries };
}

beforeAll(() => {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: build the package first (npm run build)`);
  tmp = mkdtempSync(join(tmpdir(), 'tessera-launch-'));
});

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('ReplicaSupervisor', () => {
  it('starts one replica per GPU set with vLLM\'s command line and CUDA_VISIBLE_DEVICES, and stops them', async () => {
    const c = config({
      servedModelName: 'chat',
      gpus: [[0], [1, 2]],
      maxModelLen: 512,
      maxNumSeqs: 8,
      gpuMemoryUtilization: 0.8,
      quantization: 'awq',
      enablePrefixCaching: true,
      extraArgs: ['--enforce-eager'],
      env: { VLLM_STAND_IN_TOKEN_DELAY_MS: '0' },
    });
    const { supervisor, entries } = supervise({ config: c });
    const urls = await supervisor.start();
    expect(urls).toHaveLength(2);
    expect(urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const url of urls) {
      const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
      expect(models.data[0]).toMatchObject({ id: 'chat', root: 'org/stand-in', max_model_len: 512 });
      const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }) });
      expect(r.status).toBe(200);
    }
    const printed = printedArgs(entries);
    const infos = supervisor.replicas();
    for (const info of infos) {
      const p = printed.get(info.index);
      expect(p.argv).toEqual(vllmServeArgs(c, info.index, info.port));
      expect(p.env.CUDA_VISIBLE_DEVICES).toBe(info.gpus.join(','));
      expect(p.pid).toBe(info.pid);
    }
    expect(printed.get(0)).toMatchObject({ tensorParallelSize: 1, maxModelLen: 512, maxNumSeqs: 8, gpuMemoryUtilization: 0.8, quantization: 'awq', enablePrefixCaching: true });
    expect(printed.get(1)).toMatchObject({ tensorParallelSize: 2, env: { CUDA_VISIBLE_DEVICES: '1,2' } });
    expect(infos.map((i) => i.state)).toEqual(['up', 'up']);

    const pids = infos.map((i) => i.pid);
    expect(pids.every(processAlive)).toBe(true);
    await supervisor.stop();
    expect(pids.some(processAlive)).toBe(false);
    expect(supervisor.replicas().map((i) => i.state)).toEqual(['stopped', 'stopped']);
    await supervisor.stop(); // idempotent
  });

  it('restarts a replica that exits, calling onDown then onUp', async () => {
    const marker = join(tmp, 'crashed-once');
    const events: string[] = [];
    const { supervisor } = supervise({
      config: config({ env: { VLLM_STAND_IN_EXIT_AFTER_MS: '200', VLLM_STAND_IN_CRASH_MARKER: marker }, restartBackoff: { initialMs: 50 } }),
      onDown: (url, index, reason) => events.push(`down ${index} ${url} ${reason}`),
      onUp: (url, index) => events.push(`up ${index} ${url}`),
    });
    const [url] = await supervisor.start();
    const firstPid = supervisor.replicas()[0]!.pid;
    await until(() => events.length === 2);
    expect(events).toEqual([`down 0 ${url} exited with code 1`, `up 0 ${url}`]);
    const info = supervisor.replicas()[0]!;
    expect(info).toMatchObject({ state: 'up', restarts: 1 });
    expect(info.pid).not.toBe(firstPid);
    expect(processAlive(firstPid)).toBe(false);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('backs off between restarts of a replica that keeps crashing, and never restarts after stop()', async () => {
    const { supervisor, entries } = supervise({
      config: config({ env: { VLLM_STAND_IN_EXIT_AFTER_MS: '100' }, restartBackoff: { initialMs: 50, maxMs: 200 } }),
    });
    await supervisor.start();
    // The restart delays, as logged: doubling up to maxMs (a restart that crashes counts as failed).
    const restartDelays = (): unknown[] => entries.filter((e) => e.obj.delayMs !== undefined).map((e) => e.obj.delayMs);
    await until(() => restartDelays().length >= 4, 20_000);
    const delays = restartDelays();
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 200]);
    await supervisor.stop();
    const restarts = supervisor.replicas()[0]!.restarts;
    await sleep(400);
    expect(supervisor.replicas()[0]).toMatchObject({ state: 'stopped', restarts });
    expect(processAlive(supervisor.replicas()[0]!.pid)).toBe(false);
  });

  it('starts the backoff afresh for a replica that stayed up for resetAfterMs', async () => {
    let downs = 0;
    const { supervisor, entries } = supervise({
      config: config({ env: { VLLM_STAND_IN_EXIT_AFTER_MS: '400' }, restartBackoff: { initialMs: 50, maxMs: 1000, resetAfterMs: 100 } }),
      onDown: () => downs++,
    });
    await supervisor.start();
    await until(() => downs >= 3, 20_000);
    const delays = entries.filter((e) => e.obj.delayMs !== undefined).map((e) => e.obj.delayMs);
    expect(delays.slice(0, 3)).toEqual([50, 50, 50]);
  });

  it('fails the start with TESSERA_E_LAUNCH_FAILED, the exit code and the last output when the command exits', async () => {
    const { supervisor } = supervise({
      config: config({ args: ['-e', "console.log('loading weights'); console.error('RuntimeError: CUDA error: no CUDA-capable device is detected'); process.exit(3)"] }),
    });
    const err = await rejection(supervisor.start());
    expect(isTesseraError(err) && err.code).toBe('TESSERA_E_LAUNCH_FAILED');
    expect(err.message).toContain('replica 0');
    expect(err.message).toContain('exited with code 3');
    expect(err.message).toContain('RuntimeError: CUDA error: no CUDA-capable device is detected');
    expect(err.message).toContain('loading weights');
  });

  it('reports vLLM\'s argparse error for a flag it does not know', async () => {
    const { supervisor } = supervise({ config: config({ extraArgs: ['--no-such-flag'] }) });
    const err = await rejection(supervisor.start());
    expect(err.code).toBe('TESSERA_E_LAUNCH_FAILED');
    expect(err.message).toContain('exited with code 2');
    expect(err.message).toContain('vllm serve: error: unrecognized arguments: --no-such-flag');
  });

  it('fails a command that does not exist', async () => {
    const { supervisor } = supervise({ config: config({ command: join(tmp, 'no-such-vllm'), args: [] }) });
    const err = await rejection(supervisor.start());
    expect(err.code).toBe('TESSERA_E_LAUNCH_FAILED');
    expect(err.message).toContain('ENOENT');
  });

  it('fails a replica that misses startupTimeout, and kills it', async () => {
    const { supervisor } = supervise({ config: config({ startupTimeout: 400, env: { VLLM_STAND_IN_STARTUP_MS: '30000' } }) });
    const started = Date.now();
    const err = await rejection(supervisor.start());
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.code).toBe('TESSERA_E_LAUNCH_FAILED');
    expect(err.message).toContain('within 400 ms');
    expect(err.message).toContain('Loading model weights');
    expect(processAlive(supervisor.replicas()[0]!.pid)).toBe(false);

    const { supervisor: unhealthy } = supervise({ config: config({ startupTimeout: 400, env: { VLLM_STAND_IN_UNHEALTHY: '1' } }) });
    expect((await rejection(unhealthy.start())).message).toContain('/health with 200 within 400 ms');
  });

  it('stops the replicas that started when another one fails', async () => {
    // Two consecutive ports: the first free (replica 0), the second taken (replica 1 cannot listen).
    let blocker: Server | undefined;
    let base = 0;
    for (let attempt = 0; attempt < 20 && !blocker; attempt++) {
      const probe = createServer();
      const p = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
      // It resets every connection (the supervisor's health checks reach it too).
      const next = createServer((socket) => socket.destroy());
      const ok = await new Promise<boolean>((resolve) => {
        next.once('error', () => resolve(false));
        next.listen(p + 1, '127.0.0.1', () => resolve(true));
      });
      await new Promise((resolve) => probe.close(resolve));
      if (ok) {
        blocker = next;
        base = p;
      }
    }
    expect(blocker).toBeDefined();
    try {
      const { supervisor, entries } = supervise({ config: config({ basePort: base, gpus: [[0], [1]] }) });
      const err = await rejection(supervisor.start());
      expect(err.code).toBe('TESSERA_E_LAUNCH_FAILED');
      expect(err.message).toContain('replica 1');
      expect(err.message).toContain('exited with code 1');
      const pids = [...printedArgs(entries).values()].map((p) => p.pid as number);
      expect(pids.length).toBeGreaterThanOrEqual(1);
      expect(pids.some(processAlive)).toBe(false);
      expect(supervisor.replicas().map((r) => r.state)).toEqual(['stopped', 'stopped']);
    } finally {
      await new Promise((resolve) => blocker!.close(resolve));
    }
  });

  it('SIGKILLs a replica that ignores SIGTERM after stopTimeout', async () => {
    const { supervisor, entries } = supervise({ config: config({ stopTimeout: 300, env: { VLLM_STAND_IN_IGNORE_SIGTERM: '1' } }) });
    await supervisor.start();
    const pid = supervisor.replicas()[0]!.pid;
    const t0 = Date.now();
    await supervisor.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(processAlive(pid)).toBe(false);
    expect(entries.some((e) => e.level === 'warn' && e.msg.includes('SIGKILL'))).toBe(true);
  });

  it('stop() during start() makes start() fail and kills the replica', async () => {
    const { supervisor } = supervise({ config: config({ env: { VLLM_STAND_IN_STARTUP_MS: '30000' } }) });
    const starting = rejection(supervisor.start());
    await until(() => supervisor.replicas()[0]!.pid !== undefined);
    const pid = supervisor.replicas()[0]!.pid;
    await supervisor.stop();
    const err = await starting;
    expect(err.code).toBe('TESSERA_E_LAUNCH_FAILED');
    expect(err.message).toContain('stopped');
    expect(processAlive(pid)).toBe(false);
    await expect(supervisor.start()).rejects.toThrow('stopped');
  });
});
