/**
 * A real `redis-server` (Debian package `redis-server`; scripts/ensure-tool.sh installs it in CI)
 * started by a test on a free loopback port, without persistence. `redisServerPath()` says whether
 * one is installed, so a test can skip with a visible reason where none is.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { freePort } from './helpers.js';

export interface RedisProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Stops it (SIGKILL: an outage, not a shutdown) and waits for the exit. */
  kill(): Promise<void>;
}

/** The redis-server binary (`$REDIS_SERVER`, else the one on PATH), or undefined. */
export function redisServerPath(): string | undefined {
  const named = process.env.REDIS_SERVER ?? 'redis-server';
  const found = spawnSync('sh', ['-c', `command -v ${JSON.stringify(named)}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

export const REDIS_MISSING =
  'redis-server is not installed: run scripts/ensure-tool.sh redis-server redis-server (Debian package "redis-server"), or set REDIS_SERVER to its path';

/** Starts redis-server on 127.0.0.1 (a given port to restart one in place) and resolves once it accepts connections. */
export async function startRedis(port?: number): Promise<RedisProcess> {
  const bin = redisServerPath();
  if (!bin) throw new Error(REDIS_MISSING);
  const p = port ?? (await freePort());
  const child = spawn(bin, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${output}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    child,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
