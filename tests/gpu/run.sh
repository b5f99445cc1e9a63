#!/usr/bin/env bash
# On a GPU host without network (the project's H100 machine): build numabind
# with the build tools already there, then run every GPU check.
#   bash tests/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --no-build-isolation --no-deps . 2>&1 | tail -5
# the native command, where this Python's pip put it (a venv's bin, /usr/local/bin)
numabind_bin=$("$PY" -c "import sysconfig; print(sysconfig.get_path('scripts'))")/numabind
file "$numabind_bin" 2>/dev/null || ls -l "$numabind_bin"
"$numabind_bin" show
"$numabind_bin" plan --json | head -c 2000; echo
# the native command and the Python CLI print the same bytes here too (NVML, live sysfs)
for args in "show" "show --json" "plan" "plan --json" "env --local-rank 0" "exec --dry-run --local-rank 0 -- true"; do
  # shellcheck disable=SC2086
  cmp <("$numabind_bin" $args 2>&1) <("$PY" -m numabind $args 2>&1) || { echo "differs: numabind $args"; exit 1; }
done
echo "native and Python CLIs agree on show, plan, env, exec --dry-run"
LOCAL_RANK=0 "$numabind_bin" exec -- "$numabind_bin" status
"$PY" tests/gpu/check_ordinals.py
# Containers as libnvidia-container makes them (needs root for the mount namespace).
if [ "$(id -u)" -eq 0 ]; then bash tests/gpu/check_container.sh; fi
ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())")
"$PY" -m torch.distributed.run --nproc-per-node "$ngpu" tests/gpu/check_pin_audit.py
