/**
 * `TESSERA_PARENT_PID`: a server started by another process for that process's own use (`tessera
 * tune` starts one per setting it measures) stops when that process is gone. A parent that exits
 * normally stops its children itself; one killed with SIGKILL cannot, and its server would go on
 * holding the port, the cores and the memory. The child notices within `intervalMs` (the parent's
 * pid no longer runs, or this process was re-parented) and calls `onGone` once.
 */
export const PARENT_PID_ENV = 'TESSERA_PARENT_PID';

/** Starts watching when `TESSERA_PARENT_PID` is set; returns a function that stops it (none when unset). */
export function watchParent(onGone: (pid: number) => void, options: { env?: NodeJS.ProcessEnv; intervalMs?: number } = {}): (() => void) | undefined {
  const value = (options.env ?? process.env)[PARENT_PID_ENV];
  if (value === undefined || value === '') return undefined;
  const pid = Number(value);
  if (!Number.isSafeInteger(pid) || pid < 1) throw new Error(`${PARENT_PID_ENV}=${value}: expected the pid of the process this server stops with`);
  const timer = setInterval(() => {
    if (alive(pid) && process.ppid === pid) return;
    clearInterval(timer);
    onGone(pid);
  }, options.intervalMs ?? 1000);
  // the watch alone never keeps the process up
  timer.unref();
  return () => clearInterval(timer);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
