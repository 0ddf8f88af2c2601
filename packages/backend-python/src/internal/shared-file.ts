/**
 * The shared-memory file of one worker process: inputs are written into it at offsets (on tmpfs a
 * `writeSync` is a memory copy), the worker maps it (`mmap`, `numpy.frombuffer`: no copy there),
 * writes the outputs after the inputs, and they are read back with `readSync`. It lives in
 * `/dev/shm` (else the OS temp folder) and grows when a batch needs more; it is removed with the
 * worker, and at exit.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, ftruncateSync, fstatSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InferenceRequest, Tensor, TensorSpec } from '@tessera/core';
import { shapeSize, typedArrayConstructor } from '@tessera/core';
import { trackFile, untrackFile } from './exit-cleanup.js';
import type { TensorDescriptor, WireRequest } from './protocol.js';

/** Initial size of a file; it grows (at least doubling) when a batch needs more. */
export const INITIAL_SHARED_FILE_SIZE = 1 << 20;
const ALIGN = 64;
const GROW_STEP = 1 << 16;

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** `/dev/shm` when it is there and writable (tmpfs: memory), else the OS temp folder. */
export function sharedMemoryDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** The bytes of a tensor as the worker reads them (BYTES: uint32-LE length + bytes per element). */
function tensorBytes(tensor: Tensor, spec: TensorSpec | undefined): Uint8Array {
  if (tensor.datatype !== 'BYTES') {
    const data = tensor.data as Exclude<Tensor['data'], string[]>;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const encoding = spec?.content === 'binary' ? 'latin1' : 'utf8';
  const parts: Buffer[] = [];
  for (const s of tensor.data as string[]) {
    const bytes = Buffer.from(s, encoding);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(bytes.length, 0);
    parts.push(head, bytes);
  }
  return Buffer.concat(parts);
}

/** See the file's comment. Not safe for concurrent batches: the worker runs one at a time. */
export class SharedTensorFile {
  /** Where the file is. */
  readonly path: string;
  #fd: number | undefined;
  #size: number;

  private constructor(file: string, fd: number, size: number) {
    this.path = file;
    this.#fd = fd;
    this.#size = size;
  }

  /** A new file of `INITIAL_SHARED_FILE_SIZE` bytes, readable by this user only. */
  static create(prefix: string): SharedTensorFile {
    const file = path.join(sharedMemoryDir(), `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = openSync(file, 'wx+', 0o600);
    trackFile(file);
    try {
      ftruncateSync(fd, INITIAL_SHARED_FILE_SIZE);
    } catch (err) {
      closeSync(fd);
      rmSync(file, { force: true });
      untrackFile(file);
      throw err;
    }
    return new SharedTensorFile(file, fd, INITIAL_SHARED_FILE_SIZE);
  }

  /** The file's size, as both sides last grew it. */
  get size(): number {
    return this.#size;
  }

  /**
   * Writes every request's inputs (each request its own tensors: nothing is concatenated) and
   * returns how the worker finds them, and the first free offset (where the outputs go).
   */
  writeRequests(requests: readonly InferenceRequest[], specs: ReadonlyMap<string, TensorSpec>): { wire: WireRequest[]; end: number } {
    let offset = 0;
    const pending: [number, Uint8Array][] = [];
    const wire = requests.map((r): WireRequest => {
      const inputs = r.inputs.map((t): TensorDescriptor => {
        const bytes = tensorBytes(t, specs.get(t.name));
        offset = align(offset);
        const d = { name: t.name, datatype: t.datatype, shape: [...t.shape], offset, nbytes: bytes.byteLength };
        pending.push([offset, bytes]);
        offset += bytes.byteLength;
        return d;
      });
      return { ...(r.id !== undefined ? { id: r.id } : {}), inputs, ...(r.outputs ? { outputs: [...r.outputs] } : {}), ...(r.parameters ? { parameters: r.parameters } : {}) };
    });
    const end = align(offset);
    this.#ensure(end);
    const fd = this.#open();
    for (const [at, bytes] of pending) {
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, at + done);
    }
    return { wire, end };
  }

  /** The worker grew the file to `size` (for its outputs). */
  grownTo(size: number): void {
    if (size > this.#size) this.#size = size;
  }

  /** Reads one output tensor the worker wrote. Throws when its size does not fit its shape. */
  readTensor(d: TensorDescriptor, spec: TensorSpec): Tensor {
    const fd = this.#open();
    if (d.offset < 0 || d.nbytes < 0 || d.offset + d.nbytes > Math.max(this.#size, fstatSync(fd).size)) {
      throw new Error(`output '${d.name}' lies outside the shared file (offset ${d.offset}, ${d.nbytes} bytes)`);
    }
    const count = shapeSize(d.shape);
    if (spec.datatype === 'BYTES') {
      const raw = Buffer.allocUnsafe(d.nbytes);
      readFully(fd, raw, d.offset);
      const encoding = spec.content === 'binary' ? 'latin1' : 'utf8';
      const items: string[] = [];
      let pos = 0;
      while (pos + 4 <= raw.length) {
        const len = raw.readUInt32LE(pos);
        pos += 4;
        items.push(raw.toString(encoding, pos, pos + len));
        pos += len;
      }
      if (items.length !== count) throw new Error(`output '${d.name}' has ${items.length} elements for shape [${d.shape.join(', ')}]`);
      return { name: d.name, datatype: 'BYTES', shape: [...d.shape], data: items };
    }
    const Ctor = typedArrayConstructor(spec.datatype);
    if (d.nbytes !== count * Ctor.BYTES_PER_ELEMENT) throw new Error(`output '${d.name}' has ${d.nbytes} bytes for shape [${d.shape.join(', ')}] of ${spec.datatype}`);
    const data = new Ctor(count);
    readFully(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), d.offset);
    return { name: d.name, datatype: spec.datatype, shape: [...d.shape], data };
  }

  /** Closes and removes the file; idempotent. */
  remove(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } finally {
      rmSync(this.path, { force: true });
      untrackFile(this.path);
    }
  }

  #open(): number {
    if (this.#fd === undefined) throw new Error('the shared file was removed');
    return this.#fd;
  }

  #ensure(size: number): void {
    if (size <= this.#size) return;
    const next = Math.ceil(Math.max(size, this.#size * 2) / GROW_STEP) * GROW_STEP;
    ftruncateSync(this.#open(), next);
    this.#size = next;
  }
}

function readFully(fd: number, into: Uint8Array, offset: number): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(fd, into, done, into.byteLength - done, offset + done);
    if (n === 0) throw new Error(`the shared file ended at ${offset + done}, ${into.byteLength - done} bytes short`);
    done += n;
  }
}
