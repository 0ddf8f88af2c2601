/**
 * Managed vLLM replicas (`launch:`) end to end through the `tessera` CLI: the gateway starts one
 * `vllm serve` process per GPU set — here `@tessera/vllm-stand-in`'s executable, which takes
 * `vllm serve`'s command line and prints what it parsed — routes chat through them, restarts one
 * killed with SIGKILL while the other serves, and stops them all on SIGTERM. Launch failures stop
 * the server (`exitOnModelError`) or leave the model failed.
 */
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { processAlive, runTesseraCli, startTessera } from '@tessera/core/testing';
import { VLLM_STAND_IN_BIN } from '@tessera/vllm-stand-in';
import { tempDir, writeConfig } from './helpers.js';

const started: TesseraProcess[] = [];
/** Pids of every replica a test saw started: none may outlive the file. */
const replicaPids = new Set<number>();

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
  // the gateway's exit hook kills its replicas' process groups; a leftover here is a bug
  for (const pid of replicaPids) {
    if (processAlive(pid)) {
      process.kill(-pid, 'SIGKILL');
      throw new Error(`replica process ${pid} outlived its gateway`);
    }
  }
});


async function serve(file: string, options: { env?: Record<string, string | undefined> } = {}): Promise<TesseraProcess> {
  const proc = await startTessera({ args: ['serve', '-c', file], timeoutMs: 60_000, ...options });
  started.push(proc);
  return proc;
}

/** The gateway's JSON log lines. */
function logLines(proc: TesseraProcess): Record<string, any>[] {
  return proc.stdout.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, any>];
    } catch {
      return [];
    }
  });
}

/** The supervisor's `starting vLLM replica` lines: replica, command, args, gpus. */
function starts(proc: TesseraProcess): { replica: number; command: string; args: string[]; gpus: number[] }[] {
  return logLines(proc).filter((l) => typeof l.msg === 'string' && / starting vLLM replica \d+ on port /.test(l.msg)) as never;
}

/**
 * What each replica process printed about itself (`VLLM_STAND_IN_ARGS {json}`: its parsed command
 * line, `CUDA_VISIBLE_DEVICES` and pid), which the supervisor logs at debug level; in start order.
 */
function printedArgs(proc: TesseraProcess): { replica: number; pid: number; args: Record<string, any> }[] {
  return logLines(proc)
    .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('VLLM_STAND_IN_ARGS '))
    .map((l) => {
      const args = JSON.parse((l.msg as string).slice('VLLM_STAND_IN_ARGS '.length)) as Record<string, any>;
      replicaPids.add(args.pid as number);
      return { replica: l.replica as number, pid: args.pid as number, args };
    });
}

/** The pid of each replica's latest process. */
function currentPids(proc: TesseraProcess): Map<number, number> {
  return new Map(printedArgs(proc).map((p) => [p.replica, p.pid]));
}

function portOf(args: string[]): number {
  return Number(args[args.indexOf('--port') + 1]);
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function standInStats(url: string): Promise<{ received: number; completed: number }> {
  return (await fetch(`${url}/stand-in/stats`)).json() as Promise<any>;
}

const messages = [{ role: 'user' as const, content: 'Hello from the managed replicas test.' }];

describe('managed replicas (launch) through the CLI', { timeout: 60_000 }, () => {
  let gateway: TesseraProcess;
  let client: OpenAI;

  it('should start one replica per GPU set with the vllm serve flags built from the config', async () => {
    const dir = await tempDir('tessera-vllm-launch-');
    const file = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, logLevel: 'debug', shutdownGracePeriod: '2s' },
      plugins: ['@tessera/backend-vllm'],
      models: {
        chat: {
          backend: 'vllm',
          servedModelName: 'stand-in/llm',
          balance: { strategy: 'round-robin' },
          health: { interval: '200ms', timeout: '500ms' },
          launch: {
            command: process.execPath,
            args: [VLLM_STAND_IN_BIN],
            model: 'stand-in/llm',
            gpus: [[0], [1]],
            basePort: 0,
            maxNumSeqs: 8,
            maxModelLen: 2048,
            gpuMemoryUtilization: 0.85,
            enablePrefixCaching: true,
            extraArgs: ['--enable-request-id-headers'],
            env: { VLLM_STAND_IN_TOKEN_DELAY_MS: '1' },
            healthInterval: '100ms',
            // wide enough to send requests while replica 0 is down
            restartBackoff: { initialMs: '1500ms' },
            stopTimeout: '5s',
          },
        },
      },
    });
    gateway = await serve(file);
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });

    const s = starts(gateway);
    expect(s.map((l) => l.replica).sort()).toEqual([0, 1]);
    for (const l of s) {
      expect(l.command).toBe(process.execPath);
      expect(l.gpus).toEqual([l.replica]);
      const port = portOf(l.args);
      expect(port).toBeGreaterThan(0);
      expect(l.args).toEqual([
        VLLM_STAND_IN_BIN,
        'serve',
        'stand-in/llm',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--tensor-parallel-size',
        '1',
        '--gpu-memory-utilization',
        '0.85',
        '--max-num-seqs',
        '8',
        '--max-model-len',
        '2048',
        '--enable-prefix-caching',
        '--enable-request-id-headers',
      ]);
    }
    expect(portOf(s[0]!.args)).not.toBe(portOf(s[1]!.args));

    // what each process parsed, and its CUDA_VISIBLE_DEVICES
    const printed = printedArgs(gateway);
    expect(printed.map((p) => p.replica).sort()).toEqual([0, 1]);
    for (const p of printed) {
      expect(p.args.env).toEqual({ CUDA_VISIBLE_DEVICES: String(p.replica) });
      expect(p.args).toMatchObject({ model: 'stand-in/llm', host: '127.0.0.1', tensorParallelSize: 1, maxNumSeqs: 8, maxModelLen: 2048, gpuMemoryUtilization: 0.85, enablePrefixCaching: true });
      expect(p.args.flags['enable-request-id-headers']).toBe(true);
      expect(p.args.port).toBe(portOf(s.find((l) => l.replica === p.replica)!.args));
    }

    const up = logLines(gateway).filter((l) => typeof l.msg === 'string' && / is up at /.test(l.msg));
    expect(up.map((l) => l.url).sort()).toEqual(s.map((l) => `http://127.0.0.1:${portOf(l.args)}`).sort());
  });

  it('should serve chat through both replicas', async () => {
    const urls = starts(gateway).map((l) => `http://127.0.0.1:${portOf(l.args)}`);
    const before = await Promise.all(urls.map(standInStats));
    for (let i = 0; i < 6; i++) {
      const reply = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 4 });
      expect(reply.choices[0]!.message.content!.split(' ')).toHaveLength(4);
    }
    let text = '';
    for await (const c of await client.chat.completions.create({ model: 'chat', messages, max_tokens: 4, stream: true })) text += c.choices[0]?.delta.content ?? '';
    expect(text.split(' ')).toHaveLength(4);
    const after = await Promise.all(urls.map(standInStats));
    const served = after.map((a, i) => a.completed - before[i]!.completed);
    expect(served.reduce((a, b) => a + b)).toBe(7);
    expect(Math.min(...served)).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    for (const url of urls) expect(metrics).toContain(`tessera_upstream_healthy{model="chat",upstream="${url}"} 1`);
  });

  it('should restart a replica killed with SIGKILL while the other one serves every request', async () => {
    const first = starts(gateway).find((l) => l.replica === 0)!;
    const firstPid = currentPids(gateway).get(0)!;
    const url0 = `http://127.0.0.1:${portOf(first.args)}`;
    process.kill(firstPid, 'SIGKILL');

    // requests during the outage: every one succeeds (on replica 1, or retried there)
    let duringOutage = 0;
    let sawEjected = false;
    const isBack = (): boolean => logLines(gateway).some((l) => l.replica === 0 && typeof l.msg === 'string' && l.msg.includes('is up again'));
    while (!isBack()) {
      const reply = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2 });
      expect(reply.choices[0]!.message.content!.length).toBeGreaterThan(0);
      duringOutage++;
      if (!sawEjected) sawEjected = (await (await fetch(`${gateway.url}/metrics`)).text()).includes(`tessera_upstream_healthy{model="chat",upstream="${url0}"} 0`);
      if (duringOutage > 5000) throw new Error('replica 0 did not come back');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(duringOutage).toBeGreaterThanOrEqual(5);
    expect(sawEjected).toBe(true);

    const log = logLines(gateway);
    expect(log.some((l) => l.replica === 0 && l.level === 40 && l.msg.includes('was killed by SIGKILL'))).toBe(true);
    expect(log.some((l) => l.replica === 0 && typeof l.msg === 'string' && l.msg.includes('restarting vLLM replica 0 in 1500 ms'))).toBe(true);
    // a new process, same port, same GPU
    const restarts = starts(gateway).filter((l) => l.replica === 0);
    expect(restarts).toHaveLength(2);
    expect(restarts[1]!.args).toEqual(first.args);
    await waitFor('the restarted process to print its arguments', () => printedArgs(gateway).filter((p) => p.replica === 0).length === 2);
    const second = printedArgs(gateway).filter((p) => p.replica === 0)[1]!;
    expect(second.pid).not.toBe(firstPid);
    expect(second.args.env).toEqual({ CUDA_VISIBLE_DEVICES: '0' });
    expect(processAlive(firstPid)).toBe(false);
    expect(processAlive(second.pid)).toBe(true);

    // back in rotation: it takes traffic again
    await waitFor('replica 0 re-admitted', async () => (await (await fetch(`${gateway.url}/metrics`)).text()).includes(`tessera_upstream_healthy{model="chat",upstream="${url0}"} 1`));
    const before = (await standInStats(url0)).completed;
    for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2 });
    expect((await standInStats(url0)).completed - before).toBeGreaterThanOrEqual(1);
  });

  it('should stop every replica process when the gateway gets SIGTERM', async () => {
    const pids = [...currentPids(gateway).values()];
    expect(pids).toHaveLength(2);
    expect(pids.every(processAlive)).toBe(true);
    expect(await gateway.stop('SIGTERM')).toBe(0);
    expect(pids.filter(processAlive)).toEqual([]);
    // they were asked to stop (SIGTERM, exit 0), not killed
    const exits = logLines(gateway).filter((l) => typeof l.msg === 'string' && /vLLM replica \d exited with code 0$/.test(l.msg));
    expect(exits.map((l) => l.replica).sort()).toEqual([0, 1]);
  });
});

describe('a launch section without servedModelName', () => {
  // Fails today: the gateway asks the replicas for the Tessera model's name (`chat`), which they do
  // not serve, so every request gets vLLM's 404. With `launch`, the replicas serve
  // `launch.servedModelName ?? launch.model`: that is the name to ask for. See the report.
  it('should ask the replicas for the model they serve', async () => {
    const dir = await tempDir('tessera-vllm-launch-');
    const file = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, shutdownGracePeriod: '2s' },
      models: { chat: { backend: 'vllm', launch: { command: process.execPath, args: [VLLM_STAND_IN_BIN], model: 'org/llm-8b', gpus: [[0]], basePort: 0 } } },
    });
    const gw = await serve(file);
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const reply = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2 });
      expect(reply.model).toBe('org/llm-8b');
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});

describe('launch failures', { timeout: 60_000 }, () => {
  it('should stop the server when a replica exits at once (exitOnModelError), with TESSERA_E_LAUNCH_FAILED in the log', async () => {
    const dir = await tempDir('tessera-vllm-launch-');
    const file = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, exitOnModelError: true },
      models: {
        chat: {
          backend: 'vllm',
          launch: {
            command: process.execPath,
            args: ['-e', 'process.stderr.write("torch.OutOfMemoryError: CUDA out of memory\\n"); process.exit(3)', '--'],
            model: 'org/llm-70b',
            gpus: [[0]],
            basePort: 0,
          },
        },
      },
    });
    const res = await runTesseraCli({ args: ['serve', '-c', file], timeoutMs: 30_000 });
    expect(res.code, res.stderr).toBe(1);
    // the CLI's one cause: the replica, its command line, the exit code and what it printed
    expect(res.stderr).toMatch(/^tessera: TESSERA_E_MODEL_LOAD: models\.chat\.launch: replica 0 \(CUDA_VISIBLE_DEVICES=0, `.+ serve org\/llm-70b --host 127\.0\.0\.1 --port \d+ --tensor-parallel-size 1`\) exited with code 3 before it became healthy; last output:\n {2}torch\.OutOfMemoryError: CUDA out of memory\n$/);
    const failed = res.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>)
      .find((l) => l.msg?.startsWith('model failed to load'));
    expect(failed?.err).toMatchObject({ code: 'TESSERA_E_LAUNCH_FAILED', status: 500 });
  });

  it('should leave the model failed and serve the rest when exitOnModelError is false', async () => {
    const dir = await tempDir('tessera-vllm-launch-');
    const file = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, exitOnModelError: false },
      models: {
        chat: {
          backend: 'vllm',
          launch: { command: path.join(dir, 'no-such-vllm'), model: 'org/llm', gpus: [[0]], basePort: 0 },
        },
      },
    });
    const gw = await serve(file);
    const log = logLines(gw);
    const failed = log.find((l) => l.msg?.startsWith('model failed to load'));
    expect(failed?.err).toMatchObject({ code: 'TESSERA_E_LAUNCH_FAILED' });
    expect(failed!.err.message).toContain('could not be started: spawn');
    expect(failed!.err.message).toContain('ENOENT');
    expect(log.some((l) => l.level === 50 && l.msg?.startsWith('serving without failed models'))).toBe(true);
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'chat', messages }) });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error.code).toBe('TESSERA_E_MODEL_NOT_READY');
    expect(await gw.stop()).toBe(0);
  });

  it('should kill a replica that misses startupTimeout, and report it', async () => {
    const dir = await tempDir('tessera-vllm-launch-');
    const file = await writeConfig(dir, {
      server: { host: '127.0.0.1', port: 0, logLevel: 'debug' },
      models: {
        chat: {
          backend: 'vllm',
          launch: {
            command: process.execPath,
            args: [VLLM_STAND_IN_BIN],
            model: 'stand-in/llm',
            gpus: [[0]],
            basePort: 0,
            // "loading weights" for 20 s
            env: { VLLM_STAND_IN_STARTUP_MS: '20000' },
            startupTimeout: '1s',
            healthInterval: '100ms',
            stopTimeout: '2s',
          },
        },
      },
    });
    const res = await runTesseraCli({ args: ['serve', '-c', file], timeoutMs: 30_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/did not answer GET http:\/\/127\.0\.0\.1:\d+\/health with 200 within 1000 ms/);
    expect(res.stderr).toContain('Loading model weights (stand-in: 20000 ms)');
    const log = res.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
    const printed = log.find((l) => l.msg?.startsWith('VLLM_STAND_IN_ARGS '));
    const pid = JSON.parse((printed!.msg as string).slice('VLLM_STAND_IN_ARGS '.length)).pid as number;
    expect(pid).toBeGreaterThan(0);
    replicaPids.add(pid);
    expect(processAlive(pid)).toBe(false);
  });
});
