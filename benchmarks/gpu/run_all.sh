#!/usr/bin/env bash
# Every GPU benchmark of issue 8 on a GPU host (4 GPUs, PyTorch, no network),
# one after the other; DeepEP's is separate (run_deepep.sh).
#
#   bash benchmarks/gpu/run_all.sh [OUTDIR]
#
# OUTDIR (default $OUT/numabind-gpu-bench, else /tmp/numabind-gpu-bench) gets
# each script's Markdown + JSON (<name>.md) and its stderr (<name>.log); the
# Markdown is printed as well. Each script takes under 2 minutes; a failing
# one is reported and the others still run. numabind is built from this
# checkout (as tests/gpu/run.sh does) only when python3 cannot import it.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUTDIR=${1:-${OUT:-/tmp}/numabind-gpu-bench}
mkdir -p "$OUTDIR"
if ! "$PY" -c "import numabind" 2>/dev/null; then
  echo "numabind not importable: installing it from this checkout" >&2
  "$PY" -m pip install -q --no-build-isolation --no-deps . 2>&1 | tail -5
fi
"$PY" -c "import numabind, sys; print('numabind', numabind.__version__, 'from', numabind.__file__, 'python', sys.version.split()[0])"
nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUTDIR/gpus.csv"
rc=0
for script in show_vs_nvidia_smi copy_bandwidth launch_variance; do
  start=$(date +%s)
  timeout "${BENCH_TIMEOUT:-300}" "$PY" "benchmarks/gpu/$script.py" > "$OUTDIR/$script.md" 2> "$OUTDIR/$script.log"
  r=$?
  echo
  echo "=== $script: rc=$r, $(( $(date +%s) - start )) s (full output: $OUTDIR/$script.md, stderr: $OUTDIR/$script.log)"
  grep -v '^JSON ' "$OUTDIR/$script.md"
  if [ "$r" -ne 0 ]; then
    rc=1
    tail -20 "$OUTDIR/$script.log"
  fi
done
exit $rc
