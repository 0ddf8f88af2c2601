/**
 * The `vllm` backend through the real `tessera` CLI: upstreams given as one comma-separated string,
 * config errors as the user sees them (exit code, one line naming the key), `tessera validate`,
 * the API key kept out of every log line, and docs/backend-vllm.md kept in step with the schemas.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JSONSchema } from '@tessera/core';
import type { TesseraProcess } from '@tessera/core/testing';
import { runTesseraCli, startTessera } from '@tessera/core/testing';
import { LAUNCH_CONFIG_SCHEMA, VLLM_MODEL_CONFIG_SCHEMA } from '@tessera/backend-vllm';
import type { VllmStandInProcess } from '@tessera/vllm-stand-in';
import { VLLM_STAND_IN_BIN, startVllmStandInProcess } from '@tessera/vllm-stand-in';
import { ROOT, tempDir, writeConfig } from './helpers.js';

const NODE_WARNING = /^\(node:\d+\) |^\(Use `node --trace-warnings/;

let dir: string;
const gateways: TesseraProcess[] = [];
const standIns: VllmStandInProcess[] = [];

beforeAll(async () => {
  dir = await tempDir('tessera-vllm-cli-');
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(standIns.map((s) => s.stop()));
});

async function serve(file: string, env: Record<string, string | undefined> = {}): Promise<TesseraProcess> {
  const proc = await startTessera({ args: ['serve', '-c', file], env, timeoutMs: 30_000 });
  gateways.push(proc);
  return proc;
}

/** `vllm-stand-in serve stand-in/llm --host 127.0.0.1 --port 0 …`; resolves with its URL once it listens. */
async function startStandIn(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<string> {
  const standIn = await startVllmStandInProcess('stand-in/llm', { args: extraArgs, env });
  standIns.push(standIn);
  return standIn.url;
}

/** A TCP port that was free a moment ago: a replica that is down. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** The CLI's own stderr lines (Node's process warnings left out). */
function causeLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !NODE_WARNING.test(l));
}

/** Asserts exit 1 with exactly one `tessera: CODE: …` line on stderr, and returns it. */
function oneLineFailure(res: { code: number | null; stderr: string }, code: string): string {
  expect(res.code, res.stderr).toBe(1);
  const lines = causeLines(res.stderr);
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]!.startsWith(`tessera: ${code}: `), lines[0]).toBe(true);
  return lines[0]!;
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const messages = [{ role: 'user' as const, content: 'Say something.' }];

describe('upstreams as one comma-separated string', () => {
  it('should validate `upstreams: "http://a:1,http://b:2"`', async () => {
    const file = await writeConfig(dir, { models: { chat: { backend: 'vllm', upstreams: 'http://a:1,http://b:2' } } }, 'comma.yaml');
    const res = await runTesseraCli({ args: ['validate', '-c', file] });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${file}: OK — 1 model(s): chat (vllm, v1)\n`);
  });

  it('should serve through every replica of ${VLLM_URLS} (spaces and trailing slashes dropped) and eject the dead one', async () => {
    const live = await startStandIn();
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const file = await writeConfig(
      dir,
      [
        'server: { host: 127.0.0.1, port: 0 }',
        'models:',
        '  chat:',
        '    backend: vllm',
        '    upstreams: ${VLLM_URLS}',
        '    servedModelName: stand-in/llm',
        '    balance: { strategy: round-robin }',
        '    health: { interval: 200ms }',
        '',
      ].join('\n'),
      'comma-serve.yaml',
    );
    const gw = await serve(file, { VLLM_URLS: `${live}/, ${dead}` });
    const metrics = await metricsOf(gw.url);
    expect(metrics).toContain(`tessera_upstream_healthy{model="chat",upstream="${live}"} 1`);
    expect(metrics).toContain(`tessera_upstream_healthy{model="chat",upstream="${dead}"} 0`);
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (let i = 0; i < 4; i++) {
      const reply = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 2 });
      expect(reply.model).toBe('stand-in/llm');
    }
  });
});

describe('config errors', { timeout: 60_000 }, () => {
  async function check(name: string, model: Record<string, unknown>): Promise<{ validate: string; serve: string }> {
    const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0 }, models: { chat: { backend: 'vllm', ...model } } }, `${name}.yaml`);
    const validate = oneLineFailure(await runTesseraCli({ args: ['validate', '-c', file] }), 'TESSERA_E_CONFIG_INVALID');
    const serve = oneLineFailure(await runTesseraCli({ args: ['serve', '-c', file] }), 'TESSERA_E_CONFIG_INVALID');
    expect(serve).toBe(validate);
    return { validate, serve };
  }

  it('should name a misspelt key and suggest the right one', async () => {
    const { validate } = await check('typo', { upstreams: 'http://127.0.0.1:1', servedModelNmae: 'org/llm' });
    expect(validate).toContain('models.chat: unknown key "servedModelNmae"');
    expect(validate).toContain('— did you mean "servedModelName"?');
  });

  it('should name a misspelt key inside launch, and a misspelt strategy', async () => {
    const launch = await check('launch-typo', { launch: { model: 'org/llm', gpus: [[0]], maxNumSeq: 64 } });
    expect(launch.validate).toContain('models.chat.launch: unknown key "maxNumSeq"');
    expect(launch.validate).toContain('did you mean "maxNumSeqs"?');
    const strategy = await check('strategy-typo', { upstreams: 'http://127.0.0.1:1', balance: { strategy: 'least-loadd' } });
    expect(strategy.validate).toContain('models.chat.balance.strategy: must be one of: least-loaded, round-robin, prefix-affinity, got "least-loadd" — did you mean "least-loaded"?');
  });

  it('should refuse an upstream without http://, a launch without gpus, and a duration it cannot read', async () => {
    expect((await check('no-scheme', { upstreams: 'gpu-1:8000' })).validate).toContain('models.chat.upstreams[0]: must be a string of at least 8 characters matching /^https?://');
    expect((await check('no-gpus', { launch: { model: 'org/llm' } })).validate).toContain('models.chat.launch: missing required key "gpus"');
    expect((await check('duration', { upstreams: 'http://127.0.0.1:1', health: { interval: '2 seconds' } })).validate).toContain('models.chat.health.interval: must be a duration');
  });

  const NEEDS = "models.chat: a vllm model needs `upstreams` (the replicas' URLs) or `launch` (replicas Tessera starts)";

  it('should stop serve with a clear message when neither upstreams nor launch is given', async () => {
    const file = await writeConfig(dir, { server: { host: '127.0.0.1', port: 0 }, models: { chat: { backend: 'vllm', servedModelName: 'org/llm' } } }, 'nothing.yaml');
    const res = await runTesseraCli({ args: ['serve', '-c', file] });
    expect(res.code, res.stderr).toBe(1);
    const lines = causeLines(res.stderr);
    expect(lines, res.stderr).toHaveLength(1);
    // found when the model loads today (TESSERA_E_MODEL_LOAD), or by the schema once it says so
    expect(lines[0]).toMatch(/^tessera: TESSERA_E_(MODEL_LOAD|CONFIG_INVALID): /);
    expect(lines[0]).toContain(NEEDS);
  });

  // Fails today: `tessera validate` (without --load) accepts such a model, and an empty
  // ${VLLM_URLS} too; only `serve` finds out. VLLM_MODEL_CONFIG_SCHEMA can say it (see the report).
  it('should make `tessera validate` refuse a model with neither upstreams nor launch (or an empty VLLM_URLS)', async () => {
    const file = await writeConfig(dir, { models: { chat: { backend: 'vllm', servedModelName: 'org/llm' } } }, 'nothing-validate.yaml');
    expect(oneLineFailure(await runTesseraCli({ args: ['validate', '-c', file] }), 'TESSERA_E_CONFIG_INVALID')).toContain(NEEDS);
    const env = await writeConfig(dir, 'models:\n  chat:\n    backend: vllm\n    upstreams: ${VLLM_URLS}\n', 'empty-env.yaml');
    expect(oneLineFailure(await runTesseraCli({ args: ['validate', '-c', env], env: { VLLM_URLS: '' } }), 'TESSERA_E_CONFIG_INVALID')).toContain(NEEDS);
  });

  it('should name VLLM_URLS when it is not set', async () => {
    const file = await writeConfig(dir, 'models:\n  chat:\n    backend: vllm\n    upstreams: ${VLLM_URLS}\n', 'unset-env.yaml');
    const line = oneLineFailure(await runTesseraCli({ args: ['validate', '-c', file], env: { VLLM_URLS: undefined } }), 'TESSERA_E_CONFIG_ENV');
    expect(line).toContain('models.chat.upstreams: environment variable VLLM_URLS is not set');
  });
});

describe('tessera validate on a vllm config', () => {
  it('should check every key without starting a replica or connecting to one', async () => {
    const marker = path.join(dir, 'launched');
    const fakeVllm = path.join(dir, 'fake-vllm.mjs');
    await writeFile(fakeVllm, `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'started');\n`);
    const file = await writeConfig(
      dir,
      {
        models: {
          remote: { backend: 'vllm', upstreams: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], servedModelName: 'org/llm', balance: { strategy: 'prefix-affinity', loadFactor: 1.5 } },
          local: {
            backend: 'vllm',
            servedModelName: 'org/llm',
            launch: { command: process.execPath, args: [fakeVllm], model: 'org/llm', gpus: [[0, 1], [2, 3]], maxNumSeqs: 64, restartBackoff: { initialMs: '2s' }, startupTimeout: '15m' },
          },
        },
      },
      'validate.yaml',
    );
    const res = await runTesseraCli({ args: ['validate', '-c', file] });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${file}: OK — 2 model(s): remote (vllm, v1); local (vllm, v1)\n`);
    expect(() => readFileSync(marker)).toThrow();
  });
});

describe('the upstream API key', { timeout: 60_000 }, () => {
  const SECRET = 'sk-vllm-4f1d9c2e7b3a-do-not-log';

  it('should never appear in a log line, even at debug level and when requests fail', async () => {
    // a replica that requires the key (vLLM reads VLLM_API_KEY too)
    const secured = await startStandIn([], { VLLM_API_KEY: SECRET });
    expect((await fetch(`${secured}/v1/models`)).status).toBe(401);
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const file = await writeConfig(
      dir,
      [
        'server: { host: 127.0.0.1, port: 0, logLevel: debug }',
        'models:',
        '  chat:',
        '    backend: vllm',
        `    upstreams: ['${secured}', '${dead}']`,
        '    servedModelName: stand-in/llm',
        '    apiKey: ${VLLM_API_KEY}',
        '    balance: { strategy: round-robin }',
        '    health: { interval: 200ms, ejectAfterFailures: 100 }',
        '  wrong-key:',
        '    backend: vllm',
        `    upstreams: '${secured}'`,
        '    servedModelName: stand-in/llm',
        "    apiKey: '${VLLM_API_KEY}-rotated'",
        '  managed:',
        '    backend: vllm',
        '    servedModelName: stand-in/llm',
        '    apiKey: ${VLLM_API_KEY}',
        '    launch:',
        `      command: ${JSON.stringify(process.execPath)}`,
        `      args: [${JSON.stringify(VLLM_STAND_IN_BIN)}]`,
        '      model: stand-in/llm',
        '      gpus: [[0]]',
        '      basePort: 0',
        '      env: { VLLM_API_KEY: "${VLLM_API_KEY}" }',
        '',
      ].join('\n'),
      'secret.yaml',
    );
    const gw = await serve(file, { VLLM_API_KEY: SECRET });
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'client-key', maxRetries: 0 });

    // served with the key, streamed and not, on both models that hold it
    for (const model of ['chat', 'managed']) {
      expect((await client.chat.completions.create({ model, messages, max_tokens: 2 })).choices[0]!.message.content).toBeTruthy();
      let text = '';
      for await (const c of await client.chat.completions.create({ model, messages, max_tokens: 2, stream: true })) text += c.choices[0]?.delta.content ?? '';
      expect(text).toBeTruthy();
    }
    // the dead replica: connection refused, retried on the other one (logged at warn)
    for (let i = 0; i < 4; i++) await client.completions.create({ model: 'chat', prompt: `p${i}`, max_tokens: 1 });
    // the engine's 500 (nothing left to retry on: a 502) and a stream the engine drops midway
    await fetch(`${secured}/stand-in/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failNext: 1, dropStreams: 1, dropAfterTokens: 1 }) });
    const failed = (await client.chat.completions.create({ model: 'chat', messages, max_tokens: 1 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(failed.status).toBe(502);
    const broken = await (async () => {
      for await (const _ of await client.chat.completions.create({ model: 'chat', messages, max_tokens: 50, stream: true })) void _;
    })().catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(OpenAI.APIError);
    // the replica refuses a rotated key: a 502 that names the apiKey setting, not the key
    const refused = (await client.chat.completions.create({ model: 'wrong-key', messages, max_tokens: 1 }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(refused.status).toBe(502);
    expect(refused.message).toContain("refused the gateway's credentials (HTTP 401): check the model's apiKey");
    // the engine's own 400 passed through
    expect(await client.chat.completions.create({ model: 'chat', messages, max_tokens: 100_000 }).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.BadRequestError);

    await waitFor('the gateway to log the failures', async () => gw.stdout.some((l) => l.includes('replica failed before the first byte')) && gw.stdout.some((l) => l.includes('stream interrupted')));
    expect(await gw.stop()).toBe(0);
    const lines = [...gw.stdout, ...gw.stderr];
    // the log was at debug level and saw the failures: the check below covered them
    expect(lines.some((l) => l.includes('"level":20'))).toBe(true);
    expect(lines.some((l) => l.includes('"level":40') && l.includes(dead))).toBe(true);
    expect(lines.filter((l) => l.includes(SECRET))).toEqual([]);
  });
});

describe('docs/backend-vllm.md', () => {
  /** Every key of a schema as a dotted path (`balance.strategy`, `launch.restartBackoff.initialMs`), with its default. */
  function keysOf(schema: JSONSchema, prefix = ''): Map<string, JSONSchema> {
    const out = new Map<string, JSONSchema>();
    for (const [key, sub] of Object.entries((schema.properties ?? {}) as Record<string, JSONSchema>)) {
      const name = prefix ? `${prefix}.${key}` : key;
      out.set(name, sub);
      for (const [k, v] of keysOf(sub, name)) out.set(k, v);
    }
    return out;
  }

  /** The rows of the model keys table: `| \`key\` | type | default | description |`. */
  function documentedKeys(): Map<string, { type: string; default: string }> {
    const text = readFileSync(path.join(ROOT, 'docs/backend-vllm.md'), 'utf8');
    const section = text.slice(text.indexOf('\n## Model keys'), text.indexOf('\n## ', text.indexOf('\n## Model keys') + 1));
    const rows = new Map<string, { type: string; default: string }>();
    for (const line of section.split('\n')) {
      const m = /^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|/.exec(line);
      if (m) rows.set(m[1]!, { type: m[2]!.trim(), default: m[3]!.trim() });
    }
    return rows;
  }

  it('should document every key of VLLM_MODEL_CONFIG_SCHEMA and LAUNCH_CONFIG_SCHEMA, and no other', () => {
    expect(VLLM_MODEL_CONFIG_SCHEMA.properties).toHaveProperty('launch', LAUNCH_CONFIG_SCHEMA);
    const keys = keysOf(VLLM_MODEL_CONFIG_SCHEMA);
    for (const k of keysOf(LAUNCH_CONFIG_SCHEMA).keys()) expect(keys.has(`launch.${k}`)).toBe(true);
    expect([...documentedKeys().keys()].sort()).toEqual([...keys.keys()].sort());
  });

  it("should give each key the schema's default", () => {
    const docs = documentedKeys();
    for (const [key, schema] of keysOf(VLLM_MODEL_CONFIG_SCHEMA)) {
      const row = docs.get(key)!;
      if ('default' in schema) {
        const value = typeof schema.default === 'string' ? schema.default : JSON.stringify(schema.default);
        expect(row.default, key).toBe(`\`${value}\``);
      } else {
        expect(row.default.startsWith('`'), `${key} has no default in the schema: its row says what applies instead, in words`).toBe(false);
      }
    }
  });
});
