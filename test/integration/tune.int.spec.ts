/**
 * `tessera tune` end to end: the built CLI on a config with the real PP-OCR classifier, real
 * servers under test, real autocannon load on loopback, a short `--time`. Then what it wrote:
 * `tessera validate -c base -c overlay` passes, and a server started with both serves the settings.
 * No timed assertions: which point wins depends on the machine; that one was chosen, the table, the
 * overlay and the clean exits do not.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess } from '@tessera/core/testing';
import { cliPath, runTesseraCli, startTessera } from '@tessera/core/testing';
import { CLS_MODEL, http, tempDir, writeConfig } from './helpers.js';

// the same small search on every machine: 2 cores (1×2, 2×1, 1×1), max batch up to 4
const ENV = { TESSERA_CPUS: '2' };

let dir: string;
let base: string;
const started: TesseraProcess[] = [];

interface Overlay {
  models: { cls: { instances: number; sessionOptions: { intraOpNumThreads: number }; batching: { maxBatchSize: number; maxQueueDelayMs: number | 'auto' } } };
}

beforeAll(async () => {
  dir = await tempDir('tessera-tuning-int-');
  base = await writeConfig(dir, {
    server: { logLevel: 'warn' },
    models: {
      cls: {
        path: CLS_MODEL,
        batching: { maxBatchSize: 4 },
        warmupShapes: { x: [1, 3, 48, 192] },
        postprocess: [{ processor: 'classification', labels: ['0', '180'] }],
      },
      // left out of the sweep, kept as it is by the overlay
      other: { path: CLS_MODEL, instances: 1, batching: { maxBatchSize: 2 }, warmupShapes: { x: [1, 3, 48, 192] } },
    },
  });
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
});

/** The processes whose command line names a tune's generated config: none may outlive the tune. */
function serversUnderTest(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(`${tmpdir()}/tessera-tune-`) && cmd.includes(' serve ')) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('tessera tune', () => {
  it('should sweep, print the table and write an overlay that validate accepts and serve applies', { timeout: 90_000 }, async () => {
    const run = await runTesseraCli({ args: ['tune', '-c', base, '--model', 'cls', '--time', '20s', '--concurrency', '1,8'], cwd: dir, env: ENV, timeoutMs: 80_000 });
    expect(run.stderr).not.toMatch(/TESSERA_E_/);
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/^tessera tune: model 'cls' \(onnxruntime, version 1\) on 2 cores; goal: the highest throughput; time 20s$/m);
    expect(out).toContain('note: other models left out: other');
    expect(out).toContain('note: processors removed (postprocess classification)');
    expect(out).toContain('binary OIP v2 requests: x FP32 [1, 3, 48, 192] (random, seed 1)');
    expect(out).toMatch(/^ {2}plan: instances×threads /m);
    // the table: a header and one row per measurement, exactly one of them the best
    const lines = out.split('\n');
    const header = lines.findIndex((l) => /^\s*#\s+stage\s+instances\s+threads\s+max batch\s+delay\s+conc\s+samples\/s\s+p50 ms\s+p99 ms\s+errors\s+mean batch$/.test(l));
    expect(header).toBeGreaterThan(0);
    const rows = lines.slice(header + 1, lines.indexOf('', header));
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.every((r) => /^\s*\d+\s+(threads|batch|delay|confirm)\s+[124]\s+[12]\s+[124]\s+(auto|\d+)\s+[18]\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+[\d.]+/.test(r))).toBe(true);
    expect(rows.filter((r) => r.endsWith('← best'))).toHaveLength(1);
    // stage 1 tried more than one instances×threads pair, on servers of their own
    expect(new Set(rows.filter((r) => /^\s*\d+\s+threads/.test(r)).map((r) => r.trim().split(/\s+/).slice(2, 4).join('x'))).size).toBeGreaterThan(1);
    expect(out).toMatch(/^measured \d+ points for .+ each/m);
    expect(out).toMatch(/^best: instances \d, threads \d, max batch \d, delay /m);

    const file = path.join(dir, 'tessera.tune.yaml');
    expect(out).toContain(`wrote tessera.tune.yaml; serve with it: tessera serve -c tessera.config.yaml -c tessera.tune.yaml`);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^# Machine: 2 cores \(/m);
    expect(text).toMatch(/^# Command: tessera tune -c .*tessera\.config\.yaml --model cls --time 20s --concurrency 1,8$/m);
    expect(text).toMatch(/^# Measured: [\d.]+ samples\/s, p50 [\d.]+ ms, p99 [\d.]+ ms/m);
    const overlay = parse(text) as Overlay;
    expect(Object.keys(overlay)).toEqual(['models']);
    expect(Object.keys(overlay.models)).toEqual(['cls']);
    const chosen = overlay.models.cls;
    expect(Object.keys(chosen).sort()).toEqual(['batching', 'instances', 'sessionOptions']);
    expect(chosen.instances * chosen.sessionOptions.intraOpNumThreads).toBeLessThanOrEqual(2);
    expect([1, 2, 4]).toContain(chosen.batching.maxBatchSize);
    // the best row of the table is what was written
    const best = rows.find((r) => r.endsWith('← best'))!.trim().split(/\s+/);
    expect(best.slice(2, 6)).toEqual([String(chosen.instances), String(chosen.sessionOptions.intraOpNumThreads), String(chosen.batching.maxBatchSize), String(chosen.batching.maxQueueDelayMs)]);

    const validate = await runTesseraCli({ args: ['validate', '-c', base, '-c', file], cwd: dir });
    expect(validate.stderr).toBe('');
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain(`${base} + ${file}: OK — 2 model(s)`);

    // a third file: the base config logs at warn, and the ready line is at info
    await writeConfig(dir, { server: { logLevel: 'info' } }, 'logs.yaml');
    const proc = await startTessera({ args: ['serve', '-c', 'tessera.config.yaml', '-c', 'tessera.tune.yaml', '-c', 'logs.yaml', '--port', '0'], cwd: dir });
    started.push(proc);
    const cls = await http(`${proc.url}/v2/models/cls/config`);
    expect(cls.status).toBe(200);
    expect(cls.body.instance_group[0].count).toBe(chosen.instances);
    expect(cls.body.max_batch_size).toBe(chosen.batching.maxBatchSize);
    expect(cls.body.tessera.batching).toMatchObject({ batcher: 'dynamic', maxBatchSize: chosen.batching.maxBatchSize, maxQueueDelayMs: chosen.batching.maxQueueDelayMs });
    expect(JSON.parse(cls.body.parameters.sessionOptions.string_value)).toEqual({ intraOpNumThreads: chosen.sessionOptions.intraOpNumThreads });
    // the base file's processors still serve: the overlay changes only what it names
    expect(cls.body.tessera.postprocess).toMatchObject([{ processor: 'classification', labels: ['0', '180'] }]);
    const other = await http(`${proc.url}/v2/models/other/config`);
    expect(other.body).toMatchObject({ max_batch_size: 2, instance_group: [{ count: 1 }] });
    expect(serversUnderTest()).toEqual([]);

    // SIGHUP reads every -c file again: a change to the overlay alone applies
    const next = chosen.batching.maxBatchSize === 2 ? 4 : 2;
    await writeConfig(dir, { models: { cls: { ...chosen, batching: { ...chosen.batching, maxBatchSize: next } } } }, 'tessera.tune.yaml');
    proc.child.kill('SIGHUP');
    let served: number | undefined;
    for (let i = 0; i < 100 && served !== next; i++) {
      await new Promise((r) => setTimeout(r, 100));
      served = (await http(`${proc.url}/v2/models/cls/config`)).body.max_batch_size as number;
    }
    expect(served).toBe(next);
  });

  it('should write nothing and exit 1 naming the closest point when no point meets the budget', { timeout: 60_000 }, async () => {
    const out = path.join(dir, 'never.yaml');
    const run = await runTesseraCli({ args: ['tune', '-c', base, '--model', 'cls', '--time', '6s', '--concurrency', '1', '--latency-budget', '0.001ms', '--out', out], cwd: dir, env: ENV, timeoutMs: 50_000 });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tessera: TESSERA_E_TUNE_BUDGET_UNMET: no point kept p99 within 0\.001 ms without errors; closest: instances \d, threads \d, max batch \d, delay \S+ at 1 client, p99 [\d.]+ ms/m);
    expect(run.stdout).toMatch(/over budget$/m);
    expect(existsSync(out)).toBe(false);
    expect(serversUnderTest()).toEqual([]);
  });

  it('should stop its server and exit 130 on Ctrl-C', { timeout: 60_000 }, async () => {
    const out = path.join(dir, 'interrupted.yaml');
    const child = spawn(process.execPath, [cliPath(), 'tune', '-c', base, '--model', 'cls', '--time', '2m', '--out', out], { cwd: dir, env: { ...process.env, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // the first measurement is done: a server under test is running
        if (stderr.includes('[1] threads:')) resolve();
      });
      void exited.then((code) => reject(new Error(`tune exited (${code}) before its first measurement:\n${stderr}`)));
    });
    // (between two stage-1 servers there is a moment with none)
    let running = serversUnderTest();
    for (let i = 0; i < 50 && running.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      running = serversUnderTest();
    }
    expect(running).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('tessera tune: SIGINT: stopping the load and the server under test');
    expect(serversUnderTest()).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('should ask for --model when the config has several, and refuse options of other commands', async () => {
    const run = await runTesseraCli({ args: ['tune', '-c', base], cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("tessera: TESSERA_E_CLI_USAGE: the config has 2 models (cls, other): name the one to tune with --model\n");
    const serve = await runTesseraCli({ args: ['serve', '-c', base, '--latency-budget', '5ms'], cwd: dir });
    expect(serve.stderr).toBe('tessera: TESSERA_E_CLI_USAGE: --latency-budget is an option of tune (see tessera --help)\n');
    const dry = await runTesseraCli({ args: ['tune', '-c', base, '--model', 'cls', '--dry-run', '--time', '30s'], cwd: dir, env: ENV });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^ {2}plan: instances×threads 1×2, 2×1/m);
    expect(serversUnderTest()).toEqual([]);
  });
});
