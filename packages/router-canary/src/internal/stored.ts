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
