/**
 * What the router-canary integration tests share: a `tessera serve` on a config written into a
 * temporary folder, traffic of real requests over loopback HTTP with a record of every answer, the
 * routing API and /metrics. The models are the canary-rollout example's (examples/canary-rollout/models.mjs).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TesseraProcess } from '@tessera/core/testing';
import { startTessera } from '@tessera/core/testing';
import { isFaultyInput, randomRow, rng } from '../../../examples/canary-rollout/models.mjs';

/** A fresh temporary folder. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Writes `lines` as `<dir>/<name>` and starts `tessera serve -c` on it (port 0, 127.0.0.1). */
export async function serveConfig(dir: string, name: string, lines: readonly string[], env: Record<string, string> = {}): Promise<TesseraProcess> {
  const file = path.join(dir, name);
  await writeFile(file, `${lines.join('\n')}\n`);
  return startTessera({ args: ['serve', '-c', file, '--port', '0'], env: { TESSERA_HOST: '127.0.0.1', ...env }, timeoutMs: 60_000 });
}

/** `GET /v1/routing/{model}`. */
export async function routing(url: string, model: string): Promise<any> {
  const res = await fetch(`${url}/v1/routing/${model}`);
  if (!res.ok) throw new Error(`GET /v1/routing/${model}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** `POST /v1/routing/{model}/{action}` with an optional JSON body: the status and the body. */
export async function act(url: string, model: string, action: string, body?: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/v1/routing/${model}/${action}`, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** `GET /metrics` as text. */
export async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** The value of one series on /metrics (labels in any order), or undefined when it is absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const found = Object.fromEntries([...line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(line.slice(close + 1).trim());
  }
  return undefined;
}

/** Polls until `check` passes (or throws its last failure after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(everyMs);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One answer the traffic got. */
export interface Answer {
  /** performance.now() when it was sent and when the answer was read. */
  sentAt: number;
  at: number;
  status: number;
  /** The version that answered (200s). */
  version?: string;
  code?: string;
  scores?: number[];
  /** Whether the row was one that faulty.onnx fails on. */
  faultyRow: boolean;
  row: number[];
  ms: number;
  headers: Record<string, string>;
}

/** Sends one row to `/v2/models/{model}/infer`. */
export async function infer(url: string, model: string, row: number[], headers: Record<string, string> = {}): Promise<Answer> {
  const sentAt = performance.now();
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, row.length], data: row }] }),
  });
  const body = (await res.json()) as any;
  const at = performance.now();
  return {
    sentAt,
    at,
    ms: at - sentAt,
    status: res.status,
    faultyRow: isFaultyInput([row]),
    row,
    headers,
    ...(res.ok ? { version: String(body.model_version), scores: body.outputs[0].data as number[] } : { code: String(body.code) }),
  };
}

/** Options of {@link Traffic}. */
export interface TrafficOptions {
  /** Requests a second, all loops together (default: as fast as the loops go). */
  rate?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Seed of the rows (default 1). */
  seed?: number;
  /** Headers of request n (default none). */
  headers?: (n: number) => Record<string, string>;
  /** Rows only of this kind: faulty.onnx's failures, or none of them (default: both, a quarter faulty). */
  rows?: 'any' | 'clean' | 'faulty';
}

/** Requests to one model until `stop()`, every answer recorded. */
export class Traffic {
  readonly answers: Answer[] = [];
  #stopped = false;
  #loops: Promise<void>[] = [];
  readonly #url: string;
  readonly #model: string;
  readonly #options: TrafficOptions;

  constructor(url: string, model: string, options: TrafficOptions = {}) {
    this.#url = url;
    this.#model = model;
    this.#options = options;
  }

  start(): this {
    const random = rng(this.#options.seed ?? 1);
    const row = (): number[] => {
      for (;;) {
        const r = randomRow(random);
        const kind = this.#options.rows ?? 'any';
        if (kind === 'any' || (kind === 'faulty') === isFaultyInput([r])) return r;
      }
    };
    const started = performance.now();
    let next = 0;
    const loop = async (): Promise<void> => {
      while (!this.#stopped) {
        const n = next++;
        if (this.#options.rate) {
          const wait = started + (n * 1000) / this.#options.rate - performance.now();
          if (wait > 0) await sleep(wait);
          if (this.#stopped) return;
        }
        try {
          this.answers.push(await infer(this.#url, this.#model, row(), this.#options.headers?.(n) ?? {}));
        } catch (err) {
          // the server went away (a restart): keep the record honest, then slow down
          this.answers.push({ sentAt: performance.now(), at: performance.now(), ms: 0, status: 0, code: `fetch failed: ${(err as Error).message}`, faultyRow: false, row: [], headers: {} });
          await sleep(20);
        }
      }
    };
    this.#loops = Array.from({ length: this.#options.concurrency ?? 4 }, loop);
    return this;
  }

  /** Stops sending; resolves once every request in flight has its answer. */
  async stop(): Promise<Answer[]> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    return this.answers;
  }
}

/** One poll of a model's routing while a test runs: when, and what `GET /v1/routing/{model}` said. */
export interface RoutingSample {
  at: number;
  body: any;
}

/**
 * Polls `GET /v1/routing/{model}` every `everyMs` until `until(body)` holds, recording every
 * answer; rejects after `timeoutMs` with the last body.
 */
export async function watchRouting(url: string, model: string, until: (body: any) => boolean, timeoutMs = 20_000, everyMs = 40): Promise<RoutingSample[]> {
  const samples: RoutingSample[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await routing(url, model);
    samples.push({ at: performance.now(), body });
    if (until(body)) return samples;
    if (Date.now() > deadline) throw new Error(`routing of ${model} did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(body)}`);
    await sleep(everyMs);
  }
}

/** The distinct values of `pick(body)` over the samples, in the order they first appeared, repeats collapsed. */
export function sequenceOf<T>(samples: readonly RoutingSample[], pick: (body: any) => T): T[] {
  const out: T[] = [];
  for (const s of samples) {
    const v = pick(s.body);
    if (out.length === 0 || JSON.stringify(out.at(-1)) !== JSON.stringify(v)) out.push(v);
  }
  return out;
}

/** Median of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Largest absolute difference between two score lists. */
export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? Number.NaN))));
}
