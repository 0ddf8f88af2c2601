/** A stand-in OTLP/HTTP collector for the tests: records each request on 127.0.0.1. */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedExport {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Receiver {
  /** Base URL, e.g. `http://127.0.0.1:40123` (OTLP endpoint without `/v1/traces`). */
  url: string;
  requests: ReceivedExport[];
  /** Resolves once `count` requests arrived; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** `respond: 'hang'` accepts requests and never answers (a collector that is stuck). */
export async function startReceiver(options: { status?: number; respond?: 'ok' | 'hang' } = {}): Promise<Receiver> {
  const requests: ReceivedExport[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      for (const wake of waiters.splice(0)) wake();
      if (options.respond === 'hang') return;
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(options.status ?? 200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async waitFor(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} export request(s), got ${requests.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** A logger that records what it is given. */
export function recordingLogger(): {
  calls: { level: string; obj: unknown; msg: string | undefined }[];
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  child(): unknown;
} {
  const calls: { level: string; obj: unknown; msg: string | undefined }[] = [];
  const log = (level: string) => (obj: object | string, msg?: string) => void calls.push({ level, obj, msg: typeof obj === 'string' ? obj : msg });
  const logger = { calls, info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug'), child: () => logger };
  return logger;
}
