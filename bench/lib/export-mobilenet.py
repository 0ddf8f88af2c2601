# A third model for the CPU benchmarks (BENCH_EXTRA_MODELS): torchvision's MobileNetV2 with seeded
# random weights (no model hub here; the weights do not change the cost of a run), exported to ONNX
# with a free batch dimension. Needs torch and torchvision (Debian's python3-torch, or the device
# machine's). Usage: /usr/bin/python3 bench/lib/export-mobilenet.py /tmp/mobilenet_v2.onnx
import sys

import torch
import torchvision

out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/mobilenet_v2.onnx'
torch.manual_seed(0)
model = torchvision.models.mobilenet_v2(weights=None).eval()
x = torch.randn(1, 3, 224, 224)
kwargs = dict(input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=17)
try:
    # torch ≥ 2.5 defaults to the dynamo exporter, which needs onnxscript; the TorchScript one does not
    torch.onnx.export(model, x, out, dynamo=False, **kwargs)
except TypeError:
    torch.onnx.export(model, x, out, **kwargs)
print(f'wrote {out} (torch {torch.__version__})')
