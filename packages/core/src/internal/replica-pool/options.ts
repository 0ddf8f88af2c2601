import type { LoadWeights, PickStrategy, PoolLogger, ReplicaPoolOptions, ReplicaProbe } from '../../upstream/types.js';

/** The defaults of {@link ReplicaPoolOptions}. */
export const POOL_DEFAULTS = {
  strategy: 'least-loaded' as PickStrategy,
  probeIntervalMs: 2000,
  probeTimeoutMs: 1000,
  ejectAfterFailures: 3,
  readmitAfterSuccesses: 1,
  loadFactor: 1.25,
  virtualNodes: 160,
  weights: { running: 0.25, waiting: 1, kvCacheUsage: 1 },
} as const;

const STRATEGIES: readonly PickStrategy[] = ['least-loaded', 'round-robin', 'prefix-affinity'];

const noopLogger: PoolLogger = { debug: () => {}, info: () => {}, warn: () => {} };

/** {@link ReplicaPoolOptions} checked, with every default filled in. */
export interface ResolvedPoolOptions {
  name: string;
  strategy: PickStrategy;
  probe: ReplicaProbe;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  ejectAfterFailures: number;
  readmitAfterSuccesses: number;
  loadFactor: number;
  virtualNodes: number;
  weights: Required<LoadWeights>;
  loadMaxAgeMs: number;
  logger: PoolLogger;
  onHealthChange: ReplicaPoolOptions['onHealthChange'];
}

/** `value ?? fallback`, checked: finite, and `> 0` (`min` 0), or `≥ min`, and an integer if asked. */
function numberOption(value: number | undefined, fallback: number, what: string, min = 0, integer = false): number {
  const v = value ?? fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) && (min === 0 ? v > 0 : v >= min) && (!integer || Number.isInteger(v));
  if (!ok) throw new RangeError(`ReplicaPool: ${what} must be ${integer ? 'an integer' : 'a number'} ${min === 0 ? '> 0' : `≥ ${min}`}, got ${String(value)}`);
  return v;
}

function weightOption(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`ReplicaPool: loadWeights.${what} must be a number ≥ 0, got ${String(value)}`);
  return v;
}

/**
 * Checks the options and fills in the defaults; the first invalid option throws (`TypeError` for a
 * missing probe, `RangeError` for the rest), in the order below.
 */
export function resolvePoolOptions(options: ReplicaPoolOptions): ResolvedPoolOptions {
  if (typeof options.probe !== 'function') throw new TypeError('ReplicaPool: probe must be a function');
  const strategy = options.strategy ?? POOL_DEFAULTS.strategy;
  if (!STRATEGIES.includes(strategy)) throw new RangeError(`ReplicaPool: strategy must be one of ${STRATEGIES.join(', ')}, got ${String(options.strategy)}`);
  const probeIntervalMs = numberOption(options.probeIntervalMs, POOL_DEFAULTS.probeIntervalMs, 'probeIntervalMs');
  const probeTimeoutMs = numberOption(options.probeTimeoutMs, POOL_DEFAULTS.probeTimeoutMs, 'probeTimeoutMs');
  const ejectAfterFailures = numberOption(options.ejectAfterFailures, POOL_DEFAULTS.ejectAfterFailures, 'ejectAfterFailures', 1, true);
  const readmitAfterSuccesses = numberOption(options.readmitAfterSuccesses, POOL_DEFAULTS.readmitAfterSuccesses, 'readmitAfterSuccesses', 1, true);
  const loadFactor = numberOption(options.affinity?.loadFactor, POOL_DEFAULTS.loadFactor, 'affinity.loadFactor', 1);
  const virtualNodes = numberOption(options.affinity?.virtualNodes, POOL_DEFAULTS.virtualNodes, 'affinity.virtualNodes', 1, true);
  const w = options.loadWeights ?? {};
  const weights = {
    running: weightOption(w.running, POOL_DEFAULTS.weights.running, 'running'),
    waiting: weightOption(w.waiting, POOL_DEFAULTS.weights.waiting, 'waiting'),
    kvCacheUsage: weightOption(w.kvCacheUsage, POOL_DEFAULTS.weights.kvCacheUsage, 'kvCacheUsage'),
  };
  const loadMaxAgeMs = numberOption(options.loadMaxAgeMs, 3 * probeIntervalMs, 'loadMaxAgeMs');
  return {
    name: options.name,
    strategy,
    probe: options.probe,
    probeIntervalMs,
    probeTimeoutMs,
    ejectAfterFailures,
    readmitAfterSuccesses,
    loadFactor,
    virtualNodes,
    weights,
    loadMaxAgeMs,
    logger: options.logger ?? noopLogger,
    onHealthChange: options.onHealthChange,
  };
}
