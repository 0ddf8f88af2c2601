/** Entries kept in a router's history (status and state store); older ones are dropped. */
export const HISTORY_LIMIT = 200;

/** Appends, keeping the last `HISTORY_LIMIT` entries. */
export function pushHistory<T>(history: T[], entry: T): void {
  history.push(entry);
  if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
}
