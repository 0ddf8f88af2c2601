/**
 * Managed replicas (`launch:`): the config section's schema and types, the `vllm serve` command
 * line, and the supervisor that starts, restarts and stops the replicas.
 */
export type { LaunchConfig, LaunchDuration, ResolvedLaunchConfig } from './config.js';
export { LAUNCH_CONFIG_SCHEMA, LAUNCH_DEFAULTS, resolveLaunchConfig, vllmServeArgs } from './config.js';
export type { ReplicaInfo, ReplicaSupervisorOptions } from './supervisor.js';
export { ReplicaSupervisor } from './supervisor.js';
