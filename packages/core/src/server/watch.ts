import type { FSWatcher } from 'node:fs';
import { watch } from 'node:fs';
import path from 'node:path';
import type { TesseraConfig } from '../config/types.js';

/** What `serve --watch` watches: the config file (every one, with overlays), every model artifact, and the repository folder (recursively). */
export interface WatchTargets {
  files: string[];
  /** Folders watched with everything inside them. */
  trees: string[];
}

/** The files and folders whose change should reload `config`. */
export function watchTargets(config: TesseraConfig): WatchTargets {
  const files = new Set<string>();
  if (config.configFile) files.add(config.configFile);
  for (const file of config.configFiles ?? []) files.add(file);
  for (const model of Object.values(config.models)) {
    for (const v of Object.values(model.versions)) if (v.path) files.add(v.path);
  }
  return { files: [...files], trees: config.repository ? [config.repository] : [] };
}

/**
 * Calls `onChange` once things settled after a change to a watched file or folder (`debounceMs`
 * after the last event: an editor's save, or a copied model, is many events). Files are watched
 * through their folder, so a file replaced by a rename (what editors and `kubectl` ConfigMap
 * updates do) is still seen. `update` swaps the targets (after a reload); `close` stops.
 */
export class ConfigWatcher {
  readonly #onChange: () => void;
  readonly #debounceMs: number;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #onError: (err: unknown, target: string) => void;

  constructor(targets: WatchTargets, onChange: () => void, options: { debounceMs?: number; onError?: (err: unknown, target: string) => void } = {}) {
    this.#onChange = onChange;
    this.#debounceMs = options.debounceMs ?? 300;
    this.#onError = options.onError ?? (() => {});
    this.update(targets);
  }

  update(targets: WatchTargets): void {
    this.#closeWatchers();
    const byFolder = new Map<string, Set<string>>();
    for (const file of targets.files) {
      const folder = path.dirname(file);
      if (!byFolder.has(folder)) byFolder.set(folder, new Set());
      byFolder.get(folder)!.add(path.basename(file));
    }
    for (const [folder, names] of byFolder) {
      this.#add(folder, false, (name) => name !== null && names.has(name));
    }
    for (const tree of targets.trees) this.#add(tree, true, () => true);
  }

  #add(target: string, recursive: boolean, relevant: (name: string | null) => boolean): void {
    try {
      const watcher = watch(target, { recursive, persistent: false }, (_event, name) => {
        if (relevant(typeof name === 'string' ? path.basename(name) : null)) this.#changed();
      });
      watcher.on('error', (err) => this.#onError(err, target));
      this.#watchers.push(watcher);
    } catch (err) {
      this.#onError(err, target);
    }
  }

  #changed(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onChange();
    }, this.#debounceMs);
  }

  #closeWatchers(): void {
    for (const w of this.#watchers.splice(0)) w.close();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#closeWatchers();
  }
}
