#!/bin/bash
# A/B of the next batch waiting in the ONNX Runtime worker (nextBatchInWorker: true) against one
# batch at a time per instance (the default), on the PP-OCR classifier with the default config, in rounds
# (the order alternates each round) at 64, 8 and 1 connections. About 4 minutes on 2 cores.
#   bash bench/next-batch-ab.sh          # BENCH_AB_ROUNDS=3, BENCH_AB_WORKERS=1 (4 on 16 cores)
# Writes bench/results/<date>-<machine>-sizing.json (2026-12-06, 2 cores: …-amd-epyc-2c-next-batch-ab.json); every point on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${BENCH_AB_ROUNDS:-3}
W="{\"workers\":${BENCH_AB_WORKERS:-1}}"
LP=${BENCH_LOAD_PROCESSES:-2}
ON='{"nextBatchInWorker":true}'
P=()
for r in $(seq 1 "$R"); do
  for c in 64 8 1; do
    lp=$([ "$c" = 1 ] && echo 1 || echo "$LP")
    on="[\"cls\",\"on r$r\",$ON,$c,$lp,$W]"
    off="[\"cls\",\"off r$r\",{},$c,$lp,$W]"
    if [ $((r % 2)) = 1 ]; then P+=("$on" "$off"); else P+=("$off" "$on"); fi
  done
done
BENCH_SIZING_RAW='[["cls",1,1,1],["cls",2,1,2],["cls",2,1,4]]' BENCH_SIZING_PLAN="[$(IFS=,; echo "${P[*]}")]" exec node bench/sizing.mjs
