#!/usr/bin/env bash
# CI stage: reliability (docs/reliability.md). After `bash tools/dev.sh test`
# (ctest under ASan+UBSan, which replays every fuzz corpus and regression
# input, and pytest, which runs tests/test_reliability.py's bad-input table),
# this stage:
#   1. fuzzes every libFuzzer target in csrc/fuzz for NUMABIND_FUZZ_SECONDS
#      (default 30) each, nproc at a time (tools/fuzz.sh);
#   2. runs 100,000 topology/plan cycles under LeakSanitizer, split over up
#      to 4 processes, each also bounding its resident set's growth;
#   3. runs 2,000 of those cycles under valgrind, where even a block still
#      reachable at exit is an error;
#   4. runs the C concurrency test (8 threads, 200 threads started during a
#      pin, fork) under ThreadSanitizer.
# Any crash, leak, memory error or data race fails it. Installs what it needs
# (clang, libFuzzer's runtime, valgrind) when missing.
#
#   bash tools/ci/stage-fuzz.sh            # from the repository, as root or with sudo
#   NUMABIND_FUZZ_SECONDS=600 bash tools/ci/stage-fuzz.sh   # longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER=${NUMABIND_FUZZ_SECONDS:-30}
CYCLES=${NUMABIND_LEAK_CYCLES:-100000}
VALGRIND_CYCLES=${NUMABIND_VALGRIND_CYCLES:-2000}
OUT=${NUMABIND_RELIABILITY_OUT:-build/ci-reliability}
APT_PACKAGES=(build-essential cmake ninja-build python3 libnuma-dev libibverbs-dev
              clang libclang-rt-dev valgrind)

log() { printf '\n== %s\n' "$*"; }

# shellcheck source=tools/apt.sh
. tools/apt.sh   # need_apt

need_apt "${APT_PACKAGES[@]}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
JOBS=$(nproc)
# csrc/CMakeLists.txt passes a GCC-only warning flag; clang would say so per file.
CLANG_QUIET=-Wno-unknown-warning-option

log "1/4 fuzzing: ${SECONDS_PER} s per target"
CC=clang CFLAGS=$CLANG_QUIET bash tools/fuzz.sh -t "$SECONDS_PER" -j "$JOBS" -o "$OUT/fuzz"

configure() { # DIR CC FLAGS
  CC=$2 cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNUMABIND_BUILD_TESTS=ON \
    -DCMAKE_C_FLAGS="$3" -DCMAKE_EXE_LINKER_FLAGS="$3" -DCMAKE_SHARED_LINKER_FLAGS="$3" \
    -DCMAKE_CXX_COMPILER="${4:-c++}" >"$1.cmake.log" 2>&1 || { cat "$1.cmake.log"; exit 1; }
}

log "2/4 leak check: $CYCLES topology/plan cycles under LeakSanitizer"
configure "$OUT/lsan" clang "-fsanitize=leak -fno-omit-frame-pointer $CLANG_QUIET" clang++
cmake --build "$OUT/lsan" --target stress_cycles nmb_fuzz_tree >"$OUT/lsan.build.log" 2>&1 \
  || { cat "$OUT/lsan.build.log"; exit 1; }
PROCS=$(( JOBS < 4 ? JOBS : 4 ))
pids=()
for i in $(seq 1 "$PROCS"); do
  n=$(( CYCLES / PROCS + (i <= CYCLES % PROCS ? 1 : 0) ))
  # exitcode: LeakSanitizer's status when it finds a leak; 1024 KB: the growth allowed
  # between the first tenth of the cycles and the end.
  LSAN_OPTIONS=exitcode=23:report_objects=1 \
    "$OUT/lsan/csrc/tests/stress_cycles" "$OUT/lsan/csrc/fuzz/tree" "$n" 1024 >"$OUT/lsan.$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in $(seq 1 "$PROCS"); do
  wait "${pids[$((i - 1))]}" || { echo "leak check process $i failed:"; tail -40 "$OUT/lsan.$i.log"; failed=1; }
  grep '^stress_cycles:' "$OUT/lsan.$i.log" || true
done
[ "$failed" -eq 0 ] || exit 1

log "3/4 leak check: $VALGRIND_CYCLES cycles under valgrind (still-reachable blocks count)"
configure "$OUT/plain" cc ""
cmake --build "$OUT/plain" --target stress_cycles nmb_fuzz_tree >"$OUT/plain.build.log" 2>&1 \
  || { cat "$OUT/plain.build.log"; exit 1; }
valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99 \
  "$OUT/plain/csrc/tests/stress_cycles" "$OUT/plain/csrc/fuzz/tree" "$VALGRIND_CYCLES" \
  >"$OUT/valgrind.log" 2>&1 || { tail -60 "$OUT/valgrind.log"; exit 1; }
grep -E '^stress_cycles:|ERROR SUMMARY|in use at exit|total heap usage' "$OUT/valgrind.log"

log "4/4 concurrency under ThreadSanitizer"
configure "$OUT/tsan" clang "-fsanitize=thread $CLANG_QUIET" clang++
cmake --build "$OUT/tsan" --target test_concurrency nmb_trees >"$OUT/tsan.build.log" 2>&1 \
  || { cat "$OUT/tsan.build.log"; exit 1; }
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$OUT/tsan" -R '^(write_trees|write_trees_run|concurrency)$' \
  --output-on-failure

log "reliability stage passed: fuzz figures in $OUT/fuzz/summary.md"
cat "$OUT/fuzz/summary.md"
