/**
 * The client side of Triton's binary tensor data extension, for gateways (@tessera/backend-remote),
 * `tessera tune`, tests, benchmarks and Node clients: `encodeBinaryInferRequest` builds a request
 * body and its headers, and `decodeBinaryInferResponse` reads a response (binary or plain JSON)
 * back into tensors.
 */
import type { DataType, Tensor } from '../contracts/tensor.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, chunksLength, decodeBinaryTensor, encodeBinaryTensor } from './binary-codec.js';
import { decodeJsonData, encodeJsonData } from './json-codec.js';

/** An input to send: a tensor, in binary unless `binary: false` (then as JSON `data`). */
export type BinaryRequestInput = Tensor & { binary?: boolean; parameters?: Record<string, unknown> };

/** An output to ask for; `binary` sets its `parameters.binary_data`. */
export interface BinaryRequestOutput {
  name: string;
  binary?: boolean;
  parameters?: Record<string, unknown>;
}

export interface EncodeBinaryInferRequestOptions {
  id?: string;
  /** Request-level parameters, sent as given. */
  parameters?: Record<string, unknown>;
  /** Sets `parameters.binary_data_output`: every output in binary unless an output says otherwise. */
  binaryOutput?: boolean;
  outputs?: BinaryRequestOutput[];
  /**
   * Pads the JSON header with spaces to a multiple of this many bytes (default 8), so that the
   * tensor bytes start aligned and the server can view them without a copy; 1 turns padding off.
   */
  align?: number;
  /** Content type to send (default application/octet-stream, as in Triton's examples). */
  contentType?: string;
}

export interface EncodedBinaryInferRequest {
  /** JSON header followed by the binary inputs' bytes. */
  body: Buffer;
  /** Byte length of the JSON header (the `Inference-Header-Content-Length` value). */
  headerLength: number;
  /** `content-type` and `inference-header-content-length`. */
  headers: Record<string, string>;
}

function paramsJson(params: Record<string, unknown> | undefined, extra: Record<string, unknown>): string | undefined {
  const merged = { ...params, ...extra };
  return Object.keys(merged).length > 0 ? JSON.stringify(merged) : undefined;
}

/** Builds a binary inference request (JSON header + tensor bytes) for an OIP v2 server with Triton's binary extension. */
export function encodeBinaryInferRequest(inputs: readonly BinaryRequestInput[], options: EncodeBinaryInferRequestOptions = {}): EncodedBinaryInferRequest {
  const blobs: Buffer[] = [];
  const inputJson = inputs.map((t) => {
    let s = `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
    if (t.binary === false) {
      const params = paramsJson(t.parameters, {});
      // 64-bit integers as decimal strings: a JSON number beyond 2^53 would be read as a rounded double
      const data = t.datatype === 'INT64' || t.datatype === 'UINT64' ? `[${Array.from(t.data as BigInt64Array, (v) => `"${v}"`).join(',')}]` : encodeJsonData(t);
      return `${s}${params ? `,"parameters":${params}` : ''},"data":${data}}`;
    }
    const chunks = encodeBinaryTensor(t);
    blobs.push(...chunks);
    s += `,"parameters":${paramsJson(t.parameters, { binary_data_size: chunksLength(chunks) })}`;
    return `${s}}`;
  });
  let json = '{';
  if (options.id !== undefined) json += `"id":${JSON.stringify(options.id)},`;
  const params = paramsJson(options.parameters, options.binaryOutput === undefined ? {} : { binary_data_output: options.binaryOutput });
  if (params) json += `"parameters":${params},`;
  json += `"inputs":[${inputJson.join(',')}]`;
  if (options.outputs) {
    const outs = options.outputs.map((o) => {
      const p = paramsJson(o.parameters, o.binary === undefined ? {} : { binary_data: o.binary });
      return `{"name":${JSON.stringify(o.name)}${p ? `,"parameters":${p}` : ''}}`;
    });
    json += `,"outputs":[${outs.join(',')}]`;
  }
  json += '}';
  let header = Buffer.from(json, 'utf8');
  const align = options.align ?? 8;
  const pad = align > 1 ? (align - (header.length % align)) % align : 0;
  if (pad > 0) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  return {
    body: Buffer.concat([header, ...blobs]),
    headerLength: header.length,
    headers: { 'content-type': options.contentType ?? 'application/octet-stream', [INFERENCE_HEADER_CONTENT_LENGTH]: String(header.length) },
  };
}

/** An output as decoded: the tensor, and whether it came in binary. */
export type DecodedOutput = Tensor & { binary: boolean };

export interface DecodedInferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: DecodedOutput[];
  /** The JSON header (or the whole JSON body) as parsed. */
  header: Record<string, unknown>;
}

interface ResponseOutputJson {
  name: string;
  datatype: DataType;
  shape: number[];
  parameters?: { binary_data_size?: number };
  data?: unknown;
}

/**
 * Reads an inference response: `headerLength` is the `Inference-Header-Content-Length` response
 * header (absent for a plain JSON response: the whole body is JSON). Binary outputs are decoded
 * from the bytes after the JSON; JSON outputs from their `data` (INT64/UINT64 beyond 2^53 lose
 * precision there, as JSON.parse reads them as doubles).
 */
export function decodeBinaryInferResponse(body: Buffer, headerLength?: number | string | null): DecodedInferResponse {
  const length = headerLength === undefined || headerLength === null ? body.length : Number(headerLength);
  if (!Number.isSafeInteger(length) || length < 0 || length > body.length) {
    throw new Error(`Inference-Header-Content-Length ${String(headerLength)} does not fit a ${body.length}-byte body`);
  }
  const header = JSON.parse(body.toString('utf8', 0, length)) as Record<string, unknown> & { outputs?: ResponseOutputJson[] };
  let offset = length;
  const outputs = (header.outputs ?? []).map((o): DecodedOutput => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return { ...decodeJsonData(o.name, o.datatype, o.shape, o.data), binary: false };
    if (offset + size > body.length) throw new Error(`output '${o.name}': binary_data_size ${size} runs past the end of the body`);
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    return { name: o.name, datatype: o.datatype, shape: o.shape, data: decodeBinaryTensor(o.datatype, o.shape, bytes, `output '${o.name}'`), binary: true };
  });
  if (offset !== body.length) throw new Error(`${body.length - offset} bytes after the outputs belong to no output`);
  const out: DecodedInferResponse = { model_name: header['model_name'] as string, model_version: header['model_version'] as string, outputs, header };
  if (typeof header['id'] === 'string') out.id = header['id'];
  return out;
}
