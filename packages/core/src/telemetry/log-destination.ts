import pino from 'pino';
import type { DestinationStream } from 'pino';

/** Bytes the log buffers before it writes (sonic-boom's `minLength`). */
const LOG_BUFFER_BYTES = 4096;
/** The longest a buffered log line waits before it is written, ms. */
export const LOG_FLUSH_INTERVAL_MS = 100;
/** The longest `close()` waits for the last lines to be written, ms. */
const LOG_CLOSE_TIMEOUT_MS = 1000;

/**
 * Where the server's own logger writes by default: stdout through a buffer. Pino's default
 * destination writes every line with a synchronous `write(2)`; at info level that is one system
 * call per request (the access log), 0.1–0.2 ms of the event loop on a VM, paid by every request
 * at concurrency 1 and, under load, a share of the loop's time that no answer needs. Buffered,
 * lines are written in 4 KiB chunks, at the latest LOG_FLUSH_INTERVAL_MS after they were logged;
 * pino flushes what is left when the process exits (normally, or by `process.exit`). What a
 * process killed outright (SIGKILL, a native crash) had buffered is lost: at most the last
 * 100 ms of lines.
 *
 * `close()` drains the buffer with an asynchronous write, never `flushSync`: sonic-boom 4's
 * `flushSync` retries every failed write forever, so with stdout gone (the process that read it
 * was killed: EPIPE) a synchronous flush spun in `Atomics.wait` and the process never exited. An
 * asynchronous write's EPIPE reaches pino's handler instead, which stops the logging; the buffer
 * is then empty when pino's exit handler flushes synchronously.
 */
export function bufferedStdout(): { stream: DestinationStream; flush(): void; close(): Promise<void> } {
  const stream = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  const timer = setInterval(() => flush(), LOG_FLUSH_INTERVAL_MS);
  timer.unref();
  function flush(): void {
    try {
      stream.flush();
    } catch {
      // not ready yet (the descriptor opens asynchronously) or being written: the next tick flushes
    }
  }
  return {
    stream,
    flush,
    close: () => {
      clearInterval(timer);
      return new Promise<void>((resolve) => {
        // at most LOG_CLOSE_TIMEOUT_MS: a reader that stopped reading (but still holds the pipe) must not hold the exit
        const timeout = setTimeout(resolve, LOG_CLOSE_TIMEOUT_MS);
        timeout.unref();
        const done = (): void => {
          clearTimeout(timeout);
          resolve();
        };
        try {
          stream.flush(() => done());
        } catch {
          // not ready yet (the descriptor opens asynchronously), or being written: pino's exit handler writes the rest
          done();
        }
      });
    },
  };
}
