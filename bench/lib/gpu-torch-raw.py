"""Raw PyTorch timings for bench/python-gpu.mjs: the example's seeded torchvision ResNet
(examples/pytorch-resnet: torch.manual_seed(seed), then torchvision.models.<arch>(weights=None)),
forward at each batch size on each contender (cpu fp32, cuda fp32, cuda tf32, cuda fp16).

    python3 gpu-torch-raw.py '<json>'

The argument: {arch, seed, batches, contenders: [{id, device, dtype: fp32|tf32|fp16}], warmupRuns,
minRuns, maxRuns, timeBoxS, deadline (epoch s), inputFile (FP32 [max batch, 3, 224, 224], raw
little-endian), outDir, threads (0: torch's default)}. Writes one JSON object per line to stdout,
as it goes (a run killed midway keeps what it printed):
    {"type": "env", ...}                        torch, torchvision, CUDA, threads
    {"type": "unavailable", "id", "message"}    a contender that cannot run here (no CUDA)
    {"type": "point", "id", "batch", ...}       forwardMs (input already on the device) and
                                                e2eMs (numpy in, numpy out: what model.py does)
    {"type": "skipped", "id", "batch", "reason"}
    {"type": "done"}
Each point's first output goes to <outDir>/<id>-b<batch>.f32 for the comparison of contenders.
CUDA timings synchronise after every run.
"""

import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torchvision


def emit(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def summary(ms):
    return {"runs": len(ms), "p50Ms": statistics.median(ms), "p90Ms": percentile(ms, 0.9), "meanMs": sum(ms) / len(ms), "maxMs": max(ms)}


def time_runs(run, sync, warmup, min_runs, max_runs, box_s, deadline):
    warm = []
    for _ in range(warmup):
        t = time.perf_counter()
        run()
        sync()
        warm.append((time.perf_counter() - t) * 1000)
    ms = []
    t0 = time.perf_counter()
    while len(ms) < max_runs and (len(ms) < min_runs or (time.perf_counter() - t0 < box_s and time.time() < deadline)):
        t = time.perf_counter()
        run()
        sync()
        ms.append((time.perf_counter() - t) * 1000)
    out = summary(ms)
    out["warmupMs"] = warm
    out["firstRunMs"] = warm[0] if warm else None
    return out


def build(arch, seed):
    torch.manual_seed(seed)
    return getattr(torchvision.models, arch)(weights=None).eval()


def main():
    args = json.loads(sys.argv[1])
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    cuda = torch.cuda.is_available()
    emit({
        "type": "env",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "cudaAvailable": cuda,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "threads": torch.get_num_threads(),
    })
    batches = args["batches"]
    everything = np.fromfile(args["inputFile"], dtype="<f4").reshape(-1, 3, 224, 224)
    for c in args["contenders"]:
        device = torch.device(c["device"])
        if device.type == "cuda" and not cuda:
            emit({"type": "unavailable", "id": c["id"], "message": "torch {} sees no CUDA device (torch.cuda.is_available() is False)".format(torch.__version__)})
            continue
        on_cuda = device.type == "cuda"
        if on_cuda:
            torch.backends.cudnn.allow_tf32 = c["dtype"] == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = c["dtype"] == "tf32"
        half = c["dtype"] == "fp16"
        model = build(args["arch"], args["seed"]).to(device)
        if half:
            model = model.half()
        sync = torch.cuda.synchronize if on_cuda else (lambda: None)
        for b in batches:
            if time.time() > args["deadline"]:
                emit({"type": "skipped", "id": c["id"], "batch": b, "reason": "the time budget of this phase ran out"})
                continue
            x_np = np.ascontiguousarray(everything[:b])

            def e2e():
                with torch.inference_mode():
                    x = torch.from_numpy(x_np).to(device)
                    if half:
                        x = x.half()
                    return model(x).float().cpu().numpy()

            with torch.inference_mode():
                resident = torch.from_numpy(x_np).to(device)
                if half:
                    resident = resident.half()

                def forward():
                    return model(resident)

                t = time.perf_counter()
                first = e2e()
                first_ms = (time.perf_counter() - t) * 1000
                first.astype("<f4").tofile(os.path.join(args["outDir"], "{}-b{}.f32".format(c["id"], b)))
                fwd = time_runs(forward, sync, max(0, args["warmupRuns"] - 1), args["minRuns"], args["maxRuns"], args["timeBoxS"], args["deadline"])
                both = time_runs(e2e, sync, 1, args["minRuns"], args["maxRuns"], args["timeBoxS"], args["deadline"]) if on_cuda else None
            point = {"type": "point", "id": c["id"], "batch": b, "firstRunMs": first_ms, "forward": fwd, "e2e": both or fwd, "outputShape": list(first.shape)}
            emit(point)
        del model
        if on_cuda:
            torch.cuda.empty_cache()
    emit({"type": "done"})


if __name__ == "__main__":
    main()
