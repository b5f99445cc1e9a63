#!/usr/bin/env bash
# Builds numabind's libFuzzer targets (csrc/fuzz) with clang, ASan and UBSan,
# and runs each for a given time from its seed corpus and regression inputs.
#
#   bash tools/fuzz.sh [-t SECONDS] [-j JOBS] [-o OUTDIR] [TARGET...]
#
#   -t SECONDS  time per target (default 60)
#   -j JOBS     targets run at once (default 1; each target is one process)
#   -o OUTDIR   build and results (default build/fuzz): OUTDIR/build (CMake),
#               OUTDIR/corpus/<target> (grown corpus), OUTDIR/crashes/<target>-*,
#               OUTDIR/logs/<target>.log, OUTDIR/summary.md (the table below)
#   TARGET      cpulist cpumask sysfs_values cuda_visible launcher_env env_plan
#               sysfs_tree (default: all)
#
# Prints one line per target: seconds, executions, executions/s, corpus size,
# crashes; exits 1 when any target crashed (an invariant failed, a sanitizer
# fired, an input ran over 20 s or over 2.5 GB). A crash input goes to
# csrc/fuzz/regressions/<target>/<what-it-shows>, where ctest replays it.
# Needs clang and libFuzzer (Debian: clang libclang-rt-dev), cmake, ninja
# or make, python3 and libnuma-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER=60
JOBS=1
OUT=build/fuzz
ALL=(cpulist cpumask sysfs_values cuda_visible launcher_env env_plan sysfs_tree)
while getopts "t:j:o:h" opt; do
  case "$opt" in
    t) SECONDS_PER=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (${ALL[*]})" >&2; exit 2; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUILD=$OUT/build
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=${CC:-clang} cmake -S . -B "$BUILD" "${gen[@]}" -DNUMABIND_FUZZ=ON -DNUMABIND_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$OUT/cmake.log" || { cat "$OUT/cmake.log"; exit 1; }
fi
cmake --build "$BUILD" --target nmb_fuzz_all >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
TREE=$BUILD/csrc/fuzz/tree

# The sysfs_tree target damages a private copy of the tree per process: on
# tmpfs when there is one.
SCRATCH=$OUT/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SCRATCH=$(mktemp -d /dev/shm/numabind-fuzz-XXXXXX); fi
mkdir -p "$SCRATCH" "$OUT/logs" "$OUT/crashes"
trap 'case "$SCRATCH" in /dev/shm/numabind-fuzz-*) rm -rf "$SCRATCH" ;; esac' EXIT

run_one() {
  local t=$1 corpus=$OUT/corpus/$1
  mkdir -p "$corpus"
  rm -f "$OUT/crashes/$t"-*
  local start rc=0 regressions=()
  [ -d "csrc/fuzz/regressions/$t" ] && regressions=("csrc/fuzz/regressions/$t")
  start=$(date +%s)
  NUMABIND_FUZZ_TREE=$TREE TMPDIR=$SCRATCH \
    "$BUILD/csrc/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER" -timeout=20 -rss_limit_mb=2560 \
      -print_final_stats=1 -artifact_prefix="$OUT/crashes/$t-" \
      "$corpus" "csrc/fuzz/corpus/$t" "${regressions[@]}" >"$OUT/logs/$t.log" 2>&1 || rc=$?
  local took=$(( $(date +%s) - start ))
  local runs crashes size
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/logs/$t.log" | tail -1)
  crashes=$(find "$OUT/crashes" -name "$t-*" -type f | wc -l)
  [ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes=1   # died without an artifact: still a failure
  size=$(find "$corpus" "csrc/fuzz/corpus/$t" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$took" "${runs:-0}" \
    "$(( ${runs:-0} / (took > 0 ? took : 1) ))" "$size" "$crashes" >"$OUT/logs/$t.row"
}

echo "fuzzing ${TARGETS[*]} for ${SECONDS_PER} s each, ${JOBS} at a time (logs: $OUT/logs)"
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

{
  echo "| target | seconds | executions | exec/s | corpus | crashes |"
  echo "|---|---|---|---|---|---|"
  for t in "${TARGETS[@]}"; do cat "$OUT/logs/$t.row"; done
} | tee "$OUT/summary.md"
{
  echo
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(clang --version | head -1)"
} | tee -a "$OUT/summary.md"

failed=0
for t in "${TARGETS[@]}"; do
  n=$(awk -F'|' '{gsub(/ /, "", $7); print $7}' "$OUT/logs/$t.row")
  if [ "$n" != 0 ]; then
    failed=1
    echo "fuzz.sh: $t crashed: see $OUT/logs/$t.log" >&2
    grep -m3 -E "invariant failed|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error" \
      "$OUT/logs/$t.log" >&2 || true
    for f in "$OUT/crashes/$t"-*; do
      [ -e "$f" ] && echo "  input: $f (replay: NUMABIND_FUZZ_TREE=$TREE $BUILD/csrc/fuzz/fuzz_$t $f)" >&2
    done
  fi
done
exit $failed
