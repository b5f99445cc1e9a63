#!/usr/bin/env bash
# On a GPU host without network (the project's H100 machine): build numabind
# with the build tools already there, then run every GPU check.
#   bash tests/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --no-build-isolation --no-deps . 2>&1 | tail -5
numabind_bin=$(dirname "$(command -v "$PY")")/numabind
"$PY" -m numabind show
"$PY" -m numabind plan --json | head -c 2000; echo
"$PY" tests/gpu/check_ordinals.py
# Containers as libnvidia-container makes them (needs root for the mount namespace).
if [ "$(id -u)" -eq 0 ]; then bash tests/gpu/check_container.sh; fi
ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())")
"$PY" -m torch.distributed.run --nproc-per-node "$ngpu" tests/gpu/check_pin_audit.py
