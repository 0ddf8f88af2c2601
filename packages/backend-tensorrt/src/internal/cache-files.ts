import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BuildFile } from '@tessera/core';

/** A file of a cache folder: size and modification time. */
export interface CacheFile {
  bytes: number;
  mtimeMs: number;
}

/** The files directly in `folders` (engines, profiles, timing caches), by absolute path; a missing folder has none. */
export async function cacheFiles(folders: readonly string[]): Promise<Map<string, CacheFile>> {
  const files = new Map<string, CacheFile>();
  for (const folder of folders) {
    const names = await readdir(folder).catch(() => [] as string[]);
    for (const name of names) {
      const file = path.join(folder, name);
      const s = await stat(file).catch(() => undefined);
      if (s?.isFile()) files.set(file, { bytes: s.size, mtimeMs: s.mtimeMs });
    }
  }
  return files;
}

/** The files after a build: `reused` when one was there before with the same size and time, else `built`. */
export function compareCacheFiles(before: ReadonlyMap<string, CacheFile>, after: ReadonlyMap<string, CacheFile>): BuildFile[] {
  return [...after].map(([file, now]) => {
    const then = before.get(file);
    const reused = then !== undefined && then.bytes === now.bytes && then.mtimeMs === now.mtimeMs;
    return { path: file, bytes: now.bytes, state: reused ? 'reused' : 'built' };
  });
}
