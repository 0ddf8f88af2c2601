#!/bin/bash
# The sweep behind the next sizing rule (issue 13): with several server workers, how each worker
# should split its cores among instances (1 × 4 threads, 2 × 2, 4 × 1, …), for the two PP-OCR models
# and a MobileNetV2, at 64 connections (8 load-generator processes) and at 1; plus the raw points
# each is judged against. Meant for the 16-core device machine (../shared/gpu/README.md); about
# 8 minutes there. Writes bench/results/<date>-<machine>-sizing.json and logs every point to stderr.
#   bash bench/sizing-layouts.sh                    # autocannon
#   BENCH_LOADGEN=wrk bash bench/sizing-layouts.sh  # the same points with wrk as the load generator
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/sweep-common.sh
LP=${BENCH_LOAD_PROCESSES:-8}
P=()
for m in cls det mnv2; do
  P+=("[\"$m\",\"w4 default\",{},64,$LP,$(w 4)]" "[\"$m\",\"w4 1x4\",$(o 1 4),64,$LP,$(w 4)]" "[\"$m\",\"w4 2x2\",$(o 2 2),64,$LP,$(w 4)]")
done
P+=("[\"cls\",\"w4 2x1\",$(o 2 1),64,$LP,$(w 4)]" "[\"cls\",\"w4 1x3\",$(o 1 3),64,$LP,$(w 4)]"
    "[\"cls\",\"w4 1x4 delay2\",$(o 1 4 ',"batching":{"batcher":"dynamic","maxBatchSize":32,"maxQueueDelayMs":2}'),64,$LP,$(w 4)]"
    "[\"cls\",\"w2 2x4\",$(o 2 4),64,$LP,$(w 2)]" "[\"cls\",\"w2 1x8\",$(o 1 8),64,$LP,$(w 2)]" "[\"cls\",\"w3 1x5\",$(o 1 5),64,$LP,$(w 3)]"
    "[\"cls\",\"w8 1x2\",$(o 1 2),64,$LP,$(w 8)]" "[\"det\",\"w2 2x4\",$(o 2 4),64,$LP,$(w 2)]" "[\"det\",\"w8 1x2\",$(o 1 2),64,$LP,$(w 8)]")
for m in cls det mnv2; do
  P+=("[\"$m\",\"w4 default\",{},1,1,$(w 4)]" "[\"$m\",\"w4 1x4\",$(o 1 4),1,1,$(w 4)]" "[\"$m\",\"w4 2x2\",$(o 2 2),1,1,$(w 4)]")
done
BENCH_SIZING_PLAN="[$(IFS=,; echo "${P[*]}")]"
export BENCH_SIZING_PLAN
export BENCH_SIZING_RAW='[["cls",16,1,16],["cls",4,4,16],["cls",8,2,16],["cls",4,4,32],["cls",1,1,1],["det",16,1,8],["det",8,2,8],["det",4,4,8],["det",4,4,4],["det",1,0,1],["mnv2",1,0,1],["mnv2",16,1,16],["mnv2",4,4,16],["mnv2",8,2,8]]'
exec node bench/sizing.mjs
