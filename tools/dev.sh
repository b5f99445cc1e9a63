#!/usr/bin/env bash
# Installs what numabind needs on a Debian/Ubuntu machine, builds it into
# .venv, and runs it or its tests.
#
#   bash tools/dev.sh show   # install, then `numabind show`
#   bash tools/dev.sh test   # install, then the C tests (ctest, ASan+UBSan) and pytest
#                            # (with PyTorch CPU, Open MPI, MPICH and Slurm for the launcher tests)
#
# Idempotent: system packages are installed only when missing, the venv is
# reused. CI (.ci/run) calls `bash tools/dev.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${NUMABIND_VENV:-.venv}
PY=${PYTHON:-python3}
# Build: compilers, CMake, Python headers + venv, libnuma and rdma-core headers.
# Run: numactl/hwloc are not needed; libibverbs is loaded only if present.
APT_PACKAGES=(build-essential cmake ninja-build pkg-config python3 python3-dev python3-venv
              libnuma-dev libibverbs-dev)
# Test: the real launchers tests/test_launchers.py starts ranks under (Open MPI,
# MPICH, a one-node Slurm that tools/ci/slurm.sh brings up with munge).
TEST_APT_PACKAGES=(openmpi-bin mpich slurmctld slurmd slurm-client munge)
TEST_APT_PACKAGES+=(chromium fonts-dejavu-core)   # tests/test_svg.py lays drawings out in headless Chromium
TEST_APT_PACKAGES+=(locales)   # tests/test_reliability.py builds de_DE with localedef (decimal comma)
TEST_APT_PACKAGES+=(strace)    # tests/test_parallel_read.py sees the CPU thread start
# torchrun and torch.distributed (tests/test_launchers.py, tests/test_audit.py):
# the CPU build where pip finds one for this version, else PyPI's.
TORCH=${NUMABIND_TORCH:-torch==2.13.0}

log() { printf '\n== %s\n' "$*"; }

# shellcheck source=tools/apt.sh
. tools/apt.sh   # need_apt

install_torch() {
  "$VENV/bin/python" -c "import torch" 2>/dev/null && return 0
  log "installing $TORCH into $VENV (torchrun, torch.distributed for the tests)"
  "$VENV/bin/python" -m pip install -q "$TORCH"
}

install_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  log "building and installing numabind into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q ".[test]"
}

c_tests() {
  log "C tests (ctest) under AddressSanitizer and UndefinedBehaviorSanitizer"
  cmake -S . -B build/ctest-sanitize -G Ninja -DNUMABIND_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build/ctest-sanitize
  ctest --test-dir build/ctest-sanitize --output-on-failure
}

py_tests() {
  log "pytest"
  # Run from tests/ against the installed package, never the source tree.
  "$VENV/bin/python" -m pytest tests -q "$@"
}

case "${1:-}" in
  show)
    need_apt "${APT_PACKAGES[@]}"
    install_venv
    log "numabind show"
    "$VENV/bin/numabind" show
    # The command lives in the venv: say how to reach it by name.
    if [ "$(command -v numabind 2>/dev/null)" != "$(cd "$VENV/bin" && pwd)/numabind" ]; then
      printf '\nnumabind is installed in %s; to run it as `numabind`:\n  . %s/bin/activate\n' "$VENV" "$VENV"
    fi
    ;;
  test)
    shift
    need_apt "${APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}"
    install_venv
    install_torch
    c_tests
    py_tests "$@"
    ;;
  *)
    echo "usage: bash tools/dev.sh show|test [pytest args]" >&2
    exit 2
    ;;
esac
