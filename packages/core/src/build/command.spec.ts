import { describe, expect, it } from 'vitest';
import type { Backend, BuildReport, LoadContext, ModelVersionSpec } from '../contracts/backend.js';
import type { TesseraConfigInput } from '../config/types.js';
import { resolveConfig } from '../config/resolve.js';
import { TesseraError } from '../errors.js';
import { testPlugin } from '../pipeline/test-support.js';
import { FakeBackend } from '../testing/fake-backend.js';
import { MemoryStateStore } from '../testing/memory-state-store.js';
import { buildEngines } from './build-engines.js';
import { buildEngineCommand, formatBytes } from './command.js';

/** A backend with a build step: records the specs and answers `report`, or throws `fail` for a model named so. */
class BuildingBackend extends FakeBackend implements Backend {
  readonly specs: ModelVersionSpec[] = [];
  readonly contexts: LoadContext[] = [];
  readonly modelConfigSchema = { type: 'object', properties: { engine: { type: 'string', default: 'fp16' } } };

  constructor(
    readonly report: BuildReport,
    readonly fail: Record<string, Error> = {},
  ) {
    super();
  }

  async build(spec: ModelVersionSpec, ctx: LoadContext): Promise<BuildReport> {
    this.specs.push(spec);
    this.contexts.push(ctx);
    const failure = this.fail[spec.model];
    if (failure !== undefined) throw failure;
    return this.report;
  }
}

const REPORT: BuildReport = {
  files: [
    { path: '/cache/b.engine', bytes: 12_900_000, state: 'built' },
    { path: '/cache/a.timing', bytes: 512, state: 'reused' },
  ],
  notes: ['profile min: x:1x4'],
};

function setup(models: TesseraConfigInput['models'], fail: Record<string, Error> = {}) {
  const building = new BuildingBackend(REPORT, fail);
  const plugin = testPlugin('builders', (ctx) => {
    ctx.registerBackend('builder', building);
    ctx.registerBackend('fake', new FakeBackend());
  });
  const config = resolveConfig({ models }, { configDir: '/', env: {} });
  const server = { plugins: [plugin], stateStore: () => new MemoryStateStore() };
  return { building, config, server };
}

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe('buildEngines', () => {
  it("should build every version of a building backend with the load's spec, and nothing for the others", async () => {
    const { building, config, server } = setup({
      a: { backend: 'builder', versions: { '2': { engine: 'int8' }, '1': {} }, batching: { maxBatchSize: 8, maxQueueDelayMs: 3 } },
      b: { backend: 'fake' },
    });
    const outcomes = await buildEngines({ config, server });
    expect(outcomes.map((o) => [o.model, o.version, o.state])).toEqual([
      ['a', '1', 'built'],
      ['a', '2', 'built'],
      ['b', '1', 'nothing'],
    ]);
    // validated options (the schema's default filled in), the version's override, the resolved batching, instance 0 of 1
    expect(building.specs.map((s) => s.config['engine'])).toEqual(['fp16', 'int8']);
    expect(building.specs[0]).toMatchObject({ model: 'a', version: '1', instanceIndex: 0, instanceCount: 1, config: { batching: { batcher: 'dynamic', maxBatchSize: 8, maxQueueDelayMs: 3 } } });
    expect(building.contexts[0]!.signal.aborted).toBe(false);
  });

  it('should build --model alone, and refuse an unknown one listing the models', async () => {
    const { building, config, server } = setup({ a: { backend: 'builder' }, c: { backend: 'builder' } });
    expect((await buildEngines({ config, server, model: 'c' })).map((o) => o.model)).toEqual(['c']);
    expect(building.specs.map((s) => s.model)).toEqual(['c']);
    await expect(buildEngines({ config, server, model: 'nope' })).rejects.toMatchObject({ code: 'TESSERA_E_CLI_USAGE', message: '--model nope: no such model in the config (models: a, c) (see tessera --help)' });
  });

  it('should go on after a failed build: a TesseraError as it is, anything else wrapped as TESSERA_E_MODEL_LOAD', async () => {
    const { config, server } = setup({ a: { backend: 'builder' }, b: { backend: 'builder' }, c: { backend: 'builder' } }, { a: new TesseraError('TESSERA_E_MODEL_LOAD', 'a v1: no GPU'), b: new Error('disk full') });
    const outcomes = await buildEngines({ config, server });
    expect(outcomes.map((o) => o.state)).toEqual(['failed', 'failed', 'built']);
    expect(outcomes[0]).toMatchObject({ error: { code: 'TESSERA_E_MODEL_LOAD', message: 'a v1: no GPU' } });
    expect(outcomes[1]).toMatchObject({ error: { code: 'TESSERA_E_MODEL_LOAD', message: 'b v1: the build failed: disk full' } });
  });
});

describe('buildEngineCommand', () => {
  it('should print each version, its files (built or reused, with sizes) and notes, and exit 0', async () => {
    const { config, server } = setup({ a: { backend: 'builder' }, b: { backend: 'fake' } });
    const { out, err, io: sink } = io();
    expect(await buildEngineCommand(config, {}, sink, server)).toBe(0);
    expect(out[0]).toMatch(/^a v1 \(builder\): done in \d+\.\d s: 1 file\(s\) built, 1 reused$/);
    expect(out.slice(1)).toEqual([
      '  reused     512 B  /cache/a.timing',
      '  built   12.3 MiB  /cache/b.engine',
      '  profile min: x:1x4',
      'b v1 (fake): nothing to build (the fake backend has no build step)',
      '2 version(s): 1 built, 1 with nothing to build, 0 failed',
    ]);
    expect(err).toEqual(['tessera build-engine: building a v1 (builder) …']);
  });

  it('should print a failure as one `tessera: CODE: message` line on stderr and exit 1', async () => {
    const { config, server } = setup({ a: { backend: 'builder' } }, { a: new TesseraError('TESSERA_E_MODEL_LOAD', 'a v1: cannot build TensorRT engines here.') });
    const { out, err, io: sink } = io();
    expect(await buildEngineCommand(config, {}, sink, server)).toBe(1);
    expect(err).toEqual(['tessera build-engine: building a v1 (builder) …', 'tessera: TESSERA_E_MODEL_LOAD: a v1: cannot build TensorRT engines here.']);
    expect(out).toEqual(['1 version(s): 0 built, 0 with nothing to build, 1 failed']);
  });
});

describe('formatBytes', () => {
  it('should use binary units with one decimal, bytes as they are', () => {
    expect([0, 1023, 1024, 1536, 5 * 2 ** 20, 3 * 2 ** 30].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '5.0 MiB', '3.0 GiB']);
  });
});
