#!/usr/bin/env bash
# CI stage: the topology lab (docs/lab.md). Boots throw-away QEMU guests on
# Debian's stock kernel with several NUMA nodes, a CPU-less node, SMT, NICs
# on PCI expander bridges of different nodes (one behind a PCIe switch) and
# soft-RoCE devices on them, and runs tests/lab/guest inside each against the
# installed numabind; then tests/lab/host, the runner's own boot tests (exit
# status and output come back, every kind of failed boot is loud).
#
#   bash tools/ci/stage-lab.sh       # after `bash tools/dev.sh test` (reuses .venv), or alone
#   NUMABIND_LAB_LAYOUTS="2node 2node-smt 4node 4node-smt" bash tools/ci/stage-lab.sh
#
# A guest that does not boot fails the stage with "LAB STAGE FAILED" and the
# reason, never a quiet pass. Installs what it needs (Debian packages, the
# guest kernel into .lab/, a venv with numabind if .venv has none).
set -euo pipefail
cd "$(dirname "$0")/../.."

LAYOUTS=${NUMABIND_LAB_LAYOUTS:-2node 4node-smt}
VENV=${NUMABIND_VENV:-.venv}
export NUMABIND_LAB_DIR=${NUMABIND_LAB_DIR:-$PWD/.lab}
# QEMU, the initramfs's tools, soft-RoCE and libibverbs (rdma-core's tools
# and providers are what the guest runs: it shares this machine's userspace).
LAB_APT=(qemu-system-x86 busybox-static cpio kmod xz-utils iproute2 rdma-core ibverbs-utils
         ibverbs-providers libibverbs1 libnuma1 python3)
# To build numabind when there is no venv yet (as tools/dev.sh does).
BUILD_APT=(build-essential cmake ninja-build pkg-config python3-dev python3-venv libnuma-dev libibverbs-dev)

T0=$(date +%s)
log() { printf '\n== lab: %s (%d s into the stage)\n' "$*" $(( $(date +%s) - T0 )); }
die() { printf '\n!! LAB STAGE FAILED: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tools/apt.sh
. tools/apt.sh   # need_apt, need_apt_lists

log "packages"
need_apt "${LAB_APT[@]}"
need_apt_lists linux-image-amd64   # the guest kernel is fetched with apt-get download
if ! "$VENV/bin/python" -c "import numabind, pytest" 2>/dev/null; then
  need_apt "${BUILD_APT[@]}"
  log "building numabind into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q ".[test]"
fi
PY=$VENV/bin/python

log "guest kernel and initramfs"
"$PY" tools/lab/lab.py setup || die "lab setup failed (see above)"

failed=()
for layout in $LAYOUTS; do
  log "layout $layout: tests/lab/guest inside the guest"
  "$PY" tools/lab/lab.py layouts | grep "^$layout " || die "unknown layout $layout"
  # A guest that stopped answering (123: QEMU or its kernel froze under
  # TCG, no watchdog could run) is booted once more, loudly; a second
  # freeze, a hang the guest's watchdog caught (124) or a failed test is
  # the stage's failure.
  for attempt in 1 2; do
    start=$(date +%s)
    set +e
    "$PY" tools/lab/lab.py run --layout "$layout" --venv "$VENV" --timeout 480 -- \
      python -m pytest -v -p no:cacheprovider tests/lab/guest
    rc=$?
    set -e
    [ "$rc" = 123 ] && [ "$attempt" = 1 ] || break
    log "layout $layout: THE GUEST STOPPED ANSWERING (QEMU or its kernel froze); booting it once more"
  done
  case $rc in
    0) printf '== lab: layout %s passed in %d s (attempt %d)\n' "$layout" $(( $(date +%s) - start )) "$attempt" ;;
    125) failed+=("layout $layout: the guest failed to boot or to set itself up; its tests never ran") ;;
    124) failed+=("layout $layout: the guest did not finish the tests (a hang: the watchdog's report is above; or a crash)") ;;
    123) failed+=("layout $layout: the guest stopped answering twice (QEMU or its kernel froze)") ;;
    *) failed+=("layout $layout: tests failed inside the guest (pytest exit $rc)") ;;
  esac
done

log "tests/lab/host: the runner's own boots"
NUMABIND_LAB_BOOT=1 "$PY" -m pytest -v -p no:cacheprovider tests/lab/host tests/lab/test_lab_layouts.py \
  || failed+=("tests/lab/host: the runner's boot tests failed")

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n!! LAB STAGE FAILED:\n' >&2
  printf '!!   %s\n' "${failed[@]}" >&2
  exit 1
fi
log "all passed: layouts $LAYOUTS, host boot tests"
