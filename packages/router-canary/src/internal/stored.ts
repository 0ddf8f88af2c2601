import type { RouterContext } from '@tessera/core';
import { errorMessage } from '@tessera/core';

/**
 * Reads a router's stored state; one that cannot be read (a corrupt file, a folder it may not
 * read) is logged and treated as none, so the router starts afresh — for a canary that is its
 * first, smallest step — rather than keep the server from starting. The next write replaces it.
 */
export async function readStored<T>(ctx: RouterContext, key: string, what: string): Promise<T | undefined> {
  try {
    return await ctx.state.get<T>(key);
  } catch (err) {
    ctx.logger.error({ err, key }, `the ${what} of model '${ctx.model}' could not be read from the state store, so it starts afresh: ${errorMessage(err)}`);
    return undefined;
  }
}

/**
 * Writes one key of a router's state, each write after the one before (the store itself replaces
 * the file atomically); a failed write is logged, never thrown: routing goes on, and the next
 * write tries again.
 */
export class StateWriter {
  readonly #ctx: RouterContext;
  readonly #key: string;
  readonly #what: string;
  #last: Promise<void> = Promise.resolve();

  constructor(ctx: RouterContext, key: string, what: string) {
    this.#ctx = ctx;
    this.#key = key;
    this.#what = what;
  }

  write(snapshot: unknown): Promise<void> {
    const next = this.#last.then(() => this.#ctx.state.set(this.#key, snapshot));
    this.#last = next.catch((err: unknown) => {
      this.#ctx.logger.error({ err, key: this.#key }, `the ${this.#what} of model '${this.#ctx.model}' could not be written to the state store (a restart would lose what changed since): ${errorMessage(err)}`);
    });
    return this.#last;
  }
}
