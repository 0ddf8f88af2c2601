/**
 * Upstream replicas: what a gateway backend (vLLM, Triton, KServe, another Tessera) needs to
 * spread requests over remote replicas of one model — a {@link ReplicaPool} with health probes,
 * ejection and load-aware picking, and a Prometheus text parser for probes that read a replica's
 * `/metrics`.
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
} from './types.js';
export { ReplicaPool } from './replica-pool.js';
export type { ParsePrometheusTextOptions, PrometheusSample } from './prometheus-text.js';
export { parsePrometheusText, sampleValue } from './prometheus-text.js';
