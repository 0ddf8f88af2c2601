import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStateStore } from './file-state-store.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function root(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'tessera-state-'));
  dirs.push(d);
  return d;
}

describe(FileStateStore, () => {
  it('should keep values across instances (a restart), one JSON file per key under the namespace', async () => {
    const dir = await root();
    await new FileStateStore(dir, 'routers/cls').set('rollout', { step: 2, weights: { '1': 0.75, '2': 0.25 } });
    const again = new FileStateStore(dir, 'routers/cls');
    expect(await again.get('rollout')).toEqual({ step: 2, weights: { '1': 0.75, '2': 0.25 } });
    expect(await again.get('never-set')).toBeUndefined();
    expect(JSON.parse(await readFile(path.join(dir, 'routers', 'cls', 'rollout.json'), 'utf8'))).toEqual({ step: 2, weights: { '1': 0.75, '2': 0.25 } });
    await again.delete('rollout');
    expect(await again.get('rollout')).toBeUndefined();
  });

  it('should apply the writes of one key in order, leave no temporary file, and escape odd keys', async () => {
    const dir = await root();
    const store = new FileStateStore(dir, 'routers/m');
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.set('n', i)));
    expect(await store.get('n')).toBe(49);
    await store.set('a/b c', 1);
    expect(await store.get('a/b c')).toBe(1);
    expect((await readdir(path.join(dir, 'routers', 'm'))).sort()).toEqual(['a%2fb%20c.json', 'n.json']);
  });

  it('should refuse a value that is not JSON, and name the file of one that is corrupt', async () => {
    const dir = await root();
    const store = new FileStateStore(dir, 'x');
    await expect(store.set('f', () => 1)).rejects.toThrow(/not JSON-serialisable/);
    await store.set('k', 1);
    await writeFile(path.join(dir, 'x', 'k.json'), '{"torn');
    await expect(store.get('k')).rejects.toMatchObject({ code: 'TESSERA_E_STATE_STORE', message: expect.stringMatching(/k\.json is not valid JSON/) });
  });

  it('should say which folder it cannot write', async () => {
    const dir = await root();
    await writeFile(path.join(dir, 'blocked'), 'a file where a folder should be');
    await expect(new FileStateStore(dir, 'blocked/sub').set('k', 1)).rejects.toMatchObject({ code: 'TESSERA_E_STATE_STORE', message: expect.stringContaining('server.stateDir') });
  });
});
