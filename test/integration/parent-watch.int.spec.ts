/**
 * A server started with TESSERA_PARENT_PID (as `tessera tune` starts the servers it measures)
 * stops when that process is killed with SIGKILL: the real CLI, a real parent process killed for
 * real, and the server's pid watched until it is gone.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive } from '@tessera/core/testing';
import { CLS_MODEL, ROOT, tempDir, writeConfig } from './helpers.js';

const CLI = path.join(ROOT, 'packages/core/dist/cli.js');
let serverPid: number | undefined;

afterAll(() => {
  if (serverPid && processAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
});

describe('TESSERA_PARENT_PID', () => {
  it.each([
    ['one process', 1],
    ['a primary and 2 workers', 2],
  ])('should stop the server (%s) once the process that started it is killed with SIGKILL', async (_label, workers) => {
    const dir = await tempDir('tessera-parent-');
    const config = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0, logLevel: 'info', workers }, models: { cls: { path: CLS_MODEL, instances: 1 } } });
    // the parent: starts the server with its own pid, prints the server's pid once it is ready, then waits to be killed
    const parentScript = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, [${JSON.stringify(CLI)}, 'serve', '-c', ${JSON.stringify(config)}], { env: { ...process.env, TESSERA_PARENT_PID: String(process.pid) }, stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.on('data', (d) => { if (String(d).includes('server ready')) console.log('SERVER ' + child.pid); });
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['-e', parentScript], { stdio: ['ignore', 'pipe', 'pipe'] });
    serverPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /SERVER (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      parent.on('exit', (code) => reject(new Error(`the parent exited (${code}) before the server was ready: ${out}`)));
      setTimeout(() => reject(new Error(`the server was not ready within 60 s: ${out}`)), 60_000).unref();
    });
    expect(processAlive(serverPid)).toBe(true);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 30_000;
    while (processAlive(serverPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(processAlive(serverPid), 'the server outlived the process that started it').toBe(false);
    serverPid = undefined;
  }, 120_000);
});
