/** `vllm serve`'s flags as the stand-in parses them (argparse's rules and messages). */
import { describe, expect, it } from 'vitest';
import { CliUsageError, parseServeArgs } from './cli.js';

describe('vllm serve command line', () => {
  it('parses vLLM\'s flags', () => {
    const a = parseServeArgs([
      'org/model', '--host', '127.0.0.1', '--port=8123', '--served-model-name', 'a', 'b', '--api-key', 'k', '--max-model-len', '32k',
      '--max_num_seqs', '64', '-tp', '2', '--gpu-memory-utilization', '0.85', '-q', 'awq', '--no-enable-prefix-caching', '--enforce-eager', '-O3',
    ]);
    expect(a).toMatchObject({
      model: 'org/model', host: '127.0.0.1', port: 8123, servedModelName: ['a', 'b'], apiKey: ['k'], maxModelLen: 32000, maxNumSeqs: 64,
      tensorParallelSize: 2, gpuMemoryUtilization: 0.85, quantization: 'awq', enablePrefixCaching: false,
    });
    expect(a.flags['enforce-eager']).toBe(true);
    expect(a.flags['compilation-config']).toBe('3');
    expect(parseServeArgs(['m', '--max-model-len', '4K']).maxModelLen).toBe(4096);
    expect(() => parseServeArgs(['m', '--frobnicate'])).toThrow(new CliUsageError('unrecognized arguments: --frobnicate'));
    expect(() => parseServeArgs(['m', '--port', 'x'])).toThrow("argument --port: invalid int value: 'x'");
    expect(() => parseServeArgs(['m', '--port'])).toThrow('argument --port: expected one argument');
  });
});
