/**
 * Triton's `config.pbtxt` as a Tessera model section: the fields that have a meaning here are
 * mapped, those that have none are listed in warnings, and models Tessera cannot serve (another
 * platform, sequence batching, ensembles, decoupled) are refused with what to do instead. ONNX
 * models go to the onnxruntime backend, `backend: "python"` (model.py) to @tessera/backend-python.
 * docs/model-repository.md has the table.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DeclaredTensor, ModelConfigInput, VersionPolicy } from '../config/types.js';
import type { DataType } from '../contracts/tensor.js';
import { type PbtxtField, type PbtxtMessage, type PbtxtPosition, type PbtxtValue, parsePbtxt, textFileError } from './pbtxt.js';

/** What a model folder's config file gives: the model section (no path or versions) and the name of the model file. */
export interface FolderModelConfig {
  model: ModelConfigInput;
  /** File (or folder) name of the model in each version folder. */
  modelFilename: string;
  warnings: string[];
}

/** Triton's default model file name of the ONNX Runtime platform. */
export const ONNX_MODEL_FILENAME = 'model.onnx';

/** Triton's default model file name of the Python backend. */
export const PYTHON_MODEL_FILENAME = 'model.py';

/** The backends a model folder maps to. */
export type FolderBackend = 'onnxruntime' | 'python';

/** Each backend's default model file (config.pbtxt `default_model_filename` overrides it). */
export const MODEL_FILENAMES: Readonly<Record<FolderBackend, string>> = { onnxruntime: ONNX_MODEL_FILENAME, python: PYTHON_MODEL_FILENAME };

/** Options of `readTritonConfig`. */
export interface TritonConfigOptions {
  /** The backend when config.pbtxt names neither `platform` nor `backend` (the scan's guess from the model files); default onnxruntime. */
  detected?: FolderBackend;
}

/** Triton's data types as Tessera's (`TYPE_STRING` is BYTES); `TYPE_BF16` has no Tessera counterpart. */
const DATA_TYPES: Readonly<Record<string, DataType>> = {
  TYPE_BOOL: 'BOOL',
  TYPE_UINT8: 'UINT8',
  TYPE_UINT16: 'UINT16',
  TYPE_UINT32: 'UINT32',
  TYPE_UINT64: 'UINT64',
  TYPE_INT8: 'INT8',
  TYPE_INT16: 'INT16',
  TYPE_INT32: 'INT32',
  TYPE_INT64: 'INT64',
  TYPE_FP16: 'FP16',
  TYPE_FP32: 'FP32',
  TYPE_FP64: 'FP64',
  TYPE_STRING: 'BYTES',
};

/** Platforms and backends Tessera does not serve, and what to use instead. */
const REFUSED: Readonly<Record<string, string>> = {
  tensorrt_plan: "@tessera/backend-tensorrt runs ONNX models through ONNX Runtime's TensorRT provider, not plans; serve the ONNX model the plan was built from (model.onnx) with backend: tensorrt (or onnxruntime)",
  tensorrt: "@tessera/backend-tensorrt runs ONNX models through ONNX Runtime's TensorRT provider, not plans; serve the ONNX model the plan was built from (model.onnx) with backend: tensorrt (or onnxruntime)",
  pytorch_libtorch: 'no Tessera backend runs TorchScript; export the model to ONNX (torch.onnx.export) and serve it as model.onnx, or serve it from a model.py with @tessera/backend-python (`backend: "python"`)',
  pytorch: 'no Tessera backend runs TorchScript; export the model to ONNX (torch.onnx.export) and serve it as model.onnx, or serve it from a model.py with @tessera/backend-python (`backend: "python"`)',
  tensorflow_savedmodel: 'no Tessera backend runs TensorFlow; convert the model to ONNX (tf2onnx) and serve it as model.onnx',
  tensorflow_graphdef: 'no Tessera backend runs TensorFlow; convert the model to ONNX (tf2onnx) and serve it as model.onnx',
  tensorflow: 'no Tessera backend runs TensorFlow; convert the model to ONNX (tf2onnx) and serve it as model.onnx',
  ensemble: 'Tessera has no ensembles; serve the models on their own, and chain the steps with preprocess/postprocess processors',
  vllm: "Triton's vLLM model.json is not read; configure the model under `models:` with `backend: vllm` (@tessera/backend-vllm) and its `upstreams`",
};

/** Fields that have no counterpart here: listed in a warning, ignored. */
const IGNORED = new Set([
  'runtime',
  'batch_input',
  'batch_output',
  'optimization',
  'cc_model_filenames',
  'metric_tags',
  'parameters',
  'model_warmup',
  'model_operations',
  'model_repository_agents',
  'response_cache',
]);

/** The Triton file and the warnings its mapping collects. */
class Context {
  readonly warnings: string[] = [];

  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  fail(at: PbtxtPosition, message: string): never {
    throw textFileError('TESSERA_E_CONFIG_INVALID', this.file, this.text, at, message);
  }

  warn(at: PbtxtPosition, message: string): void {
    this.warnings.push(`${this.file}:${at.line}:${at.col}: ${message}`);
  }
}

/** The fields of one message, read by name; what was never read is left for `unread()`. */
class Fields {
  readonly #read = new Set<string>();

  constructor(
    readonly node: PbtxtMessage,
    readonly path: string,
    readonly ctx: Context,
  ) {}

  /** Every value of a repeated field (an empty list gives none). */
  all(name: string): PbtxtField[] {
    this.#read.add(name);
    return this.node.fields.filter((f) => f.name === name && f.value.kind !== 'empty-list');
  }

  /** Whether the field was written at all (`dims: []` counts). */
  has(name: string): boolean {
    return this.node.fields.some((f) => f.name === name);
  }

  /** The value of a singular field; written twice is an error, as in protobuf. */
  one(name: string): PbtxtField | undefined {
    this.#read.add(name);
    const found = this.node.fields.filter((f) => f.name === name);
    if (found.length > 1) this.ctx.fail(found[1]!, `${this.label(name)} is given more than once (first at line ${found[0]!.line})`);
    const field = found[0];
    if (field?.inList) this.ctx.fail(field, `${this.label(name)} is not a repeated field; give one value, not a list`);
    return field;
  }

  /** Marks fields as read without reading them (those ignored on purpose, without a warning). */
  skip(...names: string[]): void {
    for (const n of names) this.#read.add(n);
  }

  /** The first occurrence of each field not read. */
  unread(): PbtxtField[] {
    const seen = new Set<string>();
    return this.node.fields.filter((f) => !this.#read.has(f.name) && !seen.has(f.name) && seen.add(f.name));
  }

  label(name: string): string {
    return this.path === '' ? name : `${this.path}.${name}`;
  }

  int(field: PbtxtField, min: number): number {
    const v = field.value;
    if (v.kind !== 'number' || !Number.isSafeInteger(v.value) || v.value < min) {
      this.ctx.fail(v, `${this.label(field.name)}: expected an integer ≥ ${min}, got ${show(v)}`);
    }
    return v.value;
  }

  string(field: PbtxtField): string {
    const v = field.value;
    if (v.kind !== 'string') this.ctx.fail(v, `${this.label(field.name)}: expected a quoted string, got ${show(v)}`);
    return v.value;
  }

  enumName(field: PbtxtField, allowed: readonly string[]): string {
    const v = field.value;
    if (v.kind !== 'identifier' || !allowed.includes(v.value)) this.ctx.fail(v, `${this.label(field.name)}: expected one of ${allowed.join(', ')}, got ${show(v)}`);
    return v.value;
  }

  bool(field: PbtxtField): boolean {
    const v = field.value;
    const text = v.kind === 'identifier' || v.kind === 'number' ? String(v.kind === 'number' ? v.text : v.value) : '';
    if (['true', 'True', 't', '1'].includes(text)) return true;
    if (['false', 'False', 'f', '0'].includes(text)) return false;
    return this.ctx.fail(v, `${this.label(field.name)}: expected true or false, got ${show(v)}`);
  }

  message(field: PbtxtField): Fields {
    const v = field.value;
    if (v.kind !== 'message') this.ctx.fail(v, `${this.label(field.name)}: expected a message ({ … }), got ${show(v)}`);
    return new Fields(v, this.label(field.name), this.ctx);
  }

  /** Warns about fields never read: those Tessera ignores (`ignored`), and the unknown rest. */
  warnUnread(ignored: ReadonlySet<string>, why = 'no counterpart in Tessera'): void {
    const rest = this.unread();
    const known = rest.filter((f) => ignored.has(f.name));
    const unknown = rest.filter((f) => !ignored.has(f.name));
    if (known.length > 0) this.ctx.warn(known[0]!, `ignored (${why}): ${known.map((f) => `${this.label(f.name)} (line ${f.line})`).join(', ')}`);
    if (unknown.length > 0) this.ctx.warn(unknown[0]!, `unknown fields, ignored: ${unknown.map((f) => `${this.label(f.name)} (line ${f.line})`).join(', ')}`);
  }
}

function show(v: PbtxtValue): string {
  switch (v.kind) {
    case 'string':
      return JSON.stringify(v.value);
    case 'number':
      return v.text;
    case 'identifier':
      return v.value;
    case 'message':
      return 'a message';
    default:
      return '[]';
  }
}

/**
 * Reads `config.pbtxt` of the model folder `model`: parses it (`TESSERA_E_CONFIG_PARSE` with
 * file:line:col) and maps it (`TESSERA_E_CONFIG_INVALID` with file:line:col for a value that
 * cannot be served).
 */
export function readTritonConfig(file: string, text: string, model: string, options: TritonConfigOptions = {}): FolderModelConfig {
  const message = parsePbtxt(text, file);
  return mapTritonConfig(message, file, text, model, options);
}

/** Maps a parsed config.pbtxt (see `readTritonConfig`). */
export function mapTritonConfig(root: PbtxtMessage, file: string, text: string, model: string, options: TritonConfigOptions = {}): FolderModelConfig {
  const ctx = new Context(file, text);
  const top = new Fields(root, '', ctx);
  const backend = backendOf(top, model, options.detected ?? 'onnxruntime');
  const out: ModelConfigInput = { backend };

  const mbsField = top.one('max_batch_size');
  const maxBatchSize = mbsField ? top.int(mbsField, 0) : undefined;
  const batching: NonNullable<ModelConfigInput['batching']> = { ...dynamicBatching(top, maxBatchSize) };
  if (maxBatchSize !== undefined) batching.maxBatchSize = maxBatchSize;
  // Triton's Python backend reads no batching from model.py: no max_batch_size is 0, dims the whole shape
  else if (backend === 'python') batching.maxBatchSize = 0;
  out.batching = batching;

  for (const refused of ['sequence_batching', 'ensemble_scheduling'] as const) {
    const f = top.one(refused);
    if (f) {
      ctx.fail(f, refused === 'sequence_batching'
        ? 'sequence_batching: Tessera has no sequence batcher (stateful models with correlation IDs and START/END controls are not served); remove the model from the repository'
        : `ensemble_scheduling: ${REFUSED['ensemble']!}`);
    }
  }
  const transaction = top.one('model_transaction_policy');
  if (transaction) {
    const t = top.message(transaction);
    const decoupled = t.one('decoupled');
    if (decoupled && t.bool(decoupled)) ctx.fail(decoupled, 'model_transaction_policy.decoupled: Tessera serves one response per request; decoupled models are not served');
    t.warnUnread(new Set());
  }

  const instances = instanceCount(top, backend);
  if (instances !== undefined) out.instances = instances;
  const policy = versionPolicy(top);
  if (policy !== undefined) out.versionPolicy = policy;

  const inputs = tensors(top, 'input', maxBatchSize ?? 0);
  const outputs = tensors(top, 'output', maxBatchSize ?? 0);
  if (inputs.length > 0 || outputs.length > 0) {
    out.signature = { declaredIn: file, ...(inputs.length > 0 ? { inputs } : {}), ...(outputs.length > 0 ? { outputs } : {}) };
  }
  if (backend === 'python') {
    // a model.py declares no tensors: the backend's own `inputs`/`outputs` keys carry them
    if (inputs.length > 0) out['inputs'] = pythonTensors(top, 'input', inputs);
    if (outputs.length > 0) out['outputs'] = pythonTensors(top, 'output', outputs);
  }

  let modelFilename = MODEL_FILENAMES[backend];
  const filenameField = top.one('default_model_filename');
  if (filenameField) {
    modelFilename = top.string(filenameField);
    if (modelFilename === '' || /[/\\]/.test(modelFilename) || modelFilename === '.' || modelFilename === '..') {
      ctx.fail(filenameField.value, `default_model_filename: expected a file name inside the version folder, got ${JSON.stringify(modelFilename)}`);
    }
  }
  top.warnUnread(IGNORED);
  return { model: out, modelFilename, warnings: ctx.warnings };
}

/**
 * `platform: "onnxruntime_onnx"` / `backend: "onnxruntime"` → onnxruntime, `backend: "python"` →
 * python, neither → `detected`; anything else is refused.
 */
function backendOf(top: Fields, model: string, detected: FolderBackend): FolderBackend {
  const nameField = top.one('name');
  if (nameField) {
    const name = top.string(nameField);
    if (name !== model) top.ctx.fail(nameField.value, `name ${JSON.stringify(name)} does not match the model's folder ${JSON.stringify(model)}; Triton and Tessera name a model by its folder: fix the name or remove it`);
  }
  const platformField = top.one('platform');
  const backendField = top.one('backend');
  const platform = platformField ? top.string(platformField) : undefined;
  const backend = backendField ? top.string(backendField) : undefined;
  // Triton's Python models name only the backend; with an ONNX platform beside it the config says two things
  const python = backend === 'python' && platform === undefined;
  for (const [field, value, ok] of [[platformField, platform, 'onnxruntime_onnx'], [backendField, backend, python ? 'python' : 'onnxruntime']] as const) {
    if (value === undefined || value === ok) continue;
    const why = value === 'python'
      ? `platform ${JSON.stringify(platform)} is given too; a Python model (model.py, served by @tessera/backend-python) names only \`backend: "python"\``
      : REFUSED[value] ?? 'no Tessera backend serves it (Tessera serves ONNX models: platform "onnxruntime_onnx" or backend "onnxruntime", with the model as model.onnx; and Python models: backend "python", with model.py)';
    top.ctx.fail(field!.value, `${field!.name} ${JSON.stringify(value)} is not served: ${why}`);
  }
  if (python) return 'python';
  return platform !== undefined || backend !== undefined ? 'onnxruntime' : detected;
}

/**
 * `dynamic_batching { … }` → `batcher: dynamic` and the options it has (microseconds become
 * milliseconds); without it `batcher: passthrough`, since Triton's default scheduler does not
 * batch requests together.
 */
function dynamicBatching(top: Fields, maxBatchSize: number | undefined): Record<string, unknown> {
  const field = top.one('dynamic_batching');
  if (!field) return { batcher: 'passthrough' };
  const db = top.message(field);
  const out: Record<string, unknown> = { batcher: 'dynamic' };
  const preferred = db.all('preferred_batch_size').map((f) => {
    const n = db.int(f, 1);
    if (maxBatchSize !== undefined && maxBatchSize > 0 && n > maxBatchSize) top.ctx.fail(f.value, `dynamic_batching.preferred_batch_size ${n} is larger than max_batch_size ${maxBatchSize}`);
    return n;
  });
  if (preferred.length > 0) out['preferredBatchSizes'] = [...new Set(preferred)].sort((a, b) => a - b);
  const delay = db.one('max_queue_delay_microseconds');
  if (delay) out['maxQueueDelayMs'] = db.int(delay, 0) / 1000;
  const levelsField = db.one('priority_levels');
  const levels = levelsField ? db.int(levelsField, 0) : 0;
  if (levels > 0) out['priorityLevels'] = levels;
  const defaultLevelField = db.one('default_priority_level');
  const defaultLevel = defaultLevelField ? db.int(defaultLevelField, 0) : 0;
  if (defaultLevel > 0) {
    const count = Math.max(1, levels);
    if (defaultLevel > count) top.ctx.fail(defaultLevelField!.value, `dynamic_batching.default_priority_level ${defaultLevel} must be in the range [1, ${count}] (priority_levels ${count})`);
    out['defaultPriorityLevel'] = defaultLevel;
  }
  const ordering = db.one('preserve_ordering');
  if (ordering && db.bool(ordering)) top.ctx.warn(ordering, 'dynamic_batching.preserve_ordering is ignored: each request gets its own answer as soon as its batch finishes');
  const queue = db.one('default_queue_policy');
  if (queue) {
    const q = db.message(queue);
    const size = q.one('max_queue_size');
    if (size) out['maxQueueSize'] = q.int(size, 0);
    const timeout = q.one('default_timeout_microseconds');
    if (timeout) out['timeoutMs'] = q.int(timeout, 0) / 1000;
    const action = q.one('timeout_action');
    if (action && q.enumName(action, ['REJECT', 'DELAY']) === 'DELAY') {
      top.ctx.warn(action, 'dynamic_batching.default_queue_policy.timeout_action DELAY is not supported: a request that waited past timeoutMs is rejected (503 TESSERA_E_QUEUE_TIMEOUT), as with REJECT');
    }
    const override = q.one('allow_timeout_override');
    if (override && !q.bool(override)) top.ctx.warn(override, "dynamic_batching.default_queue_policy.allow_timeout_override false is ignored: a request's own deadline (parameters.timeout, X-Request-Timeout) always applies");
    q.warnUnread(new Set());
  }
  db.warnUnread(new Set(['priority_queue_policy']), 'no per-priority queue policies in Tessera');
  if (maxBatchSize === 0) top.ctx.warn(field, 'dynamic_batching with max_batch_size 0: the model does not batch, so each request runs alone');
  return out;
}

/** `instance_group [{count, kind}, …]` → the sum of the counts (Triton's default count of a KIND_CPU group is 2 for ONNX Runtime, else 1). */
function instanceCount(top: Fields, backend: FolderBackend): number | undefined {
  const groups = top.all('instance_group');
  if (groups.length === 0) return undefined;
  let total = 0;
  let gpuWarned = false;
  for (const g of groups) {
    const group = top.message(g);
    const kindField = group.one('kind');
    const kind = kindField ? group.enumName(kindField, ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL']) : 'KIND_AUTO';
    const countField = group.one('count');
    const count = countField ? group.int(countField, 1) : kind === 'KIND_CPU' && backend === 'onnxruntime' ? 2 : 1;
    const gpus = group.all('gpus');
    gpus.forEach((f) => group.int(f, 0));
    if ((kind === 'KIND_GPU' || kind === 'KIND_MODEL' || gpus.length > 0) && !gpuWarned) {
      gpuWarned = true;
      const where = backend === 'python'
        ? 'each instance is a CPU instance (initialize gets model_instance_kind "CPU", tensors are in host memory); model.py may still use a GPU itself'
        : "the instances run on the CPU until a GPU execution provider is configured (e.g. `sessionOptions: {executionProviders: [cuda]}` in the model's section under `models:`)";
      top.ctx.warn(kindField ?? g, `instance_group ${kind}${gpus.length > 0 ? ` (gpus)` : ''}: ${where}; the group counts as ${count} instance(s)`);
    }
    const passive = group.one('passive');
    if (passive && group.bool(passive)) {
      top.ctx.warn(passive, 'instance_group.passive: passive instances get no work in Triton; they are not loaded here');
    } else total += count;
    group.skip('name');
    group.warnUnread(new Set(['secondary_devices', 'profile', 'host_policy', 'rate_limiter']));
  }
  if (total === 0) top.ctx.fail(groups[0]!, 'instance_group: every group is passive; at least one instance must serve');
  return total;
}

/** `version_policy { latest {num_versions} | all {} | specific {versions: […]} }`. */
function versionPolicy(top: Fields): VersionPolicy | undefined {
  const field = top.one('version_policy');
  if (!field) return undefined;
  const vp = top.message(field);
  const kinds = ['latest', 'all', 'specific'].filter((k) => vp.has(k));
  if (kinds.length !== 1) {
    top.ctx.fail(field.value, `version_policy: expected exactly one of latest { num_versions: N }, all { }, specific { versions: [...] }, got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`);
  }
  const kind = kinds[0]!;
  const sub = vp.message(vp.one(kind)!);
  let policy: VersionPolicy;
  if (kind === 'all') policy = 'all';
  else if (kind === 'latest') {
    const n = sub.one('num_versions');
    if (!n) top.ctx.fail(sub.node, 'version_policy.latest: num_versions is missing');
    policy = { latest: sub.int(n, 1) };
  } else {
    const versions = sub.all('versions').map((f) => sub.int(f, 1));
    if (versions.length === 0) top.ctx.fail(sub.node, 'version_policy.specific: versions is empty');
    policy = { specific: [...new Set(versions)].sort((a, b) => a - b) };
  }
  sub.warnUnread(new Set());
  vp.warnUnread(new Set());
  return policy;
}

/** `input`/`output` entries → declared tensors (with max_batch_size > 0 Triton's dims exclude the batch dim, so -1 is put in front). */
function tensors(top: Fields, kind: 'input' | 'output', maxBatchSize: number): DeclaredTensor[] {
  const seen = new Map<string, number>();
  return top.all(kind).map((f, i) => {
    const t = top.message(f);
    const nameField = t.one('name');
    if (!nameField) top.ctx.fail(f.value, `${kind}[${i}]: name is missing`);
    const name = t.string(nameField);
    if (seen.has(name)) top.ctx.fail(nameField.value, `${kind} ${JSON.stringify(name)} is declared twice (first at line ${seen.get(name)})`);
    seen.set(name, nameField.line);
    const declared: DeclaredTensor = { name };
    const typeField = t.one('data_type');
    if (typeField) {
      const v = typeField.value;
      const triton = v.kind === 'identifier' ? v.value : '';
      if (triton === 'TYPE_BF16') top.ctx.warn(v, `${kind} ${JSON.stringify(name)}: data_type TYPE_BF16 has no Tessera datatype; the datatype is not checked`);
      else {
        const datatype = DATA_TYPES[triton];
        if (!datatype) top.ctx.fail(v, `${kind}[${i}].data_type: expected one of ${[...Object.keys(DATA_TYPES), 'TYPE_BF16'].join(', ')}, got ${show(v)}`);
        declared.datatype = datatype;
      }
    }
    let note = '';
    if (t.has('dims')) {
      const dims = t.all('dims').map((d) => t.int(d, -1));
      declared.shape = maxBatchSize > 0 ? [-1, ...dims] : dims;
      if (maxBatchSize > 0) note = `; dims [${dims.join(', ')}] exclude the batch dim, max_batch_size ${maxBatchSize}`;
    }
    declared.field = `${kind}[${i}] ${JSON.stringify(name)} (line ${f.value.line}${note})`;
    const reshape = t.one('reshape');
    if (reshape) top.ctx.warn(reshape, `${kind} ${JSON.stringify(name)}: reshape is ignored; the model gets (and answers) tensors in its own shape`);
    const labels = t.one('label_filename');
    if (labels) {
      // one label per line, in class order, beside config.pbtxt: what Triton's classification extension appends
      const file = path.resolve(path.dirname(top.ctx.file), t.string(labels));
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        top.ctx.fail(labels.value, `${kind} ${JSON.stringify(name)}: label_filename ${file} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (kind === 'output') declared.labels = text.split(/\r?\n/).filter((line, n, all) => line.length > 0 || n < all.length - 1);
      else top.ctx.warn(labels, `input ${JSON.stringify(name)}: label_filename is ignored (labels belong to outputs)`);
    }
    t.warnUnread(new Set(['format', 'is_shape_tensor', 'allow_ragged_batch', 'optional', 'is_non_linear_format_io']));
    return declared;
  });
}

/**
 * The declared tensors as the Python backend's `inputs`/`outputs` (`{name, datatype, shape}`, shape
 * with the batch dim): a model.py declares none itself, so each needs its data_type and dims.
 */
function pythonTensors(top: Fields, kind: 'input' | 'output', declared: readonly DeclaredTensor[]): { name: string; datatype: DataType; shape: number[] }[] {
  const fields = top.all(kind);
  return declared.map((d, i) => {
    const f = fields[i]!;
    if (d.datatype === undefined) {
      // tensors() accepted TYPE_BF16 (unchecked) or no data_type: neither gives the backend a datatype
      const typeField = f.value.kind === 'message' ? f.value.fields.find((x) => x.name === 'data_type') : undefined;
      top.ctx.fail(typeField?.value ?? f.value, `${kind} ${JSON.stringify(d.name)}: ${typeField ? 'data_type TYPE_BF16 has no Tessera datatype' : 'data_type is missing'}; a Python model's tensors are what config.pbtxt declares (model.py declares none), so each ${kind} needs a data_type Tessera has (TYPE_FP32, TYPE_INT64, TYPE_STRING, …)`);
    }
    if (d.shape === undefined) top.ctx.fail(f.value, `${kind} ${JSON.stringify(d.name)}: dims is missing; a Python model's tensors are what config.pbtxt declares (model.py declares none), so each ${kind} needs its dims (-1: any size)`);
    return { name: d.name, datatype: d.datatype, shape: [...d.shape] };
  });
}
