/**
 * The control channel to a worker process: frames of a uint32-LE length then UTF-8 JSON, on the
 * child's stdin (to it) and stdout (from it). Only small messages travel here: tensor data is in
 * the shared-memory file (`SharedTensorFile`), named by offset and size.
 */

/** A tensor in the shared-memory file. */
export interface TensorDescriptor {
  name: string;
  datatype: string;
  shape: number[];
  /** Byte offset in the file. */
  offset: number;
  /** Bytes it takes (BYTES: uint32-LE length + bytes per element). */
  nbytes: number;
}

/** One request of an `execute` message. */
export interface WireRequest {
  id?: string;
  inputs: TensorDescriptor[];
  outputs?: string[];
  parameters?: Record<string, unknown>;
}

/** What the worker answered for one request. */
export type WireResult = { outputs: TensorDescriptor[] } | { error: string; status?: number };

/** Messages from the worker. */
export type WorkerMessage =
  | { op: 'ready'; pid: number; python: string; numpy: string; finalize: boolean }
  | { op: 'error'; message: string; traceback?: string }
  | { op: 'result'; id: number; results?: WireResult[]; error?: string; shm_size?: number }
  | { op: 'pong' }
  | { op: 'finalized'; error?: string };

/** One frame holding `message`. */
export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames and parses each. */
export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns the messages completed by them, in order. */
  push(chunk: Buffer): WorkerMessage[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: WorkerMessage[] = [];
    while (this.#pending.length >= 4) {
      const length = this.#pending.readUInt32LE(0);
      if (this.#pending.length < 4 + length) break;
      out.push(JSON.parse(this.#pending.toString('utf8', 4, 4 + length)) as WorkerMessage);
      this.#pending = this.#pending.subarray(4 + length);
    }
    return out;
  }
}
