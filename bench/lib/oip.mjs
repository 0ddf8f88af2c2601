// OIP v2 request bodies and response decoding for the benchmark, written from the protocols
// themselves (KServe's OIP v2 JSON; Triton's binary tensor data extension) rather than from
// Tessera's code, so the benchmark is also a client Tessera did not write.

/** Triton's header: length of the JSON part at the start of a binary request or response body. */
export const HEADER_LENGTH = 'inference-header-content-length';

/** A JSON inference request for one FP32 input; `data` flattened, as numpy's `tolist()` would send it. */
export function jsonInferBody(inputName, shape, data) {
  return Buffer.from(JSON.stringify({ inputs: [{ name: inputName, datatype: 'FP32', shape, data: Array.from(data) }] }));
}

/**
 * A binary inference request (Triton's binary tensor data extension): the JSON header, whose input
 * carries `parameters.binary_data_size` instead of `data`, then the tensor's little-endian bytes.
 * `binary_data_output` asks for every output in binary as well. The header is padded with spaces
 * to a multiple of 8 bytes so the tensor starts aligned (what `encodeBinaryInferRequest` of
 * `@tessera/core/testing` does; run.mjs uses that one when the core exports it).
 */
export function binaryInferBody(inputName, shape, data) {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let header = Buffer.from(
    JSON.stringify({
      parameters: { binary_data_output: true },
      inputs: [{ name: inputName, datatype: 'FP32', shape, parameters: { binary_data_size: bytes.length } }],
    }),
  );
  const pad = (8 - (header.length % 8)) % 8;
  if (pad > 0) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  return { body: Buffer.concat([header, bytes]), headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(header.length) } };
}

const TYPED = { FP32: Float32Array, FP64: Float64Array, INT32: Int32Array, INT64: BigInt64Array, UINT8: Uint8Array, INT8: Int8Array };

/**
 * Decodes an OIP v2 inference response, JSON or binary, into `{ name, datatype, shape, data }`
 * outputs (`data` a typed array for binary outputs, a number array for JSON ones).
 */
export function decodeInferResponse(headers, body) {
  const headerLength = headers.get(HEADER_LENGTH);
  const jsonPart = headerLength === null ? body : body.subarray(0, Number(headerLength));
  const response = JSON.parse(jsonPart.toString('utf8'));
  let offset = headerLength === null ? 0 : Number(headerLength);
  const outputs = (response.outputs ?? []).map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return { name: o.name, datatype: o.datatype, shape: o.shape, data: o.data, binary: false };
    const Typed = TYPED[o.datatype];
    if (!Typed) throw new Error(`output ${o.name}: binary ${o.datatype} is not decoded by the benchmark`);
    const copy = new Uint8Array(body.subarray(offset, offset + size)); // aligned copy
    offset += size;
    return { name: o.name, datatype: o.datatype, shape: o.shape, data: new Typed(copy.buffer, 0, size / Typed.BYTES_PER_ELEMENT), binary: true };
  });
  return { ...response, outputs };
}

/** Largest absolute difference between two numeric sequences (Infinity when lengths differ). */
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(Number(a[i]) - Number(b[i]));
    if (!(d <= max)) max = d; // NaN propagates as a difference
  }
  return max;
}
