"""On a machine with NVIDIA GPUs: numabind's GPU ordinals and PCI addresses
agree with PyTorch's (CUDA's) and NVML's, with CUDA_VISIBLE_DEVICES unset,
permuted, and given as UUIDs.

    python tests/gpu/check_ordinals.py        # exits non-zero on any disagreement

Each case runs in a fresh process, because CUDA reads CUDA_VISIBLE_DEVICES
once. Not collected by pytest (no GPU in CI): run it by hand on a GPU host.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

PROBE = r"""
import json, torch, numabind
topo = numabind.topology()
cuda = []
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    cuda.append("%04x:%02x:%02x.0" % (p.pci_domain_id, p.pci_bus_id, p.pci_device_id))
print(json.dumps({"numabind": [g.pci_address for g in topo.gpus],
                  "uuids": [g.uuid for g in topo.gpus], "cuda": cuda}))
"""


def nvml_gpus() -> list[tuple[str, str]]:
    """(PCI address, UUID) of every GPU in NVML's order (PCI order; it ignores
    CUDA_VISIBLE_DEVICES)."""
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    assert lib.nvmlInit_v2() == 0
    n = ctypes.c_uint()
    lib.nvmlDeviceGetCount_v2(ctypes.byref(n))
    out = []
    for i in range(n.value):
        h = ctypes.c_void_p()
        lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(h))
        buf = ctypes.create_string_buffer(96)
        lib.nvmlDeviceGetUUID(h, buf, 96)

        class Pci(ctypes.Structure):
            _fields_ = [("legacy", ctypes.c_char * 16), ("domain", ctypes.c_uint), ("bus", ctypes.c_uint),
                        ("device", ctypes.c_uint), ("id", ctypes.c_uint), ("sub", ctypes.c_uint),
                        ("busId", ctypes.c_char * 32)]
        pci = Pci()
        lib.nvmlDeviceGetPciInfo_v3(h, ctypes.byref(pci))
        out.append(("%04x:%02x:%02x.0" % (pci.domain, pci.bus, pci.device), buf.value.decode()))
    lib.nvmlShutdown()
    return out


def probe(env: dict[str, str | None]) -> dict:
    e = dict(os.environ)
    for k, v in env.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    r = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    nvml = nvml_gpus()
    n = len(nvml)
    print(f"NVML: {n} GPUs: {nvml}")
    perm = list(reversed(range(n)))
    cases = {
        "unset": {"CUDA_VISIBLE_DEVICES": None},
        "PCI_BUS_ID order": {"CUDA_VISIBLE_DEVICES": None, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
        "permuted": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, perm))},
        "subset": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, perm[: max(1, n // 2)]))},
        "UUIDs": {"CUDA_VISIBLE_DEVICES": ",".join(nvml[i][1] for i in perm)},
        "UUID prefixes": {"CUDA_VISIBLE_DEVICES": ",".join(nvml[i][1][:12] for i in perm)},
    }
    failures = 0
    for name, env in cases.items():
        got = probe(env)
        ok = got["numabind"] == got["cuda"]
        if name == "unset":
            ok &= got["numabind"] == [a for a, _ in nvml] and got["uuids"] == [u for _, u in nvml]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:18s} env={env} numabind={got['numabind']} cuda={got['cuda']}")
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
