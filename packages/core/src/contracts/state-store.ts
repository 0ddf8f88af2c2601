/**
 * Durable key/value state for one plugin object (e.g. a model's router): JSON values that survive
 * a restart. The server's store writes each key to a file under `server.stateDir`, atomically
 * (write a temporary file, then rename), so a crash leaves the old value or the new one, never a
 * torn one. Tests use `MemoryStateStore` from `@tessera/core/testing`.
 *
 * Keys are any non-empty string (characters other than letters, digits, `-`, `_` and `.` are
 * escaped in file names). Writes and deletes of one key are applied in the order they were made;
 * the last one wins. Reads see the last completed write.
 */
export interface StateStore {
  /** The stored value, or undefined when the key was never set (or was deleted). */
  get<T = unknown>(key: string): Promise<T | undefined>;
  /** Stores a JSON-serialisable value; resolves once it is durable. */
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
}
