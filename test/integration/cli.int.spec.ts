/**
 * The `tessera` CLI end to end: the built CLI as a child process, configs in temp folders, the tiny
 * generated models and the real PP-OCR detector, HTTP over loopback. What a user sees: exit codes,
 * one-line causes on stderr, overrides, path resolution, partial failure, signals and draining.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TesseraProcess, TestModelCatalog } from '@tessera/core/testing';
import { runTesseraCli, startTessera, writeTestModels } from '@tessera/core/testing';
import { DET_MODEL, ROOT, freePort, http, tempDir, writeConfig } from './helpers.js';

const CORE_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'packages/core/package.json'), 'utf8')) as { version: string }).version;
const STACK_LINE = /^\s+at /;
/** Node's own process warnings (`(node:123) [CODE] …` and its `(Use `node --trace-warnings …`)` hint). */
const NODE_WARNING = /^\(node:\d+\) |^\(Use `node --trace-warnings/;

let dir: string;
let models: TestModelCatalog;
const started: TesseraProcess[] = [];

/** Starts `tessera serve` and remembers the process so that afterAll stops it whatever happens. */
async function serve(args: string[], options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<TesseraProcess> {
  const proc = await startTessera({ args: ['serve', ...args], ...options });
  started.push(proc);
  return proc;
}

/**
 * The CLI's own stderr lines. Node's process warnings come from the runtime or a dependency, not
 * from the CLI, and are left out here; one test below checks that there are none.
 */
function causeLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !NODE_WARNING.test(l));
}

/**
 * Asserts the CLI failed with exit 1 and one `tessera: CODE: …` line, no stack; returns the line.
 * `excerptLines`: lines allowed after it (a YAML syntax error quotes the offending line and a caret).
 */
function expectOneLineFailure(result: { code: number | null; stderr: string }, code?: string, excerptLines = 0): string {
  expect(result.code, result.stderr).toBe(1);
  const lines = causeLines(result.stderr);
  expect(lines.length, result.stderr).toBeGreaterThanOrEqual(1);
  expect(lines.length, result.stderr).toBeLessThanOrEqual(1 + excerptLines);
  expect(result.stderr.split('\n').some((l) => STACK_LINE.test(l)), result.stderr).toBe(false);
  const line = lines[0]!;
  expect(line.startsWith('tessera: ')).toBe(true);
  if (code) expect(line).toContain(`tessera: ${code}: `);
  return line;
}

/** A config folder of its own inside `dir`, with the config written as YAML. */
async function configIn(name: string, config: unknown, file = 'tessera.config.yaml'): Promise<{ folder: string; file: string }> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  return { folder, file: await writeConfig(folder, config, file) };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The pino JSON lines of a process's stdout whose `msg` is `msg`. */
function logLines(proc: TesseraProcess, msg: string): Record<string, unknown>[] {
  return proc.stdout.flatMap((l) => {
    try {
      const line = JSON.parse(l) as Record<string, unknown>;
      return line.msg === msg ? [line] : [];
    } catch {
      return [];
    }
  });
}

const affineInput = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

beforeAll(async () => {
  dir = await tempDir('tessera-cli-');
  models = await writeTestModels(dir);
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop('SIGKILL')));
});

describe('tessera CLI', () => {
  describe('--help, --version and bad arguments', () => {
    it('should print the usage with --help and exit 0', async () => {
      const res = await runTesseraCli({ args: ['--help'] });
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('Usage:');
      expect(res.stdout).toContain('tessera serve');
      expect(res.stdout).toContain('tessera validate');
      expect(res.stderr).toBe('');
    });

    it('should print the version of @tessera/core with --version and -v', async () => {
      for (const flag of ['--version', '-v']) {
        const res = await runTesseraCli({ args: [flag] });
        expect(res.code).toBe(0);
        expect(res.stdout.trim()).toBe(CORE_VERSION);
      }
    });

    it('should reject an unknown command with one line naming it', async () => {
      // a folder with no config: the command is wrong whatever the config, so that is what to say
      const empty = path.join(dir, 'empty-for-command');
      await mkdir(empty, { recursive: true });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['frob'], cwd: empty }));
      expect(line).toContain("unknown command 'frob'");
    });

    it('should reject an unknown flag with one line naming it', async () => {
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '--bogus'] }));
      expect(line).toContain('--bogus');
      expect(line).toContain('tessera --help');
    });

    it('should reject a --port that is not a port', async () => {
      const { file } = await configIn('bad-port-flag', { models: {} });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file, '--port', 'eighty'] }));
      expect(line).toContain('--port eighty');
    });
  });

  describe('validate', () => {
    it('should accept a good config given with -c and name its models', async () => {
      const { file } = await configIn('validate-ok', { models: { affine: { path: models.affine.path }, fixed: { path: '../fixed.onnx' } } });
      const res = await runTesseraCli({ args: ['validate', '-c', file] });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(file);
      expect(res.stdout).toContain('OK');
      expect(res.stdout).toContain('affine (onnxruntime, v1)');
      expect(res.stdout).toContain('fixed (onnxruntime, v1)');
    });

    it('should load and warm every model with --load', async () => {
      const { file } = await configIn('validate-load', { models: { affine: { versions: { '1': { path: models.affine.path }, '2': { path: models.affineV2.path } } } } });
      const res = await runTesseraCli({ args: ['validate', '--load', '-c', file] });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('affine (onnxruntime, v1, v2: warmed)');
      expect(res.stdout).toContain('all loaded');
    });

    it('should say "warmed" only when a warm-up ran (issue 9: --load printed "warmed" for warmup: false)', async () => {
      const { file } = await configIn('validate-load-cold', { models: { affine: { path: models.affine.path, warmup: false } } });
      const res = await runTesseraCli({ args: ['validate', '--load', '-c', file] });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain('affine (onnxruntime, v1: loaded (warmup: false))');
      expect(res.stdout).not.toContain('warmed');
    });

    it('should name the missing model file with an error code', async () => {
      const { file } = await configIn('validate-missing', { models: { gone: { path: './nowhere.onnx' } } });
      const res = await runTesseraCli({ args: ['validate', '-c', file] });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^tessera: TESSERA_E_CONFIG_INVALID: .*models\.gone\.versions\.1\.path: .*nowhere\.onnx does not exist/);
    });

    it('should give command-line mistakes the code TESSERA_E_CLI_USAGE', async () => {
      const res = await runTesseraCli({ args: ['serve', '--port', '70000'] });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^tessera: TESSERA_E_CLI_USAGE: --port 70000/);
      const unknown = await runTesseraCli({ args: ['srve'] });
      expect(unknown.stderr).toMatch(/^tessera: TESSERA_E_CLI_USAGE: unknown command 'srve'/);
    });

    it('should fail --load on a model that does not load, where plain validate passes', async () => {
      const { file } = await configIn('validate-load-corrupt', { models: { broken: { path: models.corrupt.path } } });
      expect((await runTesseraCli({ args: ['validate', '-c', file] })).code).toBe(0);
      const line = expectOneLineFailure(await runTesseraCli({ args: ['validate', '--load', '-c', file] }), 'TESSERA_E_MODEL_LOAD');
      expect(line).toContain('broken v1');
    });

    it('should find tessera.config.yaml in the current folder without -c', async () => {
      const { folder, file } = await configIn('search-yaml', { models: { affine: { path: '../affine.onnx' } } });
      const res = await runTesseraCli({ args: ['validate'], cwd: folder });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(file);
      expect(res.stdout).toContain('affine (onnxruntime, v1)');
    });

    it('should find the "tessera" key of package.json in the current folder without -c', async () => {
      const folder = path.join(dir, 'search-package-json');
      await mkdir(folder, { recursive: true });
      const pkg = { name: 'my-service', private: true, tessera: { models: { 'multi-io': { path: '../multi-io.onnx' } } } };
      await writeFile(path.join(folder, 'package.json'), JSON.stringify(pkg, null, 2));
      const res = await runTesseraCli({ args: ['validate'], cwd: folder });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(path.join(folder, 'package.json'));
      expect(res.stdout).toContain('multi-io (onnxruntime, v1)');
    });
  });

  describe('bad configs', () => {
    it('should name the absolute path of a -c file that does not exist', async () => {
      const folder = path.join(dir, 'not-found');
      await mkdir(folder, { recursive: true });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', 'nope.yaml'], cwd: folder }), 'TESSERA_E_CONFIG_NOT_FOUND');
      expect(line).toContain(path.join(folder, 'nope.yaml'));
    });

    it('should report a YAML syntax error with file, line and column', async () => {
      const { file } = await configIn('yaml-syntax', 'models:\n  m:\n    path: ./m.onnx\n   oops: 1\n');
      // docs/configuration.md: the cause line, then the offending line and a caret under the column
      const res = await runTesseraCli({ args: ['serve', '-c', file] });
      const line = expectOneLineFailure(res, 'TESSERA_E_CONFIG_PARSE', 2);
      expect(line).toContain(`${file}:4:`);
      expect(line).toContain('YAML syntax error');
      expect(causeLines(res.stderr).slice(1).join('\n')).toMatch(/oops: 1\n\s*\^/);
    });

    it('should name the offending key, its value and the file for a schema violation', async () => {
      const { file } = await configIn('negative-batch', { models: { m: { path: models.affine.path, batching: { maxBatchSize: -1 } } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_CONFIG_INVALID');
      expect(line).toContain(file);
      expect(line).toContain('models.m.batching.maxBatchSize');
      expect(line).toContain('-1');
    });

    it('should reject a root key no plugin claims (a typo of models) and name the file', async () => {
      const { file } = await configIn('root-typo', { model: { m: { path: models.affine.path } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_CONFIG_INVALID');
      expect(line).toContain('model');
      expect(line).toContain('allowed: server, plugins, models');
      expect(line).toContain(file);
    });

    it('should name an unset ${VAR} and where it is used', async () => {
      const { file } = await configIn('env-unset', { server: { port: '${TESSERA_CLI_TEST_UNSET_PORT}' }, models: {} });
      const line = expectOneLineFailure(
        await runTesseraCli({ args: ['serve', '-c', file], env: { TESSERA_CLI_TEST_UNSET_PORT: undefined } }),
        'TESSERA_E_CONFIG_ENV',
      );
      expect(line).toContain(file);
      expect(line).toContain('server.port');
      expect(line).toContain('TESSERA_CLI_TEST_UNSET_PORT');
    });

    it('should say to add a plugin for a backend nobody provides', async () => {
      const { file } = await configIn('backend-unknown', { models: { m: { backend: 'no-such-backend', path: models.affine.path } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_BACKEND_UNKNOWN');
      expect(line).toContain("'no-such-backend'");
      expect(line).toContain('plugins:');
    });

    it('should stop serve with the model and the reason when a model file is missing', async () => {
      const { file } = await configIn('missing-model', { server: { host: '127.0.0.1', port: 0 }, models: { lost: { path: './lost.onnx' } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_MODEL_LOAD');
      expect(line).toContain('lost v1');
      expect(line).toContain(path.join(path.dirname(file), 'lost.onnx'));
      expect(line).toContain('file not found');
    });

    it('should stop serve with the model and the reason when a model file is corrupt', async () => {
      const { file } = await configIn('corrupt-model', { server: { host: '127.0.0.1', port: 0 }, models: { mangled: { path: models.corrupt.path } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_MODEL_LOAD');
      expect(line).toContain('mangled v1');
      expect(line).toContain(models.corrupt.path);
      expect(line).toMatch(/protobuf|parse/i);
    });

    it("should validate backend keys against the backend's schema", async () => {
      const { file } = await configIn('session-options', { models: { m: { path: models.affine.path, sessionOptions: { intraOpThreads: 2 } } } });
      const line = expectOneLineFailure(await runTesseraCli({ args: ['validate', '-c', file] }), 'TESSERA_E_CONFIG_INVALID');
      expect(line).toContain(file);
      expect(line).toContain('models.m.sessionOptions');
      expect(line).toContain('"intraOpThreads"');
      expect(line).toContain('intraOpNumThreads');
    });

    it('should print nothing on stderr but the cause (no Node or dependency warnings)', async () => {
      // a config error found after the server object exists, so that everything it constructs ran
      const { file } = await configIn('stderr-clean', { models: { m: { path: models.affine.path, sessionOptions: { nope: 1 } } } });
      const res = await runTesseraCli({ args: ['validate', '-c', file] });
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n'), res.stderr).toHaveLength(1);
    });
  });

  describe('serve: overrides, environment and paths', () => {
    it('should listen where --port and --host say, not where the config says', async () => {
      const port = await freePort();
      // 203.0.113.1 (TEST-NET-3) is not an address of this machine: listening there would fail
      const { file } = await configIn('overrides', { server: { host: '203.0.113.1', port: 1 }, models: { affine: { path: models.affine.path } } });
      const proc = await serve(['-c', file, '--port', String(port), '--host', '127.0.0.1']);
      expect(proc.url).toBe(`http://127.0.0.1:${port}`);
      expect((await http(`${proc.url}/v2/models/affine/infer`, { json: affineInput })).status).toBe(200);
      expect(await proc.stop()).toBe(0);
    });

    it('should accept the short flags -p and -H', async () => {
      const port = await freePort();
      const { file } = await configIn('short-flags', { server: { host: '203.0.113.1', port: 1 }, models: {} });
      const proc = await serve(['-c', file, '-p', String(port), '-H', '127.0.0.1']);
      expect(proc.port).toBe(port);
      expect(await proc.stop()).toBe(0);
    });

    it('should take the port from ${VAR} and from the default of ${VAR:-default}', async () => {
      const { file } = await configIn('env-port', { server: { host: '127.0.0.1', port: '${TESSERA_CLI_TEST_PORT}' }, models: {} });
      const port = await freePort();
      const fromVar = await serve(['-c', file], { env: { TESSERA_CLI_TEST_PORT: String(port) } });
      expect(fromVar.port).toBe(port);
      expect(await fromVar.stop()).toBe(0);

      const { file: withDefault } = await configIn('env-port-default', { server: { host: '127.0.0.1', port: '${TESSERA_CLI_TEST_PORT:-' + String(port) + '}' }, models: {} });
      const fromDefault = await serve(['-c', withDefault], { env: { TESSERA_CLI_TEST_PORT: undefined } });
      expect(fromDefault.port).toBe(port);
      expect(await fromDefault.stop()).toBe(0);
    });

    it("should resolve relative model paths against the config file's folder, whatever the current folder", async () => {
      const { file } = await configIn('relative-paths', { server: { host: '127.0.0.1', port: 0 }, models: { affine: { path: '../affine.onnx' } } });
      const elsewhere = path.join(dir, 'somewhere', 'else');
      await mkdir(elsewhere, { recursive: true });
      const relative = path.relative(elsewhere, file);
      expect(relative.startsWith('..')).toBe(true);
      const proc = await serve(['-c', relative], { cwd: elsewhere });
      const res = await http(`${proc.url}/v2/models/affine/infer`, { json: affineInput });
      expect(res.status, res.text).toBe(200);
      expect(res.body.outputs[0].data).toEqual([3, 5, 7, 9]);
      expect(await proc.stop()).toBe(0);
    });
  });

  describe('serve with server.exitOnModelError: false', () => {
    let proc: TesseraProcess;

    beforeAll(async () => {
      const { file } = await configIn('partial', {
        server: { host: '127.0.0.1', port: 0, exitOnModelError: false },
        models: { good: { path: models.affine.path }, bad: { path: models.corrupt.path } },
      });
      proc = await serve(['-c', file]);
    });

    afterAll(async () => {
      await proc?.stop();
    });

    it('should start, but not report the server ready', async () => {
      expect(await http(`${proc.url}/v2/health/live`)).toMatchObject({ status: 200, body: { live: true } });
      expect(await http(`${proc.url}/v2/health/ready`)).toMatchObject({ status: 503, body: { ready: false } });
    });

    it('should report the failed version with its state and reason', async () => {
      const res = await http(`${proc.url}/v2/models/bad/versions/1/ready`);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ name: 'bad', version: '1', ready: false, state: 'failed' });
      expect(res.body.reason).toContain('bad v1');
      expect(res.body.reason).toContain(models.corrupt.path);
      const metadata = await http(`${proc.url}/v2/models/bad`);
      expect(metadata.status).toBe(503);
      expect(metadata.body.code).toBe('TESSERA_E_MODEL_NOT_READY');
      expect(metadata.body.error).toContain('failed');
    });

    it('should answer inference on the failed model with 503', async () => {
      const res = await http(`${proc.url}/v2/models/bad/infer`, { json: affineInput });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('TESSERA_E_MODEL_NOT_READY');
      expect(res.headers.get('retry-after')).not.toBeNull();
    });

    it('should serve the good model', async () => {
      expect(await http(`${proc.url}/v2/models/good/ready`)).toMatchObject({ status: 200, body: { ready: true } });
      const res = await http(`${proc.url}/v2/models/good/infer`, { json: affineInput });
      expect(res.status, res.text).toBe(200);
      expect(res.body.outputs[0].data).toEqual([3, 5, 7, 9]);
    });
  });

  describe('serve: model versions', () => {
    it('should send requests without a version to the newest and keep older versions addressable', async () => {
      const { file } = await configIn('versions', {
        server: { host: '127.0.0.1', port: 0 },
        // written out of order on purpose: "newest" is by number, not by position
        models: { affine: { versions: { '2': { path: models.affineV2.path }, '1': { path: models.affine.path } } } },
      });
      const proc = await serve(['-c', file]);
      const latest = await http(`${proc.url}/v2/models/affine/infer`, { json: affineInput });
      expect(latest.status, latest.text).toBe(200);
      expect(latest.body.model_version).toBe('2');
      expect(latest.body.outputs[0].data).toEqual([2, 5, 8, 11]);
      const v1 = await http(`${proc.url}/v2/models/affine/versions/1/infer`, { json: affineInput });
      expect(v1.body.model_version).toBe('1');
      expect(v1.body.outputs[0].data).toEqual([3, 5, 7, 9]);
      expect((await http(`${proc.url}/v2/models/affine`)).body.versions).toEqual(['1', '2']);
      expect(await proc.stop()).toBe(0);
    });
  });

  describe('serve: signals and draining', () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`should close and exit 0 on ${signal}`, async () => {
        const { file } = await configIn(`signal-${signal}`, { server: { host: '127.0.0.1', port: 0 }, models: { affine: { path: models.affine.path } } });
        const proc = await serve(['-c', file]);
        expect((await http(`${proc.url}/v2/models/affine/infer`, { json: affineInput })).status).toBe(200);
        expect(await proc.stop(signal)).toBe(0);
        expect(logLines(proc, 'shutting down')[0]).toMatchObject({ signal });
        expect(logLines(proc, 'closed')).toHaveLength(1);
        expect(proc.stderr.filter((l) => !NODE_WARNING.test(l))).toEqual([]);
      });
    }

    it('should finish an in-flight inference, refuse new ones with 503 while draining, then exit 0', async () => {
      const { file } = await configIn('draining', {
        server: { host: '127.0.0.1', port: 0, bodyLimit: '64MiB' },
        models: { det: { path: DET_MODEL, warmupShapes: { x: [1, 3, 64, 64] } } },
      });
      const proc = await serve(['-c', file], { timeoutMs: 60_000 });
      const small = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 64, 64], data: new Array(3 * 64 * 64).fill(0) }] });

      // A request whose body is still on its way counts as in flight and keeps the server draining
      // (and its listener open) for as long as we like: that makes the 503 below deterministic.
      // The big inference alone would not: onnxruntime-node runs a session on the main thread, so
      // the signal is only seen once the inference is over and the window before the listener
      // closes is the few hundred ms it takes to write the answer.
      const holder = await holdRequest(proc.url, '/v2/models/det/infer', small);

      // [4, 3, 960, 960] FP32 of zeros: ~22 MB of JSON, and a second or more in ONNX Runtime
      const shape = [4, 3, 960, 960];
      const n = shape.reduce((a, b) => a * b, 1);
      const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[${shape.join(',')}],"data":[${'0,'.repeat(n - 1)}0]}]}`;
      const inflight = postRaw(`${proc.url}/v2/models/det/infer`, body);
      let inflightDone = false;
      void inflight.response.then(() => (inflightDone = true), () => (inflightDone = true));

      // The handler checks for draining when it starts, so the signal must come after the server has
      // the whole body: once our last byte is written, the server reads the rest, parses it (its
      // event loop is busy then, so the signal waits) and hands the batch to ONNX Runtime.
      await inflight.written;
      await new Promise((r) => setTimeout(r, 300));
      expect(inflightDone, 'the big inference finished before the signal; it should take over a second').toBe(false);
      proc.child.kill('SIGTERM');

      await waitFor('the draining log line', () => logLines(proc, 'draining').length > 0, 60_000);
      expect(logLines(proc, 'draining')[0]!.inflight).toBeGreaterThanOrEqual(1);
      const late = await http(`${proc.url}/v2/models/det/infer`, { method: 'POST', body: small, headers: { 'content-type': 'application/json' } });
      expect(late.status, late.text).toBe(503);
      expect(late.body.code).toBe('TESSERA_E_SERVER_DRAINING');
      expect(late.headers.get('retry-after')).not.toBeNull();
      expect(await http(`${proc.url}/v2/health/ready`)).toMatchObject({ status: 503, body: { ready: false } });

      const res = await inflight.response;
      expect(res.status, res.text.slice(0, 500)).toBe(200);
      const out = JSON.parse(res.text) as { model_version: string; outputs: { shape: number[]; data: number[] }[] };
      expect(out.model_version).toBe('1');
      expect(out.outputs[0]!.shape).toEqual([4, 1, 960, 960]);
      expect(out.outputs[0]!.data).toHaveLength(4 * 960 * 960);

      // its body completes during draining, so its handler refuses it like any new request
      const held = await holder.finish();
      expect(held.status, held.text).toBe(503);
      expect(JSON.parse(held.text)).toMatchObject({ code: 'TESSERA_E_SERVER_DRAINING' });

      expect(await proc.exited).toBe(0);
      expect(logLines(proc, 'closed')).toHaveLength(1);
    }, 120_000);
  });
});

/**
 * Sends a POST's head and the first byte of its body, and waits until the server has had a moment
 * to see the head; `finish()` sends the rest and resolves with the answer.
 */
async function holdRequest(url: string, urlPath: string, body: string): Promise<{ finish(): Promise<{ status: number; text: string }> }> {
  const { hostname, port } = new URL(url);
  const sock = connect(Number(port), hostname);
  let raw = '';
  sock.setEncoding('utf8');
  sock.on('data', (c: string) => (raw += c));
  const closed = new Promise<void>((resolve, reject) => {
    sock.on('close', () => resolve());
    sock.on('error', reject);
  });
  await new Promise<void>((resolve) => sock.once('connect', resolve));
  sock.write(`POST ${urlPath} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 1)}`);
  await new Promise((r) => setTimeout(r, 200));
  return {
    async finish() {
      sock.write(body.slice(1));
      await closed;
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0), text: raw.slice(raw.indexOf('\r\n\r\n') + 4) };
    },
  };
}

/**
 * POSTs a JSON body on a connection of its own. `written` resolves once the last byte is handed to
 * the socket, `response` with the status and text.
 */
function postRaw(url: string, body: string): { written: Promise<void>; response: Promise<{ status: number; text: string }> } {
  let written!: () => void;
  const writtenP = new Promise<void>((resolve) => (written = resolve));
  const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('finish', () => written());
    req.end(body);
  });
  return { written: writtenP, response };
}
