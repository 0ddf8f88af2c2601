# Sourced by the sizing sweeps (bench/sizing-layouts.sh, bench/sizing-followup.sh, bench/device-16c.sh),
# from the project root: the MobileNetV2 as BENCH_EXTRA_MODELS' `mnv2` (exported once with torch to
# $BENCH_MNV2, default /tmp/mobilenet_v2.onnx), and helpers that write a point's JSON keys:
# `w N` server keys of N workers, `o A T [extra]` model keys of A instances × T intra-op threads.
MNV2=${BENCH_MNV2:-/tmp/mobilenet_v2.onnx}
if [ ! -s "$MNV2" ]; then "${BENCH_PYTHON:-python3}" bench/lib/export-mobilenet.py "$MNV2" >&2 || echo "no MobileNetV2 (torch missing?): its points fail" >&2; fi
export BENCH_EXTRA_MODELS="{\"mnv2\":{\"name\":\"mobilenet-v2\",\"file\":\"$MNV2\",\"input\":\"input\",\"sampleShape\":[3,224,224],\"batches\":[1,2,4,8,16]}}"
w() { echo "{\"workers\":$1}"; }
o() { echo "{\"instances\":$1,\"sessionOptions\":{\"intraOpNumThreads\":$2}${3:-}}"; }
