#!/usr/bin/env bash
# DeepEP intranode bandwidth, unpinned vs the hard-coded recipe vs numabind,
# side by side on one machine: modes interleaved round by round so drift
# (clocks, other tenants) hits them alike.
#
#   bash benchmarks/gpu/run_deepep.sh DEEPEP_SRC [ROUNDS] [NPROC] [LOGDIR]
#
# DEEPEP_SRC is a DeepEP checkout (github.com/deepseek-ai/DeepEP) already
# built and installed into this python3 (benchmarks/gpu/build_deepep.sh).
# Writes LOGDIR/<mode>-<round>.log and prints the table summarize_deepep.py makes.
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$1 ROUNDS=${2:-2} NPROC=${3:-4} LOGDIR=${4:-${OUT:-/tmp}/deepep-logs}
PY=${PYTHON:-python3}
mkdir -p "$LOGDIR"
nvidia-smi --query-gpu=index,name,pci.bus_id,clocks.sm,clocks.max.sm --format=csv > "$LOGDIR/gpus.csv" || true
for round in $(seq 1 "$ROUNDS"); do
  for mode in none hardcoded numabind; do
    start=$(date +%s)
    timeout "${DEEPEP_RUN_TIMEOUT:-300}" "$PY" benchmarks/gpu/deepep_intranode.py --deepep-src "$SRC" --mode "$mode" \
      --num-processes "$NPROC" > "$LOGDIR/$mode-$round.log" 2>&1
    echo "round $round $mode: rc=$? $(( $(date +%s) - start )) s"
    grep -h "Best" "$LOGDIR/$mode-$round.log" | sed 's/^/    /'
  done
done
"$PY" benchmarks/gpu/summarize_deepep.py "$LOGDIR"
