/**
 * model.py files for the tests, written into a temp folder outside the repository in Triton's
 * layout (`<root>/<name>/1/model.py`). `ADD_SUB_PY` is the README's example, byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Why the Python tests cannot run here (no python3, no numpy), or undefined when they can. */
export function pythonMissing(interpreter = 'python3'): string | undefined {
  const r = spawnSync(interpreter, ['-c', 'import numpy'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `${interpreter} is not available (${r.error.message})`;
  if (r.status !== 0) return `${interpreter} cannot import numpy (${r.stderr.trim().split('\n').pop() ?? ''})`;
  return undefined;
}

/** The first ```python block of the package README: the example the docs show is the one tested. */
export function readmeExample(): string {
  const readme = readFileSync(path.join(import.meta.dirname, '../README.md'), 'utf8');
  const match = /```python\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('packages/backend-python/README.md has no ```python block');
  return match[1]!;
}

/** Writes `<root>/<name>/<version>/model.py`; returns the model's folder. */
export async function writeModel(root: string, name: string, source: string, version = '1'): Promise<string> {
  const dir = path.join(root, name, version);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.py'), source);
  return path.join(root, name);
}

const HEADER = 'import json\nimport os\nimport numpy as np\nimport triton_python_backend_utils as pb_utils\n\n';

/** Every output is the input of the same position, unchanged (one input → one output). */
export const IDENTITY_PY = `${HEADER}class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.pairs = [(i["name"], o["name"]) for i, o in zip(config["input"], config["output"])]

    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor(out, pb_utils.get_input_tensor_by_name(r, inp).as_numpy()) for inp, out in self.pairs])
            for r in requests
        ]
`;

/** BYTES in → the same strings upper-cased, and their lengths (INT32). */
export const UPPER_PY = `${HEADER}class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            upper = np.array([t.decode("utf-8").upper().encode("utf-8") for t in text.reshape(-1)], dtype=np.object_).reshape(text.shape)
            lengths = np.array([len(t) for t in text.reshape(-1)], dtype=np.int32).reshape(text.shape)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("UPPER", upper), pb_utils.Tensor("LENGTH", lengths)]))
        return responses
`;

/** execute raises. */
export const RAISES_PY = `${HEADER}class TritonPythonModel:
    def execute(self, requests):
        raise ValueError("the model refuses to run")
`;

/** A request whose first value is negative gets a TritonError; the others their input doubled. */
export const PER_REQUEST_ERROR_PY = `${HEADER}class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            if x.reshape(-1)[0] < 0:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("negative values are not accepted")))
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x * 2)]))
        return responses
`;

/** The process exits (os._exit(3)) when an input value is negative; else Y = X + 1. */
export const CRASH_PY = `${HEADER}class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            if (pb_utils.get_input_tensor_by_name(request, "X").as_numpy() < 0).any():
                os._exit(3)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", pb_utils.get_input_tensor_by_name(r, "X").as_numpy() + 1)]) for r in requests]
`;

/** initialize raises. */
export const INIT_RAISES_PY = `${HEADER}class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights.bin is missing")

    def execute(self, requests):
        return []
`;

/** Y = X, and COUNT: how many requests the execute call received (one row per row of X). */
export const COUNT_PY = `${HEADER}class TritonPythonModel:
    def execute(self, requests):
        n = len(requests)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x), pb_utils.Tensor("COUNT", np.full((x.shape[0], 1), n, dtype=np.int32))]))
        return responses
`;

/** Writes the args initialize received, and a line per finalize, into files beside it (for the contract's checks). */
export const RECORDER_PY = `${HEADER}HERE = os.path.dirname(os.path.abspath(__file__))

class TritonPythonModel:
    def initialize(self, args):
        with open(os.path.join(HERE, "args.json"), "w") as f:
            json.dump(args, f)

    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X")
            info = np.array([json.dumps({"id": r.request_id(), "requested": r.requested_output_names(), "inputs": [t.name() for t in r.inputs()], "env": os.environ.get("TESSERA_TEST_ENV", "")}).encode()], dtype=np.object_)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x.as_numpy() * 1), pb_utils.Tensor("INFO", info.reshape(1, 1).repeat(x.as_numpy().shape[0], axis=0))]))
        return out

    def finalize(self):
        with open(os.path.join(HERE, "finalized"), "a") as f:
            f.write("finalized\\n")
`;

/** FP32 [-1, 4] tensors, for configs. */
export function fp32(name: string, shape: number[] = [-1, 4]): { name: string; datatype: 'FP32'; shape: number[] } {
  return { name, datatype: 'FP32', shape };
}
