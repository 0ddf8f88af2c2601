/** The `launch:` section: its schema, defaults and durations, and `vllm serve`'s command line. */
import { describe, expect, it } from 'vitest';
import { isTesseraError, validateAgainstSchema } from '@tessera/core';
import type { LaunchConfig } from './config.js';
import { LAUNCH_CONFIG_SCHEMA, resolveLaunchConfig, vllmServeArgs } from './config.js';

describe('launch config', () => {
  it('builds vllm serve\'s command line', () => {
    const c: LaunchConfig = {
      model: 'Qwen/Qwen3-8B',
      servedModelName: 'chat',
      host: '0.0.0.0',
      gpus: [[0], [1, 2]],
      gpuMemoryUtilization: 0.85,
      maxNumSeqs: 64,
      maxModelLen: 8192,
      quantization: 'fp8',
      enablePrefixCaching: false,
      extraArgs: ['--enforce-eager'],
    };
    expect(vllmServeArgs(c, 1, 8101)).toEqual([
      'serve', 'Qwen/Qwen3-8B', '--host', '0.0.0.0', '--port', '8101', '--served-model-name', 'chat', '--tensor-parallel-size', '2',
      '--gpu-memory-utilization', '0.85', '--max-num-seqs', '64', '--max-model-len', '8192', '--quantization', 'fp8', '--no-enable-prefix-caching', '--enforce-eager',
    ]);
    expect(vllmServeArgs({ model: 'm', gpus: [[3]], tensorParallelSize: 1, enablePrefixCaching: true }, 0, 8100)).toEqual([
      'serve', 'm', '--host', '127.0.0.1', '--port', '8100', '--tensor-parallel-size', '1', '--enable-prefix-caching',
    ]);
    expect(() => vllmServeArgs(c, 2, 1)).toThrow(RangeError);
  });

  it('resolves defaults and durations', () => {
    const r = resolveLaunchConfig({ model: 'm', gpus: [[0]], startupTimeout: '15m', restartBackoff: { initialMs: '2s' }, stopTimeout: 1500 });
    expect(r).toMatchObject({
      command: 'vllm',
      args: [],
      host: '127.0.0.1',
      basePort: 8100,
      startupTimeoutMs: 900_000,
      healthIntervalMs: 1000,
      restartBackoff: { initialMs: 2000, maxMs: 30_000, resetAfterMs: 60_000 },
      stopTimeoutMs: 1500,
      extraArgs: [],
      env: {},
    });
  });

  it('rejects what the schema does not allow', () => {
    const bad = (c: unknown): string => {
      try {
        resolveLaunchConfig(c as LaunchConfig, 'models.chat.launch');
      } catch (err) {
        expect(isTesseraError(err) && err.code).toBe('TESSERA_E_CONFIG_INVALID');
        return (err as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(bad({ model: 'm', gpus: [[0]], port: 1 })).toContain('port');
    expect(bad({ model: 'm' })).toContain('gpus');
    expect(bad({ model: 'm', gpus: [[0]], startupTimeout: 'soon' })).toContain('startupTimeout');
    expect(bad({ model: 'm', gpus: [] })).toContain('gpus');
  });

  it('is a draft-07 schema with a description on every property', () => {
    const missing: string[] = [];
    const walk = (schema: Record<string, unknown>, path: string): void => {
      const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [key, sub] of Object.entries(props ?? {})) {
        if (typeof sub.description !== 'string' || !sub.description) missing.push(`${path}.${key}`);
        walk(sub, `${path}.${key}`);
      }
    };
    walk(LAUNCH_CONFIG_SCHEMA, 'launch');
    expect(missing).toEqual([]);
    expect(LAUNCH_CONFIG_SCHEMA.additionalProperties).toBe(false);
    const filled = validateAgainstSchema<Record<string, unknown>>(LAUNCH_CONFIG_SCHEMA, { model: 'm', gpus: [[0]] }, 'launch');
    expect(filled).toMatchObject({ command: 'vllm', host: '127.0.0.1', basePort: 8100, restartBackoff: { initialMs: 1000, maxMs: 30000 } });
  });
});
