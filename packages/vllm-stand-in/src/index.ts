/**
 * `@tessera/vllm-stand-in`: a stand-in for vLLM's OpenAI-compatible server, for tests and
 * benchmarks (it is not vLLM); follows vLLM's protocol as of version 0.26 (see `./server.ts` for
 * what it reproduces). `startVllmStandIn()` runs one in-process; the `vllm-stand-in` executable
 * (`vllm-stand-in serve MODEL …`) runs one as a process with `vllm serve`'s command line, and
 * `startVllmStandInProcess()` starts that executable for a test.
 */
export type { RecordedRequest, VllmStandIn, VllmStandInFaults, VllmStandInOptions, VllmStandInStats } from './server.js';
export { VLLM_STAND_IN_PROTOCOL_VERSION, startVllmStandIn } from './server.js';
export type { ParsedServeArgs, RunCliOptions } from './cli.js';
export { CliUsageError, parseServeArgs, runCli, standInOptionsFromArgs } from './cli.js';
export { STAND_IN_VOCABULARY } from './tokens.js';
export type { VllmErrorBody } from './protocol.js';
export type { VllmStandInProcess, VllmStandInProcessOptions } from './process.js';
export { VLLM_STAND_IN_BIN, startVllmStandInProcess } from './process.js';
