"""A torchvision ResNet as a Triton Python-backend model (TritonPythonModel), on CPU or CUDA.

The weights are random (no weights can be downloaded where this runs): ``torch.manual_seed(seed)``
before ``torchvision.models.<arch>(weights=None)`` gives the same weights in every process, so any
other process that seeds torch the same way computes the same outputs (the example's test checks
the served answers against such a forward, computed on its own).

Settings, each an environment variable (what Tessera passes through ``python.env``) or, under
Triton, a config.pbtxt ``parameters`` entry of the lower-case name (Tessera ignores ``parameters``):

    RESNET_ARCH    resnet18 (default), resnet34, resnet50, ... (any torchvision.models builder)
    RESNET_DEVICE  auto (default: cuda when torch sees a GPU, else cpu), cpu, cuda, cuda:1, ...
    RESNET_FP16    1: run the model in half precision on CUDA (inputs cast, outputs back to FP32)
    RESNET_TF32    1: allow TF32 for convolutions and matmuls on CUDA (default 0: strict FP32,
                   comparable with the CPU within ~1e-3 relative)
    RESNET_SEED    the seed of the random weights (default 0)
    RESNET_THREADS torch's intra-op threads on CPU (default: torch's, one per core)
"""

import json
import os

import numpy as np
import torch
import torchvision
import triton_python_backend_utils as pb_utils

SETTINGS = ("arch", "device", "fp16", "tf32", "seed", "threads")


def read_settings(model_config):
    """The settings: RESNET_<NAME> from the environment over config.pbtxt's parameters (Triton's string_value form)."""
    parameters = model_config.get("parameters") or {}
    out = {}
    for name in SETTINGS:
        value = os.environ.get("RESNET_" + name.upper())
        if value is None and name in parameters:
            p = parameters[name]
            value = p.get("string_value") if isinstance(p, dict) else str(p)
        if value is not None and value != "":
            out[name] = value
    return out


def flag(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def pick_device(requested):
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("RESNET_DEVICE={} but torch {} sees no CUDA device (torch.cuda.is_available() is False)".format(requested, torch.__version__))
    return device


def build(arch, seed):
    """torchvision's `arch` with random weights drawn after torch.manual_seed(seed), on the CPU, in eval mode."""
    builder = getattr(torchvision.models, arch, None)
    if builder is None or not callable(builder):
        raise ValueError("RESNET_ARCH={}: torchvision {} has no such model builder".format(arch, torchvision.__version__))
    torch.manual_seed(seed)
    try:
        model = builder(weights=None)
    except TypeError:  # torchvision < 0.13 has no `weights`
        model = builder(pretrained=False)
    return model.eval()


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        settings = read_settings(config)
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.arch = settings.get("arch", "resnet18")
        self.device = pick_device(settings.get("device", "auto"))
        on_cuda = self.device.type == "cuda"
        self.fp16 = flag(settings.get("fp16", "0")) and on_cuda
        tf32 = flag(settings.get("tf32", "0"))
        if on_cuda:
            # cuDNN convolutions default to TF32 on Ampere and later: off unless asked, so FP32 means FP32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
        if "threads" in settings:
            torch.set_num_threads(int(settings["threads"]))
        model = build(self.arch, int(settings.get("seed", "0")))
        model = model.to(self.device)
        self.model = model.half() if self.fp16 else model
        # one forward before the first request: CUDA context, cuDNN plans, CPU allocations
        self._forward(np.zeros((1, 3, 224, 224), dtype=np.float32))
        where = torch.cuda.get_device_name(self.device) if on_cuda else "{} threads".format(torch.get_num_threads())
        print(
            "resnet: {} (random weights, seed {}) on {} ({}), {}, torch {}, torchvision {}".format(
                self.arch,
                settings.get("seed", "0"),
                self.device,
                where,
                "fp16" if self.fp16 else ("tf32" if on_cuda and tf32 else "fp32"),
                torch.__version__,
                torchvision.__version__,
            ),
            flush=True,
        )

    def _forward(self, batch):
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            if self.fp16:
                x = x.half()
            y = self.model(x)
            # .cpu() waits for the GPU: the result is complete when it returns
            return y.float().cpu().numpy()

    def execute(self, requests):
        """Every request of the batch through the model at once (one torch batch), then split back."""
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [a.shape[0] for a in arrays]
        # the inputs view the server's shared memory: concatenate copies them (one request: torch reads the view)
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        if batch.dtype != np.float32:
            batch = batch.astype(np.float32)
        out = self._forward(batch)
        responses, at = [], 0
        for n in sizes:
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, out[at:at + n])]))
            at += n
        return responses

    def finalize(self):
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
