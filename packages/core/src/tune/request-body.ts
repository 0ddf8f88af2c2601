import { type NumericDataType, type Tensor, type TensorSpec, allocateTensorData, numberToHalf, shapeSize } from '../contracts/tensor.js';
import { TesseraError } from '../errors.js';
import { encodeBinaryInferRequest } from '../http/binary-client.js';
import { mulberry32 } from '../testing/random.js';

/** The request the load generator sends, over and over. */
export interface TuneRequest {
  body: Buffer;
  headers: Record<string, string>;
  /** Samples (dim 0) per request; undefined when unknown (a `--request` file): read from the server's metrics. */
  samples?: number;
  /** What it is, for the output: `x FP32 [1, 3, 48, 192] (random, seed 1), 110.6 KB`. */
  description: string;
}

/** What the body is made from: the served signature. */
export interface RequestSignature {
  inputs: readonly TensorSpec[];
  maxBatchSize: number;
}

export interface SynthesizeOptions {
  /** `--shape name=1x3x48x192`: whole shapes (dim 0 = samples per request). */
  shapes: Readonly<Record<string, readonly number[]>>;
  /** The model's `warmupShapes`: their dims other than dim 0 fill dynamic dims. */
  warmupShapes: Readonly<Record<string, readonly number[]>>;
  seed: number;
}

/**
 * An OIP v2 request in Triton's binary tensor extension, every input random (seeded), outputs asked
 * in binary: what a client that cares about speed sends. Dynamic dims come from `--shape`, else from
 * the model's `warmupShapes` (dim 0 is 1 sample then); a dynamic dim neither gives is a usage error,
 * and so is a BYTES input (its content depends on the model: give `--request`).
 */
export function synthesizeRequest(signature: RequestSignature, options: SynthesizeOptions): TuneRequest {
  const random = mulberry32(options.seed);
  const batched = signature.maxBatchSize > 0;
  for (const name of Object.keys(options.shapes)) {
    if (!signature.inputs.some((i) => i.name === name)) throw usage(`--shape ${name}=…: the model has no input '${name}' (inputs: ${signature.inputs.map((i) => i.name).join(', ')})`);
  }
  const tensors: Tensor[] = signature.inputs.map((spec) => {
    if (spec.datatype === 'BYTES') throw usage(`input '${spec.name}' is BYTES: its content depends on the model, so tune cannot make it up; send a request of your own with --request FILE`);
    const shape = shapeOf(spec, options, batched);
    return { name: spec.name, datatype: spec.datatype, shape, data: randomData(spec.datatype, shapeSize(shape), random) };
  });
  const samples = batched ? (tensors[0]?.shape[0] ?? 1) : 1;
  if (batched && tensors.some((t) => t.shape[0] !== samples)) throw usage(`the inputs' dim 0 differ (${tensors.map((t) => `${t.name} ${t.shape[0]}`).join(', ')}): it is the batch dim, the same for every input`);
  if (batched && samples > signature.maxBatchSize) throw usage(`--shape gives ${samples} samples per request, more than the model's max batch size ${signature.maxBatchSize}`);
  const encoded = encodeBinaryInferRequest(tensors, { binaryOutput: true });
  const shapes = tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ');
  return { body: encoded.body, headers: encoded.headers, samples, description: `binary OIP v2 requests: ${shapes} (random, seed ${options.seed}), ${kb(encoded.body.length)} each` };
}

function shapeOf(spec: TensorSpec, options: SynthesizeOptions, batched: boolean): number[] {
  const given = options.shapes[spec.name];
  const wanted = `[${spec.shape.join(', ')}]`;
  if (given) {
    const fits = given.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === given[i]);
    if (!fits) throw usage(`--shape ${spec.name}=${given.join('x')} does not fit the input's shape ${wanted} (-1 = any size)`);
    return [...given];
  }
  const warm = options.warmupShapes[spec.name];
  return spec.shape.map((d, i) => {
    if (d !== -1) return d;
    if (i === 0 && batched) return 1;
    const w = warm?.length === spec.shape.length ? warm[i] : undefined;
    if (w !== undefined && w > 0) return w;
    throw usage(`input '${spec.name}' has the shape ${wanted}: give the sizes of its dynamic dims with --shape ${spec.name}=${spec.shape.map((x, j) => (x === -1 ? (j === 0 && batched ? 1 : 'N') : x)).join('x')} (or warmupShapes in the model's config)`);
  });
}

/** Values a model of this datatype accepts whatever it is: [0, 1) for floats, 0 or 1 for integers (they may be indices). */
function randomData(datatype: NumericDataType, length: number, random: () => number): Tensor['data'] {
  const data = allocateTensorData(datatype, length);
  if (data instanceof Float32Array || data instanceof Float64Array) for (let i = 0; i < length; i++) data[i] = random();
  else if (datatype === 'FP16') for (let i = 0; i < length; i++) data[i] = numberToHalf(random());
  else if (data instanceof BigInt64Array || data instanceof BigUint64Array) for (let i = 0; i < length; i++) data[i] = BigInt(random() < 0.5 ? 0 : 1);
  else for (let i = 0; i < length; i++) data[i] = random() < 0.5 ? 0 : 1;
  return data;
}

/** `--request FILE`: a body sent as it is (`.json`: application/json; else application/octet-stream), with the headers given. */
export function fileRequest(file: string, body: Buffer, contentType: string | undefined, headers: Readonly<Record<string, string>>): TuneRequest {
  const type = contentType ?? (file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  return { body, headers: { 'content-type': type, ...headers }, description: `the body of ${file} (${type}, ${kb(body.length)}), as it is` };
}

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KB`;
}

function usage(message: string): TesseraError {
  return new TesseraError('TESSERA_E_CLI_USAGE', `${message} (see tessera --help)`);
}
