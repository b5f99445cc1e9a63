#!/usr/bin/env bash
# On a GPU host, as root: what a container made by libnvidia-container
# (Docker --gpus, the Kubernetes device plugin, enroot/pyxis) sees,
# reproduced in a private mount namespace the way src/nvc_mount.c builds it,
# and checked against real CUDA:
#   - a tmpfs over /proc/driver/nvidia with copies of params (ModifyDeviceFiles
#     set to 0, so CUDA creates no device node), version and registry, and
#     only the container's GPUs' gpus/<busid> bind-mounted into it (no gpus/
#     at all for a container given none);
#   - a /dev holding nvidiactl, nvidia-uvm(-tools) and only those GPUs'
#     /dev/nvidia<minor> (and the few nodes Python needs).
# Two containers: one given the machine's last GPU, one given none. CUDA's
# count and PCI addresses, and numabind's visible GPUs and plan, must agree.
#   bash tests/gpu/check_container.sh        (after numabind is installed)
set -euo pipefail
PY=${PYTHON:-python3}
if [ ! -d /proc/driver/nvidia/gpus ]; then
  echo "check_container: needs the NVIDIA driver's /proc/driver/nvidia/gpus" >&2
  exit 2
fi
gpus=(/proc/driver/nvidia/gpus/*)
last=$(basename "${gpus[-1]}")

contain() {   # contain BUSID|"" : run the check in a container given that GPU (or none)
  local sel=$1 minor=""
  [ -n "$sel" ] && minor=$(awk -F'\t' '/^Device Minor:/ {gsub(/ /, "", $NF); print $NF}' \
                           "/proc/driver/nvidia/gpus/$sel/information")
  echo "== container given: ${sel:-no GPU}${minor:+ (minor $minor)} of ${#gpus[@]}"
  unshare -m --propagation private bash -euo pipefail -c '
sel=$1; minor=$2; PY=$3
w=$(mktemp -d)
mkdir -p "$w/proc" "$w/dev"
mount -t tmpfs tmpfs "$w/proc"
for f in params version registry; do cp /proc/driver/nvidia/$f "$w/proc/$f"; done
sed -i "s/^ModifyDeviceFiles: 1/ModifyDeviceFiles: 0/" "$w/proc/params"
if [ -n "$sel" ]; then
  mkdir -p "$w/proc/gpus/$sel"
  mount --bind "/proc/driver/nvidia/gpus/$sel" "$w/proc/gpus/$sel"
fi
mount -t tmpfs tmpfs "$w/dev"
for n in null zero full random urandom tty nvidiactl nvidia-uvm nvidia-uvm-tools ${minor:+nvidia$minor}; do
  if [ -e "/dev/$n" ]; then cp -a "/dev/$n" "$w/dev/$n"; fi
done
mkdir "$w/dev/shm" && mount -t tmpfs tmpfs "$w/dev/shm"
ln -s /proc/self/fd "$w/dev/fd"
mount --rbind "$w/proc" /proc/driver/nvidia
mount --rbind "$w/dev" /dev
echo "inside: gpus/ = [$(ls /proc/driver/nvidia/gpus 2>/dev/null | tr "\n" " ")] /dev: [$(ls /dev | grep nvidia | tr "\n" " ")]"
"$PY" - "$sel" "$minor" <<"EOF"
import sys, torch, numabind
sel, minor = sys.argv[1], sys.argv[2]
if sel:
    try:
        info = open(f"/proc/driver/nvidia/gpus/{sel}/information").read()
        print("information:", [l for l in info.splitlines() if l.startswith(("Device Minor", "GPU UUID"))])
    except OSError as e:
        print("information unreadable:", e)
n = torch.cuda.device_count()
cuda = []
for i in range(n):
    p = torch.cuda.get_device_properties(i)
    cuda.append(f"{p.pci_domain_id:04x}:{p.pci_bus_id:02x}:{p.pci_device_id:02x}.0")
topo = numabind.topology()
mine = [g.pci_address for g in topo.gpus]
closed = [g.pci_address for g in topo.all_gpus if not g.accessible]
plan = numabind.plan()
print("CUDA sees", n, cuda)
print("numabind sees", mine, "minors", [g.minor for g in topo.gpus], "cannot open", closed)
print("plan", [(r.local_rank, r.gpu_pci, r.numa_node) for r in plan], "note:", plan.note)
want = [sel] if sel else []
assert cuda == want, f"CUDA should see {want}, sees {cuda}"
assert mine == cuda, f"numabind sees {mine}, CUDA {cuda}"
assert [g.minor for g in topo.gpus] == ([int(minor)] if sel else []), "the minor of the host, read inside"
assert len(closed) == len(topo.all_gpus) - len(want)
assert [r.gpu_pci for r in plan] == want
assert (plan.note is None) == bool(want)
print("check_container: OK")
EOF
' _ "$sel" "$minor" "$PY"
}

contain "$last"
contain ""
echo "check_container: both containers OK"
