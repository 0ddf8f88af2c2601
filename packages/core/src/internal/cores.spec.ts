import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../testing/index.js';
import { availableCores, availableMemory, cgroupQuota } from './cores.js';

async function cgroup(files: Record<string, string>): Promise<string> {
  const root = await makeTempDir('tessera-cgroup-');
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(root, file, '..'), { recursive: true });
    await writeFile(join(root, file), `${text}\n`);
  }
  return root;
}

describe('availableCores', () => {
  it('should read the cgroup v2 quota, rounded up, and no limit from "max"', async () => {
    expect(cgroupQuota(await cgroup({ 'cpu.max': '200000 100000' }))).toBe(2);
    expect(cgroupQuota(await cgroup({ 'cpu.max': '250000 100000' }))).toBe(2.5);
    expect(cgroupQuota(await cgroup({ 'cpu.max': 'max 100000' }))).toBeUndefined();
    const quarter = await cgroup({ 'cpu.max': '25000 100000' });
    expect(availableCores({ root: quarter, env: {} })).toBe(1);
    const twoAndAHalf = await cgroup({ 'cpu.max': '250000 100000' });
    expect(availableCores({ root: twoAndAHalf, env: {} })).toBe(Math.min(3, availableParallelism()));
  });

  it('should read the cgroup v1 quota, where -1 is no limit', async () => {
    expect(cgroupQuota(await cgroup({ 'cpu/cpu.cfs_quota_us': '300000', 'cpu/cpu.cfs_period_us': '100000' }))).toBe(3);
    expect(cgroupQuota(await cgroup({ 'cpu,cpuacct/cpu.cfs_quota_us': '-1', 'cpu,cpuacct/cpu.cfs_period_us': '100000' }))).toBeUndefined();
    expect(cgroupQuota(await cgroup({}))).toBeUndefined();
  });

  it('should never report more than the scheduler allows, and take TESSERA_CPUS over everything', async () => {
    const none = await cgroup({});
    expect(availableCores({ root: none, env: {} })).toBe(availableParallelism());
    expect(availableCores({ root: await cgroup({ 'cpu.max': '6400000 100000' }), env: {} })).toBe(availableParallelism());
    expect(availableCores({ root: none, env: { TESSERA_CPUS: '16' } })).toBe(16);
    expect(() => availableCores({ root: none, env: { TESSERA_CPUS: 'lots' } })).toThrow('TESSERA_CPUS=lots: expected a positive integer');
    expect(() => availableCores({ root: none, env: { TESSERA_CPUS: '0' } })).toThrow(/positive integer/);
  });
});

describe('availableMemory', () => {
  it('should take the cgroup limit when it is below the machine, and the machine otherwise', async () => {
    const { totalmem } = await import('node:os');
    expect(availableMemory({ root: await cgroup({ 'memory.max': String(512 * 2 ** 20) }) })).toBe(512 * 2 ** 20);
    expect(availableMemory({ root: await cgroup({ 'memory.max': 'max' }) })).toBe(totalmem());
    expect(availableMemory({ root: await cgroup({ 'memory/memory.limit_in_bytes': '9223372036854771712' }) })).toBe(totalmem());
    expect(availableMemory({ root: await cgroup({}) })).toBe(totalmem());
  });

  it('should take TESSERA_MEMORY (a worker of server.workers gets its share) over the cgroup, and refuse what is no byte count', async () => {
    const root = await cgroup({ 'memory.max': String(512 * 2 ** 20) });
    expect(availableMemory({ root, env: { TESSERA_MEMORY: String(2 ** 30) } })).toBe(2 ** 30);
    expect(availableMemory({ root, env: { TESSERA_MEMORY: '' } })).toBe(512 * 2 ** 20);
    expect(() => availableMemory({ root, env: { TESSERA_MEMORY: '4GiB' } })).toThrow('TESSERA_MEMORY=4GiB: expected a positive integer');
  });
});
