#!/usr/bin/env bash
# On a GPU host with at least two GPUs, as root: what a container made by
# libnvidia-container (Docker --gpus, the Kubernetes device plugin,
# enroot/pyxis) sees, reproduced in a private mount namespace the way
# src/nvc_mount.c builds it, and checked against real CUDA:
#   - a tmpfs over /proc/driver/nvidia with copies of params (ModifyDeviceFiles
#     set to 0, so CUDA creates no device node), version and registry, and
#     only the given GPU's gpus/<busid> bind-mounted into it;
#   - a /dev holding nvidiactl, nvidia-uvm(-tools) and only that GPU's
#     /dev/nvidia<minor> (and the few nodes Python needs).
# CUDA then sees one GPU, the machine's last; numabind must agree.
#   bash tests/gpu/check_container.sh        (after tests/gpu/run.sh built numabind)
set -euo pipefail
PY=${PYTHON:-python3}
gpus=(/proc/driver/nvidia/gpus/*)
if [ ! -d /proc/driver/nvidia/gpus ] || [ ${#gpus[@]} -lt 2 ]; then
  echo "check_container: needs the NVIDIA driver's /proc/driver/nvidia/gpus with 2+ GPUs" >&2
  exit 2
fi
sel=$(basename "${gpus[-1]}")
minor=$(awk -F'\t' '/^Device Minor:/ {gsub(/ /, "", $NF); print $NF}' "${gpus[-1]}/information")
echo "container GPU: $sel (minor $minor) of ${#gpus[@]}"

unshare -m --propagation private bash -euo pipefail -c '
sel=$1; minor=$2; PY=$3
w=$(mktemp -d)
mkdir -p "$w/proc" "$w/dev"
mount -t tmpfs tmpfs "$w/proc"
for f in params version registry; do cp /proc/driver/nvidia/$f "$w/proc/$f"; done
sed -i "s/^ModifyDeviceFiles: 1/ModifyDeviceFiles: 0/" "$w/proc/params"
mkdir -p "$w/proc/gpus/$sel"
mount --bind "/proc/driver/nvidia/gpus/$sel" "$w/proc/gpus/$sel"
mount -t tmpfs tmpfs "$w/dev"
for n in null zero full random urandom tty nvidiactl nvidia-uvm nvidia-uvm-tools "nvidia$minor"; do
  [ -e "/dev/$n" ] && cp -a "/dev/$n" "$w/dev/$n"
done
mkdir "$w/dev/shm" && mount -t tmpfs tmpfs "$w/dev/shm"
ln -s /proc/self/fd "$w/dev/fd"
mount --bind "$w/proc" /proc/driver/nvidia
mount --bind "$w/dev" /dev
echo "inside: /proc/driver/nvidia/gpus = $(ls /proc/driver/nvidia/gpus); /dev/nvidia* = $(ls /dev | grep nvidia | tr "\n" " ")"
"$PY" - "$sel" <<"EOF"
import sys, torch, numabind
sel = sys.argv[1]
n = torch.cuda.device_count()
cuda = [torch.cuda.get_device_properties(i).pci_bus_id.lower() for i in range(n)]
cuda = [("0000" + b[4:]) if len(b.split(":")[0]) == 8 else b for b in cuda]   # 00000000:xx -> 0000:xx
topo = numabind.topology()
mine = [g.pci_address for g in topo.gpus]
closed = [g.pci_address for g in topo.all_gpus if not g.accessible]
print("CUDA sees", n, cuda)
print("numabind gpus", mine, "minors", [g.minor for g in topo.gpus], "cannot open", closed)
plan = numabind.plan()
print("plan", [(r.local_rank, r.gpu_pci, r.numa_node) for r in plan], "note", plan.note)
assert n == 1 and cuda[0].endswith(sel[5:]), f"CUDA should see only {sel}: {cuda}"
assert mine == [sel], f"numabind sees {mine}, CUDA {cuda}"
assert len(closed) == len(topo.all_gpus) - 1
assert [r.gpu_pci for r in plan] == [sel]
print("check_container: OK")
EOF
' _ "$sel" "$minor" "$PY"
