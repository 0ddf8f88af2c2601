#!/usr/bin/env node
// A stand-in for `vllm serve` (vLLM's OpenAI-compatible server) for tests and benchmarks:
// `vllm-stand-in serve MODEL [vllm serve flags]`. Needs the built package (`npm run build`).
import { runCli } from '../dist/cli.js';

runCli(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`vllm-stand-in: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
