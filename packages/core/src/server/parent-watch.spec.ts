import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { until } from '../pipeline/test-support.js';
import { PARENT_PID_ENV, watchParent } from './parent-watch.js';

describe('watchParent (TESSERA_PARENT_PID)', () => {
  it('should do nothing when the variable is unset', () => {
    expect(watchParent(() => {}, { env: {} })).toBeUndefined();
  });

  it('should refuse a value that is no pid', () => {
    expect(() => watchParent(() => {}, { env: { [PARENT_PID_ENV]: 'abc' } })).toThrow(/TESSERA_PARENT_PID=abc: expected the pid/);
  });

  it('should keep quiet while the parent runs, and call back once it has exited', async () => {
    const calls: number[] = [];
    // our real parent runs throughout: never reported
    const stopQuiet = watchParent((pid) => calls.push(pid), { env: { [PARENT_PID_ENV]: String(process.ppid) }, intervalMs: 10 });
    // a process that is gone, and never was our parent: reported once
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => child.on('exit', resolve));
    const stopGone = watchParent((pid) => calls.push(pid), { env: { [PARENT_PID_ENV]: String(child.pid) }, intervalMs: 10 });
    await until(() => calls.length > 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    stopQuiet?.();
    stopGone?.();
    expect(calls).toEqual([child.pid]);
  });
});
