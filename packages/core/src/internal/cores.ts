import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

/**
 * The CPU cores this process may use: the fewest of what the scheduler lets it run on
 * (`os.availableParallelism()`, which follows `taskset` and cpusets), the CPU quota of its cgroup
 * (a Kubernetes `resources.limits.cpu` or `docker run --cpus`: `cpu.max` in cgroup v2,
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us` in v1; rounded up, since a quota of 2.5 cores still
 * runs on three) and `TESSERA_CPUS` when set (a positive integer, for an operator who knows
 * better). Everything Tessera sizes from the machine (the ONNX Runtime backend's instances and
 * threads, libuv's pool, `server.workers: auto`) uses this, so a pod limited to 4 cores on a
 * 64-core node sizes itself for 4: sized from `os.cpus()` it would start 64 threads per session
 * and be throttled by its quota.
 *
 * Read once and cached; `env` and `root` are for tests.
 */
export function availableCores(options: { env?: NodeJS.ProcessEnv; root?: string } = {}): number {
  if (!options.env && !options.root && cached !== undefined) return cached;
  const env = options.env ?? process.env;
  const override = env['TESSERA_CPUS'];
  let cores = availableParallelism();
  if (override !== undefined && override !== '') {
    const n = Number(override);
    if (!Number.isInteger(n) || n < 1) throw new Error(`TESSERA_CPUS=${override}: expected a positive integer (the cores Tessera may use)`);
    cores = n;
  } else {
    const quota = cgroupQuota(options.root ?? '/sys/fs/cgroup');
    if (quota !== undefined) cores = Math.min(cores, Math.max(1, Math.ceil(quota - 1e-9)));
  }
  if (!options.env && !options.root) cached = cores;
  return cores;
}

let cached: number | undefined;

/** The cgroup's CPU quota in cores, or undefined when it has none (or the files cannot be read). */
export function cgroupQuota(root: string): number | undefined {
  // cgroup v2: "max 100000" (no limit) or "200000 100000" (2 cores)
  const v2 = read(`${root}/cpu.max`);
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    if (quota === 'max' || quota === undefined || period === undefined) return undefined;
    return ratio(Number(quota), Number(period));
  }
  // cgroup v1: quota -1 means no limit
  const quota = read(`${root}/cpu/cpu.cfs_quota_us`) ?? read(`${root}/cpu,cpuacct/cpu.cfs_quota_us`);
  const period = read(`${root}/cpu/cpu.cfs_period_us`) ?? read(`${root}/cpu,cpuacct/cpu.cfs_period_us`);
  if (quota === undefined || period === undefined) return undefined;
  return ratio(Number(quota), Number(period));
}

function ratio(quota: number, period: number): number | undefined {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? quota / period : undefined;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The memory this process may use, bytes: the machine's (`os.totalmem()`) or its cgroup's limit
 * when lower (`memory.max` in cgroup v2, `memory/memory.limit_in_bytes` in v1); `TESSERA_MEMORY`
 * (bytes) when set, as a worker of `server.workers` gets its share. What the ONNX
 * Runtime backend's `instances: auto` keeps a model's sessions within.
 */
export function availableMemory(options: { root?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const override = (options.env ?? process.env)['TESSERA_MEMORY'];
  if (override !== undefined && override !== '') {
    const n = Number(override);
    if (!Number.isInteger(n) || n < 1) throw new Error(`TESSERA_MEMORY=${override}: expected a positive integer (the bytes of memory Tessera may use)`);
    return n;
  }
  const root = options.root ?? '/sys/fs/cgroup';
  const limit = Number(read(`${root}/memory.max`) ?? read(`${root}/memory/memory.limit_in_bytes`) ?? NaN);
  const total = totalmem();
  // "max" (NaN here) or v1's "no limit" (a number near 2^63) leave the machine's
  return Number.isFinite(limit) && limit > 0 && limit < total ? limit : total;
}
