import type { StateStore } from '../contracts/state-store.js';

/**
 * A `StateStore` in memory, for tests: values are stored as JSON text (so what a router stores must
 * serialise, as with the file store). Share one instance between two router instances to test that
 * state survives a restart.
 */
export class MemoryStateStore implements StateStore {
  readonly #values = new Map<string, string>();
  /** Every `set`, in order (key and value), to check what was written and when. */
  readonly writes: { key: string; value: unknown }[] = [];

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const text = this.#values.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`state '${key}': the value is not JSON-serialisable`);
    this.#values.set(key, text);
    this.writes.push({ key, value: JSON.parse(text) as unknown });
  }

  async delete(key: string): Promise<void> {
    this.#values.delete(key);
  }

  /** The keys stored now. */
  keys(): string[] {
    return [...this.#values.keys()];
  }
}
