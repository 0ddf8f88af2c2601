import { describe, expect, it } from 'vitest';
import type { ProviderProbe } from '@tessera/backend-onnxruntime';
import { resolveTensorRtConfig } from './config.js';
import type { ProviderEnvironment } from './provider-chain.js';
import { chooseProvider, fallbackWarning, providerChain, refusalMessage } from './provider-chain.js';
import { tensorrtProviderOptions } from './provider-options.js';

const STOCK = new Set(['deviceId']);
const ALL = new Set(['deviceId', 'trt_fp16_enable', 'trt_int8_enable', 'trt_engine_cache_enable', 'trt_engine_cache_path', 'trt_timing_cache_enable', 'trt_timing_cache_path', 'trt_profile_min_shapes', 'trt_profile_opt_shapes', 'trt_profile_max_shapes']);

function probe(provider: string, missing: string[] = []): ProviderProbe {
  const problems = missing.map((m) => `${m} not found: install it`);
  return { provider, available: missing.length === 0, missing, problems, message: missing.length === 0 ? `${provider} is available` : `${provider}: ${problems.join('; ')}` } as ProviderProbe;
}

/** A machine with the given libraries missing per provider and a binding that carries `keys`. */
function machine(missing: { tensorrt?: string[]; cuda?: string[] }, keys: ReadonlySet<string> = STOCK): ProviderEnvironment {
  return { probe: (name) => probe(name, missing[name] ?? []), bindingKeys: () => keys };
}

const OPTIONS = tensorrtProviderOptions(resolveTensorRtConfig({}, '/m/model.onnx'), [{ name: 'x', shape: [-1, 4] }], { maxBatchSize: 8, preferredBatchSizes: [] });
const PLAIN = tensorrtProviderOptions(resolveTensorRtConfig({ tensorrt: { precision: 'fp32', engineCacheDir: false } }, '/m/model.onnx'), [{ name: 'x', shape: [2, 4] }], { maxBatchSize: 0, preferredBatchSizes: [] });
const NOTHING = { tensorrt: ['libonnxruntime_providers_tensorrt.so', 'libnvinfer.so.10'], cuda: ['libonnxruntime_providers_cuda.so'] };

describe('providerChain', () => {
  it('should go TensorRT → CUDA → CPU only as far as the fallback allows', () => {
    expect(providerChain('error')).toEqual(['tensorrt']);
    expect(providerChain('cuda')).toEqual(['tensorrt', 'cuda']);
    expect(providerChain('cpu')).toEqual(['tensorrt', 'cuda', 'cpu']);
  });
});

describe('chooseProvider', () => {
  it('having TensorRT and a binding that carries its options, should pick it with CUDA and the CPU behind it', () => {
    const choice = chooseProvider('error', OPTIONS, machine({}, ALL));
    expect(choice.provider).toBe('tensorrt');
    expect(choice.skipped).toEqual([]);
    const { device_id: _device, ...carried } = Object.fromEntries(Object.entries(OPTIONS).filter(([k]) => ALL.has(k)));
    expect(choice.executionProviders).toEqual([{ name: 'tensorrt', deviceId: 0, ...carried }, { name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(Object.keys(choice.executionProviders[0]!)).toContain('trt_fp16_enable');
  });

  it('having the libraries but the stock binding, should pass TensorRT over: fp16, the caches and the profiles would not reach it', () => {
    const choice = chooseProvider('cuda', OPTIONS, machine({}));
    expect(choice.provider).toBe('cuda');
    expect(choice.executionProviders).toEqual([{ name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(choice.skipped).toEqual([
      { provider: 'tensorrt', problems: [expect.stringMatching(/^This onnxruntime-node binding passes only deviceId to TensorRT, so precision fp16 \/ the engine cache \/ the timing cache \/ the shape profiles cannot be applied \(/)] },
    ]);
  });

  it("having the stock binding and only ORT's defaults (fp32, no caches, fixed shapes), should take TensorRT with deviceId alone: nothing is lost", () => {
    expect(chooseProvider('error', PLAIN, machine({}))).toMatchObject({ provider: 'tensorrt', executionProviders: [{ name: 'tensorrt', deviceId: 0 }, { name: 'cuda', deviceId: 0 }, 'cpu'] });
  });

  it('without the libraries, should refuse with error, refuse with cuda when CUDA is missing too, and serve the CPU with cpu', () => {
    const env = machine(NOTHING);
    const error = chooseProvider('error', OPTIONS, env);
    expect(error.provider).toBeUndefined();
    expect(error.skipped.map((s) => s.provider)).toEqual(['tensorrt']);
    expect(error.skipped[0]!.problems).toEqual(['libonnxruntime_providers_tensorrt.so not found: install it.', 'libnvinfer.so.10 not found: install it.', expect.stringContaining('passes only deviceId')]);
    const cuda = chooseProvider('cuda', OPTIONS, env);
    expect(cuda.provider).toBeUndefined();
    expect(cuda.skipped.map((s) => s.provider)).toEqual(['tensorrt', 'cuda']);
    const cpu = chooseProvider('cpu', OPTIONS, env);
    expect(cpu).toMatchObject({ provider: 'cpu', executionProviders: ['cpu'] });
    expect(cpu.skipped.map((s) => s.provider)).toEqual(['tensorrt', 'cuda']);
  });

  it('should fall back to CUDA when only TensorRT is missing', () => {
    expect(chooseProvider('cpu', OPTIONS, machine({ tensorrt: ['libnvinfer.so.10'] }))).toMatchObject({ provider: 'cuda', executionProviders: [{ name: 'cuda', deviceId: 0 }, 'cpu'] });
  });

  it('should pass the device to every GPU provider', () => {
    const options = tensorrtProviderOptions(resolveTensorRtConfig({ tensorrt: { deviceId: 2 } }, '/m/model.onnx'), [], { maxBatchSize: 0, preferredBatchSizes: [] });
    expect(chooseProvider('cuda', options, machine({ tensorrt: ['libnvinfer.so.10'] })).executionProviders).toEqual([{ name: 'cuda', deviceId: 2 }, 'cpu']);
  });
});

describe('refusalMessage and fallbackWarning', () => {
  const skipped = chooseProvider('cuda', OPTIONS, machine(NOTHING)).skipped;
  const BINDING = /This onnxruntime-node binding passes only deviceId to TensorRT, so precision fp16 \/ the engine cache \/ the timing cache \/ the shape profiles cannot be applied \([^)]*\)\./;

  it('should say in one message what is missing, how to install it and which fallback serves meanwhile', () => {
    const message = refusalMessage('serve', 'cuda', skipped);
    expect(message).toMatch(/^cannot run on TensorRT or CUDA here \(tensorrt\.fallback: cuda\)\. TensorRT: libonnxruntime_providers_tensorrt\.so not found: install it\. libnvinfer\.so\.10 not found: install it\. This /);
    expect(message).toMatch(BINDING);
    expect(message).toMatch(/ CUDA: libonnxruntime_providers_cuda\.so not found: install it\. To serve without TensorRT meanwhile, set tensorrt\.fallback: cpu\.$/);
    expect(refusalMessage('serve', 'error', skipped.slice(0, 1))).toMatch(/^cannot run on TensorRT here \(tensorrt\.fallback: error\)\. TensorRT: .* To serve without TensorRT meanwhile, set tensorrt\.fallback: cuda or cpu\.$/);
    expect(refusalMessage('build', 'cpu', skipped)).toMatch(/^cannot build TensorRT engines here\. TensorRT: .*\. Meanwhile, tensorrt\.fallback: cpu serves the model without TensorRT\.$/);
    expect(refusalMessage('build', 'cpu', skipped)).not.toContain('CUDA:');
  });

  it('should not repeat for CUDA what it said for TensorRT', () => {
    const same = { tensorrt: ['libcudart.so.12', 'libnvinfer.so.10'], cuda: ['libcudart.so.12'] };
    const message = refusalMessage('serve', 'cuda', chooseProvider('cuda', OPTIONS, machine(same)).skipped);
    expect(message.match(/libcudart/g)).toHaveLength(1);
    expect(message).toContain('CUDA: the same libraries are missing.');
  });

  it('should name the provider in use and why TensorRT is not', () => {
    const choice = chooseProvider('cpu', OPTIONS, machine(NOTHING));
    expect(fallbackWarning('cpu', choice)).toMatch(/^serving on CPU \(cpu\), not TensorRT \(tensorrt\.fallback: cpu\)\. TensorRT: libonnxruntime_providers_tensorrt\.so not found: install it\. .* CUDA: /);
  });
});
