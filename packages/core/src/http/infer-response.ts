import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { Tensor } from '../contracts/tensor.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, chunksLength, encodeBinaryTensor } from './binary-codec.js';
import type { JsonInferRequest } from './infer-schema.js';
import { encodeJsonData } from './json-codec.js';

function outputHead(t: Tensor): string {
  return `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
}

/**
 * Writes an OIP v2 inference response in parts: the JSON (header) and the binary blobs of the
 * outputs for which `binary(name)` is true (Triton's binary tensor extension): those outputs carry
 * `"parameters": {"binary_data_size": N}` instead of `data`, and their bytes follow the JSON in
 * output order, as views on the outputs' memory.
 */
export function encodeInferResponseParts(
  model: string,
  version: string,
  id: string | undefined,
  outputs: Tensor[],
  binary?: (name: string) => boolean,
): { header: string; blobs: Buffer[] } {
  let s = `{"model_name":${JSON.stringify(model)},"model_version":${JSON.stringify(version)}`;
  if (id !== undefined) s += `,"id":${JSON.stringify(id)}`;
  s += ',"outputs":[';
  const blobs: Buffer[] = [];
  for (let i = 0; i < outputs.length; i++) {
    const t = outputs[i]!;
    if (i > 0) s += ',';
    if (binary?.(t.name)) {
      const chunks = encodeBinaryTensor(t);
      s += `${outputHead(t)},"parameters":{"binary_data_size":${chunksLength(chunks)}}}`;
      for (const c of chunks) if (c.length > 0) blobs.push(c);
    } else {
      s += `${outputHead(t)},"data":${encodeJsonData(t)}}`;
    }
  }
  return { header: `${s}]}`, blobs };
}

/**
 * Which outputs a request wants in binary: per output `parameters.binary_data`, else the request's
 * `parameters.binary_data_output` (which also covers the outputs returned when `outputs` is
 * absent). Undefined when none is (the plain JSON response).
 */
export function binaryOutputChoice(body: Pick<JsonInferRequest, 'parameters' | 'outputs'>): ((name: string) => boolean) | undefined {
  const all = body.parameters?.['binary_data_output'] === true;
  let perOutput: Map<string, boolean> | undefined;
  for (const o of body.outputs ?? []) {
    const b = o.parameters?.['binary_data'];
    if (typeof b === 'boolean' && !perOutput?.has(o.name)) (perOutput ??= new Map()).set(o.name, b);
  }
  if (!all && !(perOutput && [...perOutput.values()].includes(true))) return undefined;
  return (name) => perOutput?.get(name) ?? all;
}

/** Binary responses at least this large are written chunk by chunk (no concatenation copy). */
const STREAM_RESPONSE_BYTES = 1024 * 1024;

/**
 * Sends an inference response: plain JSON, or — when some output is binary and has bytes — the JSON
 * header and the blobs with `Inference-Header-Content-Length` and `application/octet-stream`, as
 * Triton does (Triton answers application/json when no binary bytes follow the JSON).
 */
export function sendInferResponse(reply: FastifyReply, parts: { header: string; blobs: Buffer[] }): FastifyReply {
  if (parts.blobs.length === 0) return reply.type('application/json').send(parts.header);
  const header = Buffer.from(parts.header, 'utf8');
  const chunks = [header, ...parts.blobs];
  const total = chunksLength(chunks);
  void reply.header(INFERENCE_HEADER_CONTENT_LENGTH, String(header.length)).type('application/octet-stream');
  if (total < STREAM_RESPONSE_BYTES) return reply.send(Buffer.concat(chunks, total));
  return reply.header('content-length', String(total)).send(Readable.from(chunks, { objectMode: false }));
}
