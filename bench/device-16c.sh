#!/bin/bash
# Issue 13's 16-core run in one device-machine command (../shared/gpu/README.md; about 5 minutes):
# an A/B of the next batch waiting in the worker (nextBatchInWorker: true, off by default) on the
# PP-OCR classifier, then the judged run of the default config against raw ONNX Runtime (autocannon,
# PP-OCR cls + det), then the classifier again with wrk as the load generator. Every log and results
# file goes to $OUT as soon as its step ends. Needs the carried wrk (.device/wrk:
# bench/lib/repack-device.sh copies it). BENCH_DEVICE_MODELS=cls,det,mnv2 adds the MobileNetV2
# (exported with the device's torch).
#   . .device/on-device.sh && BENCH_GIT_HEAD=<commit> bash bench/device-16c.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
export BENCH_WRK=${BENCH_WRK:-$PWD/.device/wrk/wrk}
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$PWD/.device/wrk
MODELS=${BENCH_DEVICE_MODELS:-cls,det}
if [[ $MODELS == *mnv2* ]]; then . bench/lib/sweep-common.sh 2> "$OUT/export.log"; fi
save() { cp bench/results/$(date +%F)-*"$1".json "$OUT/" 2>/dev/null; }
W4='{"workers":4}'
ON='{"nextBatchInWorker":true}'
BENCH_SIZING_RAW='[]' BENCH_SIZING_PLAN="[[\"cls\",\"default\",{},64,8,$W4],[\"cls\",\"nextBatchInWorker true\",$ON,64,8,$W4],[\"cls\",\"default\",{},1,1,$W4],[\"cls\",\"nextBatchInWorker true\",$ON,1,1,$W4]]" \
  timeout 70 node bench/sizing.mjs 2> "$OUT/next-batch-ab.log"
save sizing
common=(BENCH_PRESET=device BENCH_CONNECTIONS=1,64 BENCH_DURATION=4 BENCH_WARMUP=2 BENCH_LOAD_PROCESSES=8 "BENCH_SCENARIOS=raw,tessera-binary/*/auto" BENCH_TUNED=0 BENCH_WRITE=json)
env "${common[@]}" BENCH_MODELS="$MODELS" BENCH_MACHINE=h200-16c timeout -s TERM 170 node bench/run.mjs > "$OUT/ocr.log" 2>&1
save h200-16c
# wrk: the served points only (the raw best is the run's above, minutes before on the same machine)
env "${common[@]}" BENCH_MODELS=cls BENCH_CONNECTIONS=64 BENCH_LOADGEN=wrk "BENCH_SCENARIOS=tessera-binary/*/auto" BENCH_MACHINE=h200-16c-wrk timeout -s TERM 40 node bench/run.mjs > "$OUT/ocr-wrk.log" 2>&1
save h200-16c-wrk
tail -n 4 "$OUT/next-batch-ab.log" "$OUT/ocr.log" "$OUT/ocr-wrk.log"
