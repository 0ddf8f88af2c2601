import { type FSWatcher, type StatWatcher, unwatchFile, watch, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** Options of `watchContent`. */
export interface WatchContentOptions {
  /** Changes closer together than this are read once, ms. */
  debounceMs?: number;
  /** Stat polling, for filesystems where change events do not arrive (NFS, some container mounts), ms. */
  pollMs?: number;
}

/**
 * Calls `onChange(text)` whenever the content of `file` changes (not on every event: the text is
 * compared with the last one seen). Watches the file's folder rather than the file, so that a
 * file replaced by a rename (editors, `kubectl` Secret updates swap a `..data` symlink) is still
 * followed, and polls `stat` as a fallback. `initial` is the content already read. An unreadable
 * file (mid-replace, removed) is skipped: the next event reads again. Returns a stop function.
 */
export function watchContent(file: string, initial: string, onChange: (text: string) => void, options: WatchContentOptions = {}): () => void {
  const debounceMs = options.debounceMs ?? 100;
  let last = initial;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const read = async (): Promise<void> => {
    timer = undefined;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return;
    }
    if (stopped || text === last) return;
    last = text;
    onChange(text);
  };
  const schedule = (): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void read(), debounceMs);
    timer.unref();
  };
  let dirWatcher: FSWatcher | undefined;
  try {
    dirWatcher = watch(path.dirname(file), { persistent: false }, schedule);
    // a folder that disappears, or a watcher the OS withdraws: polling still covers it
    dirWatcher.on('error', () => dirWatcher?.close());
  } catch {
    dirWatcher = undefined;
  }
  const poller: StatWatcher = watchFile(file, { persistent: false, interval: options.pollMs ?? 2_000 }, schedule);
  return () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    dirWatcher?.close();
    poller.removeAllListeners();
    unwatchFile(file, schedule);
  };
}
