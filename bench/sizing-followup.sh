#!/bin/bash
# The second sweep behind the sizing rule (issue 13), after bench/sizing-layouts.sh found on 16 cores
# (2026-12-06) that one multi-threaded instance per worker loses to single-threaded ones (cls 3,664
# against 6,787 samples/s): does the worker's poll after a run (workerSpinMs 1, which the rule gave
# only to a process of 5 cores or more, so no worker of 4 workers × 4 cores had it) help at
# concurrency 1 and cost nothing at 64; do more sessions or more workers than the default feed the
# cores better; for MobileNetV2, 2 threads with ORT's spinning off; and the raw points at the
# served concurrency (sessions × batch = 64 samples in flight). About 4 minutes on the 16-core device machine.
#   bash bench/sizing-followup.sh    # writes bench/results/<date>-<machine>-sizing.json, every point on stderr
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/sweep-common.sh
S1='{"workerSpinMs":1}'
LP=${BENCH_LOAD_PROCESSES:-8}
P=(
  "[\"cls\",\"w4 default\",{},64,$LP,$(w 4)]" "[\"cls\",\"w4 default spin1\",$S1,64,$LP,$(w 4)]"
  "[\"cls\",\"w4 5x1\",$(o 5 1),64,$LP,$(w 4)]" "[\"cls\",\"w4 6x1\",$(o 6 1),64,$LP,$(w 4)]"
  "[\"cls\",\"w5 3x1\",$(o 3 1),64,$LP,$(w 5)]" "[\"cls\",\"w6 default\",{},64,$LP,$(w 6)]" "[\"cls\",\"w8 default\",{},64,$LP,$(w 8)]"
  "[\"det\",\"w4 default spin1\",$S1,64,$LP,$(w 4)]" "[\"det\",\"w8 default\",{},64,$LP,$(w 8)]"
  "[\"mnv2\",\"w4 default spin1\",$S1,64,$LP,$(w 4)]" "[\"mnv2\",\"w4 2x2 nospin\",{\"instances\":2,\"sessionOptions\":{\"intraOpNumThreads\":2,\"allowSpinning\":false}},64,$LP,$(w 4)]"
  "[\"mnv2\",\"w8 default\",{},64,$LP,$(w 8)]" "[\"mnv2\",\"w8 1x2\",$(o 1 2),64,$LP,$(w 8)]"
  "[\"cls\",\"w4 default\",{},1,1,$(w 4)]" "[\"cls\",\"w4 default spin1\",$S1,1,1,$(w 4)]" "[\"cls\",\"w8 default spin1\",$S1,1,1,$(w 8)]"
  "[\"det\",\"w4 default spin1\",$S1,1,1,$(w 4)]" "[\"mnv2\",\"w4 default spin1\",$S1,1,1,$(w 4)]"
)
BENCH_SIZING_PLAN="[$(IFS=,; echo "${P[*]}")]"
export BENCH_SIZING_PLAN
export BENCH_SIZING_RAW='[["cls",16,1,4],["cls",16,1,2],["cls",8,2,8],["cls",16,1,16],["det",16,1,4],["det",8,2,8],["mnv2",8,2,4],["mnv2",16,1,4]]'
exec node bench/sizing.mjs
