import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StateStore } from '../contracts/state-store.js';
import { TesseraError, errorMessage } from '../errors.js';

/** Keys and namespaces become file names: letters, digits, `-`, `_`, `.`; other characters are escaped. */
function fileName(key: string): string {
  if (key.length === 0) throw new Error('a state key must not be empty');
  return key.replace(/[^A-Za-z0-9_.-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A `StateStore` on the file system: one JSON file per key under `dir/<namespace>/`. A write goes
 * to a temporary file that is fsynced, then renamed over the key's file, so a reader (or a restart
 * after a crash) sees the old value or the new one, never a torn one. Writes of one key are
 * serialised; the last one wins.
 */
export class FileStateStore implements StateStore {
  readonly #dir: string;
  readonly #writes = new Map<string, Promise<void>>();
  #seq = 0;

  constructor(root: string, namespace: string) {
    this.#dir = path.join(root, ...namespace.split('/').map(fileName));
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const file = this.#file(key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storeError(`cannot read ${file}`, err);
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw storeError(`${file} is not valid JSON (delete it to start afresh)`, err);
    }
  }

  set(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    if (text === undefined) return Promise.reject(new TypeError(`state '${key}': the value is not JSON-serialisable`));
    return this.#serial(key, async () => {
      const file = this.#file(key);
      const tmp = `${file}.${process.pid}.${this.#seq++}.tmp`;
      try {
        await mkdir(this.#dir, { recursive: true });
        const handle = await open(tmp, 'w');
        try {
          await handle.writeFile(text, 'utf8');
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw storeError(`cannot write ${file}`, err);
      }
    });
  }

  delete(key: string): Promise<void> {
    return this.#serial(key, async () => {
      await rm(this.#file(key), { force: true }).catch((err: unknown) => {
        throw storeError(`cannot delete ${this.#file(key)}`, err);
      });
    });
  }

  #file(key: string): string {
    return path.join(this.#dir, `${fileName(key)}.json`);
  }

  #serial(key: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#writes.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.#writes.set(key, next);
    void next.finally(() => {
      if (this.#writes.get(key) === next) this.#writes.delete(key);
    }).catch(() => undefined);
    return next;
  }
}

function storeError(what: string, cause: unknown): TesseraError {
  return new TesseraError('TESSERA_E_STATE_STORE', `state store: ${what}: ${errorMessage(cause)}; check server.stateDir`, { cause });
}

