/**
 * Helpers of the overload and deadline tests: a server started in-process on 127.0.0.1 (so that
 * its memory can be sampled), a generative stand-in backend whose streams tick until aborted, and
 * a deliberately slow ONNX model.
 */
import type { GenerateChunk, GenerateRequest, TesseraConfigInput, TesseraPlugin } from '@tessera/core';
import { TesseraServer, definePlugin, resolveConfig } from '@tessera/core';
import type { FakeBackend } from '@tessera/core/testing';
import { buildOnnxModel, silentLogger } from '@tessera/core/testing';

export interface Started {
  server: TesseraServer;
  url: string;
  close(): Promise<void>;
}

/** Starts a server with `plugins` on a free port of 127.0.0.1. */
export async function startServer(config: TesseraConfigInput, plugins: TesseraPlugin[], configDir = '/'): Promise<Started> {
  const resolved = resolveConfig({ ...config, server: { host: '127.0.0.1', port: 0, logLevel: 'silent', ...config.server } }, { configDir, env: {} });
  const server = new TesseraServer({ config: resolved, plugins, logger: silentLogger() });
  const { url } = await server.start();
  return { server, url, close: () => server.close() };
}

/** What a ticking generation saw: how many ran at once, and which were aborted. */
export interface TickStats {
  running: number;
  maxRunning: number;
  aborted: number;
  started: number;
}

const chunk = (content: string): GenerateChunk => ({
  data: { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'llm', choices: [{ index: 0, delta: { content }, finish_reason: null }] },
});

/**
 * A generative model: `ticks` chunks `tickMs` apart (`0`: until aborted), then the end; a
 * non-streamed request gets one response after the same time. Its signal is honoured only
 * between ticks, as an engine's would be.
 */
export function tickingGenerate(stats: TickStats, tickMs: number, ticks: number): (req: GenerateRequest, signal: AbortSignal) => AsyncIterable<GenerateChunk> {
  return async function* generate(req, signal) {
    stats.started++;
    stats.running++;
    stats.maxRunning = Math.max(stats.maxRunning, stats.running);
    signal.addEventListener('abort', () => stats.aborted++, { once: true });
    try {
      for (let i = 0; ticks === 0 || i < ticks; i++) {
        await new Promise((resolve) => setTimeout(resolve, tickMs));
        if (signal.aborted) throw new Error('aborted');
        if (req.stream) yield chunk(`t${i} `);
      }
      if (!req.stream) {
        yield { data: { id: 'cmpl-1', object: 'chat.completion', created: 1, model: 'llm', choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'stop' }] } };
      }
    } finally {
      stats.running--;
    }
  };
}

/** A plugin registering `backends` under their names. */
export function backendsPlugin(backends: Record<string, FakeBackend>): TesseraPlugin {
  return definePlugin({
    name: 'overload-test-backends',
    version: '1.0.0',
    core: '^0.1.0',
    register(ctx) {
      for (const [name, backend] of Object.entries(backends)) ctx.registerBackend(name, backend);
    },
  });
}

/**
 * A real ONNX model that is slow on purpose: `y = x + 0·mean(E·E)` with `E` an N×N matrix filled
 * from `sum(x)`, so every run multiplies two N×N matrices (N = 1024: about 25 ms on one thread)
 * and constant folding cannot remove it. Input `x` FP32 ['batch', 4] → output `y` the same.
 */
export function slowOnnxModel(n = 1024): Uint8Array {
  return buildOnnxModel({
    inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 4] }],
    initializers: [
      { name: 'square', datatype: 'INT64', dims: [2], data: BigInt64Array.of(BigInt(n), BigInt(n)) },
      { name: 'zero', datatype: 'FP32', dims: [], data: Float32Array.of(0) },
    ],
    nodes: [
      { op: 'ReduceSum', inputs: ['x'], outputs: ['s'], attributes: { keepdims: 0 } },
      { op: 'Expand', inputs: ['s', 'square'], outputs: ['e'] },
      { op: 'MatMul', inputs: ['e', 'e'], outputs: ['p'] },
      { op: 'ReduceMean', inputs: ['p'], outputs: ['m'], attributes: { keepdims: 0 } },
      { op: 'Mul', inputs: ['m', 'zero'], outputs: ['z'] },
      { op: 'Add', inputs: ['x', 'z'], outputs: ['y'] },
    ],
  });
}

/** An OIP v2 JSON body for `x` FP32 [rows, 4]. */
export function inferBody(rows = 1): string {
  return JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, i) => i % 7) }] });
}

/** The `data:` payloads of a server-sent-event body. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}
