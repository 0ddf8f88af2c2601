/**
 * Upstream replicas: what a gateway backend (vLLM, Triton, KServe, another Tessera) needs to
 * spread requests over remote replicas of one model — a {@link ReplicaPool} with health probes,
 * ejection and load-aware picking, the consistent-hash ring behind `prefix-affinity`, and a
 * Prometheus text parser for probes that read a replica's `/metrics`.
 */
export type {
  LoadWeights,
  PickOptions,
  PickStrategy,
  PoolLogger,
  ProbeResult,
  Replica,
  ReplicaLoad,
  ReplicaPoolOptions,
  ReplicaProbe,
  ReplicaSnapshot,
  ReplicaState,
} from './replica-pool.js';
export { ReplicaPool } from './replica-pool.js';
export { HashRing, fnv1a64, ringHash } from './hash-ring.js';
export type { ParsePrometheusTextOptions, PrometheusSample } from './prometheus-text.js';
export { parsePrometheusText, sampleValue } from './prometheus-text.js';
