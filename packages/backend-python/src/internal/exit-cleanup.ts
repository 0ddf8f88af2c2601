/**
 * What must not outlive the server: worker processes and shared-memory files. Each is registered
 * while it exists; when the Node process exits (normally, or by an uncaught error) the processes
 * left are killed and the files removed, synchronously, as an `exit` handler must. A worker also
 * exits by itself when its stdin closes, which covers a server killed with SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const files = new Set<string>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', () => {
    for (const child of children) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const file of files) rmSync(file, { force: true });
  });
}

/** Kills `child` at exit unless it was released first (`untrackChild`). */
export function trackChild(child: ChildProcess): void {
  install();
  children.add(child);
}

export function untrackChild(child: ChildProcess): void {
  children.delete(child);
}

/** Removes `file` at exit unless it was removed first (`untrackFile`). */
export function trackFile(file: string): void {
  install();
  files.add(file);
}

export function untrackFile(file: string): void {
  files.delete(file);
}
