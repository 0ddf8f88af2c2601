"""The example's model computed outside Tessera: the same seeded torchvision ResNet, one forward.

    python3 reference.py --input x.f32 --shape 2,3,224,224 --output y.f32 [--arch resnet18] [--seed 0] [--device cpu]

Reads the input as raw little-endian FP32 (C order), writes the output [N, 1000] the same way.
It does not import models/resnet/1/model.py: agreeing with it says the served model is the
seeded torchvision model, not merely that model.py agrees with itself.
"""

import argparse

import numpy as np
import torch
import torchvision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--shape", required=True, help="N,3,224,224")
    parser.add_argument("--output", required=True)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    shape = [int(d) for d in args.shape.split(",")]
    x = np.fromfile(args.input, dtype="<f4").reshape(shape)
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(weights=None).eval().to(args.device)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        y = model(torch.from_numpy(x).to(args.device)).float().cpu().numpy()
    y.astype("<f4").tofile(args.output)
    print("{}: {} (seed {}) on {} -> {}".format(args.output, args.arch, args.seed, args.device, list(y.shape)))


if __name__ == "__main__":
    main()
