import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDynamicBatcherOptions } from '../batching/dynamic-batcher-options.js';
import { catchError } from '../config/test-support.js';
import { type FolderModelConfig, readTritonConfig } from './triton-config.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures/triton');
const FILE = '/repo/m/config.pbtxt';

function fixture(name: string, model: string): FolderModelConfig {
  const file = path.join(FIXTURES, `${name}.pbtxt`);
  return readTritonConfig(file, readFileSync(file, 'utf8'), model);
}

const read = (text: string, model = 'm'): FolderModelConfig => readTritonConfig(FILE, text, model);

describe(readTritonConfig, () => {
  describe("having Triton's example configs", () => {
    it('should map docs/examples simple: onnxruntime, max_batch_size, no batcher, the declared signature with the batch dim', () => {
      const file = path.join(FIXTURES, 'simple.pbtxt');
      const config = fixture('simple', 'simple');
      expect(config.warnings).toEqual([]);
      expect(config.modelFilename).toBe('model.onnx');
      expect(config.model).toEqual({
        backend: 'onnxruntime',
        batching: { batcher: 'passthrough', maxBatchSize: 8 },
        signature: {
          declaredIn: file,
          inputs: [
            { name: 'INPUT0', datatype: 'INT32', shape: [-1, 16], field: 'input[0] "INPUT0" (line 30; dims [16] exclude the batch dim, max_batch_size 8)' },
            { name: 'INPUT1', datatype: 'INT32', shape: [-1, 16], field: 'input[1] "INPUT1" (line 35; dims [16] exclude the batch dim, max_batch_size 8)' },
          ],
          outputs: [
            { name: 'OUTPUT0', datatype: 'INT32', shape: [-1, 16], field: 'output[0] "OUTPUT0" (line 42; dims [16] exclude the batch dim, max_batch_size 8)' },
            { name: 'OUTPUT1', datatype: 'INT32', shape: [-1, 16], field: 'output[1] "OUTPUT1" (line 47; dims [16] exclude the batch dim, max_batch_size 8)' },
          ],
        },
      });
    });

    it('should keep the dims of a model that does not batch (max_batch_size 0), read label_filename beside it, and warn about reshape and format (densenet_onnx)', () => {
      const config = fixture('densenet_onnx', 'densenet_onnx');
      expect(config.model.batching).toEqual({ batcher: 'passthrough', maxBatchSize: 0 });
      expect(config.model.signature?.inputs).toEqual([{ name: 'data_0', datatype: 'FP32', shape: [3, 224, 224], field: 'input[0] "data_0" (line 5)' }]);
      expect(config.model.signature?.outputs?.[0]?.shape).toEqual([1000]);
      // fixtures/triton/densenet_labels.txt is ours (class-0 … class-999), not Triton's ImageNet file
      expect(config.model.signature?.outputs?.[0]?.labels).toHaveLength(1000);
      expect(config.model.signature?.outputs?.[0]?.labels?.slice(0, 2)).toEqual(['class-0', 'class-1']);
      const file = path.join(FIXTURES, 'densenet_onnx.pbtxt');
      expect(config.warnings).toEqual([
        `${file}:10:5: input "data_0": reshape is ignored; the model gets (and answers) tensors in its own shape`,
        `${file}:8:5: ignored (no counterpart in Tessera): input.format (line 8)`,
        `${file}:18:5: output "fc6_1": reshape is ignored; the model gets (and answers) tensors in its own shape`,
      ]);
    });

    it('should refuse a label_filename that cannot be read, naming the file and the field', () => {
      const err = catchError(() => read('max_batch_size: 4\noutput [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] label_filename: "nope.txt" } ]\n'));
      expect(err).toMatchObject({ code: 'TESSERA_E_CONFIG_INVALID' });
      expect(err.message).toContain('/repo/m/config.pbtxt:2:');
      expect(err.message).toContain('label_filename /repo/m/nope.txt cannot be read');
    });

    it('should map TYPE_STRING to BYTES (simple_string)', () => {
      expect(fixture('simple_string', 'simple_string').model.signature?.inputs?.map((t) => t.datatype)).toEqual(['BYTES', 'BYTES']);
    });

    it('should collect inputs given in several `input [...]` blocks, and read the version policy (mlflow onnx_float32_int32_int32)', () => {
      const config = fixture('onnx_float32_int32_int32', 'any-folder-name');
      expect(config.model.signature?.inputs?.map((t) => `${t.name}:${t.datatype}`)).toEqual(['INPUT0:FP32', 'INPUT1:FP32']);
      expect(config.model.signature?.outputs?.map((t) => `${t.name}:${t.datatype}`)).toEqual(['OUTPUT0:INT32', 'OUTPUT1:INT32']);
      expect(config.model.versionPolicy).toEqual({ latest: 1 });
    });

    it('should count a KIND_CPU group without count as 2 instances, as Triton does for ONNX Runtime (cpu_instance)', () => {
      const config = fixture('cpu_instance', 'cpu_instance');
      expect(config.model.instances).toBe(2);
      expect(config.model.signature?.inputs?.[0]).toMatchObject({ datatype: 'FP16', shape: [-1, -1, -1] });
      expect(config.warnings).toEqual([]);
    });

    it('should read `version_policy: { all {} }` (the ensemble test member simple)', () => {
      expect(fixture('ensemble_member_simple', 'simple').model).toMatchObject({ versionPolicy: 'all', instances: 2 });
    });

    it('should map dynamic_batching, microseconds to milliseconds, and count instances (bert_base_tf_cpu)', () => {
      const config = fixture('bert_base_tf_cpu', 'bert');
      expect(config.model).toEqual({
        backend: 'onnxruntime',
        batching: { batcher: 'dynamic', maxBatchSize: 4, preferredBatchSizes: [1], maxQueueDelayMs: 2000 },
        instances: 2,
      });
    });

    it("should map a Python model to backend python, its tensors to the backend's inputs/outputs with the batch dim, the model file model.py (simple_identity)", () => {
      const file = path.join(FIXTURES, 'simple_identity.pbtxt');
      const config = fixture('simple_identity', 'simple_identity');
      expect(config.warnings).toEqual([]);
      expect(config.modelFilename).toBe('model.py');
      expect(config.model).toMatchObject({
        backend: 'python',
        batching: { batcher: 'passthrough', maxBatchSize: 8 },
        inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [-1, -1] }],
        outputs: [{ name: 'OUTPUT0', datatype: 'BYTES', shape: [-1, -1] }],
        signature: { declaredIn: file, inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [-1, -1] }] },
      });
    });

    it.each(['simple_sequence', 'simple_dyna_sequence'])('should refuse sequence batching (%s)', (name) => {
      const err = catchError(() => fixture(name, name));
      expect(err.message).toMatch(/:30:1: sequence_batching: Tessera has no sequence batcher/);
    });

    it('should refuse platform "onnxruntime" (not a Triton platform name), saying what is served', () => {
      const err = catchError(() => fixture('default_priority_level1', 'default_priority_level1'));
      expect(err.message).toContain('platform "onnxruntime" is not served: no Tessera backend serves it (Tessera serves ONNX models: platform "onnxruntime_onnx" or backend "onnxruntime"');
    });
  });

  describe('having dynamic_batching', () => {
    it('should map every option that has a counterpart, to options the dynamic batcher accepts', () => {
      const config = read(`
        max_batch_size: 16
        dynamic_batching {
          preferred_batch_size: [ 8, 4, 8 ]
          max_queue_delay_microseconds: 100
          priority_levels: 2
          default_priority_level: 1
          default_queue_policy { timeout_action: REJECT, default_timeout_microseconds: 5000, allow_timeout_override: true, max_queue_size: 16 }
        }`);
      const { batcher, maxBatchSize, ...options } = config.model.batching!;
      expect({ batcher, maxBatchSize }).toEqual({ batcher: 'dynamic', maxBatchSize: 16 });
      expect(options).toEqual({ preferredBatchSizes: [4, 8], maxQueueDelayMs: 0.1, priorityLevels: 2, defaultPriorityLevel: 1, maxQueueSize: 16, timeoutMs: 5 });
      expect(resolveDynamicBatcherOptions(options)).toMatchObject({ maxQueueDelayMs: 0.1, preferredBatchSizes: [4, 8], maxQueueSize: 16, timeoutMs: 5, priorityLevels: 2, defaultPriorityLevel: 1 });
      expect(config.warnings).toEqual([]);
    });

    it('should make `dynamic_batching {}` the dynamic batcher with its defaults', () => {
      expect(read('max_batch_size: 8\ndynamic_batching { }').model.batching).toEqual({ batcher: 'dynamic', maxBatchSize: 8 });
    });

    it('should warn about what has no counterpart, never dropping it silently', () => {
      const config = read(`max_batch_size: 8
dynamic_batching {
  preserve_ordering: true
  priority_queue_policy { key: 1 value: { max_queue_size: 3 } }
  default_queue_policy { timeout_action: DELAY allow_timeout_override: false }
  max_queue_delay: 5
}`);
      expect(config.warnings).toEqual([
        '/repo/m/config.pbtxt:3:3: dynamic_batching.preserve_ordering is ignored: each request gets its own answer as soon as its batch finishes',
        '/repo/m/config.pbtxt:5:26: dynamic_batching.default_queue_policy.timeout_action DELAY is not supported: a request that waited past timeoutMs is rejected (503 TESSERA_E_QUEUE_TIMEOUT), as with REJECT',
        "/repo/m/config.pbtxt:5:48: dynamic_batching.default_queue_policy.allow_timeout_override false is ignored: a request's own deadline (parameters.timeout, X-Request-Timeout) always applies",
        '/repo/m/config.pbtxt:4:3: ignored (no per-priority queue policies in Tessera): dynamic_batching.priority_queue_policy (line 4)',
        '/repo/m/config.pbtxt:6:3: unknown fields, ignored: dynamic_batching.max_queue_delay (line 6)',
      ]);
    });

    it('should refuse a preferred size above max_batch_size and a default priority level out of range', () => {
      expect(catchError(() => read('max_batch_size: 4\ndynamic_batching { preferred_batch_size: [2, 8] }')).message).toContain(
        '/repo/m/config.pbtxt:2:46: dynamic_batching.preferred_batch_size 8 is larger than max_batch_size 4',
      );
      expect(catchError(() => read('max_batch_size: 4\ndynamic_batching { priority_levels: 3 default_priority_level: 5 }')).message).toContain(
        'dynamic_batching.default_priority_level 5 must be in the range [1, 3] (priority_levels 3)',
      );
    });

    it('should warn that a model with max_batch_size 0 does not batch', () => {
      expect(read('max_batch_size: 0\ndynamic_batching {}').warnings).toEqual(['/repo/m/config.pbtxt:2:1: dynamic_batching with max_batch_size 0: the model does not batch, so each request runs alone']);
    });
  });

  describe('having instance_group', () => {
    it('should sum the counts of the groups', () => {
      expect(read('instance_group [ { count: 3 kind: KIND_CPU }, { count: 1, kind: KIND_CPU } ]').model.instances).toBe(4);
      expect(read('instance_group { kind: KIND_AUTO }').model.instances).toBe(1);
    });

    it('should warn once that GPU instances run on the CPU, and leave passive instances out', () => {
      const config = read('instance_group [ { count: 2 kind: KIND_GPU gpus: [0, 1] }, { kind: KIND_GPU }, { count: 4 kind: KIND_CPU passive: true host_policy: "x" } ]');
      expect(config.model.instances).toBe(3);
      expect(config.warnings).toEqual([
        "/repo/m/config.pbtxt:1:29: instance_group KIND_GPU (gpus): the instances run on the CPU until a GPU execution provider is configured (e.g. `sessionOptions: {executionProviders: [cuda]}` in the model's section under `models:`); the group counts as 2 instance(s)",
        '/repo/m/config.pbtxt:1:106: instance_group.passive: passive instances get no work in Triton; they are not loaded here',
        '/repo/m/config.pbtxt:1:120: ignored (no counterpart in Tessera): instance_group.host_policy (line 1)',
      ]);
    });

    it('should refuse a count of 0 and an unknown kind', () => {
      expect(catchError(() => read('instance_group { count: 0 }')).message).toContain('1:25: instance_group.count: expected an integer ≥ 1, got 0');
      expect(catchError(() => read('instance_group { kind: KIND_TPU }')).message).toContain('instance_group.kind: expected one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL, got KIND_TPU');
    });
  });

  describe('having version_policy', () => {
    it.each([
      ['version_policy: { latest: { num_versions: 2 } }', { latest: 2 }],
      ['version_policy { all { } }', 'all'],
      ['version_policy: { specific: { versions: [3, 1, 3] } }', { specific: [1, 3] }],
      ['version_policy < specific < versions: 2 versions: 4 > >', { specific: [2, 4] }],
    ])('should read %s', (text, policy) => {
      expect(read(text).model.versionPolicy).toEqual(policy);
    });

    it.each([
      ['version_policy { }', 'version_policy: expected exactly one of latest { num_versions: N }, all { }, specific { versions: [...] }, got none'],
      ['version_policy { all {} latest { num_versions: 1 } }', 'got latest and all'],
      ['version_policy { latest { } }', 'version_policy.latest: num_versions is missing'],
      ['version_policy { latest { num_versions: 0 } }', 'version_policy.latest.num_versions: expected an integer ≥ 1, got 0'],
      ['version_policy { specific { versions: [] } }', 'version_policy.specific: versions is empty'],
      ['version_policy: "all"', 'version_policy: expected a message ({ … }), got "all"'],
    ])('should refuse %s', (text, message) => {
      const err = catchError(() => read(text));
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toContain(message);
    });
  });

  describe('having other fields', () => {
    it('should take default_model_filename, and refuse one that is a path', () => {
      expect(read('default_model_filename: "model_fp16.onnx"').modelFilename).toBe('model_fp16.onnx');
      expect(catchError(() => read('default_model_filename: "../x.onnx"')).message).toContain('default_model_filename: expected a file name inside the version folder, got "../x.onnx"');
    });

    it('should warn about fields with no counterpart and about unknown fields, listing each', () => {
      const config = read('parameters { key: "k" value: { string_value: "v" } }\noptimization { graph { level: 1 } }\nmodel_warmup [ { name: "w" } ]\nmax_batchsize: 8\nlabels: "x"');
      expect(config.warnings).toEqual([
        '/repo/m/config.pbtxt:1:1: ignored (no counterpart in Tessera): parameters (line 1), optimization (line 2), model_warmup (line 3)',
        '/repo/m/config.pbtxt:4:1: unknown fields, ignored: max_batchsize (line 4), labels (line 5)',
      ]);
    });

    it('should accept a name equal to the folder, and refuse another', () => {
      expect(read('name: "m"').model.backend).toBe('onnxruntime');
      expect(catchError(() => read('name: "other"')).message).toContain('/repo/m/config.pbtxt:1:7: name "other" does not match the model\'s folder "m"');
    });

    it.each([
      ['platform: "tensorrt_plan"', '@tessera/backend-tensorrt'],
      ['backend: "tensorrt"', '@tessera/backend-tensorrt'],
      ['platform: "pytorch_libtorch"', 'torch.onnx.export'],
      ['platform: "tensorflow_savedmodel"', 'tf2onnx'],
      ['platform: "ensemble"', 'Tessera has no ensembles'],
      ['backend: "vllm"', '@tessera/backend-vllm'],
      ['backend: "openvino"', 'no Tessera backend serves it'],
      ['platform: "onnxruntime_onnx" backend: "python"', '@tessera/backend-python'],
    ])('should refuse %s, saying what serves it', (text, hint) => {
      const err = catchError(() => read(text));
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toMatch(/is not served: /);
      expect(err.message).toContain(hint);
    });

    it('should accept platform onnxruntime_onnx with backend onnxruntime', () => {
      expect(read('platform: "onnxruntime_onnx" backend: "onnxruntime"').model.backend).toBe('onnxruntime');
    });

    it('should refuse ensembles and decoupled models, and accept decoupled: false', () => {
      expect(catchError(() => read('ensemble_scheduling { step [] }')).message).toContain('ensemble_scheduling: Tessera has no ensembles');
      expect(catchError(() => read('model_transaction_policy { decoupled: true }')).message).toContain('decoupled models are not served');
      expect(read('model_transaction_policy { decoupled: false }').warnings).toEqual([]);
    });
  });

  describe('having backend "python"', () => {
    const PY = 'backend: "python"\n';

    it('should keep the dims of a model without max_batch_size (0 in Triton) and say so in batching', () => {
      const config = read(`${PY}input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]\noutput [ { name: "Y" data_type: TYPE_INT64 dims: [ -1, 2 ] } ]`);
      expect(config.model.batching).toEqual({ batcher: 'passthrough', maxBatchSize: 0 });
      expect(config.model['inputs']).toEqual([{ name: 'X', datatype: 'FP32', shape: [4] }]);
      expect(config.model['outputs']).toEqual([{ name: 'Y', datatype: 'INT64', shape: [-1, 2] }]);
    });

    it('should map dynamic_batching and count a KIND_CPU group without count as 1 instance (Triton\'s default outside ONNX Runtime)', () => {
      const config = read(`${PY}max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 2000 }\ninstance_group [ { kind: KIND_CPU } ]`);
      expect(config.model).toEqual({ backend: 'python', batching: { batcher: 'dynamic', maxBatchSize: 16, maxQueueDelayMs: 2 }, instances: 1 });
    });

    it('should warn that GPU groups are CPU instances, without the ONNX Runtime hint', () => {
      const config = read(`${PY}instance_group [ { count: 2 kind: KIND_GPU } ]`);
      expect(config.model.instances).toBe(2);
      expect(config.warnings).toEqual(['/repo/m/config.pbtxt:2:29: instance_group KIND_GPU: each instance is a CPU instance (initialize gets model_instance_kind "CPU", tensors are in host memory); model.py may still use a GPU itself; the group counts as 2 instance(s)']);
    });

    it('should take default_model_filename for the Python file', () => {
      expect(read(`${PY}default_model_filename: "main.py"`).modelFilename).toBe('main.py');
    });

    it.each([
      ['input [ { name: "X" dims: [ 4 ] } ]', '2:9: input "X": data_type is missing; a Python model\'s tensors are what config.pbtxt declares'],
      ['output [ { name: "Y" data_type: TYPE_FP32 } ]', '2:10: output "Y": dims is missing'],
      ['input [ { name: "X" data_type: TYPE_BF16 dims: [ 4 ] } ]', '2:32: input "X": data_type TYPE_BF16 has no Tessera datatype'],
    ])('should refuse %s: the backend needs every datatype and shape', (text, message) => {
      const err = catchError(() => read(`${PY}${text}`));
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toContain(`/repo/m/config.pbtxt:${message}`);
    });

    it('should take the files\' guess when config.pbtxt names no backend, and not when it names one', () => {
      expect(read('max_batch_size: 2', 'm').model.backend).toBe('onnxruntime');
      expect(readTritonConfig(FILE, 'max_batch_size: 2', 'm', { detected: 'python' })).toMatchObject({ model: { backend: 'python' }, modelFilename: 'model.py' });
      expect(readTritonConfig(FILE, 'platform: "onnxruntime_onnx"', 'm', { detected: 'python' })).toMatchObject({ model: { backend: 'onnxruntime' }, modelFilename: 'model.onnx' });
    });
  });

  describe('having input and output', () => {
    it('should declare a scalar shape with `dims: [ ]`, and no shape without dims', () => {
      const config = read('max_batch_size: 4\ninput [ { name: "a" data_type: TYPE_FP32 dims: [ ] }, { name: "b" } ]');
      expect(config.model.signature?.inputs).toEqual([
        { name: 'a', datatype: 'FP32', shape: [-1], field: 'input[0] "a" (line 2; dims [] exclude the batch dim, max_batch_size 4)' },
        { name: 'b', field: 'input[1] "b" (line 2)' },
      ]);
    });

    it('should warn that TYPE_BF16 is not checked, and about unknown tensor fields', () => {
      const config = read('input [ { name: "a" data_type: TYPE_BF16 dims: [2] optional: true shape: [1] } ]');
      expect(config.model.signature?.inputs).toEqual([{ name: 'a', shape: [2], field: 'input[0] "a" (line 1)' }]);
      expect(config.warnings).toEqual([
        '/repo/m/config.pbtxt:1:32: input "a": data_type TYPE_BF16 has no Tessera datatype; the datatype is not checked',
        '/repo/m/config.pbtxt:1:52: ignored (no counterpart in Tessera): input.optional (line 1)',
        '/repo/m/config.pbtxt:1:67: unknown fields, ignored: input.shape (line 1)',
      ]);
    });

    it.each([
      ['input [ { data_type: TYPE_FP32 } ]', '1:9: input[0]: name is missing'],
      ['input [ { name: "a" }, { name: "a" } ]', '1:32: input "a" is declared twice (first at line 1)'],
      ['output [ { name: "a" data_type: TYPE_FLOAT } ]', "1:33: output[0].data_type: expected one of TYPE_BOOL"],
      ['input [ { name: "a" dims: [ -2 ] } ]', '1:29: input.dims: expected an integer ≥ -1, got -2'],
      ['input [ { name: "a" dims: [ 1.5 ] } ]', 'input.dims: expected an integer ≥ -1, got 1.5'],
      ['input [ { name: a } ]', 'input.name: expected a quoted string, got a'],
      ['max_batch_size: 4\nmax_batch_size: 8', '2:1: max_batch_size is given more than once (first at line 1)'],
      ['max_batch_size: -1', '1:17: max_batch_size: expected an integer ≥ 0, got -1'],
      ['max_batch_size: [4]', '1:1: max_batch_size is not a repeated field'],
      ['max_batch_size: []', 'max_batch_size is not a repeated field'],
    ])('should refuse %j', (text, message) => {
      const err = catchError(() => read(text));
      expect(err.code).toBe('TESSERA_E_CONFIG_INVALID');
      expect(err.message).toContain(message);
    });
  });
});
