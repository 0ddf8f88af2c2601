/**
 * `@tessera/backend-vllm`: Tessera as the gateway in front of vLLM replicas. Registers the backend
 * `vllm`.
 */
export {};
